package doctor

import (
	"context"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestRBACNamesWhatIsDenied answers SubjectAccessReviews as a cluster whose adapter holds only
// system:auth-delegator would, and checks that each missing right is named with its binding.
func TestRBACNamesWhatIsDenied(t *testing.T) {
	sa := nsName{"promadapter", "promadapter"}
	d := newTestDoctor([]runtime.Object{
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "promadapter-auth-delegator"},
			RoleRef:  rbacv1.RoleRef{Kind: "ClusterRole", Name: "system:auth-delegator"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: sa.Namespace, Name: sa.Name}}},
	})
	var asked []string
	d.kube.(*fake.Clientset).PrependReactor("create", "subjectaccessreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
		review := action.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		a := review.Spec.ResourceAttributes
		asked = append(asked, review.Spec.User+" "+a.Verb+" "+a.Resource)
		allowed := a.Group == "authentication.k8s.io" || a.Group == "authorization.k8s.io" || // system:auth-delegator
			review.Spec.User == "system:serviceaccount:kube-system:horizontal-pod-autoscaler" // its bootstrap role
		review.Status.Allowed = allowed
		return true, review, nil
	})
	in := &install{serviceAccount: sa, saFrom: "Deployment promadapter/promadapter", backends: map[nsName]*backend{}}
	checks := d.checkRBAC(context.Background(), in, []access{{authorizationv1.ResourceAttributes{Verb: "list", Group: "batch", Resource: "jobs"}}})

	informers := findCheck(t, checks, "the adapter's informers (list and watch)")
	if informers.Status != Fail {
		t.Errorf("informers: %+v, want a failure", informers)
	}
	mustContain(t, "informers", informers.Summary, "system:serviceaccount:promadapter:promadapter may not list, watch pods, nodes", "jobs.batch")
	mustContain(t, "informers' evidence", strings.Join(informers.Evidence, "\n"), "23 of 23 denied",
		"promadapter/promadapter is bound by: ClusterRoleBinding promadapter-auth-delegator → ClusterRole system:auth-delegator")
	mustContain(t, "informers' fix", informers.Fix, "kubectl create clusterrolebinding promadapter --clusterrole=promadapter --serviceaccount=promadapter:promadapter")

	reader := findCheck(t, checks, "reading the front-proxy CA (kube-system/extension-apiserver-authentication)")
	mustContain(t, "reader", reader.Summary+"\n"+reader.Fix, "may not get, list, watch configmaps extension-apiserver-authentication in kube-system",
		"kubectl -n kube-system create rolebinding promadapter-auth-reader --role=extension-apiserver-authentication-reader --serviceaccount=promadapter:promadapter")

	for _, name := range []string{"delegated authentication and authorization", "the HPA controller reads custom and external metrics"} {
		if c := findCheck(t, checks, name); c.Status != Pass {
			t.Errorf("%s: %+v, want a pass", name, c)
		}
	}
	if sa := findCheck(t, checks, "ServiceAccount promadapter/promadapter"); sa.Status != Fail || !strings.Contains(sa.Fix, "serviceaccount.yaml") {
		t.Errorf("a missing ServiceAccount: %+v, want a failure with the manifest to apply", sa)
	}
	if len(asked) != 2*11+1+2+3+4 {
		t.Errorf("%d SubjectAccessReviews, want 32: %v", len(asked), asked)
	}
}
