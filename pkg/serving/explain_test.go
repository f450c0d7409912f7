package serving

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/promadapter/promadapter/internal/promtest"
	"github.com/promadapter/promadapter/pkg/backend"
	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/pkg/explain"
	"github.com/promadapter/promadapter/pkg/planner"
	"github.com/promadapter/promadapter/pkg/promclient"
	"github.com/promadapter/promadapter/pkg/provider"
	"github.com/promadapter/promadapter/pkg/snapshot"
)

const testRules = `rules:
- seriesQuery: '{__name__=~"^.+_total$",namespace!=""}'
  resources: {template: <<.Resource>>}
  name: {matches: '^(.*)_total$', as: '${1}_per_second'}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
externalRules:
- seriesQuery: 'queue_messages{namespace!=""}'
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (queue)'
`

// pods lists the pods of namespace shop.
type pods map[string]labels.Set

func (p pods) ListNames(_ context.Context, gr schema.GroupResource, namespace string, sel labels.Selector) ([]string, error) {
	var names []string
	for name, l := range p {
		if gr.Resource == "pods" && namespace == "shop" && sel.Matches(l) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// testParts are the parts serve builds, over a fake Prometheus, without a cluster: custom and
// external metrics only.
func testParts(t *testing.T) (*Parts, *promtest.Server) {
	t.Helper()
	prom := promtest.New(t,
		promtest.Series("http_requests_total", "namespace", "shop", "pod", "web-1"),
		promtest.Series("queue_messages", "namespace", "shop", "queue", "orders"))
	cfg, err := config.Parse([]byte(testRules), "rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	mapper := apimeta.NewDefaultRESTMapper(nil)
	mapper.Add(schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, apimeta.RESTScopeNamespace)
	mapper.Add(schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, apimeta.RESTScopeRoot)
	plan := planner.New(planner.Options{})
	b := &snapshot.Builder{Defaults: backend.Defaults{Options: promclient.Options{URL: prom.URL(), Timeout: 5 * time.Second}},
		Mapper: mapper, Planner: plan, Custom: true, External: true, MetricsMaxAge: time.Hour}
	s, err := b.Build(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Discoverer.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := snapshot.NewHolder(s)
	return &Parts{Mapper: mapper, Planner: plan, Holder: h,
		Custom:   &provider.Custom{Source: h.Providers(), Planner: plan, Mapper: mapper, Objects: pods{"web-1": {"app": "web"}, "web-2": {"app": "web"}}},
		External: &provider.External{Source: h.Providers(), Planner: plan},
	}, prom
}

func answer(pairs ...string) func(string) (int, string) {
	return func(string) (int, string) {
		var items []string
		for i := 0; i+2 < len(pairs)+1; i += 3 {
			items = append(items, fmt.Sprintf(`{"metric":{%q:%q},"value":[1700000000,%q]}`, pairs[i], pairs[i+1], pairs[i+2]))
		}
		return 200, `{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(items, ",") + `]}}`
	}
}

func TestExplainRunsTheRequestThroughTheServingParts(t *testing.T) {
	p, prom := testParts(t)
	prom.SetAnswer(answer("pod", "web-1", "0.5", "pod", "web-2", "3"))
	for _, tc := range []struct {
		name, path string
		values     []string // object=value
		promql     string
	}{
		{"pods by label selector", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/http_requests_per_second?labelSelector=app%3Dweb",
			[]string{"shop/web-1=500m", "shop/web-2=3"}, `sum(rate(http_requests_total{namespace="shop",pod!=""}[2m])) by (pod)`},
		{"one pod by name, v1beta1", "/apis/custom.metrics.k8s.io/v1beta1/namespaces/shop/pods/web-2/http_requests_per_second",
			[]string{"shop/web-2=3"}, `sum(rate(http_requests_total{namespace="shop",pod!=""}[2m])) by (pod)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := p.Explain(context.Background(), tc.path, "")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range tr.Values {
				got = append(got, v.Object+"="+v.Value)
			}
			if !tr.Served || strings.Join(got, " ") != strings.Join(tc.values, " ") || len(tr.Queries) != 1 || tr.Queries[0].PromQL != tc.promql ||
				tr.Rule == nil || tr.Rule.ID != "custom/0 (rules.yaml:2)" || tr.Rule.Line != 2 || tr.Request.Group != "custom.metrics.k8s.io" {
				t.Errorf("trace: served %v, values %v, queries %+v, rule %+v, reason %+v", tr.Served, got, tr.Queries, tr.Rule, tr.Reason)
			}
		})
	}

	prom.SetAnswer(answer("queue", "orders", "12"))
	tr, err := p.Explain(context.Background(), "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/queue_messages?labelSelector=queue%3Dorders", "")
	if err != nil || !tr.Served || len(tr.Values) != 1 || tr.Values[0].Value != "12" || tr.Rule.ID != "external/0 (rules.yaml:7)" {
		t.Errorf("external: %+v, %v", tr, err)
	}

	tr, err = p.Explain(context.Background(), "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods", "")
	if err != nil || tr.Served || tr.Status.Code != 404 || !strings.Contains(tr.Reason.Text, "metrics.k8s.io is not served by this configuration") {
		t.Errorf("metrics.k8s.io without resourceRules: %+v, %v", tr, err)
	}
	if _, err := p.Explain(context.Background(), "/healthz", ""); err == nil {
		t.Error("a path that is no metric request was explained")
	}
}

func TestExplainOfAMetricNoRuleServesChecksTheBackends(t *testing.T) {
	p, prom := testParts(t)
	prom.SetFail(func(string, []string) int { return 503 })
	if err := p.Holder.Load().Discoverer.RunOnce(context.Background()); err == nil {
		t.Fatal("discovery against a failing Prometheus succeeded")
	}
	tr, err := p.Explain(context.Background(), "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/nope?labelSelector=app%3Dweb", "")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Served || len(tr.Backends) != 1 || tr.Backends[0].Name != "default" || tr.Backends[0].Cause != "server" ||
		tr.Reason == nil || tr.Reason.Code != explain.ReasonUnreachable || !strings.Contains(tr.Reason.Text, `backend "default" at `+prom.URL()) {
		t.Fatalf("backends %+v, reason %+v", tr.Backends, tr.Reason)
	}
}

func TestYAMLLineFindsResourceRules(t *testing.T) {
	data := config.DefaultYAML()
	// The line of "containerQuery:" within cpu: under resourceRules:, found by reading the text.
	want, section, inCPU := 0, false, false
	for i, line := range bytes.Split(data, []byte("\n")) {
		switch s := string(line); {
		case strings.HasPrefix(s, "resourceRules:"):
			section = true
		case section && strings.HasPrefix(s, "  cpu:"):
			inCPU = true
		case inCPU && strings.HasPrefix(s, "    containerQuery:"):
			want = i + 1
		}
		if want > 0 {
			break
		}
	}
	if want == 0 {
		t.Fatal("the default config has no resourceRules.cpu.containerQuery")
	}
	if got := yamlLine(data, []string{"resourceRules", "cpu", "containerQuery"}); got != want {
		t.Errorf("yamlLine = %d, want %d", got, want)
	}
	if got := yamlLine(data, []string{"resourceRules", "gpu"}); got != 0 {
		t.Errorf("yamlLine of a missing key = %d", got)
	}
	if got := statusOf(errors.New("boom")); got.Code != 500 || !strings.Contains(got.Message, "boom") {
		t.Errorf("statusOf(a plain error) = %+v, want 500", got)
	}
}
