package promclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// answer wraps a result the way Prometheus does.
func answer(resultType, result string) string {
	return `{"status":"success","data":{"resultType":"` + resultType + `","result":` + result + `}}`
}

var decodeCases = []struct {
	name string
	body string
	want model.Value
}{
	{
		name: "a vector decodes to its samples, labels and millisecond timestamps",
		body: answer("vector", `[{"metric":{"__name__":"up","namespace":"default","pod":"web-1"},"value":[1435781451.781,"1"]},`+
			`{"metric":{"__name__":"up","namespace":"default","pod":"web-2"},"value":[1435781451.781,"0.25"]}]`),
		want: model.Vector{
			{Metric: model.Metric{"__name__": "up", "namespace": "default", "pod": "web-1"}, Value: 1, Timestamp: 1435781451781},
			{Metric: model.Metric{"__name__": "up", "namespace": "default", "pod": "web-2"}, Value: 0.25, Timestamp: 1435781451781},
		},
	},
	{
		name: "an empty vector is empty, not nil",
		body: answer("vector", `[]`),
		want: model.Vector{},
	},
	{
		name: "a null vector is nil, as with encoding/json",
		body: answer("vector", `null`),
		want: model.Vector(nil),
	},
	{
		name: "a scalar decodes to a *model.Scalar",
		body: answer("scalar", `[1435781451.781,"42.5"]`),
		want: &model.Scalar{Value: 42.5, Timestamp: 1435781451781},
	},
	{
		name: "a matrix decodes as model decodes it",
		body: answer("matrix", `[{"metric":{"pod":"web-1"},"values":[[1435781451,"1"],[1435781466,"2"]]}]`),
		want: model.Matrix{{Metric: model.Metric{"pod": "web-1"}, Values: []model.SamplePair{{Timestamp: 1435781451000, Value: 1}, {Timestamp: 1435781466000, Value: 2}}}},
	},
	{
		name: "a string decodes to a *model.String",
		body: answer("string", `[1435781451.781,"hello"]`),
		want: &model.String{Value: "hello", Timestamp: 1435781451781},
	},
	{
		name: "NaN and infinities are values",
		body: answer("vector", `[{"metric":{"q":"nan"},"value":[1,"NaN"]},{"metric":{"q":"+inf"},"value":[1,"+Inf"]},{"metric":{"q":"-inf"},"value":[1,"-Inf"]}]`),
		want: model.Vector{
			{Metric: model.Metric{"q": "nan"}, Value: model.SampleValue(math.NaN()), Timestamp: 1000},
			{Metric: model.Metric{"q": "+inf"}, Value: model.SampleValue(math.Inf(1)), Timestamp: 1000},
			{Metric: model.Metric{"q": "-inf"}, Value: model.SampleValue(math.Inf(-1)), Timestamp: 1000},
		},
	},
	{
		name: "timestamps are seconds with up to three decimals, parsed as model.Time does",
		body: answer("vector", `[{"metric":{"t":"a"},"value":[1435781451.781,"1"]},{"metric":{"t":"b"},"value":[1435781451,"1"]},`+
			`{"metric":{"t":"c"},"value":[1435781451.7,"1"]},{"metric":{"t":"d"},"value":[1435781451.78,"1"]},`+
			`{"metric":{"t":"e"},"value":[1435781451.7819,"1"]},{"metric":{"t":"f"},"value":[-1.5,"1"]},{"metric":{"t":"g"},"value":[0.001,"1"]}]`),
		want: model.Vector{
			{Metric: model.Metric{"t": "a"}, Value: 1, Timestamp: 1435781451781},
			{Metric: model.Metric{"t": "b"}, Value: 1, Timestamp: 1435781451000},
			{Metric: model.Metric{"t": "c"}, Value: 1, Timestamp: 1435781451700},
			{Metric: model.Metric{"t": "d"}, Value: 1, Timestamp: 1435781451780},
			{Metric: model.Metric{"t": "e"}, Value: 1, Timestamp: 1435781451781},
			{Metric: model.Metric{"t": "f"}, Value: 1, Timestamp: -1500},
			{Metric: model.Metric{"t": "g"}, Value: 1, Timestamp: 1},
		},
	},
	{
		name: "escaped label values are unescaped",
		body: answer("vector", `[{"metric":{"a":"say \"hi\"","b":"back\\slash","c":"caf\u00e9","d":"\ud83d\ude00","e":"tab\there\/\n","f":"été"},"value":[1,"1"]}]`),
		want: model.Vector{{Metric: model.Metric{"a": `say "hi"`, "b": `back\slash`, "c": "café", "d": "😀", "e": "tab\there/\n", "f": "été"}, Value: 1, Timestamp: 1000}},
	},
	{
		name: "escaped label names are unescaped and interned",
		body: answer("vector", `[{"metric":{"n\u0061me":"x"},"value":[1,"1"]},{"metric":{"name":"y"},"value":[1,"2"]}]`),
		want: model.Vector{
			{Metric: model.Metric{"name": "x"}, Value: 1, Timestamp: 1000},
			{Metric: model.Metric{"name": "y"}, Value: 2, Timestamp: 1000},
		},
	},
	{
		name: "invalid UTF-8 and lone surrogates become U+FFFD, as with encoding/json",
		body: answer("vector", "[{\"metric\":{\"a\":\"x\xffy\",\"b\":\"\\ud800z\",\"c\":\"\\udc00\"},\"value\":[1,\"1\"]}]"),
		want: model.Vector{{Metric: model.Metric{"a": "x\uFFFDy", "b": "\uFFFDz", "c": "\uFFFD"}, Value: 1, Timestamp: 1000}},
	},
	{
		name: "unknown fields are skipped wherever they are",
		body: `{"warnings":["w1"],"x":{"nested":[1,2,{"x":null}]},"status":"success","data":{"stats":{"timings":{"evalTotalTime":0.1}},` +
			`"resultType":"vector","result":[{"extra":[true,false,null,-1.5e-3],"metric":{"pod":"web-1"},"more":"\"}","value":[1,"1"],"last":{}}],"analysis":{}},"infos":["i1"]}`,
		want: model.Vector{{Metric: model.Metric{"pod": "web-1"}, Value: 1, Timestamp: 1000}},
	},
	{
		name: "keys come in any order",
		body: `{"data":{"result":[{"value":[1435781451.781,"3"],"metric":{"pod":"web-1"}}],"resultType":"vector"},"status":"success"}`,
		want: model.Vector{{Metric: model.Metric{"pod": "web-1"}, Value: 3, Timestamp: 1435781451781}},
	},
	{
		name: "whitespace is allowed between all tokens",
		body: " \r\n\t{ \"status\" : \"success\" ,\n \"data\" : {\n\t\"resultType\" : \"vector\" ,\r\n \"result\" : [ { \"metric\" : { \"pod\" : \"web-1\" } , \"value\" : [ 1 , \"1\" ] } ] } } \n",
		want: model.Vector{{Metric: model.Metric{"pod": "web-1"}, Value: 1, Timestamp: 1000}},
	},
	{
		name: "keys match case-insensitively and the last duplicate wins, as with encoding/json",
		body: `{"Status":"success","DATA":{"ResultType":"vector","result":[{"METRIC":{"pod":"web-1"},"Value":[1,"1"],"value":[2,"2"]}]}}`,
		want: model.Vector{{Metric: model.Metric{"pod": "web-1"}, Value: 2, Timestamp: 2000}},
	},
	{
		name: "a sample without metric has a nil metric, an empty one an empty metric",
		body: answer("vector", `[{"value":[1,"1"]},{"metric":{},"value":[1,"2"]}]`),
		want: model.Vector{{Value: 1, Timestamp: 1000}, {Metric: model.Metric{}, Value: 2, Timestamp: 1000}},
	},
	{
		name: "a null label value is the empty value, as with encoding/json",
		body: answer("vector", `[{"metric":{"pod":null},"value":[1,"1"]}]`),
		want: model.Vector{{Metric: model.Metric{"pod": ""}, Value: 1, Timestamp: 1000}},
	},
	{
		name: "extra elements of a value are ignored, as model.SamplePair does",
		body: answer("vector", `[{"metric":{},"value":[1,"1",{"ignored":true}]}]`),
		want: model.Vector{{Metric: model.Metric{}, Value: 1, Timestamp: 1000}},
	},
}

