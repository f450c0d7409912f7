package testbed

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	corev1apply "k8s.io/client-go/applyconfigurations/core/v1"
)

// Where RegisterAdapter points the APIServices: an ExternalName Service AdapterNamespace/
// AdapterServiceName that resolves to localhost.
const (
	AdapterNamespace   = "promadapter"
	AdapterServiceName = "promadapter"
)

// fieldManager owns the fields the test bed applies with server-side apply.
const fieldManager = "testbed"

// defaultAPIServiceTimeout bounds WaitAPIServicesAvailable when ctx has no earlier deadline.
const defaultAPIServiceTimeout = 60 * time.Second

// APIServiceGroup is one group version the aggregator sends to the adapter.
type APIServiceGroup struct {
	Group   string // e.g. "custom.metrics.k8s.io"
	Version string // e.g. "v1beta2"
}

// The group versions an adapter can serve.
var (
	MetricsV1beta1         = APIServiceGroup{Group: "metrics.k8s.io", Version: "v1beta1"}
	CustomMetricsV1beta1   = APIServiceGroup{Group: "custom.metrics.k8s.io", Version: "v1beta1"}
	CustomMetricsV1beta2   = APIServiceGroup{Group: "custom.metrics.k8s.io", Version: "v1beta2"}
	ExternalMetricsV1beta1 = APIServiceGroup{Group: "external.metrics.k8s.io", Version: "v1beta1"}
)

// Name is the APIService object's name, "<version>.<group>".
func (g APIServiceGroup) Name() string { return g.Version + "." + g.Group }

// versionPriority orders versions within a group: v1beta2 of custom metrics is preferred over
// v1beta1, as in the upstream adapters' manifests.
func (g APIServiceGroup) versionPriority() int64 {
	if g.Version == "v1beta2" {
		return 200
	}
	return 100
}

var apiServiceResource = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// RegisterAdapter makes the aggregator send the given group versions to an adapter serving HTTPS
// on localhost:port: it applies the namespace AdapterNamespace, an ExternalName Service
// AdapterServiceName with externalName "localhost", and one APIService per group version with
// insecureSkipTLSVerify, groupPriorityMinimum 100 and versionPriority 100 (200 for v1beta2).
// Calling it again, e.g. with another port, updates the objects.
//
// The aggregator authenticates to the adapter with the front-proxy client certificate and passes
// the caller in X-Remote-User/X-Remote-Group; an adapter running with the admin kubeconfig can read
// the extension-apiserver-authentication ConfigMap and delegate authorization, so no extra RBAC is
// created. An adapter with its own identity would need its own RBAC, which this does not create.
func (c *Cluster) RegisterAdapter(ctx context.Context, port int, groups []APIServiceGroup) error {
	if port <= 0 || port > 65535 {
		return fmt.Errorf("registering the adapter: port %d is not a TCP port", port)
	}
	if len(groups) == 0 {
		return fmt.Errorf("registering the adapter: no group versions given; pass e.g. testbed.CustomMetricsV1beta1")
	}
	return c.registerLocalhostAdapter(ctx, port, groups, nil)
}

// registerLocalhostAdapter is RegisterAdapter, and with a caBundle RegisterAdapterVerified: it
// applies the namespace AdapterNamespace, the ExternalName Service AdapterServiceName that
// resolves to localhost with port as its "https" port, and the APIServices of groups on that
// Service (see applyAPIServices for what caBundle changes).
func (c *Cluster) registerLocalhostAdapter(ctx context.Context, port int, groups []APIServiceGroup, caBundle []byte) error {
	service := corev1apply.Service(AdapterServiceName, AdapterNamespace).WithSpec(corev1apply.ServiceSpec().
		WithType(corev1.ServiceTypeExternalName).
		WithExternalName("localhost").
		WithPorts(corev1apply.ServicePort().WithName("https").WithPort(int32(port))))
	if err := c.applyAdapterService(ctx, service); err != nil {
		return err
	}
	return c.applyAPIServices(ctx, groups, AdapterServiceName, port, caBundle)
}

