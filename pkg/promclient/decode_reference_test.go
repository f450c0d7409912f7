// Reference decodings (encoding/json and client_golang) and value comparisons the decoder tests check against.

package promclient

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"reflect"

	"github.com/prometheus/client_golang/api"
	"github.com/prometheus/common/model"
)

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
