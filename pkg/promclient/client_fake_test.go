// A fake Prometheus HTTP API and client constructor shared by the client tests.

package promclient_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/promadapter/promadapter/pkg/promclient"
)

// seenRequest is what the fake Prometheus recorded of one request.
type seenRequest struct {
	Method  string
	Path    string
	RawURLQ string     // the URL's query string as sent
	Body    string     // the request body as sent
	Form    url.Values // URL query and form body together
	Header  http.Header
}

// fakePrometheus speaks enough of the Prometheus HTTP API for the client: it records every
// request and answers with respond (status and JSON body); without respond, queries get
// vectorBody and label calls the list ["up"].
type fakePrometheus struct {
	*httptest.Server
	respond func(r *http.Request) (int, string)

	mu   sync.Mutex
	seen []seenRequest
}

const vectorBody = `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","pod":"web-1"},"value":[1700000000.5,"0.25"]}]}}`

func newFakePrometheus(t *testing.T, respond func(r *http.Request) (int, string)) *fakePrometheus {
	t.Helper()
	f := &fakePrometheus{respond: respond}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req := seenRequest{Method: r.Method, Path: r.URL.Path, RawURLQ: r.URL.RawQuery, Body: string(body), Header: r.Header.Clone()}
		req.Form = r.URL.Query()
		if r.Header.Get("Content-Type") == "application/x-www-form-urlencoded" {
			fb, err := url.ParseQuery(string(body))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			for k, vs := range fb {
				req.Form[k] = append(req.Form[k], vs...)
			}
		}
		f.mu.Lock()
		f.seen = append(f.seen, req)
		f.mu.Unlock()
		status, out := http.StatusOK, vectorBody
		if !strings.HasSuffix(r.URL.Path, "/api/v1/query") {
			out = `{"status":"success","data":["up"]}`
		}
		if f.respond != nil {
			status, out = f.respond(r)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, out)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakePrometheus) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

func (f *fakePrometheus) lastRequest(t *testing.T) seenRequest {
	t.Helper()
	seen := f.requests()
	if len(seen) == 0 {
		t.Fatal("the fake Prometheus received no request")
	}
	return seen[len(seen)-1]
}

func mustNew(t *testing.T, opts promclient.Options) *promclient.Client {
	t.Helper()
	c, err := promclient.New(opts)
	if err != nil {
		t.Fatalf("New(%+v): %v", opts, err)
	}
	return c
}
