//go:build e2e

// The rendered manifests of TestDeploy: the objects kustomize renders and how they are wired to each other.

package e2e

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func (s *deploySuite) testKustomizeObjects(t *testing.T) {
	var got []string
	for _, o := range s.kustomizeObjects(t) {
		got = append(got, objectID(o))
	}
	sort.Strings(got)
	want := []string{
		"APIService v1beta1.custom.metrics.k8s.io",
		"APIService v1beta1.external.metrics.k8s.io",
		"APIService v1beta1.metrics.k8s.io",
		"APIService v1beta2.custom.metrics.k8s.io",
		"ClusterRole promadapter",
		"ClusterRole promadapter-aggregated-metrics-reader",
		"ClusterRoleBinding promadapter",
		"ClusterRoleBinding promadapter-auth-delegator",
		"ConfigMap promadapter/promadapter-config",
		"Deployment promadapter/promadapter",
		"Namespace promadapter",
		"PodDisruptionBudget promadapter/promadapter",
		"RoleBinding kube-system/promadapter-auth-reader",
		"Service promadapter/promadapter",
		"ServiceAccount promadapter/promadapter",
	}
	if !slices.Equal(got, want) {
		t.Errorf("kubectl kustomize %s renders\n  %s\nwant\n  %s", s.manifests(), strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}

	// Removing one apiservice-*.yaml line from kustomization.yaml must switch off exactly one group.
	filesByGroup := map[string][]string{
		"apiservice-metrics.yaml":  {"APIService v1beta1.metrics.k8s.io"},
		"apiservice-custom.yaml":   {"APIService v1beta1.custom.metrics.k8s.io", "APIService v1beta2.custom.metrics.k8s.io"},
		"apiservice-external.yaml": {"APIService v1beta1.external.metrics.k8s.io"},
	}
	for file, want := range filesByGroup {
		data, err := os.ReadFile(filepath.Join(s.manifests(), file))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range decodeObjects(t, file, data) {
			got = append(got, objectID(o))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s holds %v, want only %v", file, got, want)
		}
	}
}

// checkWiring checks what the kube-apiserver cannot: that the objects of one install refer to each
// other correctly. objects must hold one Deployment, Service and ServiceAccount.
func checkWiring(t *testing.T, objects []*unstructured.Unstructured) {
	t.Helper()
	var (
		deployment      appsv1.Deployment
		service         corev1.Service
		serviceAccount  corev1.ServiceAccount
		apiServices     []*unstructured.Unstructured
		clusterBindings []rbacv1.ClusterRoleBinding
		roleBindings    []rbacv1.RoleBinding
		found           = map[string]int{}
	)
	for _, o := range objects {
		found[o.GetKind()]++
		var into any
		switch o.GetKind() {
		case "Deployment":
			into = &deployment
		case "Service":
			into = &service
		case "ServiceAccount":
			into = &serviceAccount
		case "APIService":
			apiServices = append(apiServices, o)
			continue
		case "ClusterRoleBinding":
			clusterBindings = append(clusterBindings, rbacv1.ClusterRoleBinding{})
			into = &clusterBindings[len(clusterBindings)-1]
		case "RoleBinding":
			roleBindings = append(roleBindings, rbacv1.RoleBinding{})
			into = &roleBindings[len(roleBindings)-1]
		default:
			continue
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, into); err != nil {
			t.Fatalf("%s: %v", objectID(o), err)
		}
	}
	for _, kind := range []string{"Deployment", "Service", "ServiceAccount"} {
		if found[kind] != 1 {
			t.Fatalf("%d objects of kind %s, want exactly 1", found[kind], kind)
		}
	}
	pod := deployment.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("the Deployment's pod has %d containers, want 1", len(pod.Containers))
	}
	container := pod.Containers[0]
	flags := map[string]string{}
	for _, arg := range container.Args {
		name, value, _ := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
		flags[name] = value
	}

	// Identity.
	if pod.ServiceAccountName != serviceAccount.Name || deployment.Namespace != serviceAccount.Namespace {
		t.Errorf("the pod runs as ServiceAccount %s/%s, but the ServiceAccount is %s/%s",
			deployment.Namespace, pod.ServiceAccountName, serviceAccount.Namespace, serviceAccount.Name)
	}
	isAdapter := func(s rbacv1.Subject) bool {
		return s.Kind == "ServiceAccount" && s.Name == serviceAccount.Name && s.Namespace == serviceAccount.Namespace
	}
	var delegator, authReader bool
	for _, b := range clusterBindings {
		if b.RoleRef.Name == "system:auth-delegator" && slices.ContainsFunc(b.Subjects, isAdapter) {
			delegator = true
		}
	}
	for _, b := range roleBindings {
		if b.Namespace == "kube-system" && b.RoleRef.Kind == "Role" && b.RoleRef.Name == "extension-apiserver-authentication-reader" && slices.ContainsFunc(b.Subjects, isAdapter) {
			authReader = true
		}
	}
	if !delegator {
		t.Errorf("no ClusterRoleBinding binds system:auth-delegator to the adapter's ServiceAccount")
	}
	if !authReader {
		t.Errorf("no RoleBinding in kube-system binds extension-apiserver-authentication-reader to the adapter's ServiceAccount")
	}

	// Network path: APIService -> Service port 443 -> container port == --secure-port.
	if service.Namespace != deployment.Namespace {
		t.Errorf("the Service is in %s, the Deployment in %s", service.Namespace, deployment.Namespace)
	}
	for k, v := range service.Spec.Selector {
		if deployment.Spec.Template.Labels[k] != v {
			t.Errorf("the Service selects %s=%s, which the pod template's labels %v lack", k, v, deployment.Spec.Template.Labels)
		}
	}
	if len(service.Spec.Selector) == 0 {
		t.Errorf("the Service has no selector, so it can never have endpoints")
	}
	containerPort := func(port intstr.IntOrString) (int32, bool) {
		for _, p := range container.Ports {
			if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
				return p.ContainerPort, true
			}
		}
		return 0, false
	}
	securePort := flags["secure-port"]
	var servicePort *corev1.ServicePort
	for i, p := range service.Spec.Ports {
		if p.Port == 443 {
			servicePort = &service.Spec.Ports[i]
		}
	}
	if servicePort == nil {
		t.Errorf("the Service has no port 443, the port the APIServices name")
	} else if target, ok := containerPort(servicePort.TargetPort); !ok || strconv.Itoa(int(target)) != securePort {
		t.Errorf("Service port 443 targets %s (container port %d, found %v), but the adapter listens on --secure-port=%q",
			servicePort.TargetPort.String(), target, ok, securePort)
	}
	for _, probe := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", container.LivenessProbe, "/livez"}, {"readiness", container.ReadinessProbe, "/readyz"}} {
		if probe.probe == nil || probe.probe.HTTPGet == nil {
			t.Errorf("no HTTP %s probe", probe.name)
			continue
		}
		get := probe.probe.HTTPGet
		port, ok := containerPort(get.Port)
		if get.Path != probe.path || get.Scheme != corev1.URISchemeHTTPS || !ok || strconv.Itoa(int(port)) != securePort {
			t.Errorf("the %s probe is %s %s on port %s; want HTTPS %s on --secure-port=%s", probe.name, get.Scheme, get.Path, get.Port.String(), probe.path, securePort)
		}
	}
	groups := map[string]bool{}
	for _, a := range apiServices {
		name := a.GetName()
		group, _, _ := unstructured.NestedString(a.Object, "spec", "group")
		groups[group] = true
		ns, _, _ := unstructured.NestedString(a.Object, "spec", "service", "namespace")
		svc, _, _ := unstructured.NestedString(a.Object, "spec", "service", "name")
		port, _, _ := unstructured.NestedInt64(a.Object, "spec", "service", "port")
		if ns != service.Namespace || svc != service.Name || port != 443 {
			t.Errorf("APIService %s points at %s/%s:%d, want %s/%s:443", name, ns, svc, port, service.Namespace, service.Name)
		}
		insecure, _, _ := unstructured.NestedBool(a.Object, "spec", "insecureSkipTLSVerify")
		caBundle, _, _ := unstructured.NestedString(a.Object, "spec", "caBundle")
		_, injected := a.GetAnnotations()["cert-manager.io/inject-ca-from"]
		if !insecure && caBundle == "" && !injected {
			t.Errorf("APIService %s has neither insecureSkipTLSVerify, a caBundle, nor a CA injector annotation: the kube-apiserver could not trust the adapter", name)
		}
	}
	// A group's flag must be on when its APIService is registered and off when it is not (the
	// adapter would otherwise serve a group nobody reaches, or the APIService would find nothing).
	for group, flag := range map[string]string{
		"metrics.k8s.io": "enable-resource-metrics", "custom.metrics.k8s.io": "enable-custom-metrics", "external.metrics.k8s.io": "enable-external-metrics",
	} {
		value, set := flags[flag]
		enabled := !set || value == "true"
		if enabled != groups[group] {
			t.Errorf("APIService for %s registered: %v, but the adapter runs with --%s=%s (set: %v)", group, groups[group], flag, value, set)
		}
	}

	// Files the adapter writes or reads must be on mounted volumes, since the root filesystem is read-only.
	mountOf := func(file string) (corev1.VolumeMount, corev1.Volume, bool) {
		for _, m := range container.VolumeMounts {
			if file == m.MountPath || strings.HasPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/") {
				for _, v := range pod.Volumes {
					if v.Name == m.Name {
						return m, v, true
					}
				}
			}
		}
		return corev1.VolumeMount{}, corev1.Volume{}, false
	}
	if _, hasCert := flags["tls-cert-file"]; !hasCert {
		certDir, set := flags["cert-dir"]
		if !set || !path.IsAbs(certDir) {
			t.Errorf("without --tls-cert-file the adapter writes a self-signed certificate to --cert-dir; set it to an absolute path on a writable volume (got %q)", certDir)
		} else if m, v, ok := mountOf(certDir); !ok || m.ReadOnly || v.EmptyDir == nil {
			var mounts []string
			for _, m := range container.VolumeMounts {
				mounts = append(mounts, fmt.Sprintf("%s (volume %s, readOnly %v)", m.MountPath, m.Name, m.ReadOnly))
			}
			t.Errorf("--cert-dir=%s is not on a writable emptyDir volume (mounts: %s): the read-only root filesystem makes start-up fail", certDir, strings.Join(mounts, ", "))
		}
	} else {
		for _, flag := range []string{"tls-cert-file", "tls-private-key-file"} {
			if _, v, ok := mountOf(flags[flag]); !ok || v.Secret == nil {
				t.Errorf("--%s=%s is not on a mounted Secret", flag, flags[flag])
			}
		}
	}
	if config, set := flags["config"]; set {
		if _, v, ok := mountOf(config); !ok || v.ConfigMap == nil {
			t.Errorf("--config=%s is not on a mounted ConfigMap", config)
		}
	}
	sc := container.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("the container's root filesystem is not read-only")
	}
	if flags["prometheus-url"] == "" {
		t.Errorf("the adapter has no --prometheus-url (args %v)", container.Args)
	}
	requests := container.Resources.Requests
	if requests.Cpu().IsZero() || requests.Memory().IsZero() {
		t.Errorf("the container requests no CPU or memory (%v)", requests)
	}
}
