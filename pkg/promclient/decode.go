package promclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// decodeQueryResponse decodes the body of a 2xx answer to /api/v1/query.
//
// For a success answer it returns what client_golang's v1.API.Query returns for the same body:
// samples decoded with encoding/json's semantics, down to case-insensitive keys, duplicate keys
// where the last one wins, U+FFFD for invalid UTF-8, and model.Time's "seconds.millis" parsing.
// It differs on purpose in three ways: a null sample is an error (client_golang returns a nil
// *Sample, which callers dereference), a string result is returned rather than refused, and
// "data" must hold a query result. An answer with status "error" yields the *v1.Error it carries.
//
// Vectors, the hot path, are decoded by a single scan of the body that allocates only what the
// result keeps. Scalars, matrices and strings go through encoding/json: they are one value, or
// not what the adapter asks for.
func decodeQueryResponse(body []byte) (model.Value, error) {
	d := decoder{b: body, labels: map[string]*label{}}
	v, err := d.answer()
	var apiErr *v1.Error
	if err != nil && !errors.As(err, &apiErr) {
		return nil, fmt.Errorf("answer is not a Prometheus query result: %w", err)
	}
	return v, err
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
}

// label interns a label name, and remembers its last value so that a value repeated from one
// sample to the next (the namespace of a namespaced query, a container name) is shared.
type label struct {
	name model.LabelName
	last model.LabelValue
}

func (d *decoder) answer() (model.Value, error) {
	var status, errorType, errorMsg string
	var value model.Value
	err := d.object(func(key []byte) (err error) {
		switch field(key, "status", "errorType", "error", "data") {
		case "status":
			status, err = d.stringOrNull()
		case "errorType":
			errorType, err = d.stringOrNull()
		case "error":
			errorMsg, err = d.stringOrNull()
		case "data":
			value, err = d.data()
		default:
			err = d.skip() // warnings, infos, and whatever comes next
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if d.ws(); d.i < len(d.b) {
		return nil, d.errorf("unexpected data after the answer")
	}
	// Like client_golang, only "error" counts as a failure: the status is not checked further.
	if status == "error" {
		return nil, &v1.Error{Type: v1.ErrorType(errorType), Msg: errorMsg}
	}
	if value == nil {
		return nil, fmt.Errorf(`status %q without "data"`, status)
	}
	return value, nil
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
		err = d.unmarshal(&m)
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

// unmarshal reads a value with encoding/json, for the rare shapes not worth a decoder of their own.
func (d *decoder) unmarshal(into any) error {
	at := d.i
	if err := d.skip(); err != nil {
		return err
	}
	if err := json.Unmarshal(d.b[at:d.i], into); err != nil {
		return d.errorfAt(at, "%v", err)
	}
	return nil
}

func (d *decoder) vector() (model.Vector, error) {
	if d.null() {
		return nil, nil
	}
	vec := model.Vector{}
	err := d.array(func(i int) error {
		if d.null() {
			return d.errorf("sample %d is null", i)
		}
		s := d.sample()
		if err := d.decodeSample(s); err != nil {
			return fmt.Errorf("sample %d: %w", i, err)
		}
		vec = append(vec, s)
		return nil
	})
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
			// Native histograms are rare in answers to the adapter's queries: leave them to model.
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
		s.Timestamp, s.Value, s.Histogram = hist.Timestamp, 0, hist.Histogram
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

// object reads an object, calling member with each key and the cursor on the member's value,
// which member must read. The key is only valid until the next string is read.
func (d *decoder) object(member func(key []byte) error) error {
	if d.ws(); !d.consume('{') {
		return d.errorf("expected an object")
	}
	if d.ws(); d.consume('}') {
		return nil
	}
	for {
		d.ws()
		key, err := d.str()
		if err != nil {
			return err
		}
		if d.ws(); !d.consume(':') {
			return d.errorf("expected ':'")
		}
		d.ws()
		if err := member(key); err != nil {
			return err
		}
		if d.ws(); d.consume(',') {
			continue
		}
		if d.consume('}') {
			return nil
		}
		return d.errorf("expected ',' or '}'")
	}
}

// array reads an array, calling element with each index and the cursor on the element, which
// element must read.
func (d *decoder) array(element func(i int) error) error {
	if d.ws(); !d.consume('[') {
		return d.errorf("expected an array")
	}
	if d.ws(); d.consume(']') {
		return nil
	}
	for i := 0; ; i++ {
		d.ws()
		if err := element(i); err != nil {
			return err
		}
		if d.ws(); d.consume(',') {
			continue
		}
		if d.consume(']') {
			return nil
		}
		return d.errorf("expected ',' or ']'")
	}
}

// skip reads any value, checking that it is valid JSON.
func (d *decoder) skip() error { return d.skipNested(0) }

func (d *decoder) skipNested(depth int) error {
	if depth >= maxDepth {
		return d.errorf("value nested too deeply")
	}
	if d.ws(); d.i >= len(d.b) {
		return d.errorf("expected a value")
	}
	switch c := d.b[d.i]; c {
	case '{':
		return d.object(func([]byte) error { return d.skipNested(depth + 1) })
	case '[':
		return d.array(func(int) error { return d.skipNested(depth + 1) })
	case '"':
		_, err := d.str()
		return err
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	default:
		if c == '-' || '0' <= c && c <= '9' {
			return d.number()
		}
		return d.errorf("expected a value")
	}
}

// number reads a number, checking JSON's grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *decoder) number() error {
	at := d.i
	d.consume('-')
	switch {
	case d.consume('0'):
	case d.digits() == 0:
		return d.errorfAt(at, "invalid number")
	}
	if d.consume('.') && d.digits() == 0 {
		return d.errorfAt(at, "invalid number")
	}
	if d.consume('e') || d.consume('E') {
		if !d.consume('+') {
			d.consume('-')
		}
		if d.digits() == 0 {
			return d.errorfAt(at, "invalid number")
		}
	}
	return nil
}

func (d *decoder) digits() int {
	at := d.i
	for d.i < len(d.b) && '0' <= d.b[d.i] && d.b[d.i] <= '9' {
		d.i++
	}
	return d.i - at
}

func (d *decoder) literal(lit string) error {
	if !d.consumeString(lit) {
		return d.errorf("invalid literal")
	}
	return nil
}

// null reads a null if there is one.
func (d *decoder) null() bool {
	d.ws()
	return d.consumeString("null")
}

// stringOrNull reads a string, or null as the empty string, as encoding/json does into a string.
func (d *decoder) stringOrNull() (string, error) {
	if d.null() {
		return "", nil
	}
	s, err := d.str()
	return string(s), err
}

// str reads a string and returns it unescaped as encoding/json does: invalid UTF-8 and lone
// surrogates become U+FFFD. The bytes alias the body or d.buf: they are valid until the next str.
func (d *decoder) str() ([]byte, error) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return nil, d.errorf("expected a string")
	}
	start := d.i + 1
	escaped, ascii := false, true
	for i := start; i < len(d.b); i++ {
		switch c := d.b[i]; {
		case c == '"':
			d.i = i + 1
			s := d.b[start:i]
			if !escaped && (ascii || utf8.Valid(s)) {
				return s, nil
			}
			d.buf = unescape(d.buf[:0], s)
			return d.buf, nil
		case c == '\\':
			escaped = true
			if i++; i < len(d.b) {
				switch d.b[i] {
				case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
					continue
				case 'u':
					if hex4(d.b[i+1:]) >= 0 {
						i += 4
						continue
					}
				}
			}
			return nil, d.errorfAt(i-1, "invalid escape in string")
		case c < ' ':
			return nil, d.errorfAt(i, "control character in string")
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, d.errorf("unterminated string")
}

// unescape appends the contents of a string that str has checked, like encoding/json's unquote.
func unescape(out, s []byte) []byte {
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '\\' && s[i+1] == 'u':
			r := rune(hex4(s[i+2:]))
			i += 6
			if utf16.IsSurrogate(r) {
				if len(s) >= i+6 && s[i] == '\\' && s[i+1] == 'u' {
					if pair := utf16.DecodeRune(r, rune(hex4(s[i+2:]))); pair != unicode.ReplacementChar {
						out = utf8.AppendRune(out, pair)
						i += 6
						continue
					}
				}
				r = unicode.ReplacementChar
			}
			out = utf8.AppendRune(out, r)
		case c == '\\':
			switch e := s[i+1]; e {
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			default: // '"', '\\', '/'
				out = append(out, e)
			}
			i += 2
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, n := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && n == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, s[i:i+n]...)
			}
			i += n
		}
	}
	return out
}

