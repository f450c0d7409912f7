// Truncation, corruption and fuzz tests of the query-response decoder.

package promclient

import (
	"reflect"
	"testing"

	"github.com/prometheus/common/model"
)

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
