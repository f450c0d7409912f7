package doctor

import (
	"context"
	"fmt"
	"sort"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// hpaController is the identity the HPA controller reads metrics with.
var hpaController = nsName{"kube-system", "horizontal-pod-autoscaler"}

// watchedResources are the objects the adapter's informers list and watch: the resources of
// the ClusterRole in deploy/manifests/rbac.yaml.
var watchedResources = []struct{ group, resource string }{
	{"", "pods"}, {"", "nodes"}, {"", "namespaces"}, {"", "services"}, {"", "endpoints"}, {"", "replicationcontrollers"},
	{"apps", "deployments"}, {"apps", "replicasets"}, {"apps", "statefulsets"}, {"apps", "daemonsets"},
	{"networking.k8s.io", "ingresses"},
}

// access is one SubjectAccessReview question.
type access struct {
	authorizationv1.ResourceAttributes
}

func (a access) String() string {
	s := a.Verb + " " + a.Resource
	if a.Group != "" {
		s += "." + a.Group
	}
	if a.Subresource != "" {
		s += "/" + a.Subresource
	}
	if a.Name != "" {
		s += " " + a.Name
	}
	if a.Namespace != "" {
		s += " in " + a.Namespace
	}
	return s
}

// checkRBAC asks kube-apiserver, with SubjectAccessReviews, whether the adapter's ServiceAccount
// may do what the adapter does, and whether the HPA controller may read custom and external
// metrics. extra are resources the rules map labels to beyond watchedResources.
func (d *doctor) checkRBAC(ctx context.Context, in *install, extra []access) []Check {
	sa := in.serviceAccount
	user := "system:serviceaccount:" + sa.Namespace + ":" + sa.Name
	subject := fmt.Sprintf("--serviceaccount=%s:%s", sa.Namespace, sa.Name)
	var checks []Check

	account := Check{Section: sectionRBAC, Name: "ServiceAccount " + sa.String(), Evidence: []string{"found through " + in.saFrom}}
	if _, err := d.kube.CoreV1().ServiceAccounts(sa.Namespace).Get(ctx, sa.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		account.Status, account.Summary = Fail, "does not exist: the adapter's pods cannot start"
		account.Fix = "kubectl apply -f deploy/manifests/serviceaccount.yaml"
	} else if err != nil {
		account.Status, account.Summary = Skip, "cannot read it: "+err.Error()
	} else {
		account.Status, account.Summary = Pass, "exists; the adapter acts as "+user
	}
	checks = append(checks, account)

	var informers []access
	for _, r := range watchedResources {
		for _, verb := range []string{"list", "watch"} {
			informers = append(informers, access{authorizationv1.ResourceAttributes{Verb: verb, Group: r.group, Resource: r.resource}})
		}
	}
	informers = append(informers, extra...)
	checks = append(checks, d.rightsCheck(ctx, sa, Check{Name: "the adapter's informers (list and watch)",
		Fix: "grant the denied rights in ClusterRole promadapter and bind it (deploy/manifests/rbac.yaml): kubectl apply -f deploy/manifests/rbac.yaml, or\n" +
			"  kubectl create clusterrolebinding promadapter --clusterrole=promadapter " + subject +
			"\n(a resource a rule maps a label to beyond the defaults goes into the ClusterRole too; Helm: rbac.extraRules)"},
		"kube-apiserver refuses the adapter's caches: kubectl top and custom metrics of those resources fail", informers))
	checks = append(checks, d.rightsCheck(ctx, sa, Check{Name: "delegated authentication and authorization",
		Fix: "kubectl create clusterrolebinding promadapter-auth-delegator --clusterrole=system:auth-delegator " + subject + " (deploy/manifests/rbac.yaml)"},
		"the adapter cannot check who calls it: every request fails with 500 \"subjectaccessreviews.authorization.k8s.io is forbidden\"",
		[]access{
			{authorizationv1.ResourceAttributes{Verb: "create", Group: "authentication.k8s.io", Resource: "tokenreviews"}},
			{authorizationv1.ResourceAttributes{Verb: "create", Group: "authorization.k8s.io", Resource: "subjectaccessreviews"}},
		}))
	var reader []access
	for _, verb := range []string{"get", "list", "watch"} {
		reader = append(reader, access{authorizationv1.ResourceAttributes{Verb: verb, Resource: "configmaps",
			Namespace: extensionAuthConfigMap.Namespace, Name: extensionAuthConfigMap.Name}})
	}
	checks = append(checks, d.rightsCheck(ctx, sa, Check{Name: "reading the front-proxy CA (" + extensionAuthConfigMap.String() + ")",
		Fix: "kubectl -n kube-system create rolebinding promadapter-auth-reader --role=extension-apiserver-authentication-reader " + subject + " (deploy/manifests/rbac.yaml)"},
		"the adapter cannot load the aggregation layer's client CA: it exits at start with \"unable to load configmap based request-header-client-ca-file: ... forbidden\"", reader))

	var hpa []access
	for _, verb := range []string{"get", "list"} {
		hpa = append(hpa,
			access{authorizationv1.ResourceAttributes{Verb: verb, Group: "custom.metrics.k8s.io", Resource: "pods", Subresource: "some_metric", Namespace: "default"}},
			access{authorizationv1.ResourceAttributes{Verb: verb, Group: "external.metrics.k8s.io", Resource: "some_metric", Namespace: "default"}})
	}
	checks = append(checks, d.rightsCheck(ctx, hpaController, Check{Name: "the HPA controller reads custom and external metrics",
		Fix: "kubectl apply -f deploy/manifests/rbac-hpa-metrics-reader.yaml (Helm: rbac.hpaMetricsReader=true); Kubernetes grants it in the bootstrap ClusterRole system:controller:horizontal-pod-autoscaler, which was trimmed here"},
		"HPAs report FailedGetPodsMetric / FailedGetExternalMetric ... forbidden", hpa))
	return checks
}

// rightsCheck asks every question for the ServiceAccount sa and fills c: Pass when all are
// allowed, else Fail with the denied ones, what that breaks, and the bindings sa holds.
func (d *doctor) rightsCheck(ctx context.Context, sa nsName, c Check, breaks string, questions []access) Check {
	c.Section = sectionRBAC
	user := "system:serviceaccount:" + sa.Namespace + ":" + sa.Name
	var denied []access
	for _, q := range questions {
		review, err := d.kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + sa.Namespace, "system:authenticated"},
			ResourceAttributes: &q.ResourceAttributes,
		}}, metav1.CreateOptions{})
		if err != nil {
			c.Status, c.Summary, c.Fix = Skip, "cannot ask kube-apiserver (SubjectAccessReview): "+err.Error(), ""
			return c
		}
		if !review.Status.Allowed {
			denied = append(denied, q)
		}
	}
	if len(denied) == 0 {
		c.Status, c.Summary = Pass, fmt.Sprintf("%s may %s", user, summarize(questions))
		return c
	}
	c.Status, c.Summary = Fail, fmt.Sprintf("%s may not %s", user, summarize(denied))
	c.Evidence = []string{breaks, "SubjectAccessReviews for " + user + ": " + fmt.Sprintf("%d of %d denied", len(denied), len(questions))}
	if bound := d.bindingsOf(ctx, sa); bound != "" {
		c.Evidence = append(c.Evidence, bound)
	}
	return c
}

