package doctor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/promadapter/promadapter/pkg/promclient"
)

// querier is what the Prometheus checks ask: promclient's Client, the adapter's own.
type querier interface {
	Query(ctx context.Context, query string, ts time.Time) (model.Value, error)
	LabelValues(ctx context.Context, label string, matches []string, start, end time.Time) ([]string, error)
	LabelNames(ctx context.Context, matches []string, start, end time.Time) ([]string, error)
}

// Thresholds of the freshness and clock checks. Prometheus' instant queries look back 5 m, and
// the default rate windows need two samples within 2 m.
const (
	staleAfter   = 2 * time.Minute
	skewWarn     = 10 * time.Second
	skewFail     = 5 * time.Minute
	lookbackSpan = time.Hour
)

// promTarget is the Prometheus doctor checks: its client, where its URL came from, and what
// credentials doctor sends (names and files, never values).
type promTarget struct {
	q           querier
	url         string // redacted
	from        string
	deployment  string // "namespace/name" when the URL is the adapter Deployment's
	credentials string
	// adapterAuth are the Deployment's Prometheus credential flags, for the evidence of a 401.
	adapterAuth []string
}

// statusInMessage finds the status in client_golang's "client error: 401".
var statusInMessage = regexp.MustCompile(`error: (\d{3})`)

// statusOf is the HTTP status of a failed Prometheus call, 0 when it has none.
func statusOf(err error) int {
	var apiErr *v1.Error
	if errors.As(err, &apiErr) {
		if m := statusInMessage.FindStringSubmatch(apiErr.Msg); m != nil {
			code, _ := strconv.Atoi(m[1])
			return code
		}
	}
	return 0
}

// clusterHost reports whether host is a name only cluster DNS resolves.
func clusterHost(host string) bool {
	return strings.HasSuffix(host, ".svc") || strings.Contains(host, ".svc.") || !strings.Contains(host, ".") && host != "localhost" && net.ParseIP(host) == nil
}