// decodeValue decodes a body without a sample limit and returns its value.
func decodeValue(body []byte) (model.Value, error) {
	a, err := decodeQueryResponse(body, 0)
	return a.value, err
}

func TestDecodeQueryResponse(t *testing.T) {
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeValue([]byte(tc.body))
			if err != nil {
				t.Fatalf("decodeQueryResponse(%s): %v", tc.body, err)
			}
			if !sameValue(got, tc.want) {
				t.Errorf("decodeQueryResponse(%s)\n got %#v\nwant %#v", tc.body, got, tc.want)
			}
		})
	}
}

// TestDecodeQueryResponseMatchesClientGolang runs the same bodies through client_golang's own
// Query, the decoding the adapter used before.
func TestDecodeQueryResponseMatchesClientGolang(t *testing.T) {
	for _, tc := range decodeCases {
		if tc.want.Type() == model.ValString {
			continue // client_golang refuses string results
		}
		t.Run(tc.name, func(t *testing.T) {
			want, _, _, err := v1.NewAPI(cannedAnswer(tc.body)).Query(context.Background(), "q", time.Time{})
			if err != nil {
				t.Fatalf("client_golang: %v", err)
			}
			got, err := decodeValue([]byte(tc.body))
			if err != nil {
				t.Fatalf("decodeQueryResponse: %v", err)
			}
			if !sameValue(got, want) {
				t.Errorf("decodeQueryResponse(%s)\n got %#v\nwant %#v (client_golang)", tc.body, got, want)
			}
		})
	}
}

