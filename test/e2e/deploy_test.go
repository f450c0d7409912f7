//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

// The identities the install is about.
const (
	adapterIdentity = "system:serviceaccount:promadapter:promadapter"
	hpaIdentity     = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"
	// probeIdentity is a user bound to nothing but the ClusterRole that deploy/ binds to the HPA
	// controller, so that its answers show what that role alone grants (the HPA controller's
	// bootstrap role already grants custom and external metrics on current Kubernetes).
	probeIdentity = "promadapter-e2e-probe"
	// viewerIdentity holds the built-in "view" role in namespace default.
	viewerIdentity = "promadapter-e2e-viewer"
)

// deploySuite is a test cluster with deploy/ applied to it, and the helpers TestDeploy's steps share.
type deploySuite struct {
	cluster *testbed.Cluster
	bins    testbed.Bins
	repo    string // the repository root
	// dir is a scratch directory. Subtests' own t.TempDir() would carry commas from their names,
	// and helm splits --values at commas.
	dir string
}

// TestDeploy checks the install manifests (deploy/manifests) and the Helm chart (deploy/chart) against
// a real kube-apiserver: the server accepts every object (dry run, strict field validation, the
// "restricted" Pod Security Standard), the objects are wired to each other, the RBAC grants the
// adapter exactly what it needs, and the real promadapter binary serves all three API groups while
// holding nothing but the ServiceAccount's rights.
//
// Reproduce: make build && go test -count=1 -tags e2e ./test/e2e/ -run TestDeploy -v
// (set HELM=/path/to/helm to include the chart when helm is not on PATH).
func TestDeploy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bins, err := testbed.FindBins()
	if err != nil {
		t.Fatal(err)
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cluster, err := testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: bins, Dir: filepath.Join(dir, "cluster")})
	if err != nil {
		t.Fatal(err)
	}
	cluster.Cleanup(t)
	// Only the controller that folds labelled ClusterRoles into view/edit/admin: no deployment or
	// endpoints controller, so the Deployment creates no pods and the Service gets no endpoints.
	if err := cluster.StartControllerManager(ctx, []string{"clusterrole-aggregation"}, 0); err != nil {
		t.Fatal(err)
	}
	s := &deploySuite{cluster: cluster, bins: bins, repo: repo, dir: dir}

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"kustomize renders exactly the expected objects, one APIService file per group", s.testKustomizeObjects},
		{"the rendered objects are wired to each other", func(t *testing.T) { checkWiring(t, s.kustomizeObjects(t)) }},
		{"before the install nobody holds the rights it grants", s.testNoRightsBeforeInstall},
		{"a server-side dry run accepts every manifest without warnings", s.testServerDryRun},
		{"kubectl apply creates every object, and applying again changes nothing", s.testApply},
		{"the pod template passes the restricted Pod Security Standard, which is enforced", s.testPodSecurity},
		{"the adapter's ServiceAccount may do what the adapter needs and no more", s.testAdapterRights},
		{"the HPA controller may read custom and external metrics (bootstrap role), and so may the optional role alone", s.testHPARights},
		{"holders of the view role may read metrics.k8s.io", s.testViewerRights},
		{"APIServices without a ready pod report Available=False", s.testAPIServicesWithoutEndpoints},
		{"the Helm chart renders, is wired, and a server-side dry run accepts it", s.testHelmChart},
		{"the adapter serves every API group with only the ServiceAccount's rights", s.testAdapterRunsAsServiceAccount},
	}
	for _, step := range steps {
		if !t.Run(step.name, step.run) {
			// Later steps build on earlier ones; their failures would only repeat this one.
			t.Fatalf("stopping at the failed step %q", step.name)
		}
	}
}

// manifests is the directory of the plain manifests.
func (s *deploySuite) manifests() string { return filepath.Join(s.repo, "deploy", "manifests") }

// kubectl runs kubectl as the cluster's admin and returns its standard output and standard error.
// Its error names the command line and quotes standard error. When ctx has no deadline, kubectl gets
// one minute.
func (s *deploySuite) kubectl(ctx context.Context, stdin []byte, args ...string) (stdout, stderr string, err error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	args = append([]string{"--kubeconfig=" + s.cluster.Kubeconfig}, args...)
	cmd := exec.CommandContext(ctx, s.bins.Kubectl, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), errOut.String(), fmt.Errorf("kubectl %s: %w\nstderr:\n%s", strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), errOut.String(), nil
}

