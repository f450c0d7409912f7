package explain

import (
	"context"
	"reflect"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		args []string
		kind whatKind
		hpa  string
		err  bool
	}{
		{[]string{"/apis/custom.metrics.k8s.io/v1beta2/namespaces/a/pods/*/m"}, askPath, "", false},
		{[]string{"kubectl", "top", "pods", "-n", "shop"}, askKubectl, "", false},
		{[]string{"kubectl top nodes"}, askKubectl, "", false},
		{[]string{"top", "nodes"}, askKubectl, "", false},
		{[]string{"hpa/web"}, askHPA, "web", false},
		{[]string{"horizontalpodautoscaler.autoscaling/web"}, askHPA, "web", false},
		{[]string{"hpa", "web"}, askHPA, "web", false},
		{[]string{"deployment/web"}, 0, "", true},
		{[]string{"hpa/web", "extra"}, 0, "", true},
		{nil, 0, "", true},
	} {
		kind, hpa, err := classify(tc.args)
		if (err != nil) != tc.err || kind != tc.kind || hpa != tc.hpa {
			t.Errorf("classify(%q) = %v, %q, %v; want %v, %q, error %v", tc.args, kind, hpa, err, tc.kind, tc.hpa, tc.err)
		}
	}
}

func TestKubectlTopAsksWhatKubectlAsks(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
		err  string
	}{
		{[]string{"kubectl", "top", "pods", "-n", "shop"}, "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods", ""},
		{[]string{"kubectl top pod web-1 --containers"}, "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web-1", ""},
		{[]string{"kubectl", "top", "po", "-A", "-l", "app=web", "--sort-by=cpu"}, "/apis/metrics.k8s.io/v1beta1/pods?labelSelector=app%3Dweb", ""},
		{[]string{"kubectl", "top", "nodes"}, "/apis/metrics.k8s.io/v1beta1/nodes", ""},
		{[]string{"top", "node", "node-1", "--no-headers"}, "/apis/metrics.k8s.io/v1beta1/nodes/node-1", ""},
		{[]string{"kubectl", "top", "pods", "--namespace=a b"}, "/apis/metrics.k8s.io/v1beta1/namespaces/a%20b/pods", ""},
		{[]string{"kubectl", "top", "services"}, "", "only pods and nodes"},
		{[]string{"kubectl", "top", "pods", "-A", "web-1"}, "", "needs a namespace"},
		{[]string{"kubectl", "top", "pods", "-l", "app in (a"}, "", "kubectl top -l"},
		{[]string{`kubectl top pods -n shop -l 'app in (a,b)'`}, "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods?labelSelector=app+in+%28a%2Cb%29", ""},
		{[]string{`kubectl top pods -l "app=web`}, "", "a quote is not closed"},
		{[]string{"kubectl", "top", "pods", "--watch"}, "", "unknown flag"},
		{[]string{"kubectl", "get", "pods"}, "", "not a kubectl top command"},
	} {
		got, err := kubectlTop(tc.args, "default")
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("kubectlTop(%q) = %+v, %v; want an error with %q", tc.args, got, err, tc.err)
		case tc.err == "" && (err != nil || got.Path != tc.want):
			t.Errorf("kubectlTop(%q) = %q, %v; want %q", tc.args, got.Path, err, tc.want)
		}
	}
}

func TestHPATargetsAreTheControllersRequests(t *testing.T) {
	fifty := int32(50)
	one, ten := resource.MustParse("1"), resource.MustParse("10")
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			Metrics: []autoscalingv2.MetricSpec{
				{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{Name: "cpu",
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &fifty}}},
				{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
					Metric: autoscalingv2.MetricIdentifier{Name: "http_requests_per_second", Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"code": "500"}}},
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &one}}},
				{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{
					DescribedObject: autoscalingv2.CrossVersionObjectReference{APIVersion: "v1", Kind: "Service", Name: "web"},
					Metric:          autoscalingv2.MetricIdentifier{Name: "http_requests_5xx_ratio"},
					Target:          autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: &one}}},
				{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
					Metric: autoscalingv2.MetricIdentifier{Name: "queue_depth", Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"queue": "orders"}}},
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &ten}}},
			},
		},
	}
	client := fake.NewSimpleClientset(hpa)
	dyn := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
	dyn.PrependReactor("get", "deployments", func(action clienttesting.Action) (bool, runtime.Object, error) {
		if action.GetSubresource() != "scale" || action.GetNamespace() != "shop" {
			return false, nil, nil
		}
		return true, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": map[string]any{"name": "web", "namespace": "shop"},
			"status": map[string]any{"replicas": int64(2), "selector": "tier=front,app=web"},
		}}, nil
	})
	mapper := apimeta.NewDefaultRESTMapper(nil)
	mapper.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, apimeta.RESTScopeNamespace)
	mapper.Add(schema.GroupVersionKind{Version: "v1", Kind: "Service"}, apimeta.RESTScopeNamespace)

	got, err := hpaTargets(context.Background(), client, dyn, mapper, "shop", "web")
	if err != nil {
		t.Fatal(err)
	}
	want := []Target{
		{Title: "HPA shop/web, metric 1 of 4: Resource cpu (target average utilization 50%)",
			Path: "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods?labelSelector=app%3Dweb%2Ctier%3Dfront"},
		{Title: "HPA shop/web, metric 2 of 4: Pods http_requests_per_second (target average value 1)",
			Path: "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/http_requests_per_second?labelSelector=app%3Dweb%2Ctier%3Dfront&metricLabelSelector=code%3D500"},
		{Title: "HPA shop/web, metric 3 of 4: Object Service web, metric http_requests_5xx_ratio (target value 1)",
			Path: "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/services/web/http_requests_5xx_ratio"},
		{Title: "HPA shop/web, metric 4 of 4: External queue_depth (target average value 10)",
			Path: "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/queue_depth?labelSelector=queue%3Dorders"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("targets =\n%+v\nwant\n%+v", got, want)
	}

	if _, err := hpaTargets(context.Background(), client, dyn, mapper, "shop", "nope"); err == nil || !strings.Contains(err.Error(), "reading HorizontalPodAutoscaler shop/nope") {
		t.Errorf("a missing HPA: %v", err)
	}
}