func TestDecodeQueryResponseRejectsWhatIsNotAQueryResult(t *testing.T) {
	cases := []struct {
		name string
		body string
		want string // substring of the error
	}{
		{"an empty body", ``, "expected an object at byte 0 (the end of the answer)"},
		{"an HTML page", `<!DOCTYPE html><html><body>Grafana</body></html>`, `expected an object at byte 0 (near "<!DOCTYPE html><html><body>Grafa")`},
		{"JSON null", `null`, "expected an object at byte 0"},
		{"an array", `[]`, "expected an object at byte 0"},
		{"data after the answer", answer("vector", `[]`) + `{}`, "unexpected data after the answer"},
		{"success without data", `{"status":"success"}`, `status "success" without "data"`},
		{"null data", `{"status":"success","data":null}`, `without "data"`},
		{"data that is not an object", `{"status":"success","data":[]}`, "expected an object"},
		{"no result", `{"status":"success","data":{"resultType":"vector"}}`, `query result without "result"`},
		{"no resultType", `{"status":"success","data":{"result":[]}}`, `query result without "resultType"`},
		{"an unknown resultType", answer("histogram", `[]`), `unknown resultType "histogram"`},
		{"a resultType that is not a string", `{"status":"success","data":{"resultType":1,"result":[]}}`, "expected a string"},
		{"a vector that is an object", answer("vector", `{}`), "expected an array"},
		{"a null sample", answer("vector", `[null]`), "sample 0 is null"},
		{"a sample that is a number", answer("vector", `[{"metric":{},"value":[1,"1"]},5]`), "sample 1: expected an object"},
		{"a metric that is an array", answer("vector", `[{"metric":[],"value":[1,"1"]}]`), "sample 0: expected an object"},
		{"a label value that is a number", answer("vector", `[{"metric":{"pod":1},"value":[1,"1"]}]`), `sample 0: label "pod": expected a string`},
		{"a value that is not an array", answer("vector", `[{"metric":{},"value":"1"}]`), "sample 0: expected an array"},
		{"a timestamp in quotes", answer("vector", `[{"metric":{},"value":["1435781451.781","1"]}]`), `sample 0: timestamp "1435781451.781"`},
		{"a timestamp with an exponent", answer("vector", `[{"metric":{},"value":[1e9,"1"]}]`), "sample 0: timestamp 1e9"},
		{"a value without quotes", answer("vector", `[{"metric":{},"value":[1,1]}]`), "sample 0: value 1: sample value must be a quoted string"},
		{"a value that is not a number", answer("vector", `[{"metric":{},"value":[1,"abc"]}]`), `sample 0: value "abc"`},
		{"a scalar without value", answer("scalar", `[1]`), "error parsing sample value"},
		{"a histogram that is null", answer("vector", `[{"metric":{},"histogram":null}]`), "sample 0: wrong number of fields"},
		{"an invalid escape", answer("vector", `[{"metric":{"a":"\x41"},"value":[1,"1"]}]`), "invalid escape in string"},
		{"a short \\u escape", answer("vector", `[{"metric":{"a":"\u41"},"value":[1,"1"]}]`), "invalid escape in string"},
		{"a control character in a string", answer("vector", "[{\"metric\":{\"a\":\"x\ty\"},\"value\":[1,\"1\"]}]"), "control character in string"},
		{"a number with a leading zero", `{"status":"success","x":01,"data":{"resultType":"vector","result":[]}}`, "expected ',' or '}'"},
		{"a number without digits after the point", `{"status":"success","x":1.,"data":{"resultType":"vector","result":[]}}`, "invalid number"},
		{"a lone minus", `{"status":"success","x":-,"data":{"resultType":"vector","result":[]}}`, "invalid number"},
		{"a misspelt literal", `{"status":"success","x":nul,"data":{"resultType":"vector","result":[]}}`, "invalid literal"},
		{"a trailing comma", answer("vector", `[{"metric":{},"value":[1,"1"]},]`), "sample 1: expected an object"},
		{"a value nested too deeply", `{"x":` + strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1) + `}`, "value nested too deeply"},
		{"a broken unknown field after a good result", `{"status":"success","data":{"resultType":"vector","result":[]},"stats":[1,]}`, "expected a value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := decodeValue([]byte(tc.body))
			if err == nil {
				t.Fatalf("decodeQueryResponse(%.80s) = %v, want an error", tc.body, v)
			}
			if !strings.HasPrefix(err.Error(), "answer is not a Prometheus query result: ") {
				t.Errorf("error %q does not say the answer is not a query result", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestDecodeQueryResponseReturnsAnErrorAnswerAsAnAPIError(t *testing.T) {
	body := `{"status":"error","errorType":"bad_data","error":"1:5: parse error"}`
	_, err := decodeValue([]byte(body))
	var apiErr *v1.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("decodeQueryResponse(%s) = %v, want a *v1.Error", body, err)
	}
	if want := (&v1.Error{Type: v1.ErrBadData, Msg: "1:5: parse error"}); !reflect.DeepEqual(apiErr, want) {
		t.Errorf("error = %#v, want %#v", apiErr, want)
	}
}

// richAnswer exercises every part of the decoder. It ends with its closing brace, so every
// shorter prefix of it is truncated.
const richAnswer = `{"status":"success","warnings":["w"],"data":{"resultType":"vector","result":[` +
	`{"metric":{"__name__":"up","pod":"caf\u00e9 \"1\"","ns":null},"value":[1435781451.781,"NaN"]},` +
	`{"value":[1435781451,"-Inf"],"metric":{},"x":[true,false,null,{"y":-1.5e+3}]}],"stats":{}}}`

func TestDecodeQueryResponseFailsOnEveryTruncation(t *testing.T) {
	if _, err := decodeValue([]byte(richAnswer)); err != nil {
		t.Fatalf("the whole answer does not decode: %v", err)
	}
	for n := range len(richAnswer) {
		if v, err := decodeValue([]byte(richAnswer[:n])); err == nil {
			t.Errorf("the first %d bytes %q decoded to %v, want an error", n, richAnswer[:n], v)
		}
	}
}

func TestDecodeQueryResponseSurvivesCorruptionAtEveryOffset(t *testing.T) {
	for i := range len(richAnswer) {
		for _, c := range []byte{'"', '\\', '{', '}', '[', ']', ',', ':', '.', '-', 'n', '0', 0, 0xff} {
			body := []byte(richAnswer)
			body[i] = c
			// Some corruptions leave valid answers; what matters is that none panics.
			_, _ = decodeValue(body)
		}
	}
}

func FuzzDecodeQuery(f *testing.F) {
	for _, tc := range decodeCases {
		f.Add([]byte(tc.body))
	}
	f.Add([]byte(richAnswer))
	f.Add([]byte(vectorAnswer(20)))
	f.Add([]byte(`{"status":"error","errorType":"bad_data","error":"parse error"}`))
	// Corners of encoding/json's semantics that the decoder reproduces.
	for _, body := range []string{
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"metric":{"b":"2"},"value":[1,"1"],"value":[2]}],"result":[]}}`,
		`{"ſtatus":"success","data":{"reſultType":"vector","reſult":[{"metric":{"a":"1"},"metric":null,"value":[null,"1"]},{"metric":null,"metric":{"b":"2"},"value":[1,null]}]}}`,
		`{"status":"success","data":{"resultType":"vector","result":[{"value":null},{"value":[]},{"value":[1.123e5,"0x1p-2"]}]}}`,
		`{"status":"success","data":{"resultType":"vector","result":[],"resultType":"matrix"}}`,
		`{"status":"success","data":{"resultType":"scalar","result":[1,"1"],"resultType":"vector","result":[]}}`,
		`{"status":"success","data":{"resultType":"vector","result":[5],"result":[]}}`,
		`{"status":"success","data":{"resultType":"scalar","result":[1,"1\u0030"]}}`,
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1\u0030"]}]}}`,
	} {
		f.Add([]byte(body))
	}
	// Warnings, infos, native histograms and results over the sample limit.
	const hist = `{"count":"2","sum":"3.5","buckets":[[0,"0","1","2"]]}`
	for _, body := range []string{
		`{"status":"success","warnings":["store down"],"infos":["info"],"data":{"resultType":"vector","result":[]}}`,
		`{"status":"success","warnings":null,"Warnings":["a",null],"infos":[],"data":{"resultType":"vector","result":[]}}`,
		answer("vector", `[{"metric":{"pod":"web-1"},"histogram":[1435781451.781,`+hist+`]}]`),
		answer("vector", `[{"histogram":[1,`+hist+`],"metric":{"pod":"web-1"},"value":[1,"1"]}]`),
		answer("matrix", `[{"metric":{"pod":"web-1"},"histograms":[[1,`+hist+`]]}]`),
		vectorAnswer(fuzzMaxSamples + 1),
		answer("matrix", `[{"metric":{},"values":[[1,"1"],[2,"2"],[3,"3"],[4,"4"],[5,"5"],[6,"6"],[7,"7"],[8,"8"],[9,"9"]]}]`),
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := decodeQueryResponse(body, fuzzMaxSamples)
		want, ok := referenceDecode(body)
		if !ok {
			return
		}
		if wantErr := refusal(want.value, fuzzMaxSamples); wantErr != nil {
			if !reflect.DeepEqual(err, wantErr) {
				t.Fatalf("decodeQueryResponse(%q) = %#v, %#v; want error %#v", body, got.value, err, wantErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("decodeQueryResponse(%q): %v; encoding/json decodes it to %#v", body, err, want.value)
		}
		if !sameValue(got.value, want.value) {
			t.Fatalf("decodeQueryResponse(%q)\n got %#v\nwant %#v (encoding/json)", body, got.value, want.value)
		}
		if !reflect.DeepEqual(got.warnings, want.warnings) || !reflect.DeepEqual(got.infos, want.infos) {
			t.Fatalf("decodeQueryResponse(%q): warnings %#v, infos %#v; want %#v, %#v (encoding/json)", body, got.warnings, got.infos, want.warnings, want.infos)
		}
	})
}