// mustKubectl is kubectl that fails the test on error.
func (s *deploySuite) mustKubectl(t *testing.T, stdin []byte, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, err := s.kubectl(context.Background(), stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return stdout, stderr
}

// noWarnings fails the test for every "Warning:" line kubectl printed (deprecated APIs, Pod Security
// violations in "warn" mode, unknown fields the server dropped).
func noWarnings(t *testing.T, what, stderr string) {
	t.Helper()
	for _, line := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "Warning:") {
			t.Errorf("%s: the server warned: %s", what, strings.TrimSpace(line))
		}
	}
}

// kustomizeObjects renders deploy/manifests with kubectl's built-in kustomize.
func (s *deploySuite) kustomizeObjects(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	out, _ := s.mustKubectl(t, nil, "kustomize", s.manifests())
	return decodeObjects(t, "kubectl kustomize "+s.manifests(), []byte(out))
}

// decodeObjects splits a multi-document YAML stream into objects, skipping empty documents. Numbers
// become int64 where they are whole, as in objects read from the server.
func decodeObjects(t *testing.T, source string, data []byte) []*unstructured.Unstructured {
	t.Helper()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objects []*unstructured.Unstructured
	for {
		document, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: splitting the YAML documents: %v", source, err)
		}
		asJSON, err := yaml.YAMLToJSON(document)
		if err != nil {
			t.Fatalf("%s: %v in the document\n%s", source, err, document)
		}
		if trimmed := bytes.TrimSpace(asJSON); bytes.Equal(trimmed, []byte("null")) || bytes.Equal(trimmed, []byte("{}")) {
			continue
		}
		object := &unstructured.Unstructured{}
		if err := object.UnmarshalJSON(asJSON); err != nil {
			t.Fatalf("%s: %v in the document\n%s", source, err, document)
		}
		objects = append(objects, object)
	}
	return objects
}

// objectID is "Kind namespace/name", or "Kind name" for cluster-scoped objects.
func objectID(o *unstructured.Unstructured) string {
	if ns := o.GetNamespace(); ns != "" {
		return o.GetKind() + " " + ns + "/" + o.GetName()
	}
	return o.GetKind() + " " + o.GetName()
}

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

func (s *deploySuite) testNoRightsBeforeInstall(t *testing.T) {
	// The viewer holds the built-in view role from now on; only the install's aggregated role can
	// add metrics.k8s.io to it.
	s.mustKubectl(t, nil, "create", "rolebinding", "promadapter-e2e-viewer", "--clusterrole=view", "--user="+viewerIdentity, "--namespace=default")
	for _, c := range []struct {
		as   string
		args []string
	}{
		{adapterIdentity, []string{"list", "pods", "--all-namespaces"}},
		{adapterIdentity, []string{"create", "tokenreviews.authentication.k8s.io"}},
		{adapterIdentity, []string{"get", "configmaps/extension-apiserver-authentication", "--namespace=kube-system"}},
	} {
		if s.canI(t, c.as, c.args...) {
			t.Errorf("%s may already %s before the install; the later checks would prove nothing", c.as, strings.Join(c.args, " "))
		}
	}
	if s.reviewAccess(t, viewerIdentity, *metricsAccess("list", "metrics.k8s.io", "pods", "", "default")) {
		t.Errorf("%s may already list pods.metrics.k8s.io before the install; the later check would prove nothing", viewerIdentity)
	}
}

func (s *deploySuite) testServerDryRun(t *testing.T) {
	// Namespaced objects can only be dry-run into a namespace that exists.
	s.mustKubectl(t, nil, "apply", "-f", filepath.Join(s.manifests(), "namespace.yaml"))
	stdout, stderr := s.mustKubectl(t, nil, "apply", "--dry-run=server", "--validate=strict", "-k", s.manifests())
	noWarnings(t, "kubectl apply --dry-run=server -k "+s.manifests(), stderr)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if want := len(s.kustomizeObjects(t)); len(lines) != want {
		t.Errorf("the dry run reported %d objects, want %d:\n%s", len(lines), want, stdout)
	}
}

