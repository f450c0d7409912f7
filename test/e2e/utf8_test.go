//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/test/testbed"
)

// utf8Series is an OpenTelemetry-style series name that is not a legacy metric name: Prometheus 3
// stores it as is, and PromQL can select it only as {__name__="..."} or {"..."}.
const utf8Series = "http.server.requests"

// OpenTelemetry's resource labels, also not legacy label names.
const (
	utf8NamespaceLabel = "k8s.namespace.name"
	utf8PodLabel       = "k8s.pod.name"
)

// utf8Pod is one pod of the UTF-8 test and the request rates its series grow at, per code.
type utf8Pod struct {
	namespace, name, app string
	rate200, rate500     float64
}

// utf8Pods: web-0 exists in both namespaces with different rates, so a query that is not pinned
// to the namespace asked for gives a wrong value rather than a right one by chance.
var utf8Pods = []utf8Pod{
	{"otel-a", "web-0", "web", 1.5, 0.25},
	{"otel-a", "web-1", "web", 2, 0.5},
	{"otel-a", "worker-0", "worker", 4, 1},
	{"otel-b", "web-0", "web", 7, 3},
}

func (p utf8Pod) rate(code string) float64 {
	switch code {
	case "200":
		return p.rate200
	case "500":
		return p.rate500
	}
	return p.rate200 + p.rate500
}

// utf8Rate sums the pods' rates of code ("" for all codes) in namespace, optionally only for one
// pod or app.
func utf8Rate(namespace, pod, app, code string) float64 {
	var sum float64
	for _, p := range utf8Pods {
		if p.namespace == namespace && (pod == "" || p.name == pod) && (app == "" || p.app == app) {
			sum += p.rate(code)
		}
	}
	return sum
}

// utf8OpenMetrics writes one counter series per pod and code, named utf8Series with UTF-8 resource
// labels (quoted, as OpenMetrics 2 and promtool's backfill accept), growing linearly from 1000 at
// start by the pod's rate, one sample per step through end. Timestamps are whole seconds so
// rates are exact.
func utf8OpenMetrics(start, end time.Time, step time.Duration) []byte {
	var b strings.Builder
	start = start.Truncate(time.Second)
	for _, p := range utf8Pods {
		for _, code := range []string{"200", "500"} {
			for ts := start; !ts.After(end); ts = ts.Add(step) {
				v := 1000 + p.rate(code)*ts.Sub(start).Seconds()
				fmt.Fprintf(&b, "{%q,%q=%q,%q=%q,code=%q} %s %d\n", utf8Series, utf8NamespaceLabel, p.namespace, utf8PodLabel, p.name, code,
					strconv.FormatFloat(v, 'f', -1, 64), ts.Unix())
			}
		}
	}
	b.WriteString("# EOF\n")
	return []byte(b.String())
}

// utf8Config is the embedded default config with rules over utf8Series only:
//   - http.server.request_rate: the common shape <<.Series>>{<<.LabelMatchers>>}, resources by
//     overrides;
//   - http.server.request_rate_all: the bare shape rate(<<.Series>>[2m]) without matchers, resources
//     by the template k8s.<<.Resource>>.name; the adapter filters the namespace from the answer;
//   - http.server.request_rate_by_code: an external rule pinned to the request's namespace.
func utf8Config() *config.Config {
	cfg := config.Default()
	seriesQuery := `{"` + utf8Series + `","` + utf8NamespaceLabel + `"!="",` + `"` + utf8PodLabel + `"!=""}`
	overrides := config.ResourceMapping{Overrides: map[string]config.GroupResource{
		utf8NamespaceLabel: {Resource: "namespace"}, utf8PodLabel: {Resource: "pod"}}}
	cfg.Rules = []config.DiscoveryRule{
		{
			SeriesQuery:  seriesQuery,
			Resources:    overrides,
			Name:         config.NameMapping{Matches: `^http\.server\.requests$`, As: "http.server.request_rate"},
			MetricsQuery: `sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)`,
		},
		{
			SeriesQuery:  seriesQuery,
			Resources:    config.ResourceMapping{Template: "k8s.<<.Resource>>.name"},
			Name:         config.NameMapping{Matches: `^http\.server\.requests$`, As: "http.server.request_rate_all"},
			MetricsQuery: `sum by (<<.GroupBy>>, "` + utf8NamespaceLabel + `") (rate(<<.Series>>[2m]))`,
		},
	}
	cfg.ExternalRules = append(cfg.ExternalRules, config.DiscoveryRule{
		SeriesQuery:  `{"` + utf8Series + `","` + utf8NamespaceLabel + `"!=""}`,
		Resources:    config.ResourceMapping{Overrides: map[string]config.GroupResource{utf8NamespaceLabel: {Resource: "namespace"}}},
		Name:         config.NameMapping{Matches: `^http\.server\.requests$`, As: "http.server.request_rate_by_code"},
		MetricsQuery: `sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (code)`,
	})
	return cfg
}

