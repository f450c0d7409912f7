package doctor

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// checkAPIServices checks each of the four APIServices: registered, owned by promadapter, its
// Service present with somewhere to send requests, and Available.
func (d *doctor) checkAPIServices(ctx context.Context, in *install) []Check {
	var checks []Check
	for _, api := range adapterAPIs {
		checks = append(checks, d.checkAPIService(ctx, in, api))
	}
	return checks
}

func (d *doctor) checkAPIService(ctx context.Context, in *install, api adapterAPI) Check {
	c := Check{Section: sectionAPIServices, Name: api.name}
	a := in.apis[api.name]
	if a == nil {
		if in.adapter.disables(api) {
			c.Status, c.Summary = Pass, fmt.Sprintf("not registered, as the adapter runs with --%s=false", api.flag)
			return c
		}
		c.Status, c.Summary = Fail, "not registered: kube-apiserver answers 404 for "+api.group+"/"+api.version
		c.Evidence = []string{fmt.Sprintf("kubectl get apiservice %s: NotFound", api.name), groupUsers(api.group)}
		c.Fix = fmt.Sprintf("kubectl apply -f deploy/manifests/%s (Helm: apis.%s=true); or, if another server is to keep %s, pass --%s=false to the adapter",
			api.file, helmKey(api.group), api.group, api.flag)
		return c
	}
	ref, port := a.serviceRef()
	if ref.Name == "" {
		c.Status, c.Summary = Fail, "registered without a Service: kube-apiserver serves it itself, not the adapter"
		c.Fix = fmt.Sprintf("kubectl replace -f deploy/manifests/%s", api.file)
		return c
	}
	b := in.backends[ref]
	cond, hasCond := a.available()
	condText := "no Available condition yet"
	if hasCond {
		condText = fmt.Sprintf("Available=%s", cond.Status)
		if cond.Status != "True" {
			condText += fmt.Sprintf(" (%s): %s", cond.Reason, cond.Message)
		}
	}
	c.Evidence = append(c.Evidence, fmt.Sprintf("spec.service %s port %d; %s", ref, port, condText))

	if b.owner != ownerPromadapter {
		return ownedByOther(c, in, api, b, cond)
	}
	if b.readErr != nil {
		c.Status, c.Summary = Fail, "cannot read Service "+ref.String()+": "+b.readErr.Error()
		return c
	}
	if b.service == nil {
		c.Status, c.Summary = Fail, fmt.Sprintf("points at Service %s, which does not exist", ref)
		c.Fix = fmt.Sprintf("point it at the adapter's Service: kubectl replace -f deploy/manifests/%s (it names %s; change the namespace there if you installed elsewhere), or create the Service: kubectl apply -f deploy/manifests/service.yaml", api.file, defaultAdapter)
		if in.adapter.service != nil && in.adapter.ref != ref {
			c.Evidence = append(c.Evidence, fmt.Sprintf("the adapter's Service is %s (named by the other APIServices)", in.adapter.ref))
			c.Fix = fmt.Sprintf(`kubectl patch apiservice %s --type=merge -p '{"spec":{"service":{"namespace":"%s","name":"%s"}}}'`, api.name, in.adapter.ref.Namespace, in.adapter.ref.Name)
		}
		return c
	}
	reach, problem := d.serviceReach(ctx, b, port)
	c.Evidence = append(c.Evidence, reach)
	switch {
	case problem != "":
		c.Status, c.Summary = Fail, problem
		c.Fix = fmt.Sprintf("kubectl -n %s get pods; kubectl -n %s logs deploy/%s | head -50 (docs/install.md, Troubleshooting: MissingEndpoints)", ref.Namespace, ref.Namespace, deploymentName(b))
	case !hasCond:
		c.Status, c.Summary = Warn, "no Available condition yet: kube-apiserver has not checked it"
		c.Fix = "run doctor again in a few seconds"
	case cond.Status != "True":
		c.Status, c.Summary = Fail, fmt.Sprintf("not Available (%s)", cond.Reason)
		c.Fix = availabilityFix(cond, ref, port, api)
	default:
		c.Status, c.Summary = Pass, fmt.Sprintf("Available, served by promadapter (Service %s port %d)", ref, port)
	}
	return c
}

