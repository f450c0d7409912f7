package check

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// fakeProm is a Prometheus HTTP API over a fixed set of series, each with one value: the
// three endpoints the adapter uses (instant query, label names, label values). Selectors are
// parsed and matched with Prometheus' own parser and matchers. Queries are evaluated for the
// subset of PromQL the tests send: selectors, functions (which pass their series through
// with the metric name dropped, each value taken as already a rate) and aggregations by
// labels; anything else is refused with 400, as Prometheus refuses what it cannot run.
type fakeProm struct {
	URL    string
	series []labels.Labels
	values []float64

	mu      sync.Mutex
	queries []string       // the PromQL of every instant query received
	sizes   map[string]int // the size of the last answer to each query, in bytes
}

// evalTime is the fake's clock, in Unix seconds: the time of every sample it answers.
const evalTime = 600

// startFakeProm serves data: one series a line, `name{label="value",...} value`.
func startFakeProm(t *testing.T, data string) *fakeProm {
	t.Helper()
	p := &fakeProm{sizes: map[string]int{}}
	for _, line := range strings.Split(strings.TrimSpace(data), "\n") {
		line = strings.TrimSpace(line)
		i := strings.LastIndexByte(line, ' ')
		ls, err := parser.ParseMetric(line[:i])
		if err != nil {
			t.Fatalf("fake Prometheus data %q: %v", line, err)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("fake Prometheus data %q: %v", line, err)
		}
		p.series, p.values = append(p.series, ls), append(p.values, v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/query", p.query)
	mux.HandleFunc("/api/v1/labels", func(w http.ResponseWriter, r *http.Request) { p.labels(w, r, "") })
	mux.HandleFunc("/api/v1/label/{name}/values", func(w http.ResponseWriter, r *http.Request) { p.labels(w, r, r.PathValue("name")) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// received counts the instant queries received with exactly this PromQL, and gives the size
// of the last answer to it.
func (p *fakeProm) received(promql string) (times, answerBytes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, q := range p.queries {
		if q == promql {
			times++
		}
	}
	return times, p.sizes[promql]
}

// sample is one series of a result.
type sample struct {
	metric labels.Labels
	value  float64
}

func (p *fakeProm) selectSeries(ms []*labels.Matcher) []sample {
	var out []sample
	for i, ls := range p.series {
		ok := true
		for _, m := range ms {
			ok = ok && m.Matches(ls.Get(m.Name))
		}
		if ok {
			out = append(out, sample{ls, p.values[i]})
		}
	}
	return out
}

func (p *fakeProm) eval(e parser.Expr) ([]sample, error) {
	switch e := e.(type) {
	case *parser.VectorSelector:
		return p.selectSeries(e.LabelMatchers), nil
	case *parser.MatrixSelector:
		return p.eval(e.VectorSelector)
	case *parser.ParenExpr:
		return p.eval(e.Expr)
	case *parser.Call:
		for _, arg := range e.Args {
			if t := arg.Type(); t == parser.ValueTypeVector || t == parser.ValueTypeMatrix {
				in, err := p.eval(arg)
				for i := range in {
					in[i].metric = labels.NewBuilder(in[i].metric).Del(labels.MetricName).Labels()
				}
				return in, err
			}
		}
	case *parser.AggregateExpr:
		if e.Without || e.Param != nil {
			break
		}
		in, err := p.eval(e.Expr)
		if err != nil {
			return nil, err
		}
		groups := map[string]*sample{}
		var order []string
		for _, s := range in {
			key := s.metric.MatchLabels(true, e.Grouping...)
			g, ok := groups[key.String()]
			if !ok {
				g = &sample{metric: key, value: s.value}
				if e.Op != parser.MAX {
					g.value = 0
				}
				groups[key.String()] = g
				order = append(order, key.String())
			}
			switch e.Op {
			case parser.SUM:
				g.value += s.value
			case parser.COUNT:
				g.value++
			case parser.MAX:
				g.value = max(g.value, s.value)
			default:
				return nil, fmt.Errorf("the fake does not aggregate with %s", e.Op)
			}
		}
		out := make([]sample, 0, len(order))
		for _, k := range order {
			out = append(out, *groups[k])
		}
		return out, nil
	}
	return nil, fmt.Errorf("the fake cannot evaluate %s", e)
}

func (p *fakeProm) query(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		apiError(w, err)
		return
	}
	q := r.Form.Get("query")
	p.mu.Lock()
	p.queries = append(p.queries, q)
	p.mu.Unlock()
	expr, err := parser.ParseExpr(q)
	if err != nil {
		apiError(w, err)
		return
	}
	res, err := p.eval(expr)
	if err != nil {
		apiError(w, err)
		return
	}
	result := []any{}
	for _, s := range res {
		result = append(result, map[string]any{"metric": s.metric.Map(), "value": []any{evalTime, strconv.FormatFloat(s.value, 'f', -1, 64)}})
	}
	body, err := json.Marshal(map[string]any{"status": "success", "data": map[string]any{"resultType": "vector", "result": result}})
	if err != nil {
		apiError(w, err)
		return
	}
	p.mu.Lock()
	p.sizes[q] = len(body)
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (p *fakeProm) labels(w http.ResponseWriter, r *http.Request, name string) {
	if err := r.ParseForm(); err != nil {
		apiError(w, err)
		return
	}
	found := map[string]bool{}
	for _, m := range r.Form["match[]"] {
		ms, err := parser.ParseMetricSelector(m)
		if err != nil {
			apiError(w, err)
			return
		}
		for _, s := range p.selectSeries(ms) {
			s.metric.Range(func(l labels.Label) {
				switch {
				case name == "":
					found[l.Name] = true
				case l.Name == name:
					found[l.Value] = true
				}
			})
		}
	}
	out := make([]string, 0, len(found))
	for v := range found {
		out = append(out, v)
	}
	sort.Strings(out)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": out})
}

func apiError(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "error", "errorType": "bad_data", "error": err.Error()})
}
