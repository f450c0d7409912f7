package doctor

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

const promadapterImage = "ghcr.io/promadapter/promadapter:v0.1.0"

func TestParseArgs(t *testing.T) {
	got := parseArgs([]string{"--prometheus-url=http://p:9090", "--enable-resource-metrics=false", "--v", "4", "--cert-dir", "--config=/a", "--config=/b"})
	want := map[string]string{"prometheus-url": "http://p:9090", "enable-resource-metrics": "false", "v": "4", "cert-dir": "true", "config": "/b"}
	if len(got) != len(want) {
		t.Errorf("parseArgs = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("parseArgs[%q] = %q, want %q", k, got[k], v)
		}
	}
}

func TestClassifyOwner(t *testing.T) {
	for _, c := range []struct {
		name string
		ref  nsName
		dep  *deploymentArgs
		want string
	}{
		{"the image names promadapter, whatever the namespace", nsName{"kube-system", "metrics-api"}, &deploymentArgs{"metrics-api", promadapterImage}, ownerPromadapter},
		{"metrics-server by its image", nsName{"kube-system", "metrics-api"}, &deploymentArgs{"metrics-api", "registry.k8s.io/metrics-server/metrics-server:v0.7.2"}, ownerMetricsServer},
		{"KEDA by its Service's name", nsName{"keda", "keda-operator-metrics-apiserver"}, nil, ownerKEDA},
		{"prometheus-adapter by its image", nsName{"monitoring", "adapter"}, &deploymentArgs{"adapter", "registry.k8s.io/prometheus-adapter/prometheus-adapter:v0.12.0"}, ownerPrometheusAdapter},
		{"the default Service without a Deployment is promadapter's", defaultAdapter, nil, ownerPromadapter},
		{"a Service of unknown software is another server", nsName{"custom", "my-adapter"}, &deploymentArgs{"my-adapter", "example.com/adapter:1"}, ownerOther},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := classifyOwner(c.ref, nil, c.dep.build(c.ref.Namespace)); got != c.want {
				t.Errorf("classifyOwner(%s) = %q, want %q", c.ref, got, c.want)
			}
		})
	}
}

type deploymentArgs struct{ name, image string }

func (d *deploymentArgs) build(namespace string) *appsv1.Deployment {
	if d == nil {
		return nil
	}
	return deployment(namespace, d.name, d.image, "default")
}

func TestDiscoverFindsTheAdapterAndItsServiceAccount(t *testing.T) {
	apis := allAPIServices()
	apis[1] = apiServiceObject("v1beta1.custom.metrics.k8s.io", "promadapter", "promadapter-gone", 443, "False", "ServiceNotFound", `service/promadapter-gone in "promadapter" is not present`)
	d := newTestDoctor([]runtime.Object{service("promadapter", "promadapter"),
		deployment("promadapter", "promadapter", promadapterImage, "adapter-sa", "--prometheus-url=http://prometheus.monitoring.svc:9090")}, apis...)
	in, err := d.discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if in.adapter.ref != defaultAdapter {
		t.Errorf("the adapter is %s, want the Service the APIServices name that exists, %s", in.adapter.ref, defaultAdapter)
	}
	if in.serviceAccount != (nsName{"promadapter", "adapter-sa"}) || in.saFrom != "Deployment promadapter/promadapter" {
		t.Errorf("ServiceAccount %s from %s, want promadapter/adapter-sa from the Deployment", in.serviceAccount, in.saFrom)
	}
	if v, _ := in.adapter.flag("prometheus-url"); v != "http://prometheus.monitoring.svc:9090" {
		t.Errorf("the adapter's --prometheus-url = %q", v)
	}
	c := d.checkAPIService(context.Background(), in, adapterAPIs[1])
	if c.Status != Fail || !strings.Contains(c.Summary, "points at Service promadapter/promadapter-gone, which does not exist") {
		t.Errorf("check = %+v, want a failure naming the missing Service", c)
	}
	mustContain(t, "fix", c.Fix, `kubectl patch apiservice v1beta1.custom.metrics.k8s.io --type=merge -p '{"spec":{"service":{"namespace":"promadapter","name":"promadapter"}}}'`)
}

