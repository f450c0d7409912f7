package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// rawAPI sends a GET through kube-apiserver, as `kubectl get --raw` does, and returns the
// status and body even for a failure: the body carries the reason (an x509 error, the
// adapter's message).
type rawAPI interface {
	Get(ctx context.Context, path string) (status int, body []byte, err error)
}

// restRaw is rawAPI over a client-go REST client.
type restRaw struct{ client rest.Interface }

func (r restRaw) Get(ctx context.Context, path string) (int, []byte, error) {
	res := r.client.Get().AbsPath(path).Do(ctx)
	var status int
	res.StatusCode(&status)
	body, err := res.Raw()
	return status, body, err
}

// answer is one timed request through kube-apiserver.
type answer struct {
	path    string
	status  int
	body    []byte
	err     error
	elapsed time.Duration
}

func (d *doctor) get(ctx context.Context, path string) answer {
	start := time.Now()
	status, body, err := d.raw.Get(ctx, path)
	return answer{path, status, body, err, time.Since(start).Round(time.Millisecond)}
}

// evidence is the request line of an answer: what was asked, the status, the time taken.
func (a answer) evidence() string {
	return fmt.Sprintf("GET %s: %d in %s", a.path, a.status, a.elapsed)
}

// failedCheck fills c from a failed answer: the plain cause and its fix.
func failedCheck(c Check, a answer) Check {
	cause, fix := diagnose(a.status, a.body, a.err)
	c.Status, c.Summary, c.Fix = Fail, cause, fix
	c.Evidence = append(c.Evidence, a.evidence(), "answer: "+message(a.body, a.err))
	return c
}

// message is the text of a failed answer: a Status' message, else the body's start, else the
// transport error.
func message(body []byte, err error) string {
	var status metav1.Status
	if json.Unmarshal(body, &status) == nil && status.Message != "" {
		return status.Message
	}
	if text := strings.TrimSpace(string(body)); text != "" {
		if len(text) > 400 {
			text = text[:400] + "…"
		}
		return text
	}
	if err != nil {
		return err.Error()
	}
	return "(empty)"
}

// diagnose turns a failed answer through kube-apiserver into a plain cause and the fix
// (docs/install.md, Troubleshooting).
func diagnose(status int, body []byte, err error) (cause, fix string) {
	msg := message(body, err)
	has := func(s string) bool { return strings.Contains(msg, s) }
	switch {
	case status == 0:
		return "kube-apiserver did not answer: " + msg, "check the kubeconfig's server and credentials (kubectl get --raw /readyz)"
	case has("x509: certificate signed by unknown authority"):
		return "kube-apiserver does not trust the serving certificate: the APIService's caBundle did not sign it",
			"put the CA that signed the serving certificate into the APIService's caBundle (see the TLS check); the APIService may still say Available: its availability check does not verify certificates"
	case has("x509: certificate has expired") || has("not yet valid"):
		return "the serving certificate has expired (or is not yet valid)", "renew the serving certificate (see the TLS check)"
	case has("x509: certificate is valid for"):
		return "the serving certificate does not name <service>.<namespace>.svc of the APIService's Service", "issue a certificate whose DNS names include the name kube-apiserver checks (see the TLS check)"
	case has("x509:"):
		return "kube-apiserver rejects the serving certificate", "see the TLS check"
	case has("error trying to reach service"):
		return "kube-apiserver cannot connect to the APIService's Service",
			"allow the control plane to reach the adapter's pods on their port (firewall, NetworkPolicy); without kube-proxy on the control plane, start kube-apiserver with --enable-aggregator-routing=true"
	case status == 503 && strings.EqualFold(strings.TrimSpace(msg), "service unavailable"):
		return "the APIService is not Available: kube-apiserver has nowhere to send the request", "see the APIService checks above"
	case status == 401:
		return "the adapter did not accept kube-apiserver's front-proxy client certificate (401)",
			"the adapter must read kube-system/extension-apiserver-authentication (RBAC check) and kube-apiserver must run with --requestheader-client-ca-file and --proxy-client-cert-file"
	case has("subjectaccessreviews.authorization.k8s.io is forbidden") || has("tokenreviews.authentication.k8s.io is forbidden"):
		return "the adapter may not check its callers (TokenReview, SubjectAccessReview)", "bind system:auth-delegator to the adapter's ServiceAccount (see the RBAC checks)"
	case has("refused to let the adapter list and watch"):
		return "the adapter's ServiceAccount may not list and watch what the request needs", "extend the adapter's ClusterRole (see the RBAC checks; docs/install.md, RBAC)"
	case status == 403:
		return "you (the kubeconfig's user) may not read it: " + msg, "run doctor as a user who may read the metrics APIs (cluster-admin, or view in the namespace)"
	case has("Prometheus at") || has("backend "):
		return "the adapter's query to Prometheus failed", "see the Prometheus checks; the adapter's --prometheus-url and credentials are in its Deployment"
	case status == 404 && (has("the server could not find the requested resource") || msg == "404 page not found"):
		return "kube-apiserver does not serve this group: its APIService is missing or not Available", "see the APIService checks above"
	case status == 404:
		return "the adapter answered 404: " + msg, "see the rules and Prometheus checks: no rule serves this metric for these objects, or Prometheus has no data for them"
	}
	return fmt.Sprintf("failed with %d", status), "kubectl get --raw PATH -v=8 shows the whole answer; the adapter's log often says more"
}

// metricList is the part of a NodeMetricsList or PodMetricsList, or a metric value list, doctor
// reads: how many items.
type metricList struct {
	Items []json.RawMessage `json:"items"`
}

