package provider_test

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"testing"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/promadapter/promadapter/internal/promtest"
	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/pkg/discovery"
	"github.com/promadapter/promadapter/pkg/naming"
	"github.com/promadapter/promadapter/pkg/planner"
	"github.com/promadapter/promadapter/pkg/promclient"
	"github.com/promadapter/promadapter/pkg/provider"
)

var (
	podsResource       = schema.GroupResource{Resource: "pods"}
	servicesResource   = schema.GroupResource{Resource: "services"}
	namespacesResource = schema.GroupResource{Resource: "namespaces"}
	nodesResource      = schema.GroupResource{Resource: "nodes"}
)

// sampleTime is the timestamp the fake Prometheus puts on samples: 1700000000.5 s.
var sampleTime = time.Unix(1700000000, 500_000_000)

// plannerTime is the planner's (fixed) clock: the time of a value served for an empty result.
var plannerTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testMapper knows the resources of a small cluster with their kinds and scopes.
func testMapper() apimeta.RESTMapper {
	core := schema.GroupVersion{Version: "v1"}
	m := apimeta.NewDefaultRESTMapper([]schema.GroupVersion{core})
	m.Add(core.WithKind("Pod"), apimeta.RESTScopeNamespace)
	m.Add(core.WithKind("Service"), apimeta.RESTScopeNamespace)
	m.Add(core.WithKind("Namespace"), apimeta.RESTScopeRoot)
	m.Add(core.WithKind("Node"), apimeta.RESTScopeRoot)
	return m
}

// object is one Kubernetes object the fake lister knows.
type object struct {
	namespace, name string
	labels          labels.Set
}

// fakeObjects is an ObjectLister over a fixed set of objects.
type fakeObjects struct {
	objects map[schema.GroupResource][]object
	err     error

	mu    sync.Mutex
	calls int
}

