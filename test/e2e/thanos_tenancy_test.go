//go:build e2e

// TestThanosTenancy and its objects and series.

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

// The objects and series of TestThanosTenancy: two pods in each of two namespaces, each
// namespace its own tenant, with a gauge per pod.
const (
	tenancyMetric = "app_inflight_requests"
	tenancyApp    = "web"
)

// tenancyValues are the gauge's values by tenant, namespace and pod. The decoys carry
// namespace team-b but tenant team-a: only the tenant tells them apart from team-b's own
// series, so an adapter sending the wrong tenant (team-a, the discovery tenant) for a team-b
// request, or none, cannot serve team-b's values.
var tenancyValues = []struct {
	tenant, namespace, pod string
	value                  int
}{
	{"team-a", "team-a", "web-0", 11},
	{"team-a", "team-a", "web-1", 12},
	{"team-b", "team-b", "web-0", 21},
	{"team-b", "team-b", "web-1", 22},
	{"team-a", "team-b", "web-0", 901}, // decoy
	{"team-a", "team-b", "web-1", 902}, // decoy
}

// tenancyOpenMetrics writes tenancyValues every 15 s from now-30m to now+3h.
func tenancyOpenMetrics(now time.Time) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# HELP %s Requests in flight.\n# TYPE %s gauge\n", tenancyMetric, tenancyMetric)
	for _, v := range tenancyValues {
		for ts := now.Add(-30 * time.Minute).Truncate(time.Second); !ts.After(now.Add(3 * time.Hour)); ts = ts.Add(fixture.DefaultStep) {
			fmt.Fprintf(&b, "%s{namespace=%q,pod=%q,%s=%q} %d %d\n", tenancyMetric, v.namespace, v.pod, testbed.ThanosTenantLabel, v.tenant, v.value, ts.Unix())
		}
	}
	b.WriteString("# EOF\n")
	return []byte(b.String())
}

// tenancyObjects are the namespaces, their default ServiceAccounts (pods cannot be created
// without one when no controller-manager runs) and the pods.
func tenancyObjects() string {
	var b strings.Builder
	for _, ns := range []string{"team-a", "team-b"} {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n", ns)
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: %s}\n", ns)
		for _, pod := range []string{"web-0", "web-1"} {
			fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: %s, labels: {app: %s}}\n"+
				"spec: {containers: [{name: app, image: registry.k8s.io/pause:3.10}]}\n", pod, ns, tenancyApp)
		}
	}
	return b.String()
}

// TestThanosTenancy runs the adapter against a Thanos querier that enforces tenancy (only the
// series whose tenant_id equals the request's X-Scope-OrgID), with a backend whose tenant is
// the request's namespace: each namespace's pods get their own tenant's exact values, never
// those of a decoy series that carries the namespace's name under another tenant.
//
// Reproduce with: go build -o /tmp/promadapter ./cmd/promadapter &&
// PROMADAPTER_BIN=/tmp/promadapter go test -tags e2e -count=1 ./test/e2e -run 'TestThanos' -v
func TestThanosTenancy(t *testing.T) {
	t.Logf("reproduce with: %s", thanosReproduce)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	e := startThanosEnv(t, ctx, tenancyOpenMetrics(time.Now()), true)
	if out, err := e.cluster.KubectlWithInput(ctx, []byte(tenancyObjects()), "apply", "-f", "-"); err != nil {
		t.Fatalf("creating the tenants' namespaces and pods: %v\n%s", err, out)
	}

	// The default rules stay on the backend "default": the same querier, where requests
	// without a tenant header see the default tenant's (no) series.
	cfg := config.Default()
	cfg.Rules = append(cfg.Rules, config.DiscoveryRule{
		SeriesQuery: tenancyMetric + `{namespace!="",pod!=""}`,
		Resources: config.ResourceMapping{Overrides: map[string]config.GroupResource{
			"namespace": {Resource: "namespace"},
			"pod":       {Resource: "pod"},
		}},
		MetricsQuery: `sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)`,
		Backend:      "thanos",
	})
	backend := map[string]any{"name": "thanos", "kind": "thanos", "url": e.thanos.URL, "tenant": map[string]any{
		"header":            testbed.ThanosTenantHeader,
		"namespaceTemplate": "<<.Namespace>>",
		"discoveryValue":    "team-a",
	}}
	e.startAdapter(t, ctx, writeThanosConfig(t, filepath.Join(e.dir, "tenancy"), cfg, backend), e.thanos.URL)

	want := map[string]int{} // namespace/pod -> value of its own tenant
	for _, v := range tenancyValues {
		if v.tenant == v.namespace {
			want[v.namespace+"/"+v.pod] = v.value
		}
	}
	for _, tc := range []struct {
		name, namespace, path string
		pods                  []string
	}{
		{"team-b's pod by name answers team-b's value, not the decoy's", "team-b", "pods/web-0/" + tenancyMetric, []string{"web-0"}},
		{"team-b's pods by selector answer team-b's values, not the decoys'", "team-b", "pods/*/" + tenancyMetric + "?labelSelector=" + url.QueryEscape("app="+tenancyApp), []string{"web-0", "web-1"}},
		{"team-a's pod by name answers team-a's value", "team-a", "pods/web-1/" + tenancyMetric, []string{"web-1"}},
		{"team-a's pods by selector answer team-a's values", "team-a", "pods/*/" + tenancyMetric + "?labelSelector=" + url.QueryEscape("app="+tenancyApp), []string{"web-0", "web-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + tc.namespace + "/" + tc.path
			pollValues(t, time.Minute, tc.name+"; see `"+e.kubectlGetRaw(path)+"` and curl -g -H '"+testbed.ThanosTenantHeader+": "+tc.namespace+"' '"+
				e.thanos.URL+"/api/v1/query?query="+tenancyMetric+"'", func() error {
				a := e.get(path)
				if a.Status != http.StatusOK {
					return notOK(path, a)
				}
				var list metricValueList
				if err := json.Unmarshal([]byte(a.Body), &list); err != nil {
					return fmt.Errorf("%w: GET %s: decoding %q: %v", errWrong, path, a.Body, err)
				}
				got := map[string]string{}
				for _, it := range list.Items {
					got[it.DescribedObject.Namespace+"/"+it.DescribedObject.Name] = it.Value.String()
				}
				wantHere := map[string]string{}
				for _, pod := range tc.pods {
					wantHere[tc.namespace+"/"+pod] = fmt.Sprint(want[tc.namespace+"/"+pod])
				}
				if fmt.Sprint(got) != fmt.Sprint(wantHere) {
					return fmt.Errorf("%w: GET %s: got %v, want %v (only tenant %s's series)", errWrong, path, got, wantHere, tc.namespace)
				}
				return nil
			})
		})
	}
}