// checkEndToEnd sends, through kube-apiserver, what kubectl top and an HPA send, and times them.
func (d *doctor) checkEndToEnd(ctx context.Context, in *install, namespace string, nodes int) []Check {
	var checks []Check
	top := func(name, path, what string, want int) Check {
		c := Check{Section: sectionEndToEnd, Name: name}
		c.Evidence = servedBy(in, "v1beta1.metrics.k8s.io")
		a := d.get(ctx, path)
		if a.err != nil {
			return failedCheck(c, a)
		}
		var list metricList
		if err := json.Unmarshal(a.body, &list); err != nil {
			c.Status, c.Summary = Fail, "the answer is not a metrics list: "+err.Error()
			return c
		}
		c.Evidence = append(c.Evidence, a.evidence())
		c.Status, c.Summary = Pass, fmt.Sprintf("%d %s with usage in %s", len(list.Items), what, a.elapsed)
		if want > 0 && len(list.Items) == 0 {
			c.Status, c.Summary = Fail, fmt.Sprintf("answered, but none of the %d %s has usage", want, what)
			if what == "pods" {
				c.Summary = fmt.Sprintf("answered, but none of the %d running pods has usage", want)
			}
			c.Fix = "see the cAdvisor and node source checks: Prometheus has no usage for them"
		} else if want > 0 && len(list.Items) < want {
			c.Status = Warn
			c.Summary += fmt.Sprintf(" of %d", want)
			c.Fix = "objects without usage series are left out (for pods: every container needs cpu and memory series); see the Prometheus checks"
		}
		return c
	}
	checks = append(checks, top("kubectl top nodes", "/apis/metrics.k8s.io/v1beta1/nodes", "nodes", nodes))
	running := 0 // only running pods have usage
	if list, err := d.kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{FieldSelector: "status.phase=Running"}); err == nil {
		running = len(list.Items)
	}
	checks = append(checks, top("kubectl top pods -n "+namespace, "/apis/metrics.k8s.io/v1beta1/namespaces/"+namespace+"/pods", "pods", running))
	version := "v1beta2"
	if in.apis["v1beta2.custom.metrics.k8s.io"] == nil {
		version = "v1beta1"
	}
	checks = append(checks, d.metricRequest(ctx, "custom metric", "/apis/custom.metrics.k8s.io/"+version, namespace))
	if b := in.backends[refOf(in.apis["v1beta1.external.metrics.k8s.io"])]; b == nil || b.owner == ownerPromadapter {
		checks = append(checks, d.metricRequest(ctx, "external metric", "/apis/external.metrics.k8s.io/v1beta1", namespace))
	}
	return checks
}

// servedBy is evidence that a group version goes to a server other than promadapter.
func servedBy(in *install, api string) []string {
	if b := in.backends[refOf(in.apis[api])]; b != nil && b.owner != ownerPromadapter {
		return []string{fmt.Sprintf("APIService %s sends it to %s (Service %s)", api, b.owner, b.ref)}
	}
	return nil
}

func refOf(a *apiService) nsName {
	if a == nil {
		return nsName{}
	}
	ref, _ := a.serviceRef()
	return ref
}

// metricRequest lists a group version's metrics and reads one of them in namespace, preferring
// a metric of pods (what an HPA of type Pods reads).
func (d *doctor) metricRequest(ctx context.Context, name, base, namespace string) Check {
	c := Check{Section: sectionEndToEnd, Name: name}
	a := d.get(ctx, base)
	if a.err != nil {
		return failedCheck(c, a)
	}
	var list metav1.APIResourceList
	if err := json.Unmarshal(a.body, &list); err != nil {
		c.Status, c.Summary = Fail, "the discovery answer is not a resource list: "+err.Error()
		return c
	}
	c.Evidence = []string{a.evidence() + fmt.Sprintf(", %d metrics listed", len(list.APIResources))}
	if len(list.APIResources) == 0 {
		c.Status, c.Summary = Fail, base+" lists no metric: no rule matched a series"
		c.Fix = "see the rules check: each rule's seriesQuery must match series in Prometheus"
		return c
	}
	resources := list.APIResources
	sort.SliceStable(resources, func(i, j int) bool {
		pi, pj := strings.HasPrefix(resources[i].Name, "pods/"), strings.HasPrefix(resources[j].Name, "pods/")
		if pi != pj {
			return pi
		}
		return resources[i].Name < resources[j].Name
	})
	r := resources[0]
	kind, metric, isObject := strings.Cut(r.Name, "/")
	var path string
	switch {
	case !isObject: // external: the name is the metric
		path = fmt.Sprintf("%s/namespaces/%s/%s", base, namespace, url.PathEscape(r.Name))
	case kind == "namespaces":
		path = fmt.Sprintf("%s/namespaces/%s/metrics/%s", base, namespace, url.PathEscape(metric))
	case r.Namespaced:
		path = fmt.Sprintf("%s/namespaces/%s/%s/*/%s", base, namespace, kind, url.PathEscape(metric))
	default:
		path = fmt.Sprintf("%s/%s/*/%s", base, kind, url.PathEscape(metric))
	}
	v := d.get(ctx, path)
	if v.err != nil {
		return failedCheck(c, v)
	}
	var values metricList
	if err := json.Unmarshal(v.body, &values); err != nil {
		c.Status, c.Summary = Fail, "the answer is not a metric value list: "+err.Error()
		return c
	}
	c.Evidence = append(c.Evidence, v.evidence())
	c.Status, c.Summary = Pass, fmt.Sprintf("%s: %d values in %s", r.Name, len(values.Items), v.elapsed)
	if len(values.Items) == 0 {
		c.Status = Warn
		c.Summary += " (none in namespace " + namespace + ")"
		c.Fix = "pass --namespace with a namespace whose objects have this metric"
	}
	return c
}