// summarize names the questions briefly: "list, watch pods, nodes, ...".
func summarize(questions []access) string {
	var verbs, things []string
	seen := map[string]bool{}
	for _, q := range questions {
		if !seen["v"+q.Verb] {
			seen["v"+q.Verb] = true
			verbs = append(verbs, q.Verb)
		}
		thing := access{authorizationv1.ResourceAttributes{Resource: q.Resource, Group: q.Group, Subresource: q.Subresource, Name: q.Name, Namespace: q.Namespace}}.String()
		thing = strings.TrimSpace(thing)
		if !seen["r"+thing] {
			seen["r"+thing] = true
			things = append(things, thing)
		}
	}
	return strings.Join(verbs, ", ") + " " + strings.Join(things, ", ")
}

// bindingsOf lists the ClusterRoleBindings, and the RoleBindings of kube-system and the
// ServiceAccount's namespace, that bind sa: evidence of what it holds.
func (d *doctor) bindingsOf(ctx context.Context, sa nsName) string {
	binds := func(subjects []rbacv1.Subject) bool {
		for _, s := range subjects {
			if s.Kind == rbacv1.ServiceAccountKind && s.Name == sa.Name && s.Namespace == sa.Namespace {
				return true
			}
		}
		return false
	}
	var held []string
	if list, err := d.kube.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{}); err == nil {
		for _, b := range list.Items {
			if binds(b.Subjects) {
				held = append(held, fmt.Sprintf("ClusterRoleBinding %s → %s %s", b.Name, b.RoleRef.Kind, b.RoleRef.Name))
			}
		}
	}
	for _, ns := range []string{"kube-system", sa.Namespace} {
		if list, err := d.kube.RbacV1().RoleBindings(ns).List(ctx, metav1.ListOptions{}); err == nil {
			for _, b := range list.Items {
				if binds(b.Subjects) {
					held = append(held, fmt.Sprintf("RoleBinding %s/%s → %s %s", b.Namespace, b.Name, b.RoleRef.Kind, b.RoleRef.Name))
				}
			}
		}
		if sa.Namespace == "kube-system" {
			break
		}
	}
	sort.Strings(held)
	if len(held) == 0 {
		return "no ClusterRoleBinding, and no RoleBinding in kube-system or " + sa.Namespace + ", binds " + sa.String()
	}
	return sa.String() + " is bound by: " + strings.Join(held, "; ")
}
