package doctor

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/promadapter/promadapter/cmd/promadapter/app/options"
)

// testNow is the fixed clock of the unit tests.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeRaw answers requests through "kube-apiserver" from a table of path -> answer.
type fakeRaw map[string]struct {
	status int
	body   string
}

func (f fakeRaw) Get(_ context.Context, path string) (int, []byte, error) {
	a, ok := f[path]
	if !ok {
		return 404, []byte("404 page not found"), errors.New("the server could not find the requested resource")
	}
	var err error
	if a.status >= 300 {
		err = errors.New("the server is currently unable to handle the request")
	}
	return a.status, []byte(a.body), err
}

// newTestDoctor is a doctor over fake clients holding objects and APIServices.
func newTestDoctor(objects []runtime.Object, apiServices ...*unstructured.Unstructured) *doctor {
	var dynObjects []runtime.Object
	for _, a := range apiServices {
		dynObjects = append(dynObjects, a)
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{apiServiceGVR: "APIServiceList"}, dynObjects...)
	return &doctor{
		kube: fake.NewClientset(objects...), dynamic: dyn, raw: fakeRaw{}, now: func() time.Time { return testNow },
		opts: options.NewTool(), cluster: "https://127.0.0.1:6443",
		dial: func(context.Context, string, string) ([]*x509.Certificate, error) {
			return nil, errors.New("no TLS server in unit tests")
		},
	}
}

// apiServiceObject is an APIService for name (e.g. "v1beta1.metrics.k8s.io") naming Service
// namespace/service:port, with an Available condition of status, reason and message.
func apiServiceObject(name, namespace, service string, port int64, status, reason, message string) *unstructured.Unstructured {
	version, group, _ := strings.Cut(name, ".")
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": name},
		"spec": map[string]any{"group": group, "version": version, "insecureSkipTLSVerify": true,
			"service": map[string]any{"namespace": namespace, "name": service, "port": port}},
		"status": map[string]any{"conditions": []any{map[string]any{"type": "Available", "status": status, "reason": reason, "message": message}}},
	}}
}

// withCABundle sets an APIService's caBundle and turns insecureSkipTLSVerify off.
func withCABundle(a *unstructured.Unstructured, pemData []byte) *unstructured.Unstructured {
	_ = unstructured.SetNestedField(a.Object, base64.StdEncoding.EncodeToString(pemData), "spec", "caBundle")
	_ = unstructured.SetNestedField(a.Object, false, "spec", "insecureSkipTLSVerify")
	return a
}

// allAPIServices are the four APIServices naming promadapter/promadapter:443, Available.
func allAPIServices() []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, api := range adapterAPIs {
		out = append(out, apiServiceObject(api.name, "promadapter", "promadapter", 443, "True", "Passed", "all checks passed"))
	}
	return out
}

// service is a ClusterIP Service selecting app.kubernetes.io/name=name on port 443.
func service(namespace, name string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{"app.kubernetes.io/name": name}},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app.kubernetes.io/name": name}, Ports: []corev1.ServicePort{{Name: "https", Port: 443}}}}
}

// deployment runs image with args as ServiceAccount sa, its pods labelled app.kubernetes.io/name=name.
func deployment(namespace, name, image, sa string, args ...string) *appsv1.Deployment {
	labels := map[string]string{"app.kubernetes.io/name": name}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec:       corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{Name: name, Image: image, Args: args}}},
		}}}
}

// findCheck returns the check named name, failing the test when there is none.
func findCheck(t *testing.T, checks []Check, name string) Check {
	t.Helper()
	for _, c := range checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q among %d checks", name, len(checks))
	return Check{}
}

// mustContain fails the test unless text holds every want.
func mustContain(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s = %q\nlacks %q", what, text, w)
		}
	}
}