// utf8Objects creates the namespaces, their default ServiceAccounts and the pods.
func utf8Objects(ctx context.Context, t *testing.T, cluster *testbed.Cluster) {
	t.Helper()
	c := cluster.Client
	for _, ns := range []string{"otel-a", "otel-b"} {
		if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}}
		if _, err := c.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	noToken := false
	for _, p := range utf8Pods {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: p.namespace, Name: p.name, Labels: map[string]string{"app": p.app}},
			Spec: corev1.PodSpec{AutomountServiceAccountToken: &noToken,
				Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
		}
		if _, err := c.CoreV1().Pods(p.namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestUTF8Names serves metrics of a series whose name and resource labels are UTF-8, the way
// Prometheus 3 stores OpenTelemetry metrics, through kube-apiserver's aggregation layer, and
// checks every value exactly: the rendered queries must select the series by a __name__ matcher,
// match and group by quoted label names, and stay pinned to the namespace asked for.
//
// Reproduce with: go build -o /tmp/promadapter ./cmd/promadapter &&
// PROMADAPTER_BIN=/tmp/promadapter go test -tags e2e ./test/e2e -run TestUTF8Names -v
func TestUTF8Names(t *testing.T) {
	started := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bins, adapterBin := testBinaries(t)
	dir := t.TempDir()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("reproduce with: go build -o /tmp/promadapter ./cmd/promadapter && PROMADAPTER_BIN=/tmp/promadapter go test -tags e2e ./test/e2e -run '%s' -v", t.Name())
		}
	})

	cluster, err := testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: bins, Dir: filepath.Join(dir, "cluster")})
	if err != nil {
		t.Fatal(err)
	}
	cluster.Cleanup(t)
	utf8Objects(ctx, t, cluster)

	now := time.Now()
	prom, err := testbed.StartPrometheus(ctx, testbed.PrometheusOptions{Bins: bins, Major: "3", Dir: filepath.Join(dir, "prometheus"),
		OpenMetrics: utf8OpenMetrics(now.Add(-30*time.Minute), now.Add(3*time.Hour), 15*time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	prom.Cleanup(t)
	t.Logf("Prometheus %s at %s; to see the series: curl -sG %s/api/v1/query --data-urlencode 'query={\"%s\"}'", prom.Version, prom.URL, prom.URL, utf8Series)

	configFile := writeConfig(t, filepath.Join(dir, "config.yaml"), utf8Config())
	adapter, err := cluster.StartAdapter(ctx, testbed.AdapterOptions{Bin: adapterBin, PrometheusURL: prom.URL, ConfigFile: configFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if log, err := os.ReadFile(adapter.LogPath); err == nil {
				t.Logf("adapter log (%s), last lines:\n%s", adapter.LogPath, tail(string(log), 40))
			}
		}
		adapter.Stop()
	})
	t.Logf("environment up after %v", time.Since(started).Round(time.Millisecond))

	get := func(path string, v any) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := cluster.Kubectl(ctx, "get", "--raw", path)
		if err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(out), v); err != nil {
			return fmt.Errorf("kubectl get --raw %s: decoding %q: %w", path, out, err)
		}
		return nil
	}

	t.Run("discovery lists the metrics of the UTF-8 series", func(t *testing.T) {
		want := []string{
			"namespaces/http.server.request_rate namespaced=false",
			"pods/http.server.request_rate namespaced=true",
			"namespaces/http.server.request_rate_all namespaced=false",
			"pods/http.server.request_rate_all namespaced=true",
		}
		pollValues(t, 30*time.Second, "the custom metrics listing holds "+strings.Join(want, ", "), func() error {
			var list resourceList
			if err := get("/apis/custom.metrics.k8s.io/v1beta2", &list); err != nil {
				return err
			}
			served := map[string]bool{}
			for _, r := range list.Resources {
				served[fmt.Sprintf("%s namespaced=%v", r.Name, r.Namespaced)] = true
			}
			for _, w := range want {
				if !served[w] {
					return fmt.Errorf("%s missing from %v", w, served)
				}
			}
			return nil
		})
		pollValues(t, 30*time.Second, "the external metrics listing holds http.server.request_rate_by_code", func() error {
			var list resourceList
			if err := get("/apis/external.metrics.k8s.io/v1beta1", &list); err != nil {
				return err
			}
			for _, r := range list.Resources {
				if r.Name == "http.server.request_rate_by_code" {
					return nil
				}
			}
			return fmt.Errorf("not in %+v", list.Resources)
		})
	})

	// podValues GETs a pods metric and returns each described pod's value.
	podValues := func(path string) (map[string]float64, error) {
		var list metricValueList
		if err := get(path, &list); err != nil {
			return nil, err
		}
		got := map[string]float64{}
		for _, it := range list.Items {
			if it.DescribedObject.Kind != "Pod" || it.Timestamp == "" {
				return nil, fmt.Errorf("item %+v lacks kind Pod or a timestamp", it.DescribedObject)
			}
			got[it.DescribedObject.Namespace+"/"+it.DescribedObject.Name] = it.Value.AsApproximateFloat64()
		}
		return got, nil
	}
	pods := func(ns, metric, query string) string {
		return "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + ns + "/pods/" + metric + query
	}
	cases := []struct {
		name string
		path string
		want map[string]float64
	}{
		{"pods by label selector, the common template shape",
			pods("otel-a", "*/http.server.request_rate", "?labelSelector="+url.QueryEscape("app=web")),
			map[string]float64{"otel-a/web-0": utf8Rate("otel-a", "web-0", "", ""), "otel-a/web-1": utf8Rate("otel-a", "web-1", "", "")}},
		{"one pod by name, whose namesake in another namespace has another value",
			pods("otel-b", "web-0/http.server.request_rate", ""),
			map[string]float64{"otel-b/web-0": utf8Rate("otel-b", "web-0", "", "")}},
		{"a metricLabelSelector narrows the UTF-8 series",
			pods("otel-a", "*/http.server.request_rate", "?labelSelector="+url.QueryEscape("app in (web,worker)")+"&metricLabelSelector="+url.QueryEscape("code=500")),
			map[string]float64{"otel-a/web-0": 0.25, "otel-a/web-1": 0.5, "otel-a/worker-0": 1}},
		{"the bare template shape, without matchers: the namespace is filtered from the answer",
			pods("otel-a", "*/http.server.request_rate_all", "?labelSelector="+url.QueryEscape("app=web")),
			map[string]float64{"otel-a/web-0": utf8Rate("otel-a", "web-0", "", ""), "otel-a/web-1": utf8Rate("otel-a", "web-1", "", "")}},
		{"the bare shape for one pod in the other namespace",
			pods("otel-b", "*/http.server.request_rate_all", "?labelSelector="+url.QueryEscape("app=web")),
			map[string]float64{"otel-b/web-0": utf8Rate("otel-b", "web-0", "", "")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pollValues(t, 30*time.Second, fmt.Sprintf("GET %s serves %v", c.path, c.want), func() error {
				got, err := podValues(c.path)
				if err != nil {
					return err
				}
				return utf8SameValues(got, c.want)
			})
		})
	}

	t.Run("a namespace object sums its pods", func(t *testing.T) {
		path := "/apis/custom.metrics.k8s.io/v1beta2/namespaces/otel-a/metrics/http.server.request_rate"
		want := utf8Rate("otel-a", "", "", "")
		pollValues(t, 30*time.Second, fmt.Sprintf("GET %s serves %v", path, want), func() error {
			var list metricValueList
			if err := get(path, &list); err != nil {
				return err
			}
			if len(list.Items) != 1 || list.Items[0].DescribedObject.Name != "otel-a" {
				return fmt.Errorf("items %+v, want one for namespace otel-a", list.Items)
			}
			return utf8SameValues(map[string]float64{"otel-a": list.Items[0].Value.AsApproximateFloat64()}, map[string]float64{"otel-a": want})
		})
	})

	t.Run("an external metric pinned to the quoted namespace label", func(t *testing.T) {
		for _, c := range []struct {
			selector string
			want     map[string]float64
		}{
			{"", map[string]float64{"200": utf8Rate("otel-a", "", "", "200"), "500": utf8Rate("otel-a", "", "", "500")}},
			{"code=500", map[string]float64{"500": utf8Rate("otel-a", "", "", "500")}},
		} {
			path := "/apis/external.metrics.k8s.io/v1beta1/namespaces/otel-a/http.server.request_rate_by_code"
			if c.selector != "" {
				path += "?labelSelector=" + url.QueryEscape(c.selector)
			}
			pollValues(t, 30*time.Second, fmt.Sprintf("GET %s serves %v by code", path, c.want), func() error {
				var list struct {
					Items []struct {
						MetricLabels map[string]string `json:"metricLabels"`
						Value        resource.Quantity `json:"value"`
					} `json:"items"`
				}
				if err := get(path, &list); err != nil {
					return err
				}
				got := map[string]float64{}
				for _, it := range list.Items {
					got[it.MetricLabels["code"]] = it.Value.AsApproximateFloat64()
				}
				return utf8SameValues(got, c.want)
			})
		}
	})
	t.Logf("done after %v", time.Since(started).Round(time.Millisecond))
}

// utf8SameValues compares served values with expected ones, to the milli precision quantities
// carry. A mismatch wraps errWrong: the adapter answered, and wrongly.
func utf8SameValues(got, want map[string]float64) error {
	var wrong []string
	for k, w := range want {
		g, ok := got[k]
		if !ok || !utf8Near(g, w) {
			wrong = append(wrong, fmt.Sprintf("%s: got %v (served: %v), want %v", k, g, ok, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			wrong = append(wrong, fmt.Sprintf("%s: served %v, which was not asked for", k, g))
		}
	}
	if len(wrong) == 0 {
		return nil
	}
	sort.Strings(wrong)
	return fmt.Errorf("%w: %s", errWrong, strings.Join(wrong, "; "))
}

func utf8Near(got, want float64) bool {
	d := got - want
	if d < 0 {
		d = -d
	}
	return d < 0.0005+1e-9*want
}
