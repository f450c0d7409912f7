package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/config"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/external_metrics"
	externalv1beta1 "k8s.io/metrics/pkg/apis/external_metrics/v1beta1"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
)

// ExternalForwarder serves the external metrics that no rule of the adapter serves, from
// another server of external.metrics.k8s.io (KEDA's metrics server, for instance), so that
// both sets are served through the one APIService a cluster can have for the group.
//
// Identity: kube-apiserver has already authorized the caller for the metric in the request's
// namespace; a forwarder sends only that namespace, the metric name and the metric selector,
// never the caller's identity or headers. The other server authenticates and authorizes the
// adapter's own client identity (its token or certificate), as it would trust kube-apiserver.
type ExternalForwarder interface {
	// GetExternalMetric asks the other server for metric in namespace with selector.
	GetExternalMetric(ctx context.Context, namespace string, selector labels.Selector, metric string) (*external_metrics.ExternalMetricValueList, error)
	// MergeExternalMetrics returns own plus the metrics the other server lists, each name
	// once; own wins a name clash (the adapter answers such a metric itself).
	MergeExternalMetrics(own []cmprovider.ExternalMetricInfo) []cmprovider.ExternalMetricInfo
}

// ForwardConfig says where and how the external metric requests the adapter does not serve
// are forwarded.
type ForwardConfig struct {
	// URL is the https base URL of the other server, e.g.
	// https://keda-operator-metrics-apiserver.keda.svc:443; /apis/external.metrics.k8s.io/v1beta1/…
	// is appended. It holds no credentials (the options refuse a user or password in it).
	URL string
	// CAFile verifies the other server's serving certificate; empty trusts the system roots.
	CAFile string
	// ClientCertFile and ClientKeyFile are an optional client certificate (mutual TLS).
	ClientCertFile, ClientKeyFile string
	// TokenFile holds an optional bearer token. It is read again on every request, so a
	// projected ServiceAccount token that the kubelet rotates keeps working.
	TokenFile string
	// Timeout bounds each request to the other server, connection included.
	Timeout time.Duration
	// ListTTL is how long the other server's discovery list is reused before it is fetched
	// again, in the background; 0 means DefaultForwardListTTL.
	ListTTL time.Duration
}

// DefaultForwardListTTL is how long the other server's discovery list is reused.
const DefaultForwardListTTL = 30 * time.Second

// maxForwardAnswerBytes bounds one answer of the other server; an external metric list is a
// few items, a discovery list a few thousand names at most.
const maxForwardAnswerBytes = 16 << 20

// externalGroupPath is the path of external.metrics.k8s.io/v1beta1 under the base URL.
const externalGroupPath = "/apis/external.metrics.k8s.io/v1beta1"

// Forwarder is an ExternalForwarder over HTTPS. Its messages and logs name the other server by
// its host (and port) only: the base URL holds no credentials, and the token never leaves the
// request's Authorization header.
type Forwarder struct {
	base    url.URL // the base URL without a trailing slash
	host    string  // base.Host, for messages
	client  *http.Client
	timeout time.Duration
	listTTL time.Duration
	now     func() time.Time

	mu         sync.Mutex          // guards the fields below
	names      []string            // the other server's metric names, sorted: the last good list
	listTried  time.Time           // when the list was last fetched or tried (zero: never)
	refreshing bool                // a refresh is in flight
	listFailed bool                // the last refresh failed, and that was logged
	clashed    map[string]struct{} // names served by both, already warned about
}

var _ ExternalForwarder = (*Forwarder)(nil)