// applyAdapterService applies the namespace AdapterNamespace and then service, a Service in it
// (server-side apply, forced).
func (c *Cluster) applyAdapterService(ctx context.Context, service *corev1apply.ServiceApplyConfiguration) error {
	apply := metav1.ApplyOptions{FieldManager: fieldManager, Force: true}
	if _, err := c.Client.CoreV1().Namespaces().Apply(ctx, corev1apply.Namespace(AdapterNamespace), apply); err != nil {
		return fmt.Errorf("applying namespace %s: %w", AdapterNamespace, err)
	}
	if _, err := c.Client.CoreV1().Services(AdapterNamespace).Apply(ctx, service, apply); err != nil {
		return fmt.Errorf("applying Service %s/%s: %w", AdapterNamespace, *service.GetName(), err)
	}
	return nil
}

// applyAPIServices applies one APIService per group version that sends it to port of the Service
// AdapterNamespace/serviceName, with groupPriorityMinimum 100 and versionPriority 100 (200 for
// v1beta2), server-side and forced. Without a caBundle the APIServices have
// insecureSkipTLSVerify true; with one they carry it (base64 in the object) and
// insecureSkipTLSVerify false, so kube-apiserver verifies the adapter's certificate.
func (c *Cluster) applyAPIServices(ctx context.Context, groups []APIServiceGroup, serviceName string, port int, caBundle []byte) error {
	apply := metav1.ApplyOptions{FieldManager: fieldManager, Force: true}
	for _, g := range groups {
		spec := map[string]any{
			"group":   g.Group,
			"version": g.Version,
			"service": map[string]any{
				"namespace": AdapterNamespace,
				"name":      serviceName,
				"port":      int64(port),
			},
			"insecureSkipTLSVerify": true,
			"groupPriorityMinimum":  int64(100),
			"versionPriority":       g.versionPriority(),
		}
		if len(caBundle) > 0 {
			spec["caBundle"] = base64.StdEncoding.EncodeToString(caBundle)
			spec["insecureSkipTLSVerify"] = false
		}
		apiService := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiregistration.k8s.io/v1",
			"kind":       "APIService",
			"metadata":   map[string]any{"name": g.Name()},
			"spec":       spec,
		}}
		if _, err := c.Dynamic.Resource(apiServiceResource).Apply(ctx, g.Name(), apiService, apply); err != nil {
			return fmt.Errorf("applying APIService %s: %w", g.Name(), err)
		}
	}
	return nil
}

// WaitAPIServicesAvailable polls the named APIServices (e.g. "v1beta1.custom.metrics.k8s.io")
// until every one has condition Available=True. It gives up when ctx is done or after 60 s; the
// error then gives each APIService's Available condition with its reason and message.
func (c *Cluster) WaitAPIServicesAvailable(ctx context.Context, names ...string) error {
	return readiness{
		component:   "APIServices " + strings.Join(names, ", "),
		expectation: "condition Available=True on each (inspect with `kubectl --kubeconfig=" + c.Kubeconfig + " get apiservice -o yaml`)",
		timeout:     defaultAPIServiceTimeout,
	}.wait(ctx, func(ctx context.Context) (bool, string) {
		list, err := c.Dynamic.Resource(apiServiceResource).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, "cannot list APIServices: " + err.Error()
		}
		byName := map[string]map[string]any{}
		for _, item := range list.Items {
			byName[item.GetName()] = item.Object
		}
		var notAvailable []string
		for _, name := range names {
			obj, found := byName[name]
			if !found {
				notAvailable = append(notAvailable, name+": does not exist")
				continue
			}
			if state, ok := apiServiceAvailability(obj); !ok {
				notAvailable = append(notAvailable, name+": "+state)
			}
		}
		sort.Strings(notAvailable)
		return len(notAvailable) == 0, strings.Join(notAvailable, "; ")
	})
}

// apiServiceAvailability reports whether an APIService has Available=True and otherwise describes
// its Available condition.
func apiServiceAvailability(apiService map[string]any) (string, bool) {
	conditions, _, _ := unstructured.NestedSlice(apiService, "status", "conditions")
	for _, raw := range conditions {
		condition, _ := raw.(map[string]any)
		if condition["type"] != "Available" {
			continue
		}
		status := fmt.Sprint(condition["status"])
		if status == "True" {
			return "Available=True", true
		}
		return fmt.Sprintf("Available=%s (%v: %v)", status, condition["reason"], condition["message"]), false
	}
	return "no Available condition yet", false
}
