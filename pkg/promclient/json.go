package promclient

// The JSON scanner under the decoder: it reads tokens with encoding/json's grammar and
// semantics, and quotes where it stopped when the input is not JSON.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

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

// strings reads an array of strings into a []string as encoding/json does: null is nil, a
// null element the empty string.
func (d *decoder) strings() ([]string, error) {
	if d.null() {
		return nil, nil
	}
	out := []string{}
	err := d.array(func(int) error {
		s, err := d.stringOrNull()
		out = append(out, s)
		return err
	})
	return out, err
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
