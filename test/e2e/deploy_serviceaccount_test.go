//go:build e2e

// TestDeploy's step that runs the adapter with nothing but the ServiceAccount's rights.

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

func (s *deploySuite) testAdapterRunsAsServiceAccount(t *testing.T) {
	adapterBin, err := testbed.AdapterBin()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spec := fixture.Spec{}
	if err := spec.ApplyObjects(ctx, s.cluster.Client); err != nil {
		t.Fatal(err)
	}
	var om bytes.Buffer
	now := time.Now()
	if err := spec.WriteOpenMetrics(&om, now.Add(-30*time.Minute), now.Add(time.Hour), 15*time.Second); err != nil {
		t.Fatal(err)
	}
	prom, err := testbed.StartPrometheus(ctx, testbed.PrometheusOptions{Bins: s.bins, Major: "3", Dir: filepath.Join(s.dir, "prometheus"), OpenMetrics: om.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	prom.Cleanup(t)

	kubeconfig := s.serviceAccountKubeconfig(t)

	// The aggregator cannot reach a pod here, so the adapter runs on loopback behind an ExternalName
	// Service (testbed.RegisterAdapter), which replaces deploy's Service; the APIServices are
	// re-pointed at its port.
	s.mustKubectl(t, nil, "delete", "service", "promadapter", "--namespace=promadapter")
	adapter, err := s.cluster.StartAdapter(ctx, testbed.AdapterOptions{
		Bin: adapterBin, PrometheusURL: prom.URL,
		// Later flags win: these replace the admin kubeconfig StartAdapter passes.
		ExtraArgs: []string{"--lister-kubeconfig=" + kubeconfig, "--authentication-kubeconfig=" + kubeconfig, "--authorization-kubeconfig=" + kubeconfig},
	})
	if adapter != nil {
		t.Cleanup(func() {
			if t.Failed() {
				if log, err := os.ReadFile(adapter.LogPath); err == nil {
					t.Logf("adapter log (%s), last lines:\n%s", adapter.LogPath, tail(string(log), 40))
				}
			}
			adapter.Stop()
		})
	}
	if err != nil {
		t.Fatal(err)
	}

	raw := func(t *testing.T, path string, v any, impersonate ...string) {
		t.Helper()
		args := []string{"get", "--raw", path}
		for _, user := range impersonate {
			args = append(args, "--as="+user)
		}
		out, _ := s.mustKubectl(t, nil, args...)
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("kubectl get --raw %s: decoding %q: %v", path, out, err)
		}
	}

	t.Run("metrics.k8s.io lists every pod of a namespace that has usage (pod informer)", func(t *testing.T) {
		var list namedList
		raw(t, "/apis/metrics.k8s.io/v1beta1/namespaces/ns-0/pods", &list)
		var want []string
		for _, p := range spec.PodList() {
			if p.Namespace == "ns-0" && p.Listed() {
				want = append(want, p.Name)
			}
		}
		sort.Strings(want)
		if got := list.names(); !slices.Equal(got, want) {
			t.Errorf("pod metrics for %v, want %v", got, want)
		}
	})
	t.Run("metrics.k8s.io lists every node (node informer)", func(t *testing.T) {
		var list namedList
		raw(t, "/apis/metrics.k8s.io/v1beta1/nodes", &list)
		var want []string
		for _, n := range spec.NodeList() {
			want = append(want, n.Name)
		}
		sort.Strings(want)
		if got := list.names(); !slices.Equal(got, want) {
			t.Errorf("node metrics for %v, want %v", got, want)
		}
	})
	t.Run("custom.metrics.k8s.io answers the HPA controller for pods by label selector", func(t *testing.T) {
		var list metricValueList
		raw(t, "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-0/pods/*/http_requests_per_second?labelSelector="+url.QueryEscape("app=app-0"), &list, hpaIdentity)
		var got, want []string
		for _, it := range list.Items {
			got = append(got, it.DescribedObject.Name)
		}
		for _, p := range spec.PodList() {
			if p.Namespace == "ns-0" && p.App == "app-0" {
				want = append(want, p.Name)
			}
		}
		sort.Strings(got)
		sort.Strings(want)
		if len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("values for pods %v, want %v", got, want)
		}
	})
	t.Run("custom.metrics.k8s.io lists Services by selector (metadata informer on services)", func(t *testing.T) {
		var list metricValueList
		raw(t, "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-0/services/*/http_requests_per_second", &list)
		var got, want []string
		for _, it := range list.Items {
			got = append(got, it.DescribedObject.Name)
		}
		for _, svc := range spec.Services() {
			if svc.Namespace == "ns-0" {
				want = append(want, svc.Name)
			}
		}
		sort.Strings(got)
		sort.Strings(want)
		if len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("values for services %v, want %v", got, want)
		}
	})
	t.Run("external.metrics.k8s.io answers the HPA controller", func(t *testing.T) {
		var list metricValueList
		raw(t, "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns-0/kube_deployment_spec_replicas", &list, hpaIdentity)
		want := 0
		for _, d := range spec.Deployments() {
			if d.Namespace == "ns-0" {
				want++
			}
		}
		if want == 0 || len(list.Items) != want {
			t.Errorf("%d values of kube_deployment_spec_replicas, want one per Deployment in ns-0 (%d), the rule being namespaced: %+v", len(list.Items), want, list.Items)
		}
	})
}

// serviceAccountKubeconfig writes a kubeconfig holding nothing but a token of the ServiceAccount
// deploy/ created: the credentials the adapter's pod would have.
func (s *deploySuite) serviceAccountKubeconfig(t *testing.T) string {
	t.Helper()
	token, _ := s.mustKubectl(t, nil, "create", "token", "promadapter", "--namespace=promadapter", "--duration=1h")
	kubeconfig := filepath.Join(s.dir, "promadapter-serviceaccount.kubeconfig")
	caPEM, err := os.ReadFile(s.cluster.Certs.CACert)
	if err != nil {
		t.Fatal(err)
	}
	config := clientcmdapi.NewConfig()
	config.Clusters["testbed"] = &clientcmdapi.Cluster{Server: s.cluster.URL, CertificateAuthorityData: caPEM}
	config.AuthInfos["promadapter"] = &clientcmdapi.AuthInfo{Token: strings.TrimSpace(token)}
	config.Contexts["promadapter"] = &clientcmdapi.Context{Cluster: "testbed", AuthInfo: "promadapter"}
	config.CurrentContext = "promadapter"
	if err := clientcmd.WriteToFile(*config, kubeconfig); err != nil {
		t.Fatal(err)
	}
	return kubeconfig
}

// namedList is any list answer reduced to its items' names (PodMetricsList, NodeMetricsList).
type namedList struct {
	Items []struct {
		Metadata struct{ Name string } `json:"metadata"`
	} `json:"items"`
}

// names returns the items' names, sorted.
func (l namedList) names() []string {
	var names []string
	for _, it := range l.Items {
		names = append(names, it.Metadata.Name)
	}
	sort.Strings(names)
	return names
}
