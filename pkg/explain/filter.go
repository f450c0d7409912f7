package explain

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// Parameter is the query parameter that asks a running adapter to answer a metric request with
// its explanation instead of its value: GET <metric path>?promadapter-explain=true.
const Parameter = "promadapter-explain"

// maxStatusBytes bounds what the filter reads of a failed answer (a Status object).
const maxStatusBytes = 64 << 10

// Filter answers a GET that carries ?promadapter-explain=true with the Trace (JSON) of the same
// request without that parameter, which next serves as usual while a Recorder listens; every
// other request goes to next untouched, at the cost of one substring search of its query.
//
// Install it inside the apiserver's handler chain, after authentication and authorization:
// those check the request's path and verb, which the parameter does not change, so a caller
// gets the explanation of exactly the requests it may make, and nothing else.
//
// annotate, when set, completes the trace with what the serving parts know beyond the request
// (the lines of resource rules, the state of backends) before the conclusion is drawn.
func Filter(next http.Handler, annotate func(context.Context, *Trace)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.Contains(r.URL.RawQuery, Parameter) {
			next.ServeHTTP(w, r)
			return
		}
		query := r.URL.Query()
		if v := query.Get(Parameter); v != "true" && v != "1" {
			next.ServeHTTP(w, r)
			return
		}
		query.Del(Parameter)
		inner := r.Clone(r.Context())
		inner.URL.RawQuery = query.Encode()
		inner.RequestURI = inner.URL.RequestURI()
		// The filter reads the answer's Status, whatever the caller accepts, uncompressed.
		inner.Header.Set("Accept", "application/json")
		inner.Header.Del("Accept-Encoding")

		path := inner.URL.Path // as asked, without escaping '*'
		if inner.URL.RawQuery != "" {
			path += "?" + inner.URL.RawQuery
		}
		rec := NewRecorder(Request{Path: path, Group: GroupOf(inner.URL.Path)})
		ctx, release := NewContext(inner.Context(), rec)
		defer release()
		capture := &captureWriter{header: http.Header{}}
		next.ServeHTTP(capture, inner.WithContext(ctx))
		t := rec.Finish(capture.status())
		if annotate != nil {
			annotate(r.Context(), &t)
			t.Conclude()
		}
		body, err := json.Marshal(t)
		if err != nil {
			http.Error(w, "encoding the explanation: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
}

// GroupOf is the API group of a path (/apis/<group>/...), "" for the core group.
func GroupOf(path string) string {
	rest, ok := strings.CutPrefix(path, "/apis/")
	if !ok {
		return ""
	}
	group, _, _ := strings.Cut(rest, "/")
	return group
}

// captureWriter keeps the status code of an answer and, for a failure, the start of its body.
type captureWriter struct {
	header http.Header
	code   int
	body   []byte
}

func (c *captureWriter) Header() http.Header { return c.header }

func (c *captureWriter) WriteHeader(code int) {
	if c.code == 0 {
		c.code = code
	}
}

func (c *captureWriter) Write(p []byte) (int, error) {
	if c.code == 0 {
		c.code = http.StatusOK
	}
	if c.code >= 300 && len(c.body) < maxStatusBytes {
		c.body = append(c.body, p[:min(len(p), maxStatusBytes-len(c.body))]...)
	}
	return len(p), nil
}

// Flush lets handlers that stream flush; nothing is sent until the explanation is.
func (c *captureWriter) Flush() {}

func (c *captureWriter) status() Status {
	code := c.code
	if code == 0 {
		code = http.StatusOK
	}
	s := Status{Code: code}
	if code >= 300 {
		var st struct{ Reason, Message string }
		if json.Unmarshal(c.body, &st) == nil {
			s.Reason, s.Message = st.Reason, st.Message
		} else {
			s.Message = strings.TrimSpace(string(c.body))
		}
	}
	return s
}

// WithParameter returns path (an API path with its query) asking for its explanation.
func WithParameter(path string) (string, error) {
	u, err := url.Parse(path)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set(Parameter, "true")
	u.RawQuery = q.Encode()
	return u.RequestURI(), nil
}