func (s *deploySuite) testApply(t *testing.T) {
	stdout, stderr := s.mustKubectl(t, nil, "apply", "-k", s.manifests())
	noWarnings(t, "kubectl apply -k", stderr)
	t.Logf("kubectl apply -k %s:\n%s", s.manifests(), stdout)
	for _, o := range s.kustomizeObjects(t) {
		args := []string{"get", strings.ToLower(o.GetKind()), o.GetName(), "-o", "name"}
		if o.GetNamespace() != "" {
			args = append(args, "--namespace="+o.GetNamespace())
		}
		if _, _, err := s.kubectl(context.Background(), nil, args...); err != nil {
			t.Errorf("%s was not created: %v", objectID(o), err)
		}
	}
	// Applying again must change nothing on the server. kubectl's client-side apply reports a
	// PodDisruptionBudget as "configured" every time (its patch of the selector is not empty),
	// so the criterion is the objects' resourceVersions, not kubectl's words.
	versions := func() string {
		out, _ := s.mustKubectl(t, nil, "get", "-k", s.manifests(), "-o",
			`jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name}={.metadata.resourceVersion}{"\n"}{end}`)
		return out
	}
	before := versions()
	stdout, _ = s.mustKubectl(t, nil, "apply", "-k", s.manifests())
	if after := versions(); after != before {
		t.Errorf("applying the same manifests again changed objects (a field the server rewrites?):\nbefore:\n%s\nafter:\n%s\nkubectl said:\n%s", before, after, stdout)
	}
}

func (s *deploySuite) testPodSecurity(t *testing.T) {
	var deployment appsv1.Deployment
	for _, o := range s.kustomizeObjects(t) {
		if o.GetKind() == "Deployment" {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &deployment); err != nil {
				t.Fatal(err)
			}
		}
	}
	podFrom := func(mutate func(*corev1.PodSpec)) []byte {
		pod := corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: deployment.Spec.Template.ObjectMeta,
			Spec:       *deployment.Spec.Template.Spec.DeepCopy(),
		}
		pod.Name, pod.Namespace = "promadapter-pod-security-check", deployment.Namespace
		mutate(&pod.Spec)
		data, err := json.Marshal(pod)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	// The Deployment's own pod, created (dry run) where "restricted" is enforced.
	_, stderr := s.mustKubectl(t, podFrom(func(*corev1.PodSpec) {}), "create", "--dry-run=server", "-f", "-")
	noWarnings(t, "the Deployment's pod", stderr)
	// The same pod allowed to escalate privileges must be refused, else the namespace enforces nothing.
	escalating := podFrom(func(spec *corev1.PodSpec) {
		allow := true
		if spec.Containers[0].SecurityContext == nil {
			spec.Containers[0].SecurityContext = &corev1.SecurityContext{}
		}
		spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = &allow
	})
	_, _, err := s.kubectl(context.Background(), escalating, "create", "--dry-run=server", "-f", "-")
	if err == nil || !strings.Contains(err.Error(), "violates PodSecurity") {
		t.Errorf("a pod with allowPrivilegeEscalation: true was not refused by Pod Security admission (err: %v); the namespace's enforce label is missing or wrong", err)
	}
}

// canI asks `kubectl auth can-i` on behalf of user (impersonated) and returns its answer.
func (s *deploySuite) canI(t *testing.T, user string, args ...string) bool {
	t.Helper()
	args = append([]string{"auth", "can-i", "--as=" + user}, args...)
	stdout, _, err := s.kubectl(context.Background(), nil, args...)
	switch answer := strings.TrimSpace(stdout); {
	case answer == "yes" && err == nil:
		return true
	case answer == "no":
		return false
	default:
		t.Fatalf("kubectl %s answered %q: %v", strings.Join(args, " "), answer, err)
		return false
	}
}

// reviewAccess asks the kube-apiserver with a SubjectAccessReview whether user may act as attrs
// describe. Unlike `kubectl auth can-i` it needs no discovery: kubectl resolves a resource name
// through the API groups the server lists, and while no adapter answers, custom.metrics.k8s.io and
// friends are not listed, so can-i would silently ask about a resource in no group at all.
func (s *deploySuite) reviewAccess(t *testing.T, user string, attrs authorizationv1.ResourceAttributes) bool {
	t.Helper()
	groups := []string{"system:authenticated"}
	if rest, ok := strings.CutPrefix(user, "system:serviceaccount:"); ok {
		namespace, _, _ := strings.Cut(rest, ":")
		groups = append(groups, "system:serviceaccounts", "system:serviceaccounts:"+namespace)
	}
	review, err := s.cluster.Client.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: groups, ResourceAttributes: &attrs},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SubjectAccessReview for %s %+v: %v", user, attrs, err)
	}
	return review.Status.Allowed
}

