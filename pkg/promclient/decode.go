package promclient

import (
	"errors"
	"fmt"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// queryAnswer is a decoded success answer: the result, and the warnings and infos that came
// with it. Thanos, Prometheus agents behind a federation and Prometheus 3 send warnings when
// the result may be incomplete (a store did not answer), infos for what is merely notable.
type queryAnswer struct {
	value    model.Value
	warnings []string
	infos    []string
}

// decodeQueryResponse decodes the body of a 2xx answer to /api/v1/query. A result holding more
// than maxSamples samples (a vector element is one, a matrix point is one) is refused with a
// *tooManySamplesError while it is read, before it is held in memory; 0 or less sets no limit.
//
// For a success answer it returns what client_golang's v1.API.Query returns for the same body:
// samples decoded with encoding/json's semantics, down to case-insensitive keys, duplicate keys
// where the last one wins, U+FFFD for invalid UTF-8, and model.Time's "seconds.millis" parsing.
// It differs on purpose in four ways: a null sample is an error (client_golang returns a nil
// *Sample, which callers dereference), a native histogram sample is a *histogramError (it has
// no single value, and reading it as 0 would be a silent lie), a string result is returned
// rather than refused, and "data" must hold a query result. An answer with status "error"
// yields the *v1.Error it carries.
//
// Vectors, the hot path, are decoded by a single scan of the body that allocates only what the
// result keeps. Scalars, matrices and strings go through encoding/json: they are one value, or
// not what the adapter asks for.
func decodeQueryResponse(body []byte, maxSamples int) (queryAnswer, error) {
	d := decoder{b: body, labels: map[string]*label{}, maxSamples: maxSamples}
	a, err := d.answer()
	if err != nil && !isAnswer(err) {
		return queryAnswer{}, fmt.Errorf("answer is not a Prometheus query result: %w", err)
	}
	return a, err
}

// isAnswer tells whether a decoding failure is about a well-formed answer: an error answer, or
// one the adapter refuses. It is a function of its own so that its targets for errors.As are
// allocated only when there is an error.
func isAnswer(err error) bool {
	var apiErr *v1.Error
	var histErr *histogramError
	var samplesErr *tooManySamplesError
	return errors.As(err, &apiErr) || errors.As(err, &histErr) || errors.As(err, &samplesErr)
}

// maxDepth is encoding/json's limit on nesting.
const maxDepth = 10000

// decoder scans one answer. Its methods leave the cursor after what they read; those that read
// a value skip the whitespace before it.
type decoder struct {
	b []byte
	i int // cursor

	buf     []byte            // unescaped strings
	labels  map[string]*label // by name
	samples []model.Sample    // slab that samples are carved from
	hint    int               // labels in the last metric: the size hint for the next one

	maxSamples int // 0: no limit
}

// label interns a label name, and remembers its last value so that a value repeated from one
// sample to the next (the namespace of a namespaced query, a container name) is shared.
type label struct {
	name model.LabelName
	last model.LabelValue
}

func (d *decoder) answer() (queryAnswer, error) {
	var status, errorType, errorMsg string
	var a queryAnswer
	err := d.object(func(key []byte) (err error) {
		switch field(key, "status", "errorType", "error", "data", "warnings", "infos") {
		case "status":
			status, err = d.stringOrNull()
		case "errorType":
			errorType, err = d.stringOrNull()
		case "error":
			errorMsg, err = d.stringOrNull()
		case "data":
			a.value, err = d.data()
		case "warnings":
			a.warnings, err = d.strings()
		case "infos":
			a.infos, err = d.strings()
		default:
			err = d.skip()
		}
		return err
	})
	if err != nil {
		return queryAnswer{}, err
	}
	if d.ws(); d.i < len(d.b) {
		return queryAnswer{}, d.errorf("unexpected data after the answer")
	}
	// Like client_golang, only "error" counts as a failure: the status is not checked further.
	if status == "error" {
		return queryAnswer{}, &v1.Error{Type: v1.ErrorType(errorType), Msg: errorMsg}
	}
	if a.value == nil {
		return queryAnswer{}, fmt.Errorf(`status %q without "data"`, status)
	}
	return a, nil
}

// data reads the "data" object: a resultType and a result, in either order.
func (d *decoder) data() (model.Value, error) {
	if d.null() {
		return nil, nil
	}
	typ := model.ValNone
	at := -1 // where the last "result" starts
	// The result decoded while it was read, when its type was already known. Prometheus sends
	// resultType first, so this saves a second scan of the vector.
	inline := struct {
		at  int
		typ model.ValueType
		v   model.Value
		err error
	}{at: -1}
	err := d.object(func(key []byte) (err error) {
		switch field(key, "resultType", "result") {
		case "resultType":
			typ, err = d.valueType()
		case "result":
			at = d.i
			if typ != model.ValVector {
				return d.skip()
			}
			inline.at, inline.typ = at, typ
			if inline.v, inline.err = d.vector(); inline.err != nil {
				// Only the last "result" counts, as with encoding/json: remember the failure and
				// skip over this one, unless it is not even JSON.
				d.i = at
				if d.skip() != nil {
					return inline.err
				}
			}
		default:
			return d.skip()
		}
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case at < 0:
		return nil, errors.New(`query result without "result"`)
	case inline.at == at && inline.typ == typ:
		return inline.v, inline.err
	}
	end := d.i
	d.i = at
	v, err := d.result(typ)
	d.i = end
	return v, err
}

// valueType reads a resultType, as model.ValueType.UnmarshalJSON does.
func (d *decoder) valueType() (model.ValueType, error) {
	at := d.i
	s, err := d.stringOrNull()
	if err != nil {
		return model.ValNone, err
	}
	switch s {
	case "vector":
		return model.ValVector, nil
	case "scalar":
		return model.ValScalar, nil
	case "matrix":
		return model.ValMatrix, nil
	case "string":
		return model.ValString, nil
	}
	return model.ValNone, d.errorfAt(at, "unknown resultType %q", s)
}

// result reads a result of type typ.
func (d *decoder) result(typ model.ValueType) (model.Value, error) {
	var v model.Value
	var err error
	switch typ {
	case model.ValVector:
		return d.vector()
	case model.ValScalar:
		var s model.Scalar
		v, err = &s, d.unmarshal(&s)
	case model.ValMatrix:
		var m model.Matrix
		if err = d.unmarshal(&m); err == nil {
			err = d.checkMatrix(m)
		}
		v = m
	case model.ValString:
		var s model.String
		v, err = &s, d.unmarshal(&s)
	default:
		return nil, errors.New(`query result without "resultType"`)
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

// checkMatrix refuses a matrix with more points than d.maxSamples, or with native histograms.
// Matrices are not a hot path: they are checked once decoded.
func (d *decoder) checkMatrix(m model.Matrix) error {
	n := 0
	for _, s := range m {
		if s == nil {
			continue
		}
		if len(s.Histograms) > 0 {
			return &histogramError{series: s.Metric}
		}
		n += len(s.Values)
	}
	if d.maxSamples > 0 && n > d.maxSamples {
		return &tooManySamplesError{limit: d.maxSamples, seen: n}
	}
	return nil
}

func (d *decoder) vector() (model.Vector, error) {
	if d.null() {
		return nil, nil
	}
	vec := model.Vector{}
	over := 0 // samples beyond d.maxSamples, skipped rather than decoded
	err := d.array(func(i int) error {
		if d.maxSamples > 0 && i >= d.maxSamples {
			over++
			return d.skip()
		}
		if d.null() {
			return d.errorf("sample %d is null", i)
		}
		s := d.sample()
		if err := d.decodeSample(s); err != nil {
			if h, ok := err.(*histogramError); ok {
				return h
			}
			return fmt.Errorf("sample %d: %w", i, err)
		}
		vec = append(vec, s)
		return nil
	})
	if over > 0 {
		seen := d.maxSamples + over
		if err != nil {
			seen = 0 // what lies beyond the limit is not even JSON: only "more than" is known
		}
		return nil, &tooManySamplesError{limit: d.maxSamples, seen: seen}
	}
	if err != nil {
		return nil, err
	}
	return vec, nil
}

// sample returns a zero sample carved from a slab: one allocation per chunk of samples rather
// than one per sample. The samples of a vector live and die together anyway.
func (d *decoder) sample() *model.Sample {
	if len(d.samples) == cap(d.samples) {
		d.samples = make([]model.Sample, 0, min(max(2*cap(d.samples), 16), 1024))
	}
	d.samples = d.samples[:len(d.samples)+1]
	return &d.samples[len(d.samples)-1]
}

// decodeSample reads a sample as model.Sample.UnmarshalJSON does, into s.
func (d *decoder) decodeSample(s *model.Sample) error {
	var hist *model.SampleHistogramPair
	err := d.object(func(key []byte) error {
		switch field(key, "metric", "value", "histogram") {
		case "metric":
			return d.metric(&s.Metric)
		case "value":
			return d.pair(&s.Timestamp, &s.Value)
		case "histogram":
			// Native histograms are refused once the sample is read (the error names its
			// series), but read by model first: only a histogram that model accepts counts.
			if hist == nil {
				hist = new(model.SampleHistogramPair)
			}
			return d.unmarshal(hist)
		}
		return d.skip()
	})
	if err != nil {
		return err
	}
	if hist != nil && hist.Histogram != nil {
		// As in model.Sample.UnmarshalJSON, a histogram overrides a value.
		return &histogramError{series: s.Metric}
	}
	return nil
}

// metric reads a label set into *m. As with encoding/json, a repeated "metric" adds to the same
// map, null resets it, and a null label value is the empty value.
func (d *decoder) metric(m *model.Metric) error {
	if d.null() {
		*m = nil
		return nil
	}
	if d.i < len(d.b) && d.b[d.i] == '{' && *m == nil {
		*m = make(model.Metric, d.hint)
	}
	mm := *m
	err := d.object(func(key []byte) error {
		l := d.label(key)
		if d.null() {
			mm[l.name] = ""
			return nil
		}
		v, err := d.str()
		if err != nil {
			return fmt.Errorf("label %q: %w", l.name, err)
		}
		if string(v) != string(l.last) {
			l.last = model.LabelValue(v)
		}
		mm[l.name] = l.last
		return nil
	})
	d.hint = len(mm)
	return err
}

func (d *decoder) label(name []byte) *label {
	if l, ok := d.labels[string(name)]; ok {
		return l
	}
	l := &label{name: model.LabelName(name)}
	d.labels[string(l.name)] = l
	return l
}

// pair reads [timestamp, "value"] as model.SamplePair.UnmarshalJSON does: null leaves the
// sample as it is, missing elements leave theirs as they are, extra elements are ignored.
// model's own parsers read the elements, so timestamps keep their exact millisecond.
func (d *decoder) pair(ts *model.Time, v *model.SampleValue) error {
	if d.null() {
		return nil
	}
	return d.array(func(i int) error {
		if i >= 2 {
			return d.skip()
		}
		if d.null() {
			return nil
		}
		at := d.i
		if err := d.skip(); err != nil {
			return err
		}
		raw := d.b[at:d.i]
		if i == 0 {
			if err := ts.UnmarshalJSON(raw); err != nil {
				return d.errorfAt(at, "timestamp %s: %v", raw, err)
			}
			return nil
		}
		if err := v.UnmarshalJSON(raw); err != nil {
			return d.errorfAt(at, "value %s: %v", raw, err)
		}
		return nil
	})
}