// fuzzMaxSamples is the sample limit that FuzzDecodeQuery decodes with.
const fuzzMaxSamples = 8

// refusal is the error decodeQueryResponse must return for a result that encoding/json
// decodes to v, or nil: the first native histogram or the first sample over the limit, in the
// order the decoder meets them.
func refusal(v model.Value, maxSamples int) error {
	switch v := v.(type) {
	case model.Vector:
		for i, s := range v {
			if i >= maxSamples {
				return &tooManySamplesError{limit: maxSamples, seen: len(v)}
			}
			if s.Histogram != nil {
				return &histogramError{series: s.Metric}
			}
		}
	case model.Matrix:
		n := 0
		for _, s := range v {
			if s == nil {
				continue
			}
			if len(s.Histograms) > 0 {
				return &histogramError{series: s.Metric}
			}
			n += len(s.Values)
		}
		if n > maxSamples {
			return &tooManySamplesError{limit: maxSamples, seen: n}
		}
	}
	return nil
}

// referenceDecode decodes a body as client_golang does on Go 1.27, with encoding/json throughout:
// the envelope, then queryResult.UnmarshalJSON, then model's own unmarshalling of the result.
// ok is false unless the body is a success answer that decodes. A vector holding a null sample
// is left out too: decodeQueryResponse refuses it on purpose.
func referenceDecode(body []byte) (a queryAnswer, ok bool) {
	var answer struct {
		Status    string           `json:"status"`
		Data      *referenceResult `json:"data"`
		ErrorType string           `json:"errorType"`
		Error     string           `json:"error"`
		Warnings  []string         `json:"warnings"`
		Infos     []string         `json:"infos"`
	}
	if json.Unmarshal(body, &answer) != nil || answer.Status != "success" || answer.Data == nil {
		return queryAnswer{}, false
	}
	if vec, isVector := answer.Data.v.(model.Vector); isVector {
		for _, s := range vec {
			if s == nil {
				return queryAnswer{}, false
			}
		}
	}
	return queryAnswer{value: answer.Data.v, warnings: answer.Warnings, infos: answer.Infos}, true
}