// rightsCase is one access question and the answer the install must give. It is asked with
// `kubectl auth can-i args...`, or, for the API groups the adapter serves, with a SubjectAccessReview
// of attrs (see reviewAccess).
type rightsCase struct {
	args  []string
	attrs *authorizationv1.ResourceAttributes
	allow bool
}

// metricsAccess describes reading a metric of an aggregated group.
func metricsAccess(verb, group, resource, subresource, namespace string) *authorizationv1.ResourceAttributes {
	return &authorizationv1.ResourceAttributes{Verb: verb, Group: group, Resource: resource, Subresource: subresource, Namespace: namespace}
}

func (c rightsCase) String() string {
	if c.attrs == nil {
		return strings.Join(c.args, " ")
	}
	a := c.attrs
	q := a.Verb + " " + a.Resource
	if a.Subresource != "" {
		q += "/" + a.Subresource
	}
	q += "." + a.Group
	if a.Namespace != "" {
		q += " in " + a.Namespace
	}
	return q
}

func (s *deploySuite) checkRights(t *testing.T, user string, cases []rightsCase) {
	t.Helper()
	for _, c := range cases {
		verb := "may"
		if !c.allow {
			verb = "may not"
		}
		t.Run(verb+" "+c.String(), func(t *testing.T) {
			var got bool
			if c.attrs != nil {
				got = s.reviewAccess(t, user, *c.attrs)
			} else {
				got = s.canI(t, user, c.args...)
			}
			if got != c.allow {
				t.Errorf("%s may %s: got %v, want %v", user, c, got, c.allow)
			}
		})
	}
}

func (s *deploySuite) testAdapterRights(t *testing.T) {
	var cases []rightsCase
	// Informers: list and watch in every namespace, never a get (rbac_test.go shows each is used).
	for _, resource := range []string{
		"pods", "nodes", "namespaces", "services", "endpoints", "replicationcontrollers",
		"deployments.apps", "replicasets.apps", "statefulsets.apps", "daemonsets.apps",
		"ingresses.networking.k8s.io",
	} {
		for _, verb := range []string{"list", "watch"} {
			cases = append(cases, rightsCase{args: []string{verb, resource, "--all-namespaces"}, allow: true})
		}
		cases = append(cases, rightsCase{args: []string{"get", resource, "--all-namespaces"}, allow: false})
	}
	cases = append(cases,
		// Delegated authentication and authorization of callers.
		rightsCase{args: []string{"create", "tokenreviews.authentication.k8s.io"}, allow: true},
		rightsCase{args: []string{"create", "subjectaccessreviews.authorization.k8s.io"}, allow: true},
		// The front proxy's CA.
		rightsCase{args: []string{"get", "configmaps/extension-apiserver-authentication", "--namespace=kube-system"}, allow: true},
		rightsCase{args: []string{"watch", "configmaps/extension-apiserver-authentication", "--namespace=kube-system"}, allow: true},
		// And nothing more: no Secrets, no writes, no kubelet, no other ConfigMaps.
		rightsCase{args: []string{"get", "secrets", "--namespace=promadapter"}, allow: false},
		rightsCase{args: []string{"list", "secrets", "--all-namespaces"}, allow: false},
		rightsCase{args: []string{"get", "configmaps/kube-root-ca.crt", "--namespace=kube-system"}, allow: false},
		rightsCase{args: []string{"create", "pods", "--namespace=default"}, allow: false},
		rightsCase{args: []string{"delete", "pods", "--namespace=default"}, allow: false},
		rightsCase{args: []string{"patch", "deployments.apps", "--namespace=default"}, allow: false},
		rightsCase{args: []string{"get", "nodes", "--subresource=proxy"}, allow: false},
		rightsCase{args: []string{"get", "nodes", "--subresource=metrics"}, allow: false},
		// docs/install.md: add them when a rule needs them (no default rule maps a label to them).
		rightsCase{args: []string{"list", "cronjobs.batch", "--all-namespaces"}, allow: false},
		rightsCase{args: []string{"list", "jobs.batch", "--all-namespaces"}, allow: false},
	)
	s.checkRights(t, adapterIdentity, cases)
}