// ownedByOther is the verdict on an APIService that names another server's Service.
func ownedByOther(c Check, in *install, api adapterAPI, b *backend, cond apiServiceCondition) Check {
	who := b.owner
	if b.deployment != nil {
		c.Evidence = append(c.Evidence, fmt.Sprintf("Deployment %s/%s runs %s", b.deployment.Namespace, b.deployment.Name, images(b)))
	}
	if in.adapter.disables(api) {
		c.Status, c.Summary = Pass, fmt.Sprintf("left to %s (Service %s), as the adapter runs with --%s=false", who, b.ref, api.flag)
		return c
	}
	c.Status, c.Summary = Fail, fmt.Sprintf("served by %s (Service %s), not by promadapter", who, b.ref)
	c.Evidence = append(c.Evidence, fmt.Sprintf("only one server answers %s; the adapter serves it too (--%s is not false)", api.group, api.flag))
	switch who {
	case ownerMetricsServer:
		c.Fix = fmt.Sprintf("switch without a gap (docs/migration.md, \"Switching kubectl top without a gap\"): keep metrics-server's spec for a rollback,\n"+
			"  printf '[{\"op\":\"replace\",\"path\":\"/spec\",\"value\":%%s}]\\n' \"$(kubectl get apiservice %s -o jsonpath='{.spec}')\" > metrics-server-rollback.json\n"+
			"then kubectl replace -f deploy/manifests/%s; or keep metrics-server and pass --%s=false to the adapter", api.name, api.file, api.flag)
	case ownerKEDA:
		c.Fix = fmt.Sprintf("either keep KEDA's and pass --%s=false to the adapter, or let promadapter own the group and forward KEDA's metrics (deploy/components/keda-forward; docs/install.md, \"Coexisting with KEDA\"), then kubectl replace -f deploy/manifests/%s", api.flag, api.file)
	case ownerPrometheusAdapter:
		c.Fix = fmt.Sprintf("docs/migration.md, \"From prometheus-adapter\": carry the ConfigMap and flags over, then kubectl replace -f deploy/manifests/%s and remove prometheus-adapter's objects except its APIServices; or pass --%s=false to the adapter", api.file, api.flag)
	default:
		c.Fix = fmt.Sprintf("if promadapter is to serve %s: kubectl replace -f deploy/manifests/%s; else pass --%s=false to the adapter", api.group, api.file, api.flag)
	}
	if cond.Status == "False" {
		c.Evidence = append(c.Evidence, fmt.Sprintf("and %s is not Available (%s): %s", who, cond.Reason, cond.Message))
	}
	return c
}

// serviceReach says how the aggregator reaches a Service's backends, and what stops it.
func (d *doctor) serviceReach(ctx context.Context, b *backend, port int32) (evidence, problem string) {
	svc := b.service
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return fmt.Sprintf("Service %s is an ExternalName for %s: the aggregator dials %s:%d by name", b.ref, svc.Spec.ExternalName, svc.Spec.ExternalName, port), ""
	}
	var ports []string
	found := false
	for _, p := range svc.Spec.Ports {
		ports = append(ports, fmt.Sprint(p.Port))
		found = found || p.Port == port
	}
	if !found {
		return fmt.Sprintf("Service %s has ports [%s]", b.ref, strings.Join(ports, ", ")),
			fmt.Sprintf("the APIService names port %d, which Service %s does not have", port, b.ref)
	}
	eps, err := d.kube.DiscoveryV1().EndpointSlices(b.ref.Namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + b.ref.Name})
	if err != nil {
		return "cannot list the Service's EndpointSlices: " + err.Error(), ""
	}
	ready, total := 0, 0
	for _, s := range eps.Items {
		for _, e := range s.Endpoints {
			total += len(e.Addresses)
			if e.Conditions.Ready == nil || *e.Conditions.Ready {
				ready += len(e.Addresses)
			}
		}
	}
	evidence = fmt.Sprintf("Service %s: %d ready of %d endpoints", b.ref, ready, total)
	if ready > 0 {
		return evidence, ""
	}
	if len(svc.Spec.Selector) > 0 {
		evidence += "; " + d.podStates(ctx, b.ref.Namespace, svc.Spec.Selector)
	}
	return evidence, fmt.Sprintf("Service %s has no ready endpoint: no adapter pod is ready", b.ref)
}

