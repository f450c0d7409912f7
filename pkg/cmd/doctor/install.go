package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// apiServiceGVR is apiregistration.k8s.io/v1 apiservices, read with the dynamic client so that
// doctor needs no kube-aggregator client.
var apiServiceGVR = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// adapterAPI is one group version promadapter serves: its APIService, the adapter flag that
// turns it off, and the file of deploy/manifests that registers it.
type adapterAPI struct {
	name, group, version, flag, file string
}

var adapterAPIs = []adapterAPI{
	{"v1beta1.metrics.k8s.io", "metrics.k8s.io", "v1beta1", "enable-resource-metrics", "apiservice-metrics.yaml"},
	{"v1beta1.custom.metrics.k8s.io", "custom.metrics.k8s.io", "v1beta1", "enable-custom-metrics", "apiservice-custom.yaml"},
	{"v1beta2.custom.metrics.k8s.io", "custom.metrics.k8s.io", "v1beta2", "enable-custom-metrics", "apiservice-custom.yaml"},
	{"v1beta1.external.metrics.k8s.io", "external.metrics.k8s.io", "v1beta1", "enable-external-metrics", "apiservice-external.yaml"},
}

// apiService is the part of an APIService doctor reads.
type apiService struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Service *struct {
			Namespace string `json:"namespace"`
			Name      string `json:"name"`
			Port      *int32 `json:"port"`
		} `json:"service"`
		Group    string `json:"group"`
		Version  string `json:"version"`
		CABundle []byte `json:"caBundle"` // base64 in JSON
		Insecure bool   `json:"insecureSkipTLSVerify"`
	} `json:"spec"`
	Status struct {
		Conditions []apiServiceCondition `json:"conditions"`
	} `json:"status"`
}

type apiServiceCondition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// available is the APIService's Available condition; ok is false when it has none yet.
func (a *apiService) available() (apiServiceCondition, bool) {
	for _, c := range a.Status.Conditions {
		if c.Type == "Available" {
			return c, true
		}
	}
	return apiServiceCondition{}, false
}

// serviceRef is the Service an APIService sends requests to, and the port it dials (443 when
// the APIService names none).
func (a *apiService) serviceRef() (nsName, int32) {
	s := a.Spec.Service
	if s == nil {
		return nsName{}, 0
	}
	port := int32(443)
	if s.Port != nil {
		port = *s.Port
	}
	return nsName{s.Namespace, s.Name}, port
}

// nsName is a namespaced object's name.
type nsName struct{ Namespace, Name string }

func (n nsName) String() string { return n.Namespace + "/" + n.Name }

// The servers known to claim the metrics groups. ownerOther is anything else.
const (
	ownerPromadapter       = "promadapter"
	ownerMetricsServer     = "metrics-server"
	ownerKEDA              = "KEDA"
	ownerPrometheusAdapter = "prometheus-adapter"
	ownerOther             = "another server"
)

// backend is a Service an APIService names, what runs behind it, and who that is.
type backend struct {
	ref        nsName
	service    *corev1.Service    // nil: no such Service
	deployment *appsv1.Deployment // nil: none found behind the Service
	container  *corev1.Container  // the adapter's container in deployment
	args       map[string]string  // the container's flags, "name" -> value ("true" for a bare flag)
	owner      string
	readErr    error // reading the Service or Deployment failed (not NotFound)
}

// flag is the value of the container's --name and whether it is set.
func (b *backend) flag(name string) (string, bool) {
	if b == nil || b.args == nil {
		return "", false
	}
	v, ok := b.args[name]
	return v, ok
}

// disables reports whether the adapter's Deployment turns the group of api off.
func (b *backend) disables(api adapterAPI) bool {
	v, set := b.flag(api.flag)
	return set && v == "false"
}

// install is what doctor found of the adapter's installation.
type install struct {
	apis     map[string]*apiService // by APIService name; nil: not registered
	backends map[nsName]*backend
	adapter  *backend // the adapter's Service, found through the APIServices or the default
	// serviceAccount is the adapter's identity; saFrom says where doctor found it.
	serviceAccount nsName
	saFrom         string
}

// defaultAdapter is where deploy/manifests installs the adapter (Service and ServiceAccount).
var defaultAdapter = nsName{"promadapter", "promadapter"}