func TestAPIServiceChecks(t *testing.T) {
	metricsServerDeployment := deployment("kube-system", "metrics-server", "registry.k8s.io/metrics-server/metrics-server:v0.7.2", "metrics-server")
	ready, notReady := true, false
	endpoints := func(ready *bool) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "promadapter", Name: "promadapter-abc",
			Labels: map[string]string{discoveryv1.LabelServiceName: "promadapter"}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.7"}, Conditions: discoveryv1.EndpointConditions{Ready: ready}}}}
	}
	crashing := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "promadapter", Name: "promadapter-1", Labels: map[string]string{"app.kubernetes.io/name": "promadapter"}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}}}
	for _, c := range []struct {
		name    string
		api     *unstructured.Unstructured // nil: not registered
		objects []runtime.Object
		args    []string
		status  Status
		wants   []string // in summary, evidence or fix
	}{
		{"a missing APIService fails with the file that registers it", nil, nil, nil, Fail,
			[]string{"not registered", "kubectl apply -f deploy/manifests/apiservice-metrics.yaml"}},
		{"a missing APIService passes when the adapter turns the group off", nil, nil, []string{"--enable-resource-metrics=false"}, Pass,
			[]string{"not registered, as the adapter runs with --enable-resource-metrics=false"}},
		{"metrics-server's APIService fails with the switch", apiServiceObject("v1beta1.metrics.k8s.io", "kube-system", "metrics-server", 443, "True", "Passed", ""),
			[]runtime.Object{service("kube-system", "metrics-server"), metricsServerDeployment}, nil, Fail,
			[]string{"served by metrics-server (Service kube-system/metrics-server), not by promadapter", "registry.k8s.io/metrics-server/metrics-server:v0.7.2",
				"kubectl replace -f deploy/manifests/apiservice-metrics.yaml", "metrics-server-rollback.json"}},
		{"metrics-server's APIService passes when the adapter leaves the group to it", apiServiceObject("v1beta1.metrics.k8s.io", "kube-system", "metrics-server", 443, "True", "Passed", ""),
			[]runtime.Object{service("kube-system", "metrics-server"), metricsServerDeployment}, []string{"--enable-resource-metrics=false"}, Pass,
			[]string{"left to metrics-server"}},
		{"a Service without ready endpoints fails with its pods' states", apiServiceObject("v1beta1.metrics.k8s.io", "promadapter", "promadapter", 443, "False", "MissingEndpoints", "endpoints for service/promadapter in \"promadapter\" have no addresses"),
			[]runtime.Object{endpoints(&notReady), crashing}, nil, Fail,
			[]string{"no ready endpoint", "0 ready of 1 endpoints", "promadapter-1 Running CrashLoopBackOff", "kubectl -n promadapter logs deploy/promadapter"}},
		{"a discovery check timing out names --enable-aggregator-routing", apiServiceObject("v1beta1.metrics.k8s.io", "promadapter", "promadapter", 443, "False", "FailedDiscoveryCheck",
			`failing or missing response from https://10.0.0.7:6443/apis/metrics.k8s.io/v1beta1: Get "https://10.0.0.7:6443/apis/metrics.k8s.io/v1beta1": context deadline exceeded`),
			[]runtime.Object{endpoints(&ready)}, nil, Fail,
			[]string{"not Available (FailedDiscoveryCheck)", "context deadline exceeded", "--enable-aggregator-routing=true"}},
		{"an APIService naming a port the Service lacks fails", apiServiceObject("v1beta1.metrics.k8s.io", "promadapter", "promadapter", 8443, "True", "Passed", ""),
			[]runtime.Object{endpoints(&ready)}, nil, Fail, []string{"names port 8443, which Service promadapter/promadapter does not have"}},
		{"an Available APIService with ready endpoints passes", apiServiceObject("v1beta1.metrics.k8s.io", "promadapter", "promadapter", 443, "True", "Passed", ""),
			[]runtime.Object{endpoints(&ready)}, nil, Pass, []string{"Available, served by promadapter", "1 ready of 1 endpoints"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			objects := append([]runtime.Object{service("promadapter", "promadapter"), deployment("promadapter", "promadapter", promadapterImage, "promadapter", c.args...)}, c.objects...)
			var apis []*unstructured.Unstructured
			if c.api != nil {
				apis = append(apis, c.api)
			}
			d := newTestDoctor(objects, apis...)
			in, err := d.discover(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got := d.checkAPIService(context.Background(), in, adapterAPIs[0])
			if got.Status != c.status {
				t.Errorf("status %s, want %s: %+v", got.Status, c.status, got)
			}
			mustContain(t, "the finding", got.Summary+"\n"+strings.Join(got.Evidence, "\n")+"\n"+got.Fix, c.wants...)
		})
	}
}
