package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/config"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/external_metrics"
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