// discover reads the four APIServices, the Services they name, and the Deployments behind
// those, and decides which of them is the adapter.
func (d *doctor) discover(ctx context.Context) (*install, error) {
	in := &install{apis: map[string]*apiService{}, backends: map[nsName]*backend{}}
	for _, api := range adapterAPIs {
		obj, err := d.dynamic.Resource(apiServiceGVR).Get(ctx, api.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			in.apis[api.name] = nil
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading APIService %s: %w (doctor reads APIServices, Services, Deployments, ConfigMaps and RBAC objects: run it as a cluster admin)", api.name, err)
		}
		data, err := obj.MarshalJSON()
		if err != nil {
			return nil, err
		}
		a := &apiService{}
		if err := json.Unmarshal(data, a); err != nil {
			return nil, fmt.Errorf("decoding APIService %s: %w", api.name, err)
		}
		in.apis[api.name] = a
		if ref, _ := a.serviceRef(); ref.Name != "" {
			in.backend(ctx, d, ref)
		}
	}
	// The adapter: the promadapter Service most APIServices name, preferring one that exists.
	votes := map[nsName]int{}
	for _, a := range in.apis {
		if a == nil {
			continue
		}
		ref, _ := a.serviceRef()
		if b := in.backends[ref]; b != nil && b.owner == ownerPromadapter {
			votes[ref]++
			if b.service != nil {
				votes[ref] += len(adapterAPIs)
			}
		}
	}
	best := defaultAdapter
	for ref, n := range votes {
		if n > votes[best] || (n == votes[best] && ref.String() < best.String()) {
			best = ref
		}
	}
	in.adapter = in.backend(ctx, d, best)

	in.serviceAccount, in.saFrom = defaultAdapter, "the install's default (no Deployment found behind Service "+best.String()+")"
	if dep := in.adapter.deployment; dep != nil {
		name := dep.Spec.Template.Spec.ServiceAccountName
		if name == "" {
			name = "default"
		}
		in.serviceAccount, in.saFrom = nsName{dep.Namespace, name}, "Deployment "+dep.Namespace+"/"+dep.Name
	}
	return in, nil
}

// backend returns the backend of ref, reading it on first use.
func (in *install) backend(ctx context.Context, d *doctor, ref nsName) *backend {
	if b, ok := in.backends[ref]; ok {
		return b
	}
	b := &backend{ref: ref}
	in.backends[ref] = b
	svc, err := d.kube.CoreV1().Services(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	switch {
	case err == nil:
		b.service = svc
	case !apierrors.IsNotFound(err):
		b.readErr = err
	}
	b.deployment, err = findDeployment(ctx, d, ref, b.service)
	if err != nil && b.readErr == nil {
		b.readErr = err
	}
	if b.deployment != nil {
		b.container = adapterContainer(b.deployment)
		b.args = parseArgs(append(append([]string(nil), b.container.Command...), b.container.Args...))
	}
	b.owner = classifyOwner(ref, b.service, b.deployment)
	return b
}

// findDeployment finds the Deployment behind a Service: the one whose pods the Service selects,
// or, for a Service without a selector (an ExternalName), the Deployment of the same name.
func findDeployment(ctx context.Context, d *doctor, ref nsName, svc *corev1.Service) (*appsv1.Deployment, error) {
	if svc == nil || len(svc.Spec.Selector) == 0 {
		dep, err := d.kube.AppsV1().Deployments(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return dep, err
	}
	list, err := d.kube.AppsV1().Deployments(ref.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	selector := labels.SelectorFromSet(svc.Spec.Selector)
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	for i := range list.Items {
		if selector.Matches(labels.Set(list.Items[i].Spec.Template.Labels)) {
			return &list.Items[i], nil
		}
	}
	return nil, nil
}

// adapterContainer is the container that runs promadapter: the one whose image or flags say so,
// else the first.
func adapterContainer(dep *appsv1.Deployment) *corev1.Container {
	cs := dep.Spec.Template.Spec.Containers
	for i := range cs {
		if strings.Contains(cs[i].Image, "promadapter") {
			return &cs[i]
		}
	}
	for i := range cs {
		for _, a := range cs[i].Args {
			if strings.HasPrefix(a, "--prometheus-url") {
				return &cs[i]
			}
		}
	}
	if len(cs) == 0 {
		return &corev1.Container{}
	}
	return &cs[0]
}

// parseArgs reads "--name=value", "--name value" and bare "--name" (true) flags; a later
// flag wins, as with pflag.
func parseArgs(args []string) map[string]string {
	out := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !hasValue {
			value = "true"
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				value = args[i+1]
				i++
			}
		}
		out[name] = value
	}
	return out
}

// classifyOwner tells who serves behind a Service from its images, names and labels.
func classifyOwner(ref nsName, svc *corev1.Service, dep *appsv1.Deployment) string {
	var images, names []string
	names = append(names, ref.Namespace, ref.Name)
	if svc != nil {
		for _, v := range svc.Labels {
			names = append(names, v)
		}
	}
	if dep != nil {
		names = append(names, dep.Name)
		for _, v := range dep.Spec.Template.Labels {
			names = append(names, v)
		}
		for _, c := range dep.Spec.Template.Spec.Containers {
			images = append(images, c.Image)
		}
	}
	for _, words := range [][]string{images, names} {
		text := strings.ToLower(strings.Join(words, " "))
		switch {
		case strings.Contains(text, "promadapter"):
			return ownerPromadapter
		case strings.Contains(text, "metrics-server"):
			return ownerMetricsServer
		case strings.Contains(text, "keda"):
			return ownerKEDA
		case strings.Contains(text, "prometheus-adapter"):
			return ownerPrometheusAdapter
		}
	}
	return ownerOther
}
