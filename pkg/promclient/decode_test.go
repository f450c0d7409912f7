package promclient

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

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