// NewForwarder builds a forwarder from cfg. Files are read when requests are made (a changed
// CA, certificate or token is picked up without a restart), so NewForwarder fails only on a
// configuration that cannot work.
func NewForwarder(cfg ForwardConfig) (*Forwarder, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("the external metrics forward URL must be an https URL with a host, e.g. https://keda-operator-metrics-apiserver.keda.svc:443")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("the external metrics forward URL %s must have no user, query or fragment: pass credentials as a token file or client certificate", u.Host)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	if cfg.Timeout <= 0 {
		return nil, fmt.Errorf("the external metrics forward timeout must be positive")
	}
	hc := config.DefaultHTTPClientConfig
	hc.FollowRedirects = false // a redirect could carry the token to another host
	hc.TLSConfig = config.TLSConfig{CAFile: cfg.CAFile, CertFile: cfg.ClientCertFile, KeyFile: cfg.ClientKeyFile}
	if cfg.TokenFile != "" {
		hc.Authorization = &config.Authorization{Type: "Bearer", CredentialsFile: cfg.TokenFile}
	}
	if err := hc.Validate(); err != nil {
		return nil, fmt.Errorf("external metrics forward backend %s: %w", u.Host, err)
	}
	client, err := config.NewClientFromConfig(hc, "promadapter-external-forward", config.WithUserAgent("promadapter"))
	if err != nil {
		return nil, fmt.Errorf("external metrics forward backend %s: %w", u.Host, err)
	}
	ttl := cfg.ListTTL
	if ttl <= 0 {
		ttl = DefaultForwardListTTL
	}
	klog.InfoS("Forwarding the external metrics no rule serves", "backend", u.Host, "timeout", cfg.Timeout,
		"caFile", cfg.CAFile, "clientCertificate", cfg.ClientCertFile != "", "token", cfg.TokenFile != "")
	return &Forwarder{
		base: *u, host: u.Host, client: client, timeout: cfg.Timeout, listTTL: ttl, now: time.Now,
		clashed: map[string]struct{}{},
	}, nil
}

// forwardExternal answers a request for an external metric that the adapter does not serve:
// it asks the other server and, when neither serves the metric, adds the state of the
// adapter's own discovery (a metric of the adapter's rules may not be discovered yet).
func forwardExternal(ctx context.Context, f ExternalForwarder, st *State, namespace string, selector labels.Selector, metric string) (*external_metrics.ExternalMetricValueList, error) {
	list, err := f.GetExternalMetric(ctx, namespace, selector, metric)
	var status apierrors.APIStatus
	if apierrors.IsNotFound(err) && errors.As(err, &status) {
		if hint := discoveryState(st.Registry); hint != "" {
			s := status.Status()
			s.Message += "; promadapter" + hint
			return nil, &apierrors.StatusError{ErrStatus: s}
		}
	}
	return list, err
}

// GetExternalMetric implements ExternalForwarder: GET
// <url>/apis/external.metrics.k8s.io/v1beta1/namespaces/<namespace>/<metric>?labelSelector=<selector>.
// The selector is sent in its canonical form (labels.Selector.String), which the other
// server parses back into the same selector; an empty one is not sent.
//
// Answers: the other server's list, converted to the internal type; its 404 is a 404 saying
// neither serves the metric; its 400 is a 400 (the caller's selector); its 401 or 403 is a 500
// (the adapter's identity is not accepted there: a configuration to fix); its 5xx, no answer
// within the timeout or an answer that is not an ExternalMetricValueList is a 503.
func (f *Forwarder) GetExternalMetric(ctx context.Context, namespace string, selector labels.Selector, metric string) (*external_metrics.ExternalMetricValueList, error) {
	for _, seg := range []string{namespace, metric} {
		if seg == "" || seg == "." || seg == ".." || strings.Contains(seg, "/") {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("cannot forward external metric %q in namespace %q: both must be single path segments", metric, namespace))
		}
	}
	u := f.base
	u.Path += externalGroupPath + "/namespaces/" + namespace + "/" + metric
	if selector != nil && !selector.Empty() {
		u.RawQuery = url.Values{"labelSelector": {selector.String()}}.Encode()
	}
	what := fmt.Sprintf("external metric %q (namespace %q) is not served by promadapter", metric, namespace)
	start := time.Now()
	status, body, err := f.get(ctx, &u)
	outcome := forwardOutcome(status, err)
	var list *external_metrics.ExternalMetricValueList
	var decodeErr error
	if err == nil && status == http.StatusOK {
		if list, decodeErr = decodeExternalList(body); decodeErr != nil {
			outcome = outcomeBadAnswer
		}
	}
	forwardMetrics.requests.WithLabelValues(forwardOpGet, outcome).Inc()
	forwardMetrics.duration.WithLabelValues(forwardOpGet).Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("%s, and the forward backend %s %v", what, f.host, err))
	}
	switch {
	case status == http.StatusOK:
		if decodeErr != nil {
			return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("%s, and the forward backend %s answered 200 with %v; is --external-metrics-forward-url a server of external.metrics.k8s.io?", what, f.host, decodeErr))
		}
		klog.V(4).InfoS("Forwarded an external metric request", "metric", metric, "namespace", namespace, "backend", f.host, "items", len(list.Items))
		return list, nil
	case status == http.StatusNotFound:
		return nil, notFound(fmt.Sprintf("external metric %q is served by neither promadapter nor the forward backend %s (namespace %q, selector %q; it answered: %s); `kubectl get --raw %s` lists both sets",
			metric, f.host, namespace, selectorText(selector), statusMessage(body), externalGroupPath))
	case status == http.StatusBadRequest:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the forward backend %s refused the request for external metric %q: %s", f.host, metric, statusMessage(body)))
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return nil, apierrors.NewInternalError(fmt.Errorf("%s, and the forward backend %s refused promadapter's identity (%d: %s): allow the adapter's ServiceAccount (or client certificate) to get and list external.metrics.k8s.io there (RBAC), or fix --external-metrics-forward-token-file / --external-metrics-forward-client-cert-file",
			what, f.host, status, statusMessage(body)))
	case status >= 500:
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("%s, and the forward backend %s failed (%d: %s)", what, f.host, status, statusMessage(body)))
	default:
		return nil, &apierrors.StatusError{ErrStatus: metav1.Status{
			Status: metav1.StatusFailure, Code: int32(status), Reason: metav1.StatusReasonUnknown,
			Message: fmt.Sprintf("%s; the forward backend %s answered %d: %s", what, f.host, status, statusMessage(body)),
		}}
	}
}