type referenceResult struct{ v model.Value }

// UnmarshalJSON is client_golang's queryResult.UnmarshalJSON (api_127.go).
func (r *referenceResult) UnmarshalJSON(b []byte) error {
	v := struct {
		Type   model.ValueType `json:"resultType"`
		Result json.RawMessage `json:"result"`
	}{}
	err := json.Unmarshal(b, &v)
	if err != nil {
		return err
	}
	switch v.Type {
	case model.ValScalar:
		var sv model.Scalar
		err = json.Unmarshal(v.Result, &sv)
		r.v = &sv
	case model.ValVector:
		var vv model.Vector
		err = json.Unmarshal(v.Result, &vv)
		r.v = vv
	case model.ValMatrix:
		var mv model.Matrix
		err = json.Unmarshal(v.Result, &mv)
		r.v = mv
	default:
		err = fmt.Errorf("unexpected value type %q", v.Type)
	}
	return err
}

// sameValue compares decoded values exactly, nil and empty maps and slices apart, but with
// NaN equal to NaN.
func sameValue(a, b model.Value) bool {
	switch a := a.(type) {
	case model.Vector:
		b, ok := b.(model.Vector)
		if !ok || len(a) != len(b) || (a == nil) != (b == nil) {
			return false
		}
		for i := range a {
			if (a[i] == nil) != (b[i] == nil) || a[i] != nil && !sameSample(*a[i], *b[i]) {
				return false
			}
		}
		return true
	case *model.Scalar:
		b, ok := b.(*model.Scalar)
		return ok && a.Timestamp == b.Timestamp && sameFloat(a.Value, b.Value)
	case model.Matrix:
		b, ok := b.(model.Matrix)
		if !ok || len(a) != len(b) || (a == nil) != (b == nil) {
			return false
		}
		for i := range a {
			if !sameStream(a[i], b[i]) {
				return false
			}
		}
		return true
	case *model.String:
		return reflect.DeepEqual(a, b)
	}
	return false
}

