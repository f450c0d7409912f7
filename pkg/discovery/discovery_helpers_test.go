// Shared fixtures and helpers for the discovery tests: resources, rules, a RESTMapper, a client and a settable clock.

package discovery_test

import (
	"sync"
	"testing"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promadapter/promadapter/internal/promtest"
	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/pkg/naming"
	"github.com/promadapter/promadapter/pkg/promclient"
)

var (
	pods        = schema.GroupResource{Resource: "pods"}
	services    = schema.GroupResource{Resource: "services"}
	namespaces  = schema.GroupResource{Resource: "namespaces"}
	nodes       = schema.GroupResource{Resource: "nodes"}
	deployments = schema.GroupResource{Group: "apps", Resource: "deployments"}
)

// t0 is 2026-03-01T12:00:00Z, Unix 1772366400.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// appCounterRule is the default configuration's application-counter rule.
var appCounterRule = config.DiscoveryRule{
	SeriesQuery:  `{__name__=~"^.+_total$",__name__!~"^(container|kube|node|prometheus|go|process)_.*",namespace!=""}`,
	Resources:    config.ResourceMapping{Template: "<<.Resource>>"},
	Name:         config.NameMapping{Matches: "^(.*)_total$", As: "${1}_per_second"},
	MetricsQuery: `sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)`,
}

// testMapper knows the resources a small cluster serves, with their scopes, as the server's
// RESTMapper does: labels that name no resource (code, job, instance) resolve to nothing.
func testMapper() apimeta.RESTMapper {
	core := schema.GroupVersion{Version: "v1"}
	apps := schema.GroupVersion{Group: "apps", Version: "v1"}
	m := apimeta.NewDefaultRESTMapper([]schema.GroupVersion{core, apps})
	m.Add(core.WithKind("Pod"), apimeta.RESTScopeNamespace)
	m.Add(core.WithKind("Service"), apimeta.RESTScopeNamespace)
	m.Add(core.WithKind("Namespace"), apimeta.RESTScopeRoot)
	m.Add(core.WithKind("Node"), apimeta.RESTScopeRoot)
	m.Add(apps.WithKind("Deployment"), apimeta.RESTScopeNamespace)
	return m
}

func compile(t *testing.T, kind naming.Kind, rules ...config.DiscoveryRule) []*naming.Rule {
	t.Helper()
	out, err := naming.CompileRules(kind, rules, "test.yaml", testMapper())
	if err != nil {
		t.Fatalf("CompileRules: %v", err)
	}
	return out
}

func client(t *testing.T, f *promtest.Server) *promclient.Client {
	t.Helper()
	c, err := promclient.New(promclient.Options{URL: f.URL(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// clock is a settable time source for Discoverer.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func info(gr schema.GroupResource, metric string, namespaced bool) provider.CustomMetricInfo {
	return provider.CustomMetricInfo{GroupResource: gr, Metric: metric, Namespaced: namespaced}
}