func (s *deploySuite) testHPARights(t *testing.T) {
	const custom, external = "custom.metrics.k8s.io", "external.metrics.k8s.io"
	// The request attributes of the HPA controller's reads, e.g. GET
	// /apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/*/http_requests_per_second.
	metricsCases := []rightsCase{
		{attrs: metricsAccess("get", custom, "pods", "http_requests_per_second", "default"), allow: true},
		{attrs: metricsAccess("list", custom, "pods", "http_requests_per_second", "default"), allow: true},
		{attrs: metricsAccess("get", custom, "services", "http_requests_5xx_ratio", "default"), allow: true},
		{attrs: metricsAccess("get", custom, "namespaces", "http_requests_per_second", ""), allow: true},
		{attrs: metricsAccess("get", external, "queue_depth", "", "default"), allow: true},
		{attrs: metricsAccess("list", external, "kube_deployment_spec_replicas", "", "shop"), allow: true},
	}
	t.Run("as the HPA controller", func(t *testing.T) { s.checkRights(t, hpaIdentity, metricsCases) })

	// The optional file for clusters whose bootstrap roles were trimmed: apply it, and bind its
	// ClusterRole to a user holding nothing else.
	optional := filepath.Join(s.manifests(), "rbac-hpa-metrics-reader.yaml")
	data, err := os.ReadFile(optional)
	if err != nil {
		t.Fatal(err)
	}
	_, applyErr := s.mustKubectl(t, data, "apply", "--server-side", "--field-manager=promadapter-e2e", "-f", "-")
	noWarnings(t, "kubectl apply -f "+optional, applyErr)
	var binding rbacv1.ClusterRoleBinding
	out, _ := s.mustKubectl(t, nil, "get", "clusterrolebinding", "promadapter-hpa-metrics-reader", "-o", "json")
	if err := json.Unmarshal([]byte(out), &binding); err != nil {
		t.Fatal(err)
	}
	hpaSubject := rbacv1.Subject{Kind: "ServiceAccount", Name: "horizontal-pod-autoscaler", Namespace: "kube-system"}
	if !slices.Contains(binding.Subjects, hpaSubject) {
		t.Errorf("ClusterRoleBinding promadapter-hpa-metrics-reader binds %+v, not the HPA controller's ServiceAccount", binding.Subjects)
	}
	s.mustKubectl(t, nil, "create", "clusterrolebinding", "promadapter-e2e-probe", "--clusterrole="+binding.RoleRef.Name, "--user="+probeIdentity)
	t.Run("as a user holding only the optional HPA role", func(t *testing.T) {
		s.checkRights(t, probeIdentity, append(metricsCases,
			rightsCase{attrs: metricsAccess("list", "metrics.k8s.io", "pods", "", "default"), allow: false},
			rightsCase{attrs: metricsAccess("create", custom, "pods", "http_requests_per_second", "default"), allow: false},
			rightsCase{args: []string{"list", "pods", "--namespace=default"}, allow: false},
		))
	})
}