func sameSample(a, b model.Sample) bool {
	return reflect.DeepEqual(a.Metric, b.Metric) && a.Timestamp == b.Timestamp && sameFloat(a.Value, b.Value) &&
		sameHistogram(a.Histogram, b.Histogram)
}

func sameStream(a, b *model.SampleStream) bool {
	if a == nil || b == nil {
		return a == b
	}
	if !reflect.DeepEqual(a.Metric, b.Metric) || len(a.Values) != len(b.Values) || len(a.Histograms) != len(b.Histograms) {
		return false
	}
	for i := range a.Values {
		if a.Values[i].Timestamp != b.Values[i].Timestamp || !sameFloat(a.Values[i].Value, b.Values[i].Value) {
			return false
		}
	}
	for i := range a.Histograms {
		if a.Histograms[i].Timestamp != b.Histograms[i].Timestamp || !sameHistogram(a.Histograms[i].Histogram, b.Histograms[i].Histogram) {
			return false
		}
	}
	return true
}

// sameHistogram compares histograms by their rendering, in which NaN equals NaN.
func sameHistogram(a, b *model.SampleHistogram) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.String() == b.String()
}

func sameFloat(a, b model.SampleValue) bool {
	return math.Float64bits(float64(a)) == math.Float64bits(float64(b)) || math.IsNaN(float64(a)) && math.IsNaN(float64(b))
}

// cannedAnswer is an api.Client that answers every request with 200 and body, so that
// client_golang's decoding can be run without a server.
type cannedAnswer string

func (cannedAnswer) URL(ep string, _ map[string]string) *url.URL {
	return &url.URL{Scheme: "http", Host: "prometheus", Path: ep}
}

func (c cannedAnswer) Do(context.Context, *http.Request) (*http.Response, []byte, error) {
	return &http.Response{StatusCode: http.StatusOK}, []byte(c), nil
}

var _ api.Client = cannedAnswer("")
