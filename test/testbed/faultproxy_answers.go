// The answers a FaultProxy makes up or rewrites for the faults.

package testbed

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func writeBody(w http.ResponseWriter, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// rewriteAnswer applies a rewriting fault to a Prometheus API answer and reports whether it
// changed anything. Fields it does not know are kept.
func rewriteAnswer(body []byte, f Fault) ([]byte, bool, error) {
	var answer map[string]json.RawMessage
	if err := json.Unmarshal(body, &answer); err != nil {
		return nil, false, fmt.Errorf("the backend's answer is not a JSON object: %w", err)
	}
	if f.Kind == PartialWarning {
		var warnings []string
		if raw, ok := answer["warnings"]; ok {
			if err := json.Unmarshal(raw, &warnings); err != nil {
				return nil, false, fmt.Errorf("the backend's warnings: %w", err)
			}
		}
		answer["warnings"] = mustJSON(append(warnings, PartialWarningText))
		return mustJSON(answer), true, nil
	}
	var data struct {
		ResultType string                       `json:"resultType"`
		Result     []map[string]json.RawMessage `json:"result"`
	}
	if raw, ok := answer["data"]; !ok || json.Unmarshal(raw, &data) != nil || data.ResultType != "vector" {
		return body, false, nil // only vectors are rewritten
	}
	var result []map[string]json.RawMessage
	changed := false
	for _, sample := range data.Result {
		var metric map[string]string
		if err := json.Unmarshal(sample["metric"], &metric); err != nil {
			return nil, false, fmt.Errorf("a sample's metric: %w", err)
		}
		if f.Kind != MatrixResult && !f.selects(metric) {
			result = append(result, sample)
			continue
		}
		changed = true
		switch f.Kind {
		case MatrixResult:
			sample["values"] = json.RawMessage("[" + string(sample["value"]) + "]")
			delete(sample, "value")
			result = append(result, sample)
		case DuplicateSeries:
			copied := map[string]string{DuplicateLabel: "1"}
			for k, v := range metric {
				copied[k] = v
			}
			result = append(result, sample, map[string]json.RawMessage{"metric": mustJSON(copied), "value": sample["value"]})
		case SpecialValue, NativeHistogram:
			var point []json.RawMessage
			if err := json.Unmarshal(sample["value"], &point); err != nil || len(point) != 2 {
				return nil, false, fmt.Errorf("a sample's value %s is not [time, value]", sample["value"])
			}
			if f.Kind == SpecialValue {
				sample["value"] = mustJSON([]json.RawMessage{point[0], mustJSON(f.Value)})
			} else {
				delete(sample, "value")
				sample["histogram"] = mustJSON([]json.RawMessage{point[0], json.RawMessage(`{"count":"1","sum":"1","buckets":[]}`)})
			}
			result = append(result, sample)
		}
	}
	if result == nil {
		result = []map[string]json.RawMessage{}
	}
	resultType := data.ResultType
	if f.Kind == MatrixResult {
		resultType = "matrix"
	}
	answer["data"] = mustJSON(map[string]any{"resultType": resultType, "result": result})
	return mustJSON(answer), changed, nil
}

func mustJSON(v any) json.RawMessage {
	out, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("fault proxy: encoding %T: %v", v, err))
	}
	return out
}

// writeHugeAnswer streams a vector of at least size bytes: samples of faultproxy_huge, each with
// a distinct pod label and a 1 KiB padding label, value 1 at the current time.
func writeHugeAnswer(w http.ResponseWriter, size int64) {
	const head = `{"status":"success","data":{"resultType":"vector","result":[`
	const trailer = `]}}`
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	out := bufio.NewWriterSize(w, 64<<10)
	padding := strings.Repeat("x", 1024)
	prefix := []byte(`{"metric":{"__name__":"faultproxy_huge","namespace":"faultproxy","padding":"` + padding + `","pod":"huge-`)
	suffix := []byte(`"},"value":[` + strconv.FormatInt(time.Now().Unix(), 10) + `,"1"]}`)
	written, _ := out.WriteString(head)
	total := int64(written)
	var digits []byte
	for i := 0; total+int64(len(trailer)) < size; i++ {
		if i > 0 {
			if out.WriteByte(',') != nil {
				return
			}
			total++
		}
		digits = strconv.AppendInt(digits[:0], int64(i), 10)
		n1, _ := out.Write(prefix)
		n2, _ := out.Write(digits)
		n3, err := out.Write(suffix)
		if err != nil {
			return // the client went away
		}
		total += int64(n1 + n2 + n3)
	}
	_, _ = out.WriteString(trailer)
	_ = out.Flush()
}