// MergeExternalMetrics implements ExternalForwarder. It serves the other server's last good
// list at once and, when that list is older than the TTL, refreshes it in the background: a
// discovery request never waits for the other server. Before the first fetch has finished,
// only own is listed. A name in both lists is warned about once per process.
func (f *Forwarder) MergeExternalMetrics(own []cmprovider.ExternalMetricInfo) []cmprovider.ExternalMetricInfo {
	f.mu.Lock()
	names := f.names
	if !f.refreshing && f.now().Sub(f.listTried) >= f.listTTL {
		f.refreshing = true
		go f.refresh()
	}
	var clashes []string
	ownNames := make(map[string]struct{}, len(own))
	for _, m := range own {
		ownNames[m.Metric] = struct{}{}
	}
	out := slices.Clone(own)
	for _, n := range names {
		if _, dup := ownNames[n]; dup {
			if _, warned := f.clashed[n]; !warned {
				f.clashed[n] = struct{}{}
				clashes = append(clashes, n)
			}
			continue
		}
		out = append(out, cmprovider.ExternalMetricInfo{Metric: n})
	}
	f.mu.Unlock()
	for _, n := range clashes {
		klog.InfoS("Warning: an external metric is served by promadapter and by the forward backend; promadapter answers it, the backend's is not reachable through this APIService: rename one of them",
			"metric", n, "backend", f.host)
	}
	slices.SortFunc(out, func(a, b cmprovider.ExternalMetricInfo) int { return strings.Compare(a.Metric, b.Metric) })
	return out
}

