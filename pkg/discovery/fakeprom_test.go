package discovery_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	promlabels "github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// apiCall is one request the fake Prometheus received.
type apiCall struct {
	Path       string
	Match      []string
	Start, End string
}

// fakePrometheus serves the label APIs of Prometheus over a fixed set of series, evaluating
// match[] selectors with Prometheus' own matcher code. It records every call, counts calls
// in flight, and fails the calls for which fail returns a status other than 0.
type fakePrometheus struct {
	*httptest.Server

	mu          sync.Mutex
	series      []map[string]string // each a label set including __name__
	fail        func(path string, match []string) int
	calls       []apiCall
	inFlight    int
	maxInFlight int
	// hold, when set, is waited on by every label-names call (to observe concurrency).
	hold chan struct{}
}

func newFakePrometheus(t *testing.T, series ...map[string]string) *fakePrometheus {
	t.Helper()
	f := &fakePrometheus{series: series}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakePrometheus) setSeries(series ...map[string]string) {
	f.mu.Lock()
	f.series = series
	f.mu.Unlock()
}

func (f *fakePrometheus) setFail(fail func(path string, match []string) int) {
	f.mu.Lock()
	f.fail = fail
	f.mu.Unlock()
}

func (f *fakePrometheus) takeCalls() []apiCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func (f *fakePrometheus) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "bad_data", err.Error())
		return
	}
	call := apiCall{Path: r.URL.Path, Match: r.Form["match[]"], Start: r.Form.Get("start"), End: r.Form.Get("end")}
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	series, fail, hold := f.series, f.fail, f.hold
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()

	if fail != nil {
		if status := fail(call.Path, call.Match); status != 0 {
			writeError(w, status, "internal", fmt.Sprintf("injected failure for %v", call.Match))
			return
		}
	}
	selected, err := selectSeries(series, call.Match)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_data", err.Error())
		return
	}
	switch {
	case r.URL.Path == "/api/v1/labels":
		if hold != nil {
			<-hold
		}
		set := map[string]bool{}
		for _, s := range selected {
			for k := range s {
				set[k] = true
			}
		}
		writeData(w, sortedKeys(set))
	case strings.HasPrefix(r.URL.Path, "/api/v1/label/") && strings.HasSuffix(r.URL.Path, "/values"):
		name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/v1/label/"), "/values")
		set := map[string]bool{}
		for _, s := range selected {
			if v, ok := s[name]; ok {
				set[v] = true
			}
		}
		writeData(w, sortedKeys(set))
	case r.URL.Path == "/api/v1/series":
		// Discovery must never ask for series bodies; answer anyway so a test sees the count.
		writeData(w, selected)
	default:
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint "+r.URL.Path)
	}
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
	for _, s := range series {
		for _, ms := range sets {
			all := true
			for _, m := range ms {
				if !m.Matches(s[m.Name]) {
					all = false
					break
				}
			}
			if all {
				out = append(out, s)
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

// series builds a label set from name and label pairs.
func series(name string, labelPairs ...string) map[string]string {
	if len(labelPairs)%2 != 0 {
		panic("series: odd number of label strings")
	}
	s := map[string]string{"__name__": name}
	for i := 0; i < len(labelPairs); i += 2 {
		s[labelPairs[i]] = labelPairs[i+1]
	}
	return s
}
