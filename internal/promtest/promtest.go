// Package promtest is a fake Prometheus HTTP API for unit tests; the promadapter binary never
// uses it. It serves the label APIs over a settable set of series, evaluating match[] selectors
// with Prometheus' own parser and matchers, answers instant queries with a settable function,
// records what it was asked, and can inject failures and hold calls to observe concurrency.
package promtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	promlabels "github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// EmptyVector is the JSON body of a successful instant query with no samples; the server
// answers it when no answer function is set.
const EmptyVector = `{"status":"success","data":{"resultType":"vector","result":[]}}`

// Call is one request the server received: its URL path, its match[] selectors in order, and
// its start and end parameters exactly as sent (empty when absent).
type Call struct {
	Path       string
	Match      []string
	Start, End string
}

// Server is a fake Prometheus on a loopback address. It serves
//   - /api/v1/labels and /api/v1/label/<name>/values over the series matching any match[]
//     selector (all series when there is none), sorted;
//   - /api/v1/series with the matching label sets;
//   - /api/v1/query with the current answer function (EmptyVector when nil).
//
// Every call is recorded (TakeCalls) and counted while in flight (InFlight, MaxInFlight);
// instant queries are also recorded by their query text (TakeQueries). The fail function,
// when set, is consulted first for every call and fails it with its status when not 0.
// All methods are safe for concurrent use.
type Server struct {
	server *httptest.Server

	mu          sync.Mutex
	series      []map[string]string // each a label set including __name__
	fail        func(path string, match []string) int
	answer      func(query string) (status int, body string)
	calls       []Call
	queries     []string
	inFlight    int
	maxInFlight int
	hold        <-chan struct{}
}

// New starts a server holding series and closes it when the test ends.
func New(t testing.TB, series ...map[string]string) *Server {
	t.Helper()
	s := &Server{series: series}
	s.server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.server.Close)
	return s
}

// URL is the server's base URL, e.g. "http://127.0.0.1:40123", without a trailing slash.
func (s *Server) URL() string { return s.server.URL }

// SetSeries replaces the set of series; each is a label set including __name__.
func (s *Server) SetSeries(series ...map[string]string) {
	s.mu.Lock()
	s.series = series
	s.mu.Unlock()
}

// SetFail sets the failure injector: for every call it is given the path and match[]
// selectors, and a status other than 0 makes the call fail with that HTTP status and a
// Prometheus error body. nil fails nothing.
func (s *Server) SetFail(fail func(path string, match []string) int) {
	s.mu.Lock()
	s.fail = fail
	s.mu.Unlock()
}

// SetAnswer sets the function answering instant queries with an HTTP status and a JSON body
// written verbatim. nil answers EmptyVector with status 200.
func (s *Server) SetAnswer(answer func(query string) (status int, body string)) {
	s.mu.Lock()
	s.answer = answer
	s.mu.Unlock()
}

// Hold makes every later /api/v1/labels call wait, after it is counted in flight, until ch
// is closed (or receives); the caller owns ch. nil stops holding.
func (s *Server) Hold(ch <-chan struct{}) {
	s.mu.Lock()
	s.hold = ch
	s.mu.Unlock()
}

// TakeCalls returns the calls received since the last TakeCalls, in arrival order, and
// forgets them.
func (s *Server) TakeCalls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls
	s.calls = nil
	return c
}

// TakeQueries returns the query texts of the instant queries received since the last
// TakeQueries, in arrival order, and forgets them.
func (s *Server) TakeQueries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queries
	s.queries = nil
	return q
}

// InFlight is the number of calls being served now.
func (s *Server) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight
}

// MaxInFlight is the largest number of calls that were ever served at the same time.
func (s *Server) MaxInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInFlight
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "bad_data", err.Error())
		return
	}
	call := Call{Path: r.URL.Path, Match: r.Form["match[]"], Start: r.Form.Get("start"), End: r.Form.Get("end")}
	s.mu.Lock()
	s.calls = append(s.calls, call)
	if call.Path == "/api/v1/query" {
		s.queries = append(s.queries, r.Form.Get("query"))
	}
	s.inFlight++
	s.maxInFlight = max(s.maxInFlight, s.inFlight)
	series, fail, answer, hold := s.series, s.fail, s.answer, s.hold
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()

	if fail != nil {
		if status := fail(call.Path, call.Match); status != 0 {
			writeError(w, status, "internal", fmt.Sprintf("injected failure for %v", call.Match))
			return
		}
	}
	if call.Path == "/api/v1/query" {
		status, body := http.StatusOK, EmptyVector
		if answer != nil {
			status, body = answer(r.Form.Get("query"))
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
		return
	}
	selected, err := selectSeries(series, call.Match)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_data", err.Error())
		return
	}
	switch {
	case call.Path == "/api/v1/labels":
		if hold != nil {
			<-hold
		}
		set := map[string]bool{}
		for _, labelSet := range selected {
			for name := range labelSet {
				set[name] = true
			}
		}
		writeData(w, sortedKeys(set))
	case strings.HasPrefix(call.Path, "/api/v1/label/") && strings.HasSuffix(call.Path, "/values"):
		name := strings.TrimSuffix(strings.TrimPrefix(call.Path, "/api/v1/label/"), "/values")
		set := map[string]bool{}
		for _, labelSet := range selected {
			if v, ok := labelSet[name]; ok {
				set[v] = true
			}
		}
		writeData(w, sortedKeys(set))
	case call.Path == "/api/v1/series":
		writeData(w, selected)
	default:
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint "+call.Path)
	}
}

// Series builds a label set from a metric name and label name/value pairs; it panics on an
// odd number of pair strings.
func Series(name string, labelPairs ...string) map[string]string {
	if len(labelPairs)%2 != 0 {
		panic("promtest.Series: odd number of label strings")
	}
	s := map[string]string{"__name__": name}
	for i := 0; i < len(labelPairs); i += 2 {
		s[labelPairs[i]] = labelPairs[i+1]
	}
	return s
}

// selectSeries returns the series matching any of the selectors (all when there is none).
func selectSeries(series []map[string]string, selectors []string) ([]map[string]string, error) {
	if len(selectors) == 0 {
		return series, nil
	}
	var sets [][]*promlabels.Matcher
	for _, sel := range selectors {
		ms, err := parser.ParseMetricSelector(sel)
		if err != nil {
			return nil, fmt.Errorf("match[] %q: %v", sel, err)
		}
		sets = append(sets, ms)
	}
	var out []map[string]string
	for _, labelSet := range series {
		for _, ms := range sets {
			all := true
			for _, m := range ms {
				if !m.Matches(labelSet[m.Name]) {
					all = false
					break
				}
			}
			if all {
				out = append(out, labelSet)
				break
			}
		}
	}
	return out, nil
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func writeData(w http.ResponseWriter, data any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": data})
}

func writeError(w http.ResponseWriter, status int, errorType, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "error", "errorType": errorType, "error": msg})
}

// ClosedURL returns the URL of a loopback port nobody listens on: a Prometheus that is down.
func ClosedURL(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}
