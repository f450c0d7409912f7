package naming

import (
	"errors"
	"strings"
	"sync"
	"testing"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/promadapter/promadapter/pkg/config"
)

// testRESTMapper knows pods, namespaces, nodes and apps/deployments, the way a cluster's
// discovery does (singular and plural names both resolve).
func testRESTMapper() apimeta.RESTMapper {
	m := apimeta.NewDefaultRESTMapper(nil)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, apimeta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, apimeta.RESTScopeRoot)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Node"}, apimeta.RESTScopeRoot)
	m.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, apimeta.RESTScopeNamespace)
	return m
}

// A compiled rule is read by discovery goroutines and request handlers at once: no read may
// write to it (run with -race).
func TestResourceMapperIsSafeForConcurrentReads(t *testing.T) {
	for _, c := range []struct {
		name   string
		mapper apimeta.RESTMapper
	}{
		{"with a cluster's RESTMapper", testRESTMapper()},
		{"without a RESTMapper", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			rm, err := NewResourceMapper(config.ResourceMapping{
				Template: "<<.Resource>>",
				Overrides: map[string]config.GroupResource{
					"namespace": {Resource: "namespace"}, "exported_namespace": {Resource: "namespace"},
					"pod": {Resource: "pod"}, "kube_deployment": {Group: "apps", Resource: "deployment"},
					"widget": {Group: "example.com", Resource: "widget"}, // unknown to the RESTMapper: resolved per call
				},
			}, c.mapper)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for g := 0; g < 16; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 200; i++ {
						for _, l := range []string{"namespace", "exported_namespace", "pod", "kube_deployment", "widget", "node"} {
							rm.ResourceForLabel(l)
						}
						if got := rm.NamespaceLabel(); got != "namespace" {
							t.Errorf("NamespaceLabel = %q, want namespace", got)
							return
						}
						if got, _ := rm.LabelForResource(schema.GroupResource{Group: "apps", Resource: "deployments"}); got != "kube_deployment" {
							t.Errorf("LabelForResource(deployments) = %q, want kube_deployment", got)
							return
						}
						rm.LabelForResource(pods)
					}
				}()
			}
			wg.Wait()
		})
	}
}

// Two labels mapped to one resource give the same label on every call: the one named like
// the resource's singular, else the lexicographically smallest.
func TestLabelForResourceIsDeterministic(t *testing.T) {
	ns := func(labels ...string) map[string]config.GroupResource {
		m := map[string]config.GroupResource{"pod": {Resource: "pod"}}
		for _, l := range labels {
			m[l] = config.GroupResource{Resource: "namespace"}
		}
		return m
	}
	cases := []struct {
		name      string
		overrides map[string]config.GroupResource
		mapper    apimeta.RESTMapper
		want      string
	}{
		{"the label named like the resource wins over a smaller one", ns("namespace", "exported_namespace"), nil, "namespace"},
		{"the same with a cluster's RESTMapper", ns("namespace", "exported_namespace"), testRESTMapper(), "namespace"},
		{"otherwise the lexicographically smallest wins", ns("kubernetes_namespace", "exported_namespace", "src_namespace"), nil, "exported_namespace"},
		{"plural and singular spellings of the resource are one resource", map[string]config.GroupResource{
			"ns_b": {Resource: "namespaces"}, "ns_a": {Resource: "Namespace"}}, testRESTMapper(), "ns_a"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for i := 0; i < 50; i++ { // map order differs from one construction to the next
				rm, err := NewResourceMapper(config.ResourceMapping{Overrides: c.overrides}, c.mapper)
				if err != nil {
					t.Fatal(err)
				}
				for j := 0; j < 5; j++ {
					if got, ok := rm.LabelForResource(NamespacesResource); !ok || got != c.want {
						t.Fatalf("LabelForResource(namespaces) = %q, %v; want %q", got, ok, c.want)
					}
				}
			}
		})
	}
}

// Overrides resolve through the RESTMapper when the mapper is built; one the RESTMapper does
// not know yet is still looked up on each call, so it starts working once its CRD appears.
func TestOverridesResolveThroughTheRESTMapper(t *testing.T) {
	m := apimeta.NewDefaultRESTMapper(nil)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, apimeta.RESTScopeNamespace)
	rm, err := NewResourceMapper(config.ResourceMapping{Overrides: map[string]config.GroupResource{
		"pod": {Resource: "Pod"}, "widget": {Group: "example.com", Resource: "widget"}}}, m)
	if err != nil {
		t.Fatal(err)
	}
	if gr, ok := rm.ResourceForLabel("pod"); !ok || gr != pods {
		t.Fatalf("ResourceForLabel(pod) = %v, %v; want pods", gr, ok)
	}
	widgets := schema.GroupResource{Group: "example.com", Resource: "widgets"}
	if _, ok := rm.ResourceForLabel("widget"); ok {
		t.Fatal("an override to an unknown resource resolved")
	}
	m.Add(schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}, apimeta.RESTScopeNamespace)
	if gr, ok := rm.ResourceForLabel("widget"); !ok || gr != widgets {
		t.Fatalf("after the CRD appeared: ResourceForLabel(widget) = %v, %v; want %v", gr, ok, widgets)
	}
	if l, ok := rm.LabelForResource(widgets); !ok || l != "widget" {
		t.Fatalf("LabelForResource(widgets) = %q, %v; want widget", l, ok)
	}
}

// A metric selector that cannot become PromQL is the client's mistake: the error wraps
// ErrInvalidSelector (the provider answers 400) and says why.
func TestInvalidSelectorsWrapErrInvalidSelector(t *testing.T) {
	cases := []struct {
		name   string
		sel    labels.Selector
		reason string
	}{
		{"a value with a double quote", labels.SelectorFromValidatedSet(labels.Set{"queue": `a"b`}), `the value "a\"b" of key "queue" is not a valid label value`},
		{"a value with a newline", labels.SelectorFromValidatedSet(labels.Set{"queue": "a\nb"}), `the value "a\nb" of key "queue" is not a valid label value`},
		{"a value with a NUL", labels.SelectorFromValidatedSet(labels.Set{"queue": "a\x00b"}), `the value "a\x00b" of key "queue" is not a valid label value`},
		{"a value that is not UTF-8", labels.SelectorFromValidatedSet(labels.Set{"queue": "a\xffb"}), `the value "a\xffb" of key "queue" is not a valid label value`},
		{"a key that is not a Prometheus label name", mustSelector(t, "app.kubernetes.io/name=x"), `key "app.kubernetes.io/name" is not a valid Prometheus label name`},
		{"an operator PromQL lacks", mustSelector(t, "a>3"), `operator "gt" (in "a>3") is not supported`},
		{"a selector that matches nothing", labels.Nothing(), `can never match`},
	}
	rule := httpRule(t)
	ext := nodeRule(t, KindExternal, true, `sum(<<.Series>>{<<.LabelMatchers>>})`)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err1 := SelectorMatchers(c.sel)
			_, err2 := rule.RenderObjectQuery(ObjectQuery{Series: "x", Resource: pods, Namespace: "shop", MetricSelector: c.sel})
			_, err3 := ext.RenderExternal("x", "shop", c.sel)
			for i, err := range []error{err1, err2, err3} {
				if !errors.Is(err, ErrInvalidSelector) {
					t.Fatalf("call %d: err = %v; want one wrapping ErrInvalidSelector", i, err)
				}
				if !strings.HasPrefix(err.Error(), "invalid metric label selector: ") || !strings.Contains(err.Error(), c.reason) {
					t.Fatalf("call %d: err = %q; want it to say %q", i, err, c.reason)
				}
			}
		})
	}
}