// checkReachable asks Prometheus for time(): reachability, credentials, and its clock. It
// returns the checks and whether the others can run.
func (p *promTarget) checkReachable(ctx context.Context, now func() time.Time) ([]Check, bool) {
	c := Check{Section: sectionPrometheus, Name: "reachable, credentials accepted"}
	c.Evidence = []string{"URL from " + p.from + "; doctor sends " + p.credentials}
	start := now()
	v, err := p.q.Query(ctx, "time()", time.Time{})
	end := now()
	if err != nil {
		code := statusOf(err)
		switch {
		case code == 401 || code == 403:
			c.Status, c.Summary = Fail, fmt.Sprintf("Prometheus at %s refused the request with %d: %s", p.url, code, credentialVerdict(code, p.credentials))
			if len(p.adapterAuth) > 0 {
				c.Evidence = append(c.Evidence, "the adapter's Deployment authenticates with "+strings.Join(p.adapterAuth, ", ")+" (files inside the pod, which doctor cannot read)")
			}
			c.Fix = "give doctor, and the adapter's Deployment, the credentials this Prometheus accepts: --prometheus-token-file=FILE (a bearer token), " +
				"--prometheus-auth-config=KUBECONFIG (token, basic auth or client certificate), --prometheus-client-tls-cert-file and --prometheus-client-tls-key-file, " +
				"or --prometheus-auth-incluster (the pod's ServiceAccount token, e.g. behind kube-rbac-proxy)"
			if code == 403 {
				c.Fix += "; a 403 means the identity is known but not allowed: grant it read access to the query API (e.g. RBAC on services/proxy or the proxy's own authorization)"
			}
		case promclient.CauseOf(err) == promclient.CauseUnreachable && p.from != "--prometheus-url" && isDNSError(err) && clusterHost(hostOf(p.url)):
			c.Status, c.Summary = Warn, fmt.Sprintf("%s is a cluster DNS name, not reachable from here", hostOf(p.url))
			c.Evidence = append(c.Evidence, err.Error())
			c.Fix = "check it through a port-forward: kubectl -n NAMESPACE port-forward svc/PROMETHEUS 9090, then run doctor with --prometheus-url=http://127.0.0.1:9090"
		default:
			c.Status, c.Summary = Fail, "cannot query Prometheus at "+p.url
			c.Evidence = append(c.Evidence, err.Error())
			c.Fix = "the URL is wrong or Prometheus is down: point --prometheus-url at the Prometheus HTTP API, e.g. http://prometheus-k8s.monitoring.svc:9090 " +
				"(kubectl get svc -A | grep prometheus); a `no such host` names the Service or namespace; also check NetworkPolicies between the namespaces (docs/install.md, Troubleshooting)"
			if p.deployment != "" {
				ns, name, _ := strings.Cut(p.deployment, "/")
				c.Fix = fmt.Sprintf("the adapter runs with this URL: kubectl -n %s edit deployment %s, and set its --prometheus-url=%s to the Prometheus HTTP API, e.g. http://prometheus-k8s.monitoring.svc:9090 ", ns, name, p.url) +
					"(kubectl get svc -A | grep prometheus); if Prometheus is down, its own pod and log say why; also check NetworkPolicies between the namespaces (docs/install.md, Troubleshooting)"
			}
		}
		return []Check{c}, false
	}
	c.Status, c.Summary = Pass, fmt.Sprintf("Prometheus at %s answered in %s", p.url, end.Sub(start).Round(time.Millisecond))
	checks := []Check{c}
	clock := Check{Section: sectionPrometheus, Name: "clock"}
	s, ok := v.(*model.Scalar)
	if !ok {
		clock.Status, clock.Summary = Skip, fmt.Sprintf("time() answered a %s, not a scalar", v.Type())
		return append(checks, clock), true
	}
	mid := start.Add(end.Sub(start) / 2)
	promTime := time.UnixMilli(int64(math.Round(float64(s.Value) * 1000)))
	skew := promTime.Sub(mid).Round(time.Millisecond)
	clock.Evidence = []string{fmt.Sprintf("Prometheus' time %s, here %s", promTime.UTC().Format(time.RFC3339Nano), mid.UTC().Format(time.RFC3339Nano))}
	abs := skew
	if abs < 0 {
		abs = -abs
	}
	switch {
	case abs > skewFail:
		clock.Status, clock.Summary = Fail, fmt.Sprintf("Prometheus' clock is %s off this machine's, beyond its 5m lookback", skew)
	case abs > skewWarn:
		clock.Status, clock.Summary = Warn, fmt.Sprintf("Prometheus' clock is %s off this machine's", skew)
	default:
		clock.Status, clock.Summary = Pass, fmt.Sprintf("Prometheus' clock is %s off this machine's", skew)
	}
	clock.Fix = "run NTP (chrony, systemd-timesyncd) on the Prometheus and control-plane nodes: metric timestamps come from Prometheus, and HPAs compare them with pod start times"
	return append(checks, clock), true
}

// credentialVerdict says which credential was refused.
func credentialVerdict(code int, sent string) string {
	if sent == "no credentials" {
		return "it needs credentials and doctor sent none"
	}
	if code == 401 {
		return "it did not accept " + sent
	}
	return "it accepted " + sent + " but does not allow this identity to query"
}

func isDNSError(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) || strings.Contains(err.Error(), "no such host")
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Hostname()
}

// count runs a query whose answer is a vector and sums it (0 for an empty vector).
func (p *promTarget) count(ctx context.Context, query string) (float64, error) {
	v, err := p.q.Query(ctx, query, time.Time{})
	if err != nil {
		return 0, err
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return 0, fmt.Errorf("%s answered a %s, not a vector", query, v.Type())
	}
	sum := 0.0
	for _, s := range vec {
		sum += float64(s.Value)
	}
	return sum, nil
}