func (o *fakeObjects) ListNames(_ context.Context, gr schema.GroupResource, namespace string, selector labels.Selector) ([]string, error) {
	o.mu.Lock()
	o.calls++
	o.mu.Unlock()
	if o.err != nil {
		return nil, o.err
	}
	var names []string
	for _, obj := range o.objects[gr] {
		if obj.namespace == namespace && (selector == nil || selector.Matches(obj.labels)) {
			names = append(names, obj.name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// shopObjects are the objects of the tests' cluster.
func shopObjects() *fakeObjects {
	return &fakeObjects{objects: map[schema.GroupResource][]object{
		podsResource: {
			{"shop", "web-1", labels.Set{"app": "web"}},
			{"shop", "web-2", labels.Set{"app": "web"}},
			{"shop", "web-3", labels.Set{"app": "web"}},
			{"shop", "db-1", labels.Set{"app": "db"}},
			{"batch", "web-1", labels.Set{"app": "web"}},
		},
		servicesResource: {
			{"shop", "web", labels.Set{"tier": "front"}},
			{"shop", "db", labels.Set{"tier": "back"}},
		},
		namespacesResource: {
			{"", "shop", labels.Set{"team": "a"}},
			{"", "batch", labels.Set{"team": "b"}},
		},
	}}
}

// appCounterRule is the default configuration's application-counter rule.
var appCounterRule = config.DiscoveryRule{
	SeriesQuery:  `{__name__=~"^.+_total$",__name__!~"^(container|kube|node|prometheus|go|process)_.*",namespace!=""}`,
	Resources:    config.ResourceMapping{Template: "<<.Resource>>"},
	Name:         config.NameMapping{Matches: "^(.*)_total$", As: "${1}_per_second"},
	MetricsQuery: `sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)`,
}

// queueDepthRule's template does not group, so it must name the objects it asks for.
var queueDepthRule = config.DiscoveryRule{
	SeriesQuery:  `{__name__="queue_depth",namespace!=""}`,
	Resources:    config.ResourceMapping{Template: "<<.Resource>>"},
	MetricsQuery: `max(<<.Series>>{<<.LabelMatchers>>})`,
}

// shopSeries are the series Prometheus holds for discovery.
var shopSeries = []map[string]string{
	promtest.Series("http_requests_total", "namespace", "shop", "pod", "web-1", "service", "web", "code", "200"),
	promtest.Series("jobs_done_total", "namespace", "shop", "pod", "runner-1"),
	promtest.Series("queue_depth", "namespace", "shop", "pod", "web-1"),
	promtest.Series("queue_depth", "namespace", "shop", "queue", "orders"),
	promtest.Series("queue_lag_seconds", "namespace", "shop", "queue", "orders"),
	promtest.Series("kube_deployment_spec_replicas", "namespace", "shop", "deployment", "web"),
	promtest.Series("jobs_waiting", "namespace", "batch"),
	promtest.Series("cluster_capacity"),
}

// env is a custom and an external provider over a registry filled by a real Discoverer
// from the fake Prometheus.
type env struct {
	prom     *promtest.Server
	registry *discovery.Registry
	custom   *provider.Custom
	external *provider.External
}

type envOptions struct {
	custom, external []config.DiscoveryRule
	series           []map[string]string
	objects          *fakeObjects
	// queryURL is the Prometheus that queries go to; empty means the fake one.
	queryURL string
	// timeout bounds each query; 0 means 5s.
	timeout time.Duration
	// skipDiscovery leaves the registry empty and not ready.
	skipDiscovery bool
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	prom := promtest.New(t, o.series...)
	mapper := testMapper()
	customRules, err := naming.CompileRules(naming.KindCustom, o.custom, "test.yaml", mapper)
	if err != nil {
		t.Fatal(err)
	}
	externalRules, err := naming.CompileRules(naming.KindExternal, o.external, "test.yaml", mapper)
	if err != nil {
		t.Fatal(err)
	}
	discoveryClient, err := promclient.New(promclient.Options{URL: prom.URL()})
	if err != nil {
		t.Fatal(err)
	}
	registry := discovery.NewRegistry()
	if !o.skipDiscovery {
		d := &discovery.Discoverer{Backend: discoveryClient, Custom: customRules, External: externalRules,
			Registry: registry, MaxAge: 10 * time.Minute}
		if err := d.RunOnce(context.Background()); err != nil {
			t.Fatalf("discovery: %v", err)
		}
	}
	queryURL := o.queryURL
	if queryURL == "" {
		queryURL = prom.URL()
	}
	timeout := o.timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	queryClient, err := promclient.New(promclient.Options{URL: queryURL, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	backend := planner.Backend{Name: "default", Querier: queryClient}
	plan := planner.New(planner.Options{CachePeriod: time.Second, Now: func() time.Time { return plannerTime }})
	objects := o.objects
	if objects == nil {
		objects = shopObjects()
	}
	source := provider.StaticSource{State: &provider.State{Registry: registry, Backends: provider.OneBackend(backend)}}
	return &env{
		prom:     prom,
		registry: registry,
		custom:   &provider.Custom{Source: source, Planner: plan, Objects: objects, Mapper: mapper},
		external: &provider.External{Source: source, Planner: plan},
	}
}

// discoveryFor is a Discoverer of custom rules into registry.
func discoveryFor(t *testing.T, backend discovery.Lister, registry *discovery.Registry, rules []config.DiscoveryRule) *discovery.Discoverer {
	t.Helper()
	compiled, err := naming.CompileRules(naming.KindCustom, rules, "test.yaml", testMapper())
	if err != nil {
		t.Fatal(err)
	}
	return &discovery.Discoverer{Backend: backend, Custom: compiled, Registry: registry, MaxAge: 10 * time.Minute}
}

// sample is one vector element at sampleTime: a value and label pairs.
type sample struct {
	value  string
	labels []string
	// at overrides sampleTime (Unix seconds).
	at float64
}

// vectorAnswer answers every query with a vector of samples.
func vectorAnswer(samples ...sample) func(string) (int, string) {
	return func(string) (int, string) {
		result := []map[string]any{}
		for _, s := range samples {
			m := map[string]string{}
			for i := 0; i+1 < len(s.labels); i += 2 {
				m[s.labels[i]] = s.labels[i+1]
			}
			at := s.at
			if at == 0 {
				at = 1700000000.5
			}
			result = append(result, map[string]any{"metric": m, "value": []any{at, s.value}})
		}
		b, err := json.Marshal(map[string]any{"status": "success", "data": map[string]any{"resultType": "vector", "result": result}})
		if err != nil {
			panic(err)
		}
		return 200, string(b)
	}
}

func fixedAnswer(status int, body string) func(string) (int, string) {
	return func(string) (int, string) { return status, body }
}

const badDataBody = `{"status":"error","errorType":"bad_data","error":"1:10: parse error: unexpected character"}`

// slowAnswer answers after d: longer than the client's timeout in the tests that use it.
func slowAnswer(d time.Duration) func(string) (int, string) {
	return func(string) (int, string) {
		time.Sleep(d)
		return 200, promtest.EmptyVector
	}
}
