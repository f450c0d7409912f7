//go:build e2e

// The grants of the rendered RBAC, and how TestRBACIsLeastPrivilege takes one away and waits
// for the server to apply it.

package e2e

import (
	"fmt"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// grant is one right of the rendering: one verb on one resource of one rule of a role, or one
// binding. object is the rendered object that holds it.
type grant struct {
	object         *unstructured.Unstructured
	rule           int // -1 for a binding
	resource, verb string
	check          accessCheck // a request the right allows
}

// accessCheck is a SubjectAccessReview question.
type accessCheck struct {
	user  string
	attrs authorizationv1.ResourceAttributes
}

func (g grant) String() string {
	if g.rule < 0 {
		return objectID(g.object)
	}
	return fmt.Sprintf("%s on %s in %s", g.verb, g.resource, objectID(g.object))
}

// without returns g's role with the verb taken off the resource (a binding is deleted instead).
func (g grant) without() *unstructured.Unstructured {
	o := g.object.DeepCopy()
	rules := roleRules(o)
	r := rules[g.rule]
	var kept []rbacv1.PolicyRule
	kept = append(kept, rules[:g.rule]...)
	if others := without(r.Resources, g.resource); len(others) > 0 {
		kept = append(kept, rbacv1.PolicyRule{APIGroups: r.APIGroups, Resources: others, Verbs: r.Verbs})
	}
	if verbs := without(r.Verbs, g.verb); len(verbs) > 0 {
		kept = append(kept, rbacv1.PolicyRule{APIGroups: r.APIGroups, Resources: []string{g.resource}, Verbs: verbs})
	}
	kept = append(kept, rules[g.rule+1:]...)
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&struct {
		Rules []rbacv1.PolicyRule `json:"rules"`
	}{kept})
	if err != nil {
		panic(err)
	}
	o.Object["rules"] = u["rules"]
	return o
}

func without(list []string, drop string) []string {
	var out []string
	for _, s := range list {
		if s != drop {
			out = append(out, s)
		}
	}
	return out
}

func roleRules(o *unstructured.Unstructured) []rbacv1.PolicyRule {
	var role rbacv1.ClusterRole
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &role); err != nil {
		panic(err)
	}
	return role.Rules
}

// renderedGrants lists every right the rendering grants. Whom a role serves, and what a binding
// allows, is written out here: a new role or binding in the rendering fails the test until it is.
func renderedGrants(t *testing.T, objects []*unstructured.Unstructured) []grant {
	holders := map[string]string{
		"ClusterRole promadapter":                           adapterIdentity,
		"ClusterRole promadapter-aggregated-metrics-reader": viewerIdentity,
	}
	bindingChecks := map[string]authorizationv1.ResourceAttributes{
		"ClusterRoleBinding promadapter":                  {Verb: "list", Resource: "pods"},
		"ClusterRoleBinding promadapter-auth-delegator":   {Verb: "create", Group: "authorization.k8s.io", Resource: "subjectaccessreviews"},
		"RoleBinding kube-system/promadapter-auth-reader": {Verb: "get", Resource: "configmaps", Name: "extension-apiserver-authentication", Namespace: "kube-system"},
	}
	var grants []grant
	for _, o := range objects {
		id := objectID(o)
		switch o.GetKind() {
		case "ClusterRole", "Role":
			user, ok := holders[id]
			if !ok {
				t.Fatalf("the rendering holds %s: say in renderedGrants whom it serves", id)
			}
			for i, r := range roleRules(o) {
				for _, resource := range r.Resources {
					for _, verb := range r.Verbs {
						attrs := authorizationv1.ResourceAttributes{Verb: verb, Group: r.APIGroups[0], Resource: resource}
						grants = append(grants, grant{object: o, rule: i, resource: resource, verb: verb, check: accessCheck{user, attrs}})
					}
				}
			}
		case "ClusterRoleBinding", "RoleBinding":
			attrs, ok := bindingChecks[id]
			if !ok {
				t.Fatalf("the rendering holds %s: say in renderedGrants what it allows", id)
			}
			grants = append(grants, grant{object: o, rule: -1, check: accessCheck{adapterIdentity, attrs}})
		}
	}
	return grants
}

// applyRBAC applies o with the field manager of the first apply, so rules o lacks are removed.
func (s *deploySuite) applyRBAC(t *testing.T, o *unstructured.Unstructured) {
	t.Helper()
	data, err := yaml.Marshal(o.Object)
	if err != nil {
		t.Fatal(err)
	}
	s.mustKubectl(t, data, "apply", "--server-side", "--force-conflicts", "--field-manager="+rbacManager, "-f", "-")
}

// waitAccess waits until the kube-apiserver's answer to c is allowed (the RBAC authorizer and
// the ClusterRole aggregation controller catch up within a second or two).
func (s *deploySuite) waitAccess(t *testing.T, c accessCheck, allowed bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); s.reviewAccess(t, c.user, c.attrs) != allowed; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s, may %s %+v: still %v", c.user, c.attrs, !allowed)
		}
	}
}
