//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/pkg/explain"
	"github.com/promadapter/promadapter/test/fixture"
)

// TestExplain explains served and missing metrics through the running adapter's endpoint (as an
// authorized user; an unauthorized one gets 403) and in-process from config, Prometheus and
// kubeconfig, with the fixture's exact values.
//
// Reproduce: make build && PROMADAPTER_BIN=$PWD/bin/promadapter go test -count=1 -tags e2e ./test/e2e/ -run TestExplain -v
func TestExplain(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Rules = append(cfg.Rules, gpuRule)
	cfg.ExternalRules = append(cfg.ExternalRules, testExternalRules...)
	cfgFile := writeConfig(t, filepath.Join(dir, "config.yaml"), cfg)
	e := startExplainEnv(t, cfgFile)
	kubeconfig := "--kubeconfig=" + e.cluster.Kubeconfig
	local := []string{kubeconfig, "--prometheus-url=" + e.prom.URL, "--config=" + cfgFile}
	appRuleLine := lineOf(t, cfgFile, "seriesQuery:", "(container|kube|node|prometheus|go|process)")
	cpuRuleLine := lineOf(t, cfgFile, "resourceRules:", "cpu:", "containerQuery:")
	rps := "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-0/pods/*/http_requests_per_second?labelSelector=app%3Dapp-0"

	// checkServedRPS checks the explanation of rps against the fixture.
	checkServedRPS := func(t *testing.T, tr explain.Trace) {
		t.Helper()
		if !tr.Served || tr.Rule == nil || tr.Rule.File != cfgFile || tr.Rule.Line != appRuleLine || tr.Rule.Series != "http_requests_total" {
			t.Fatalf("served %v, rule %+v; want rule %s:%d", tr.Served, tr.Rule, cfgFile, appRuleLine)
		}
		pods := e.podsOf("ns-0", "app-0")
		if tr.Objects == nil || len(tr.Objects.Names) != len(pods) || len(tr.Queries) != 1 || len(tr.Values) != len(pods) {
			t.Fatalf("objects %+v, queries %+v, values %+v; want %d pods", tr.Objects, tr.Queries, tr.Values, len(pods))
		}
		if q := tr.Queries[0]; q.PromQL != `sum(rate(http_requests_total{namespace="ns-0",pod!=""}[2m])) by (pod)` || q.Lookback != "2m" ||
			q.Backend != "default" || q.URL != e.prom.URL || len(q.Samples) != len(pods) {
			t.Errorf("query = %+v", q)
		}
		for _, s := range tr.Queries[0].Samples {
			want, _ := e.spec.PodRequestRate("ns-0", s.Labels["pod"])
			nearText(t, "sample of "+s.Labels["pod"], s.Value, want)
		}
		for _, v := range tr.Values {
			want, ok := e.spec.PodRequestRate("ns-0", strings.TrimPrefix(v.Object, "ns-0/"))
			if !ok {
				t.Errorf("served %s, which is no fixture pod", v.Object)
			}
			nearText(t, "value of "+v.Object, v.Value, want)
		}
	}

	t.Run("a served custom metric through the adapter", func(t *testing.T) {
		checkServedRPS(t, explainJSON(t, 0, kubeconfig, rps)[0])
		out, _, code := explainRun(t, kubeconfig, rps)
		for _, want := range []string{fmt.Sprintf(" 1. Rule: custom/3 (%s:%d) serves metric \"http_requests_per_second\" for pods", cfgFile, appRuleLine),
			" 2. Objects: the label selector \"app=app-0\" selects", "Result: served"} {
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("exit %d; text lacks %q:\n%s", code, want, out)
			}
		}
		t.Logf("$ promadapter explain %s '%s'\n%s", kubeconfig, rps, out)
	})

	checkTopPods := func(t *testing.T, tr explain.Trace) {
		t.Helper()
		if !tr.Served || len(tr.Queries) != 2 {
			t.Fatalf("served %v, queries %+v", tr.Served, tr.Queries)
		}
		for _, q := range tr.Queries {
			if want := fmt.Sprintf("resourceRules.%s.containerQuery (%s:", q.What, cfgFile); !strings.HasPrefix(q.Rule, want) {
				t.Errorf("query rule %q, want %s…", q.Rule, want)
			}
			if want := fmt.Sprintf("resourceRules.cpu.containerQuery (%s:%d)", cfgFile, cpuRuleLine); q.What == "cpu" && q.Rule != want {
				t.Errorf("cpu query rule %q, want %q", q.Rule, want)
			}
		}
		served := map[string]explain.Value{}
		for _, v := range tr.Values {
			served[v.Object] = v
		}
		for _, p := range e.podsOf("ns-0", "") {
			v, ok := served["ns-0/"+p.Name]
			if !ok {
				t.Errorf("pod %s is not served", p.Name)
				continue
			}
			var withSeries []fixture.Container
			for _, c := range p.Containers {
				if c.HasSeries {
					withSeries = append(withSeries, c)
				}
			}
			if len(v.Containers) != len(withSeries) {
				t.Errorf("pod %s: containers %+v, want %d", p.Name, v.Containers, len(withSeries))
				continue
			}
			for i, c := range withSeries {
				nearText(t, p.Name+"/"+c.Name+" cpu", v.Containers[i].CPU, c.CPUCores)
				nearText(t, p.Name+"/"+c.Name+" memory", v.Containers[i].Memory, c.MemoryBytes)
			}
		}
	}
	t.Run("kubectl top pods -n ns-0 through the adapter", func(t *testing.T) {
		checkTopPods(t, explainJSON(t, 0, kubeconfig, "kubectl", "top", "pods", "-n", "ns-0")[0])
	})

	t.Run("an HPA by name, each metric as the HPA controller asks it", func(t *testing.T) {
		fifty := int32(50)
		one, ten := resource.MustParse("1"), resource.MustParse("10")
		hpa := &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: "ns-0", Name: "app-0"},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{MaxReplicas: 4,
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "app-0"},
				Metrics: []autoscalingv2.MetricSpec{
					{Type: "Resource", Resource: &autoscalingv2.ResourceMetricSource{Name: "cpu", Target: autoscalingv2.MetricTarget{Type: "Utilization", AverageUtilization: &fifty}}},
					{Type: "Pods", Pods: &autoscalingv2.PodsMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "http_requests_per_second"},
						Target: autoscalingv2.MetricTarget{Type: "AverageValue", AverageValue: &one}}},
					{Type: "Object", Object: &autoscalingv2.ObjectMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "http_requests_5xx_ratio"},
						DescribedObject: autoscalingv2.CrossVersionObjectReference{APIVersion: "v1", Kind: "Service", Name: "app-0"},
						Target:          autoscalingv2.MetricTarget{Type: "Value", Value: &one}}},
					{Type: "External", External: &autoscalingv2.ExternalMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "queue_depth",
						Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"queue": fixture.QueueOrders}}},
						Target: autoscalingv2.MetricTarget{Type: "AverageValue", AverageValue: &ten}}},
				}}}
		if _, err := e.cluster.Client.AutoscalingV2().HorizontalPodAutoscalers("ns-0").Create(context.Background(), hpa, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		traces := explainJSON(t, 0, kubeconfig, "-n", "ns-0", "hpa/app-0")
		if len(traces) != 4 {
			t.Fatalf("%d explanations, want one per metric (4)", len(traces))
		}
		for _, tr := range traces {
			if !tr.Served || !strings.HasPrefix(tr.Request.Title, "HPA ns-0/app-0, metric ") {
				t.Errorf("%s: served %v, reason %+v", tr.Request.Title, tr.Served, tr.Reason)
			}
		}
		if p := traces[0].Request.Path; p != "/apis/metrics.k8s.io/v1beta1/namespaces/ns-0/pods?labelSelector=app%3Dapp-0" {
			t.Errorf("Resource metric path %s", p)
		}
		for _, v := range traces[0].Values {
			for _, c := range v.Containers {
				want, _ := e.spec.ContainerCPUCores("ns-0", strings.TrimPrefix(v.Object, "ns-0/"), c.Name)
				nearText(t, v.Object+" cpu", c.CPU, want)
			}
		}
		checkServedRPS(t, traces[1])
		ratio, _ := e.spec.Service5xxRatio("ns-0", "app-0")
		depth, _ := e.spec.QueueDepth("ns-0", fixture.QueueOrders)
		if len(traces[2].Values) != 1 || len(traces[3].Values) != 1 {
			t.Fatalf("object values %+v, external values %+v", traces[2].Values, traces[3].Values)
		}
		nearText(t, "Service app-0 http_requests_5xx_ratio", traces[2].Values[0].Value, ratio)
		nearText(t, "queue_depth{queue=orders}", traces[3].Values[0].Value, depth)
	})

	missing := []struct {
		name, path, code string
		text             []string
	}{
		{"a name no rule serves", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-0/pods/*/http_request_per_second?labelSelector=app%3Dapp-0",
			explain.ReasonNoRule, []string{`no rule serves metric "http_request_per_second" for pods`, "close names served: http_requests_per_second"}},
		{"cAdvisor-like series without the pod label", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-0/pods/*/container_accelerator_duty_cycle?labelSelector=app%3Dapp-0",
			explain.ReasonNoLabel, []string{`is served for namespaces, not for pods`, fmt.Sprintf("rule custom/5 (%s:", cfgFile), `maps pods to label "pod"`, `series container_accelerator_duty_cycle carry no "pod" label`}},
		{"pods selected that have no series", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-0/pods/*/http_requests_per_second?labelSelector=app%3Dghost",
			explain.ReasonNoSeries, []string{"ns-0/ghost-0, ns-0/ghost-1 get no value", `the answer holds no sample with pod="ghost-0" and namespace="ns-0"`, "the last 2m of samples"}},
	}
	for _, mode := range []struct {
		name string
		args []string
	}{{"through the adapter", []string{kubeconfig}}, {"in-process", local}} {
		for _, m := range missing {
			t.Run(m.name+", "+mode.name, func(t *testing.T) {
				tr := explainJSON(t, 1, append(mode.args, m.path)...)[0]
				if tr.Served || tr.Reason == nil || tr.Reason.Code != m.code {
					t.Fatalf("served %v, reason %+v; want %s", tr.Served, tr.Reason, m.code)
				}
				for _, s := range m.text {
					if !strings.Contains(tr.Reason.Text, s) {
						t.Errorf("reason %q lacks %q", tr.Reason.Text, s)
					}
				}
				if mode.name == "through the adapter" {
					out, _, code := explainRun(t, append(mode.args, m.path)...)
					if want := fmt.Sprintf("Result: nothing served (HTTP 404, %s): %s\n", m.code, tr.Reason.Text); code != 1 || !strings.Contains(out, want) {
						t.Errorf("exit %d; text lacks %q:\n%s", code, want, out)
					}
					t.Logf("$ promadapter explain %s '%s'\n%s", strings.Join(mode.args, " "), m.path, out)
				}
			})
		}
	}

	t.Run("in-process: the same served metric, kubectl top pods and nodes", func(t *testing.T) {
		checkServedRPS(t, explainJSON(t, 0, append(local, rps)...)[0])
		checkTopPods(t, explainJSON(t, 0, append(local, "kubectl top pods -n ns-0")...)[0])
		nodes := explainJSON(t, 0, append(local, "kubectl", "top", "nodes")...)[0]
		for _, n := range e.spec.NodeList() {
			cpu, _ := e.spec.NodeCPUCores(n.Name)
			memory, _ := e.spec.NodeMemoryBytes(n.Name)
			found := false
			for _, v := range nodes.Values {
				if v.Object == n.Name {
					found = true
					nearText(t, n.Name+" cpu", v.CPU, cpu)
					nearText(t, n.Name+" memory", v.Memory, memory)
				}
			}
			if !found {
				t.Errorf("node %s is not served: %+v", n.Name, nodes.LeftOut)
			}
		}
	})

	t.Run("in-process: Prometheus unreachable, with the backend's name and URL", func(t *testing.T) {
		closed := closedLoopbackURL(t)
		tr := explainJSON(t, 1, kubeconfig, "--prometheus-url="+closed, "--config="+cfgFile, rps)[0]
		if tr.Reason == nil || tr.Reason.Code != explain.ReasonUnreachable || !strings.Contains(tr.Reason.Text, `backend "default" at `+closed) {
			t.Fatalf("reason %+v; want %s naming %s", tr.Reason, explain.ReasonUnreachable, closed)
		}
	})

	t.Run("authorization: only a caller allowed to read the metric gets its explanation", func(t *testing.T) {
		role := `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: explain-viewer}
rules: [{apiGroups: [custom.metrics.k8s.io], resources: [pods/http_requests_per_second], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: explain-viewer}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: explain-viewer}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: explain-viewer}]
`
		if _, err := e.cluster.KubectlWithInput(context.Background(), []byte(role), "apply", "-f", "-"); err != nil {
			t.Fatal(err)
		}
		asked, _ := explain.WithParameter(rps)
		out, err := e.cluster.Kubectl(context.Background(), "get", "--raw", asked, "--as=explain-viewer")
		var tr explain.Trace
		if err != nil || json.Unmarshal([]byte(out), &tr) != nil || !tr.Served || tr.Rule == nil {
			t.Fatalf("kubectl get --raw %s --as=explain-viewer: %v\n%s", asked, err, out)
		}
		if out, err := e.cluster.Kubectl(context.Background(), "get", "--raw", asked, "--as=explain-nobody"); err == nil || !strings.Contains(err.Error(), "Forbidden") {
			t.Fatalf("an unauthorized user got %v:\n%s", err, out)
		}
		// The CLI with a kubeconfig of the unauthorized user.
		kc, err := clientcmd.LoadFromFile(e.cluster.Kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		for _, ai := range kc.AuthInfos {
			ai.Impersonate = "explain-nobody"
		}
		nobody := filepath.Join(dir, "nobody.kubeconfig")
		if err := clientcmd.WriteToFile(*kc, nobody); err != nil {
			t.Fatal(err)
		}
		if out, errOut, code := explainRun(t, "--kubeconfig="+nobody, rps); code == 0 || !strings.Contains(errOut, "forbidden") || strings.Contains(out, "Rule:") {
			t.Errorf("exit %d, stdout %q, stderr %q; want a refusal", code, out, errOut)
		}
		// Straight to the adapter, past kube-apiserver, without credentials: the adapter's own
		// authorization refuses it before the explanation filter.
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d%s", e.adapter.Port, asked))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusUnauthorized || strings.Contains(string(body), `"request"`) {
			t.Errorf("an anonymous request to the adapter got %d:\n%s", resp.StatusCode, body)
		}
	})

	// Last: it stops Prometheus. The metric stays discovered (--metrics-max-age), so the query
	// itself fails; this request was not made before, so no cached answer serves it.
	t.Run("through the adapter: Prometheus stopped", func(t *testing.T) {
		e.prom.Stop()
		path := "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-2/services/app-1/http_requests_5xx_ratio"
		out, _, code := explainRun(t, kubeconfig, path)
		if code != 1 || !strings.Contains(out, "Result: nothing served (HTTP 503, backend-unreachable): backend \"default\" at "+e.prom.URL) {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		t.Logf("$ promadapter explain %s %s\n%s", kubeconfig, path, out)
	})
}