// Refresh fetches the other server's discovery list now. On failure the last good list is
// kept; the first failure after a success is logged, later ones are not.
func (f *Forwarder) Refresh(ctx context.Context) error {
	names, err := f.fetchList(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listTried = f.now()
	if err != nil {
		if !f.listFailed {
			f.listFailed = true
			klog.ErrorS(err, "Cannot list the forward backend's external metrics; listing the last good list until it answers (requests are still forwarded)",
				"backend", f.host, "kept", len(f.names))
		}
		return err
	}
	if f.listFailed {
		klog.InfoS("The forward backend lists its external metrics again", "backend", f.host, "metrics", len(names))
	}
	f.listFailed = false
	f.names = names
	return nil
}

func (f *Forwarder) refresh() {
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	_ = f.Refresh(ctx) // logged by Refresh
	f.mu.Lock()
	f.refreshing = false
	f.mu.Unlock()
}

// fetchList GETs <url>/apis/external.metrics.k8s.io/v1beta1 and returns its resource names,
// sorted, without subresources.
func (f *Forwarder) fetchList(ctx context.Context) ([]string, error) {
	u := f.base
	u.Path += externalGroupPath
	start := time.Now()
	status, body, err := f.get(ctx, &u)
	forwardMetrics.requests.WithLabelValues(forwardOpList, forwardOutcome(status, err)).Inc()
	forwardMetrics.duration.WithLabelValues(forwardOpList).Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, fmt.Errorf("listing external metrics of %s: %w", f.host, err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("listing external metrics of %s: answered %d: %s", f.host, status, statusMessage(body))
	}
	var list metav1.APIResourceList
	if err := json.Unmarshal(body, &list); err != nil || list.GroupVersion != externalv1beta1.SchemeGroupVersion.String() {
		return nil, fmt.Errorf("listing external metrics of %s: the answer is not the APIResourceList of %s", f.host, externalv1beta1.SchemeGroupVersion)
	}
	names := make([]string, 0, len(list.APIResources))
	for _, r := range list.APIResources {
		if r.Name != "" && !strings.Contains(r.Name, "/") {
			names = append(names, r.Name)
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// get makes one GET within the timeout and reads at most maxForwardAnswerBytes. An error is
// a request that got no complete answer; its text names neither the URL (the selector may be
// long) nor any credential.
func (f *Forwarder) get(ctx context.Context, u *url.URL) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, nil, f.transportError(ctx, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxForwardAnswerBytes+1))
	if err != nil {
		return 0, nil, f.transportError(ctx, err)
	}
	if len(body) > maxForwardAnswerBytes {
		return 0, nil, fmt.Errorf("answered more than %d bytes", maxForwardAnswerBytes)
	}
	return resp.StatusCode, body, nil
}

// transportError says why a request got no answer, without the URL that url.Error carries.
func (f *Forwarder) transportError(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("did not answer within %s (--external-metrics-forward-timeout)", f.timeout)
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	return fmt.Errorf("cannot be reached: %v", err)
}

// decodeExternalList decodes an external.metrics.k8s.io/v1beta1 ExternalMetricValueList.
func decodeExternalList(body []byte) (*external_metrics.ExternalMetricValueList, error) {
	var in externalv1beta1.ExternalMetricValueList
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fmt.Errorf("a body that is not an ExternalMetricValueList (%v)", err)
	}
	if in.Kind != "ExternalMetricValueList" || in.APIVersion != externalv1beta1.SchemeGroupVersion.String() {
		return nil, fmt.Errorf("a %q of %q instead of an ExternalMetricValueList of %s", truncated(in.Kind, 60), truncated(in.APIVersion, 60), externalv1beta1.SchemeGroupVersion)
	}
	out := &external_metrics.ExternalMetricValueList{}
	if err := externalv1beta1.Convert_v1beta1_ExternalMetricValueList_To_external_metrics_ExternalMetricValueList(&in, out, nil); err != nil {
		return nil, err
	}
	return out, nil
}

func selectorText(s labels.Selector) string {
	if s == nil {
		return ""
	}
	return s.String()
}

// statusMessage is the message of a metav1.Status answer, else the start of the body.
func statusMessage(body []byte) string {
	var s metav1.Status
	if json.Unmarshal(body, &s) == nil && s.Message != "" {
		return truncated(s.Message, 300)
	}
	if len(body) == 0 {
		return "no body"
	}
	return truncated(strings.TrimSpace(string(body)), 200)
}

// Operations and outcomes, the label values of the forward metrics.
const (
	forwardOpGet  = "get"
	forwardOpList = "list"

	outcomeSuccess     = "success"
	outcomeNotFound    = "not_found"
	outcomeRefused     = "refused" // 4xx other than 404: the request or the adapter's identity
	outcomeServerError = "server_error"
	outcomeUnreachable = "unreachable" // no complete answer, timeouts included
	outcomeBadAnswer   = "bad_answer"  // a 200 that does not decode
)

func forwardOutcome(status int, err error) string {
	switch {
	case err != nil:
		return outcomeUnreachable
	case status == http.StatusOK:
		return outcomeSuccess
	case status == http.StatusNotFound:
		return outcomeNotFound
	case status >= 500:
		return outcomeServerError
	default:
		return outcomeRefused
	}
}

// forwardMetrics are the forwarder's own metrics, served on the adapter's /metrics.
var forwardMetrics = struct {
	requests *metrics.CounterVec
	duration *metrics.HistogramVec
}{
	requests: metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: "promadapter", Subsystem: "external_forward", Name: "requests_total",
		Help: "Requests to the external metrics forward backend by operation (get, list) and outcome (success, not_found, refused, server_error, unreachable, bad_answer: a 200 that did not decode).",
	}, []string{"op", "outcome"}),
	duration: metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace: "promadapter", Subsystem: "external_forward", Name: "request_duration_seconds",
		Help:    "Time requests to the external metrics forward backend took, answered or not.",
		Buckets: metrics.ExponentialBuckets(0.005, 2, 12),
	}, []string{"op"}),
}

func init() {
	legacyregistry.MustRegister(forwardMetrics.requests, forwardMetrics.duration)
}