// hex4 returns the value of the 4 hex digits that s starts with, or -1.
func hex4(s []byte) int {
	if len(s) < 4 {
		return -1
	}
	v := 0
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		v = v<<4 | int(c)
	}
	return v
}

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) consumeString(s string) bool {
	if len(d.b)-d.i >= len(s) && string(d.b[d.i:d.i+len(s)]) == s {
		d.i += len(s)
		return true
	}
	return false
}

func (d *decoder) consume(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// field returns the one of names that key selects, matching as encoding/json does: exactly, or
// else case-insensitively. It returns "" for an unknown key.
func field(key []byte, names ...string) string {
	for _, n := range names {
		if string(key) == n {
			return n
		}
	}
	for _, n := range names {
		if bytes.EqualFold(key, []byte(n)) {
			return n
		}
	}
	return ""
}

func (d *decoder) errorf(format string, args ...any) error {
	return d.errorfAt(d.i, format, args...)
}

// errorfAt describes a problem at byte at of the body, quoting a little of what is there.
func (d *decoder) errorfAt(at int, format string, args ...any) error {
	const nearBytes = 32
	near := d.b[at:min(at+nearBytes, len(d.b))]
	if len(near) == 0 {
		return fmt.Errorf(format+" at byte %d (the end of the answer)", append(args, at)...)
	}
	return fmt.Errorf(format+" at byte %d (near %q)", append(args, at, near)...)
}
