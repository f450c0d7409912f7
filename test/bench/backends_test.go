package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/promadapter/promadapter/pkg/config"
)

func TestParseBackendKinds(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
		wantErr  string
	}{
		{"the default names every kind in order", "prometheus2,prometheus3,thanos,victoriametrics", allBackendKinds, ""},
		{"spaces and empty fields are ignored", " thanos, ,prometheus3 ", []string{"thanos", "prometheus3"}, ""},
		{"an empty list skips the measurement", "", nil, ""},
		{"an unknown kind is refused with the known ones", "prometheus", nil, `unknown backend kind "prometheus"; use some of prometheus2,prometheus3,thanos,victoriametrics`},
		{"a kind named twice is refused", "thanos,thanos", nil, `backend kind "thanos" is named twice`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseBackendKinds(tc.in)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("parseBackendKinds(%q) = %v, %v; want the error %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("parseBackendKinds(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestBackendConfigIsTheDefaultPlusOneBackendAndOneRuleOnIt(t *testing.T) {
	data, err := backendConfig("http://127.0.0.1:9090", "thanos")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(data, "backend config")
	if err != nil {
		t.Fatalf("the config does not load: %v\n%s", err, data)
	}
	if len(cfg.Backends) != 1 || cfg.Backends[0].Name != underTestBackend || cfg.Backends[0].URL != "http://127.0.0.1:9090" || cfg.Backends[0].Kind != "thanos" {
		t.Errorf("backends = %+v, want one named %q at http://127.0.0.1:9090 of kind thanos", cfg.Backends, underTestBackend)
	}
	def := config.Default()
	if len(cfg.Rules) != len(def.Rules)+1 {
		t.Fatalf("%d rules, want the default's %d and one more", len(cfg.Rules), len(def.Rules))
	}
	for i, rule := range cfg.Rules[:len(def.Rules)] {
		if rule.Backend != "" || rule.MetricsQuery != def.Rules[i].MetricsQuery {
			t.Errorf("rule %d changed: backend %q, query %q; want the default's on the default backend", i, rule.Backend, rule.MetricsQuery)
		}
	}
	added := cfg.Rules[len(cfg.Rules)-1]
	if added.Backend != underTestBackend || added.Name.As != underTestMetric || added.MetricsQuery != underTestQuery {
		t.Errorf("the added rule is %+v, want %s served on backend %q with %q", added, underTestMetric, underTestBackend, underTestQuery)
	}
	if (cfg.ResourceRules == nil) != (def.ResourceRules == nil) || len(cfg.ExternalRules) != len(def.ExternalRules) {
		t.Errorf("the resource or external rules differ from the default's")
	}
}

func TestOpenMetricsToPromTextConvertsSamplesAndDropsComments(t *testing.T) {
	in := "# HELP kube_node_info Information about a cluster node.\n" +
		"# TYPE kube_node_info gauge\n" +
		`kube_node_info{node="node-0",os_image="Debian GNU/Linux 12 (bookworm)"} 1 1700000000.25` + "\n" +
		`http_requests_total{code="200",pod="app-0-0"} 1000.5 1700000030` + "\n" +
		"# EOF\n"
	want := `kube_node_info{node="node-0",os_image="Debian GNU/Linux 12 (bookworm)"} 1 1700000000250` + "\n" +
		`http_requests_total{code="200",pod="app-0-0"} 1000.5 1700000030000` + "\n"
	var out strings.Builder
	if err := openMetricsToPromText(&out, strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	if out.String() != want {
		t.Errorf("converted text:\n%s\nwant:\n%s", out.String(), want)
	}
	t.Run("a sample without a timestamp is refused", func(t *testing.T) {
		if err := openMetricsToPromText(&strings.Builder{}, strings.NewReader("up\n")); err == nil {
			t.Error("got no error")
		}
	})
}

func TestVersionFromOutput(t *testing.T) {
	tests := []struct{ name, out, want string }{
		{"a stamped build names its release", "thanos, version 0.42.4 (branch: HEAD, revision: abc)\n  build user: x\n", "0.42.4"},
		{"Debian's Prometheus keeps its suffix", "prometheus, version 2.42.0+ds (branch: debian/sid, revision: 2.42.0+ds-5)\n", "2.42.0+ds"},
		{"a build without stamping names none", "thanos, version  (branch: , revision: unknown)\n", ""},
		{"no output names none", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := versionFromOutput(tc.out); got != tc.want {
				t.Errorf("versionFromOutput(%q) = %q, want %q", tc.out, got, tc.want)
			}
		})
	}
}

func TestRenderBackendsWritesOneRowPerKind(t *testing.T) {
	r := &BackendsResult{
		Pods: 1000, PodsPerSelector: 10, Metric: underTestMetric, CachePeriod: 10,
		Kinds: []BackendResult{
			{Kind: kindPrometheus2, AdapterKind: "prometheus", Version: "2.42.0+ds", Latency: Latency{N: 300, P50: 0.0042, P99: 0.0131, Items: 10}, UpstreamQueries: 1,
				LatencyUncached: Latency{N: 300, P50: 0.0061, P99: 0.0188, Items: 10}, UpstreamQueriesUncached: 300},
			{Kind: kindThanos, AdapterKind: "thanos", Version: "0.42.4", Latency: Latency{N: 300, P50: 0.0051, P99: 0.120, Items: 10}, UpstreamQueries: 3,
				LatencyUncached: Latency{N: 300, P50: 0.0121, P99: 0.0305, Items: 10}, UpstreamQueriesUncached: 300},
		},
	}
	var b strings.Builder
	renderBackends(func(format string, args ...any) {
		b.WriteString(strings.TrimSpace(fmt.Sprintf(format, args...)) + "\n")
	}, r)
	got := b.String()
	for _, want := range []string{
		"### Backends",
		"| Kind | Version | p50 / p99, cache on | queries per 100 requests, cache on | p50 / p99, cache off | queries per 100 requests, cache off | Answers checked |",
		"| Prometheus 2, `kind: prometheus` | 2.42.0+ds | 4.2 ms / 13.1 ms | 0.33 (1 in 300) | 6.1 ms / 18.8 ms | 100 | 300 × 10 pods (each setting) |",
		"| Thanos (querier, 2 Prometheus 3 replicas with sidecars), `kind: thanos` | 0.42.4 | 5.1 ms / 120 ms | 1 (3 in 300) | 12.1 ms / 30.5 ms | 100 | 300 × 10 pods (each setting) |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the section lacks %q:\n%s", want, got)
		}
	}
	t.Run("nothing is rendered when the measurement did not run", func(t *testing.T) {
		renderBackends(func(string, ...any) { t.Error("something was rendered") }, nil)
	})
}

func TestQueriesPer100(t *testing.T) {
	tests := []struct {
		name string
		r    BackendResult
		want float64
	}{
		{"one query in 300 requests", BackendResult{Latency: Latency{N: 300}, UpstreamQueries: 1}, 100.0 / 300},
		{"a query per request", BackendResult{Latency: Latency{N: 300}, UpstreamQueries: 300}, 100},
		{"no requests, no figure", BackendResult{}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.QueriesPer100(); got != tc.want {
				t.Errorf("QueriesPer100 = %v, want %v", got, tc.want)
			}
		})
	}
}