// labelValues runs a query and returns the values of label in its answer, sorted.
func (p *promTarget) labelValues(ctx context.Context, query, label string) ([]string, error) {
	v, err := p.q.Query(ctx, query, time.Time{})
	if err != nil {
		return nil, err
	}
	vec, _ := v.(model.Vector)
	var out []string
	for _, s := range vec {
		if l := string(s.Metric[model.LabelName(label)]); l != "" {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out, nil
}

// failed is a check that could not run because a query failed.
func failed(c Check, err error) Check {
	c.Status, c.Summary = Fail, "a query failed: "+err.Error()
	c.Fix = "see the reachability check above"
	return c
}

// checkCAdvisor checks that a cAdvisor metric has container series with the namespace, pod and
// container labels metrics.k8s.io and the container rules need.
func (p *promTarget) checkCAdvisor(ctx context.Context, metric string) Check {
	c := Check{Section: sectionPrometheus, Name: "cAdvisor " + metric}
	withPod, err := p.count(ctx, fmt.Sprintf(`count(%s{namespace!="",pod!="",container!="",container!="POD"})`, metric))
	if err != nil {
		return failed(c, err)
	}
	all, err := p.count(ctx, fmt.Sprintf(`count(%s)`, metric))
	if err != nil {
		return failed(c, err)
	}
	if withPod > 0 {
		c.Status, c.Summary = Pass, fmt.Sprintf("%.0f container series with namespace, pod and container labels (of %.0f)", withPod, all)
		if lacking, err := p.count(ctx, fmt.Sprintf(`count(%s{container!="",container!="POD",pod=""})`, metric)); err == nil && lacking > 0 {
			c.Status, c.Summary = Warn, fmt.Sprintf("%.0f container series lack the pod label (%.0f have it): their containers are missing from kubectl top", lacking, withPod)
			c.Fix = cadvisorLabelFix
		}
		return c
	}
	if all == 0 {
		c.Status, c.Summary = Fail, "no "+metric+" series: Prometheus does not scrape cAdvisor (or not in the last 5 minutes)"
		c.Evidence = []string{"kubectl top pods, HPAs on cpu/memory and the container rules read it"}
		c.Fix = "scrape the kubelet's /metrics/cadvisor on every node (kube-prometheus: ServiceMonitor kubelet, job kubelet; docs/install.md, What you need)"
		return c
	}
	c.Status, c.Summary = Fail, fmt.Sprintf("%.0f series, none with namespace, pod and container labels: kubectl top pods finds no container", all)
	end := time.Now()
	if names, err := p.q.LabelNames(ctx, []string{metric}, end.Add(-lookbackSpan), end); err == nil {
		c.Evidence = append(c.Evidence, "its label names: "+strings.Join(names, ", "))
		for _, old := range []string{"pod_name", "container_name"} {
			for _, n := range names {
				if n == old {
					c.Evidence = append(c.Evidence, "it carries "+old+": cAdvisor's names before Kubernetes 1.16, or a relabeling that renamed the label")
				}
			}
		}
	}
	if v, err := p.q.Query(ctx, fmt.Sprintf(`topk(1, %s{id!="/"})`, metric), time.Time{}); err == nil {
		if vec, ok := v.(model.Vector); ok && len(vec) > 0 {
			c.Evidence = append(c.Evidence, "a series: "+vec[0].Metric.String())
		}
	}
	c.Fix = cadvisorLabelFix
	return c
}

const cadvisorLabelFix = "keep the namespace, pod and container labels on the kubelet's cAdvisor scrape: remove a labeldrop/labelkeep that drops them; where they are named pod_name and container_name, add to that scrape's metric_relabel_configs\n" +
	"  - {source_labels: [pod_name], target_label: pod}\n" +
	"  - {source_labels: [container_name], target_label: container}"

// checkNodeSources finds, for each Node of the cluster, a source of node cpu usage the default
// resourceRules read: the kubelet's node counters, cAdvisor's root cgroup, node-exporter by
// instance or through node_uname_info.
func (p *promTarget) checkNodeSources(ctx context.Context, nodes []string) Check {
	c := Check{Section: sectionPrometheus, Name: "node usage sources (kubectl top nodes)"}
	if len(nodes) == 0 {
		c.Status, c.Summary = Skip, "the cluster has no Node objects"
		return c
	}
	sources := []struct{ name, query, label string }{
		{"kubelet node_cpu_usage_seconds_total", `count by (node) (node_cpu_usage_seconds_total{node!=""})`, "node"},
		{"kubelet node_cpu_usage_seconds_total by instance", `count by (instance) (node_cpu_usage_seconds_total{node="",instance!~".*:.*"})`, "instance"},
		{`cAdvisor id="/"`, `count by (node) (container_cpu_usage_seconds_total{id="/",node!=""})`, "node"},
		{"node-exporter by instance", `count by (instance) (node_cpu_seconds_total{instance!~".*:.*"})`, "instance"},
		{"node-exporter through node_uname_info", `count by (nodename) (max by (instance, nodename) (node_uname_info) * on (instance) group_left () count by (instance) (node_cpu_seconds_total))`, "nodename"},
	}
	covered := map[string]bool{}
	for _, s := range sources {
		names, err := p.labelValues(ctx, s.query, s.label)
		if err != nil {
			return failed(c, err)
		}
		if len(names) > 0 {
			c.Evidence = append(c.Evidence, fmt.Sprintf("%s: %s", s.name, strings.Join(names, ", ")))
		}
		for _, n := range names {
			covered[n] = true
		}
	}
	var missing []string
	for _, n := range nodes {
		if !covered[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		c.Status, c.Summary = Pass, fmt.Sprintf("every one of the %d nodes has a cpu usage source", len(nodes))
		return c
	}
	c.Status, c.Summary = Fail, fmt.Sprintf("%d of %d nodes have no cpu usage source: %s (kubectl top nodes leaves them out)", len(missing), len(nodes), strings.Join(missing, ", "))
	c.Fix = "for each node Prometheus needs one of: the kubelet's /metrics/resource (node_cpu_usage_seconds_total with a node label), cAdvisor's root cgroup (container_cpu_usage_seconds_total{id=\"/\"} with a node label), " +
		"node-exporter whose instance label is the node name, or node-exporter plus node_uname_info whose nodename is the node name (an instance holding an address is not a node name)"
	return c
}

// checkKubeStateMetrics checks the series of kube-state-metrics when a rule reads them.
func (p *promTarget) checkKubeStateMetrics(ctx context.Context, used bool) Check {
	c := Check{Section: sectionPrometheus, Name: "kube-state-metrics"}
	n, err := p.count(ctx, `count(kube_deployment_spec_replicas)`)
	if err != nil {
		return failed(c, err)
	}
	switch {
	case n > 0:
		c.Status, c.Summary = Pass, fmt.Sprintf("%.0f kube_deployment_spec_replicas series", n)
	case !used:
		c.Status, c.Summary = Pass, "no series, and no rule reads kube_* series"
	default:
		c.Status, c.Summary = Warn, "no kube_deployment_spec_replicas series: the external rule that reads it serves nothing"
		c.Fix = "scrape kube-state-metrics (kube-prometheus installs it), or remove the rule that reads kube_* series"
	}
	return c
}

// checkFreshness measures the age of the newest cAdvisor sample.
func (p *promTarget) checkFreshness(ctx context.Context) Check {
	c := Check{Section: sectionPrometheus, Name: "scrape freshness"}
	v, err := p.q.Query(ctx, `time() - max(timestamp(container_cpu_usage_seconds_total))`, time.Time{})
	if err != nil {
		return failed(c, err)
	}
	if vec, ok := v.(model.Vector); ok && len(vec) > 0 {
		age := time.Duration(float64(vec[0].Value) * float64(time.Second)).Round(time.Second)
		c.Summary = fmt.Sprintf("the newest container_cpu_usage_seconds_total sample is %s old", age)
		c.Status = Pass
		if age > staleAfter {
			c.Status = Warn
			c.Fix = "cpu rates need two samples within their window (2m by default): scrape the kubelet at least every minute, and check Prometheus' targets page for failing scrapes"
		}
		return c
	}
	end := time.Now()
	names, err := p.q.LabelValues(ctx, "__name__", []string{"container_cpu_usage_seconds_total"}, end.Add(-lookbackSpan), end)
	if err != nil {
		return failed(c, err)
	}
	if len(names) == 0 {
		c.Status, c.Summary = Skip, "no container_cpu_usage_seconds_total series in the last hour (see the cAdvisor check)"
		return c
	}
	c.Status, c.Summary = Fail, "no container_cpu_usage_seconds_total sample in the last 5 minutes, though there were within the hour: scraping stopped"
	c.Fix = "open Prometheus' targets page (Status → Targets) for the kubelet job's errors; check that Prometheus itself is healthy and its storage not full"
	return c
}