// podStates summarises the pods a selector picks: name, phase, readiness and waiting reason.
func (d *doctor) podStates(ctx context.Context, namespace string, selector map[string]string) string {
	pods, err := d.kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(selector).String()})
	if err != nil {
		return "cannot list its pods: " + err.Error()
	}
	if len(pods.Items) == 0 {
		return "no pod matches its selector " + labels.SelectorFromSet(selector).String()
	}
	var states []string
	for _, p := range pods.Items {
		state := string(p.Status.Phase)
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil {
				state += " " + w.Reason
			} else if !cs.Ready {
				state += " not ready"
			}
		}
		states = append(states, p.Name+" "+state)
	}
	return "pods: " + strings.Join(states, ", ")
}

// Messages of a FailedDiscoveryCheck that mean kube-apiserver cannot reach the endpoint.
var unreachableMessage = regexp.MustCompile(`(?i)context deadline exceeded|Client\.Timeout|i/o timeout|no route to host|connection refused|network is unreachable|connection reset`)

// availabilityFix explains an Available=False condition (docs/install.md, Troubleshooting).
func availabilityFix(cond apiServiceCondition, ref nsName, port int32, api adapterAPI) string {
	msg := cond.Message
	switch {
	case cond.Reason == "ServiceNotFound":
		return "create the Service or point the APIService at the adapter's: kubectl replace -f deploy/manifests/" + api.file
	case cond.Reason == "MissingEndpoints" || cond.Reason == "EndpointsNotFound":
		return fmt.Sprintf("no ready adapter pod: kubectl -n %s get pods, then kubectl -n %s logs deploy/%s | head -50", ref.Namespace, ref.Namespace, ref.Name)
	case strings.Contains(msg, "x509"):
		return "the certificate: see the TLS checks below (caBundle, the serving certificate's names and expiry)"
	case unreachableMessage.MatchString(msg):
		return fmt.Sprintf("kube-apiserver cannot reach the adapter's pods on port %d: allow the control plane to reach pods on that port (firewall, NetworkPolicy in %s), "+
			"or, when the control plane runs no kube-proxy, start kube-apiserver with --enable-aggregator-routing=true so that it dials the endpoint IPs itself", port, ref.Namespace)
	case strings.Contains(msg, "401") || strings.Contains(msg, "403") || strings.Contains(msg, "Unauthorized") || strings.Contains(msg, "Forbidden"):
		return "the adapter does not accept kube-apiserver's front-proxy client certificate: check the RBAC check of extension-apiserver-authentication below, and that kube-apiserver runs with --requestheader-client-ca-file and --proxy-client-cert-file"
	case strings.Contains(msg, "404"):
		return fmt.Sprintf("the adapter does not serve %s: it runs with --%s=false while the APIService is registered; remove the APIService or turn the flag on", api.group, api.flag)
	}
	return "kubectl get apiservice " + api.name + " -o yaml, and the adapter's log (docs/install.md, Troubleshooting)"
}

// groupUsers says what depends on a group, for the evidence of a missing APIService.
func groupUsers(group string) string {
	switch group {
	case "metrics.k8s.io":
		return "kubectl top and HPAs on cpu/memory use it"
	case "custom.metrics.k8s.io":
		return "HPAs with metrics of type Pods and Object use it"
	}
	return "HPAs with metrics of type External use it"
}

// helmKey is the chart's value that registers a group.
func helmKey(group string) string {
	switch group {
	case "metrics.k8s.io":
		return "metrics"
	case "custom.metrics.k8s.io":
		return "custom"
	}
	return "external"
}

func images(b *backend) string {
	var out []string
	for _, c := range b.deployment.Spec.Template.Spec.Containers {
		out = append(out, c.Image)
	}
	return strings.Join(out, ", ")
}

func deploymentName(b *backend) string {
	if b.deployment != nil {
		return b.deployment.Name
	}
	return b.ref.Name
}