func (s *deploySuite) testViewerRights(t *testing.T) {
	// The aggregation controller copies the labelled role's rules into "view" within seconds.
	deadline := time.Now().Add(30 * time.Second)
	for !s.reviewAccess(t, viewerIdentity, *metricsAccess("list", "metrics.k8s.io", "pods", "", "default")) {
		if time.Now().After(deadline) {
			out, _, _ := s.kubectl(context.Background(), nil, "get", "clusterrole", "view", "-o", "yaml")
			t.Fatalf("after 30 s the view role still does not grant list pods.metrics.k8s.io; the view role:\n%s", out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if s.reviewAccess(t, viewerIdentity, *metricsAccess("list", "metrics.k8s.io", "pods", "", "kube-system")) {
		t.Errorf("the viewer of namespace default may read pod metrics in kube-system")
	}
}

func (s *deploySuite) testAPIServicesWithoutEndpoints(t *testing.T) {
	// No pod runs (no kubelet, no deployment controller), so each APIService must say so instead of
	// claiming to be available: what a user sees while the pod is not ready (docs/install.md).
	names := []string{"v1beta1.metrics.k8s.io", "v1beta1.custom.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io"}
	deadline := time.Now().Add(30 * time.Second)
	for _, name := range names {
		for {
			out, _ := s.mustKubectl(t, nil, "get", "apiservice", name, "-o", `jsonpath={.status.conditions[?(@.type=="Available")].status} {.status.conditions[?(@.type=="Available")].reason}`)
			status, reason, _ := strings.Cut(strings.TrimSpace(out), " ")
			if status == "False" {
				if reason != "MissingEndpoints" && reason != "EndpointsNotFound" {
					t.Errorf("APIService %s is Available=False with reason %q; want MissingEndpoints or EndpointsNotFound (the reasons docs/install.md explains)", name, reason)
				}
				break
			}
			if status == "True" {
				t.Errorf("APIService %s is Available=True although no adapter pod runs", name)
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("APIService %s has no Available condition after 30 s (got %q)", name, out)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	out, _ := s.mustKubectl(t, nil, "get", "apiservices", "-l", "app.kubernetes.io/name=promadapter")
	t.Logf("kubectl get apiservices:\n%s", out)
}

// helm returns the helm binary: $HELM, else the one test/tools/deps.sh builds, else helm on
// PATH; "" when there is none.
func helm() string {
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	if bins, err := testbed.FindBins(); err == nil && bins.Helm != "" {
		if _, err := os.Stat(bins.Helm); err == nil {
			return bins.Helm
		}
	}
	h, _ := exec.LookPath("helm")
	return h
}

func (s *deploySuite) testHelmChart(t *testing.T) {
	helmBin := helm()
	if helmBin == "" {
		t.Skip("helm is not installed (Debian has no helm package; test/tools/deps.sh builds one): the chart is not checked; set HELM=/path/to/helm to check it")
	}
	version, err := s.cluster.Client.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	const namespace = "promadapter-chart"
	s.mustKubectl(t, nil, "create", "namespace", namespace)
	caPEM, err := os.ReadFile(s.cluster.Certs.CACert)
	if err != nil {
		t.Fatal(err)
	}
	chart := filepath.Join(s.repo, "deploy", "chart", "promadapter")
	for i, c := range []struct {
		name   string
		values string
		want   []string // the APIServices the release registers
	}{
		{
			name:   "default values",
			values: "",
			want:   []string{"v1beta1.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io", "v1beta1.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"},
		},
		{
			name: "external metrics left to KEDA, own rules, a verified serving certificate",
			values: `apis: {metrics: true, custom: true, external: false}
config: |
  rules:
    - seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
      resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
      metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
tls: {insecureSkipTLSVerify: false, secretName: promadapter-serving-cert, caBundle: ` + base64.StdEncoding.EncodeToString(caPEM) + `}
extraArgs: ["--metrics-relist-interval=2m", "--prometheus-header=X-Scope-OrgID=tenant 1"]
replicas: 2
podDisruptionBudget: {enabled: true}
rbac:
  extraRules:
    - apiGroups: [batch]
      resources: [cronjobs]
      verbs: [get, list, watch]
`,
			want: []string{"v1beta1.custom.metrics.k8s.io", "v1beta1.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"},
		},
		{
			name:   "cert-manager injects the CA that verifies the adapter",
			values: "tls: {insecureSkipTLSVerify: false, secretName: promadapter-serving-cert}\napiServiceAnnotations: {cert-manager.io/inject-ca-from: promadapter-chart/promadapter-serving-cert}\n",
			want:   []string{"v1beta1.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io", "v1beta1.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"},
		},
		{
			name:   "metrics.k8s.io left to metrics-server",
			values: "apis: {metrics: false}\n",
			want:   []string{"v1beta1.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			valuesFile := filepath.Join(s.dir, fmt.Sprintf("helm-values-%d.yaml", i))
			if err := os.WriteFile(valuesFile, []byte(c.values), 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"template", "promadapter", chart, "--namespace=" + namespace, "--kube-version=" + version.GitVersion, "--values=" + valuesFile}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, helmBin, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			rendered, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s %s: %v\n%s", helmBin, strings.Join(args, " "), err, stderr.String())
			}
			objects := decodeObjects(t, "helm template", rendered)
			var got []string
			for _, o := range objects {
				if o.GetKind() == "APIService" {
					got = append(got, o.GetName())
				}
			}
			sort.Strings(got)
			if !slices.Equal(got, c.want) {
				t.Errorf("the release registers APIServices %v, want %v", got, c.want)
			}
			checkWiring(t, objects)
			_, kubectlErr := s.mustKubectl(t, rendered, "apply", "--dry-run=server", "--validate=strict", "-f", "-")
			noWarnings(t, "helm template | kubectl apply --dry-run=server", kubectlErr)
		})
	}
}

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
