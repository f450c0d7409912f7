//go:build e2e

// TestDeploy's steps that apply the manifests to the server: dry run, apply, Pod Security and
// APIService availability.

package e2e

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

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
