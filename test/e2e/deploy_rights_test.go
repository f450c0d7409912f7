//go:build e2e

// TestDeploy's RBAC steps: who may do what before and after the install, and the helpers that ask
// the server.

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

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
