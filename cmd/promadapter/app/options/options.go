// Package options holds every flag of promadapter. Nothing else reads flags: the options
// are validated here and turned into runtime values for the server.
package options

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/common/config"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"

	"github.com/promadapter/promadapter/pkg/planner"
	"github.com/promadapter/promadapter/pkg/promclient"
	"github.com/promadapter/promadapter/pkg/provider"
)

// Options are the flags of `promadapter serve`. Flag names follow prometheus-adapter so an
// existing Deployment migrates by swapping the image.
type Options struct {
	// Adapter owns the apiserver flags (serving, authn, authz, audit, lister-kubeconfig).
	Adapter *basecmd.AdapterBase

	ConfigFile            string
	MetricsRelistInterval time.Duration
	MetricsMaxAge         time.Duration

	PrometheusURL            string
	PrometheusAuthInCluster  bool
	PrometheusAuthConfig     string
	PrometheusCAFile         string
	PrometheusClientCertFile string
	PrometheusClientKeyFile  string
	PrometheusTokenFile      string
	PrometheusHeaders        []string
	PrometheusVerb           string
	PrometheusTimeout        time.Duration
	// PrometheusMaxAnswerBytes and PrometheusMaxSamples bound what one answer may cost the
	// adapter; AllowPartialAnswers serves answers that a federated backend marked partial.
	PrometheusMaxAnswerBytes int64
	PrometheusMaxSamples     int
	AllowPartialAnswers      bool

	QueryCachePeriod     time.Duration
	QueryCacheMaxBytes   int64
	MaxConcurrentQueries int
	// ServeStaleFor is how long after a query started failing because Prometheus is down its
	// last good answer is still served; 0 (the default) never serves a stale answer.
	ServeStaleFor time.Duration
	// QueryPlan is how a request about some objects is queried: "adaptive" (the default)
	// chooses per request between one shared namespace-wide query and a query for the objects
	// by name; "namespace" always uses the namespace-wide one (pkg/planner.ChoosePlan).
	QueryPlan string
	// MemoryLimitRatio is the part of the container's memory limit given to the Go runtime as
	// its soft limit (pkg/memlimit); 0 leaves the runtime alone.
	MemoryLimitRatio float64

	EnableResourceMetrics bool
	EnableCustomMetrics   bool
	EnableExternalMetrics bool

	// ExternalMetricsForward* forward the external metric requests no rule serves to another
	// server of external.metrics.k8s.io (KEDA's metrics server, for instance); off when the URL
	// is empty.
	ExternalMetricsForwardURL            string
	ExternalMetricsForwardCAFile         string
	ExternalMetricsForwardClientCertFile string
	ExternalMetricsForwardClientKeyFile  string
	ExternalMetricsForwardTokenFile      string
	ExternalMetricsForwardTimeout        time.Duration
}

// New returns options with their defaults.
func New() *Options {
	return &Options{
		Adapter:                  &basecmd.AdapterBase{Name: "promadapter"},
		MetricsRelistInterval:    time.Minute,
		MetricsMaxAge:            10 * time.Minute,
		PrometheusVerb:           http.MethodGet,
		PrometheusTimeout:        10 * time.Second,
		PrometheusMaxAnswerBytes: promclient.DefaultMaxAnswerBytes,
		PrometheusMaxSamples:     promclient.DefaultMaxSamples,
		QueryCachePeriod:         10 * time.Second,
		QueryCacheMaxBytes:       64 << 20,
		QueryPlan:                string(planner.PlanAdaptive),
		MaxConcurrentQueries:     16,
		MemoryLimitRatio:         0.9,
		EnableResourceMetrics:    true,
		EnableCustomMetrics:      true,
		EnableExternalMetrics:    true,

		ExternalMetricsForwardTimeout: 10 * time.Second,
	}
}

// AddFlags registers every flag on fs, including the apiserver's own.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	o.Adapter.FlagSet = fs
	o.Adapter.InstallFlags()

	fs.StringVar(&o.ConfigFile, "config", o.ConfigFile, "rule configuration file (prometheus-adapter format); empty uses the embedded default rules for kube-prometheus")
	fs.DurationVar(&o.MetricsRelistInterval, "metrics-relist-interval", o.MetricsRelistInterval, "how often to rediscover which metrics exist")
	fs.DurationVar(&o.MetricsMaxAge, "metrics-max-age", o.MetricsMaxAge, "a discovered metric stays listed until its series have been absent this long")

	fs.StringVar(&o.PrometheusURL, "prometheus-url", o.PrometheusURL, "URL of the Prometheus HTTP API, e.g. http://prometheus-k8s.monitoring.svc:9090")
	fs.BoolVar(&o.PrometheusAuthInCluster, "prometheus-auth-incluster", o.PrometheusAuthInCluster, "authenticate to Prometheus with the pod's service account token and CA")
	fs.StringVar(&o.PrometheusAuthConfig, "prometheus-auth-config", o.PrometheusAuthConfig, "kubeconfig file whose current context holds the TLS and credentials for Prometheus")
	fs.StringVar(&o.PrometheusCAFile, "prometheus-ca-file", o.PrometheusCAFile, "CA file that verifies Prometheus' serving certificate")
	fs.StringVar(&o.PrometheusClientCertFile, "prometheus-client-tls-cert-file", o.PrometheusClientCertFile, "client certificate for mutual TLS to Prometheus")
	fs.StringVar(&o.PrometheusClientKeyFile, "prometheus-client-tls-key-file", o.PrometheusClientKeyFile, "client key for mutual TLS to Prometheus")
	fs.StringVar(&o.PrometheusTokenFile, "prometheus-token-file", o.PrometheusTokenFile, "file holding a bearer token for Prometheus (re-read on every request)")
	fs.StringArrayVar(&o.PrometheusHeaders, "prometheus-header", o.PrometheusHeaders, "extra header for Prometheus requests as name=value, e.g. X-Scope-OrgID=tenant1 (repeatable)")
	fs.StringVar(&o.PrometheusVerb, "prometheus-verb", o.PrometheusVerb, "HTTP method for queries, GET or POST; queries longer than 4 KiB always go by POST")
	fs.DurationVar(&o.PrometheusTimeout, "prometheus-timeout", o.PrometheusTimeout, "timeout of each request to Prometheus; a request waits at most this long for a free query slot and this long again for the answer")
	fs.Int64Var(&o.PrometheusMaxAnswerBytes, "prometheus-max-answer-bytes", o.PrometheusMaxAnswerBytes, "largest answer body accepted from Prometheus, in bytes; a larger answer is refused (500, naming the limit) instead of being held in memory")
	fs.IntVar(&o.PrometheusMaxSamples, "prometheus-max-samples", o.PrometheusMaxSamples, "largest number of samples accepted in one query result; a larger result is refused (500, naming the limit) while decoding")
	fs.BoolVar(&o.AllowPartialAnswers, "allow-partial-answers", o.AllowPartialAnswers, "serve answers that Prometheus (or Thanos, or another federating backend) marks with warnings, e.g. with a store down; by default such an answer is refused")

	fs.DurationVar(&o.QueryCachePeriod, "query-cache-period", o.QueryCachePeriod, "how long a query result is reused by identical requests; 0 disables the cache (in-flight requests are still shared)")
	fs.Int64Var(&o.QueryCacheMaxBytes, "query-cache-max-bytes", o.QueryCacheMaxBytes, "memory bound of the query result cache")
	fs.IntVar(&o.MaxConcurrentQueries, "max-concurrent-queries", o.MaxConcurrentQueries, "upper bound of queries in flight to Prometheus")
	fs.StringVar(&o.QueryPlan, "query-plan", o.QueryPlan, "how a selector request (an HPA's pods metric) is queried: adaptive chooses per request between one namespace-wide query shared by every caller of the namespace and a query for the selected objects by name, from the namespace's size, the objects selected, what is cached and how many selectors ask; namespace always uses the namespace-wide query")
	fs.DurationVar(&o.ServeStaleFor, "serve-stale-for", o.ServeStaleFor, "while Prometheus is down (unreachable, timing out, failing or answering partially), keep answering a query's last good result, with its original timestamps, for this long after its failures started; 0 answers 503 at once")

	fs.Float64Var(&o.MemoryLimitRatio, "memory-limit-ratio", o.MemoryLimitRatio, "part of the container's memory limit (cgroup memory.max) given to the Go runtime as its soft limit, so the garbage collector works harder near the limit instead of the kernel killing the adapter during a large answer; 0 disables it, and GOMEMLIMIT, when set, wins")

	fs.BoolVar(&o.EnableResourceMetrics, "enable-resource-metrics", o.EnableResourceMetrics, "serve metrics.k8s.io (kubectl top, HPA on CPU/memory) from resourceRules")
	fs.BoolVar(&o.EnableCustomMetrics, "enable-custom-metrics", o.EnableCustomMetrics, "serve custom.metrics.k8s.io from rules")
	fs.BoolVar(&o.EnableExternalMetrics, "enable-external-metrics", o.EnableExternalMetrics, "serve external.metrics.k8s.io from externalRules")

	fs.StringVar(&o.ExternalMetricsForwardURL, "external-metrics-forward-url", o.ExternalMetricsForwardURL, "https base URL of another server of external.metrics.k8s.io, e.g. https://keda-operator-metrics-apiserver.keda.svc:443, that answers the external metrics no externalRule serves and whose metrics are listed with the adapter's; empty (the default) forwards nothing")
	fs.StringVar(&o.ExternalMetricsForwardCAFile, "external-metrics-forward-ca-file", o.ExternalMetricsForwardCAFile, "CA file that verifies the forward backend's serving certificate (KEDA: ca.crt of Secret keda/kedaorg-certs); empty trusts the system roots")
	fs.StringVar(&o.ExternalMetricsForwardClientCertFile, "external-metrics-forward-client-cert-file", o.ExternalMetricsForwardClientCertFile, "client certificate for mutual TLS to the forward backend")
	fs.StringVar(&o.ExternalMetricsForwardClientKeyFile, "external-metrics-forward-client-key-file", o.ExternalMetricsForwardClientKeyFile, "client key for mutual TLS to the forward backend")
	fs.StringVar(&o.ExternalMetricsForwardTokenFile, "external-metrics-forward-token-file", o.ExternalMetricsForwardTokenFile, "file holding a bearer token for the forward backend, re-read on every request, e.g. /var/run/secrets/kubernetes.io/serviceaccount/token; the backend authorizes this identity, not the caller's")
	fs.DurationVar(&o.ExternalMetricsForwardTimeout, "external-metrics-forward-timeout", o.ExternalMetricsForwardTimeout, "timeout of each request to the forward backend")
}

// Validate reports every flag problem at once, each naming the flag and the fix.
func (o *Options) Validate() []error {
	var errs []error
	if o.PrometheusURL == "" {
		errs = append(errs, fmt.Errorf("--prometheus-url is required: set it to the Prometheus HTTP API, e.g. --prometheus-url=http://prometheus-k8s.monitoring.svc:9090"))
	} else if u, err := url.Parse(o.PrometheusURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("--prometheus-url=%q is not an http(s) URL with a host: use e.g. http://prometheus-k8s.monitoring.svc:9090", RedactURL(o.PrometheusURL)))
	}
	if v := strings.ToUpper(o.PrometheusVerb); v != http.MethodGet && v != http.MethodPost {
		errs = append(errs, fmt.Errorf("--prometheus-verb=%q: must be GET or POST", o.PrometheusVerb))
	}
	for _, h := range o.PrometheusHeaders {
		k, _, ok := strings.Cut(h, "=")
		k = strings.TrimSpace(k)
		_, reserved := config.ReservedHeaders[http.CanonicalHeaderKey(k)]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("--prometheus-header=%q: must be name=value", h))
		case k == "":
			// The value may be a secret: do not echo it.
			errs = append(errs, fmt.Errorf("--prometheus-header has an empty name: must be name=value"))
		case reserved:
			errs = append(errs, fmt.Errorf("--prometheus-header=%s=…: this header is managed by the HTTP client; use --prometheus-token-file for Authorization", http.CanonicalHeaderKey(k)))
		}
	}
	if (o.PrometheusClientCertFile == "") != (o.PrometheusClientKeyFile == "") {
		errs = append(errs, fmt.Errorf("--prometheus-client-tls-cert-file and --prometheus-client-tls-key-file go together: set both or neither"))
	}
	if o.PrometheusAuthInCluster && o.PrometheusAuthConfig != "" {
		errs = append(errs, fmt.Errorf("--prometheus-auth-incluster and --prometheus-auth-config are exclusive: choose one"))
	}
	for flag, file := range map[string]string{
		"--config": o.ConfigFile, "--prometheus-ca-file": o.PrometheusCAFile, "--prometheus-token-file": o.PrometheusTokenFile,
		"--prometheus-client-tls-cert-file": o.PrometheusClientCertFile, "--prometheus-client-tls-key-file": o.PrometheusClientKeyFile,
		"--prometheus-auth-config": o.PrometheusAuthConfig,
	} {
		if file == "" {
			continue
		}
		if _, err := os.Stat(file); err != nil {
			errs = append(errs, fmt.Errorf("%s=%s: %v", flag, file, err))
		}
	}
	if o.MetricsRelistInterval <= 0 {
		errs = append(errs, fmt.Errorf("--metrics-relist-interval must be positive"))
	}
	if o.MetricsMaxAge < o.MetricsRelistInterval {
		errs = append(errs, fmt.Errorf("--metrics-max-age=%s is shorter than --metrics-relist-interval=%s: metrics would flap between relists; make it at least as long", o.MetricsMaxAge, o.MetricsRelistInterval))
	}
	if o.PrometheusTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--prometheus-timeout must be positive"))
	}
	if o.QueryCachePeriod < 0 {
		errs = append(errs, fmt.Errorf("--query-cache-period must not be negative (0 disables the cache)"))
	}
	if o.MemoryLimitRatio < 0 || o.MemoryLimitRatio > 1 {
		errs = append(errs, fmt.Errorf("--memory-limit-ratio=%g must be between 0 (off) and 1, e.g. 0.9", o.MemoryLimitRatio))
	}
	if o.MaxConcurrentQueries < 1 {
		errs = append(errs, fmt.Errorf("--max-concurrent-queries must be at least 1"))
	}
	if o.PrometheusMaxAnswerBytes <= 0 {
		errs = append(errs, fmt.Errorf("--prometheus-max-answer-bytes=%d must be positive (default %d)", o.PrometheusMaxAnswerBytes, promclient.DefaultMaxAnswerBytes))
	}
	if o.PrometheusMaxSamples <= 0 {
		errs = append(errs, fmt.Errorf("--prometheus-max-samples=%d must be positive (default %d)", o.PrometheusMaxSamples, promclient.DefaultMaxSamples))
	}
	if o.QueryPlan != string(planner.PlanAdaptive) && o.QueryPlan != string(planner.PlanAlwaysNamespace) {
		errs = append(errs, fmt.Errorf("--query-plan=%q must be %q or %q", o.QueryPlan, planner.PlanAdaptive, planner.PlanAlwaysNamespace))
	}
	if o.ServeStaleFor < 0 {
		errs = append(errs, fmt.Errorf("--serve-stale-for=%s must not be negative (0 never serves a stale answer)", o.ServeStaleFor))
	}
	return append(errs, o.validateExternalForward()...)
}

// validateExternalForward checks the --external-metrics-forward-* flags.
func (o *Options) validateExternalForward() []error {
	var errs []error
	files := []struct{ flag, path string }{
		{"--external-metrics-forward-ca-file", o.ExternalMetricsForwardCAFile},
		{"--external-metrics-forward-client-cert-file", o.ExternalMetricsForwardClientCertFile},
		{"--external-metrics-forward-client-key-file", o.ExternalMetricsForwardClientKeyFile},
		{"--external-metrics-forward-token-file", o.ExternalMetricsForwardTokenFile},
	}
	if o.ExternalMetricsForwardURL == "" {
		for _, f := range files {
			if f.path != "" {
				errs = append(errs, fmt.Errorf("%s is set but --external-metrics-forward-url is not: set the URL of the server to forward to, or drop %s", f.flag, f.flag))
			}
		}
		return errs
	}
	u, err := url.Parse(o.ExternalMetricsForwardURL)
	switch {
	case err != nil || u.Scheme != "https" || u.Host == "":
		errs = append(errs, fmt.Errorf("--external-metrics-forward-url=%q is not an https URL with a host: use e.g. https://keda-operator-metrics-apiserver.keda.svc:443 (the requests carry the adapter's credentials, so plain http is refused)", RedactURL(o.ExternalMetricsForwardURL)))
	case u.User != nil:
		errs = append(errs, fmt.Errorf("--external-metrics-forward-url=%s holds a user or password: remove it and use --external-metrics-forward-token-file or --external-metrics-forward-client-cert-file", u.Redacted()))
	case u.RawQuery != "" || u.Fragment != "":
		errs = append(errs, fmt.Errorf("--external-metrics-forward-url=%s has a query or fragment: give the base URL only, e.g. https://%s", u.Redacted(), u.Host))
	}
	if !o.EnableExternalMetrics {
		errs = append(errs, fmt.Errorf("--external-metrics-forward-url needs --enable-external-metrics=true: requests are forwarded by the adapter's external.metrics.k8s.io"))
	}
	if (o.ExternalMetricsForwardClientCertFile == "") != (o.ExternalMetricsForwardClientKeyFile == "") {
		errs = append(errs, fmt.Errorf("--external-metrics-forward-client-cert-file and --external-metrics-forward-client-key-file go together: set both or neither"))
	}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s=%s: %v", f.flag, f.path, err))
		}
	}
	if o.ExternalMetricsForwardTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--external-metrics-forward-timeout=%s must be positive (default 10s)", o.ExternalMetricsForwardTimeout))
	}
	return errs
}

// ExternalForwardConfig is the forwarder's configuration, and whether forwarding is on (an
// --external-metrics-forward-url is set and external metrics are served).
func (o *Options) ExternalForwardConfig() (provider.ForwardConfig, bool) {
	if o.ExternalMetricsForwardURL == "" || !o.EnableExternalMetrics {
		return provider.ForwardConfig{}, false
	}
	return provider.ForwardConfig{
		URL: o.ExternalMetricsForwardURL, CAFile: o.ExternalMetricsForwardCAFile,
		ClientCertFile: o.ExternalMetricsForwardClientCertFile, ClientKeyFile: o.ExternalMetricsForwardClientKeyFile,
		TokenFile: o.ExternalMetricsForwardTokenFile, Timeout: o.ExternalMetricsForwardTimeout,
	}, true
}

// PrometheusOptions turns the Prometheus flags into a backend configuration.
func (o *Options) PrometheusOptions() (promclient.Options, error) {
	hc := config.DefaultHTTPClientConfig
	switch {
	case o.PrometheusAuthInCluster:
		rc, err := rest.InClusterConfig()
		if err != nil {
			return promclient.Options{}, fmt.Errorf("--prometheus-auth-incluster: %w", err)
		}
		if err := fromRESTConfig(&hc, rc); err != nil {
			return promclient.Options{}, fmt.Errorf("--prometheus-auth-incluster: %w", err)
		}
	case o.PrometheusAuthConfig != "":
		rc, err := clientcmd.BuildConfigFromFlags("", o.PrometheusAuthConfig)
		if err != nil {
			return promclient.Options{}, fmt.Errorf("--prometheus-auth-config=%s: %w", o.PrometheusAuthConfig, err)
		}
		if err := fromRESTConfig(&hc, rc); err != nil {
			return promclient.Options{}, fmt.Errorf("--prometheus-auth-config=%s: %w", o.PrometheusAuthConfig, err)
		}
	}
	// Explicit flags win over what a kubeconfig carried (inline data included).
	if o.PrometheusCAFile != "" {
		hc.TLSConfig.CAFile, hc.TLSConfig.CA = o.PrometheusCAFile, ""
	}
	if o.PrometheusClientCertFile != "" {
		hc.TLSConfig.CertFile, hc.TLSConfig.Cert = o.PrometheusClientCertFile, ""
		hc.TLSConfig.KeyFile, hc.TLSConfig.Key = o.PrometheusClientKeyFile, ""
	}
	if o.PrometheusTokenFile != "" {
		hc.Authorization = &config.Authorization{Type: "Bearer", CredentialsFile: o.PrometheusTokenFile}
		hc.BasicAuth = nil
	}
	if len(o.PrometheusHeaders) > 0 {
		hc.HTTPHeaders = &config.Headers{Headers: map[string]config.Header{}}
		for _, h := range o.PrometheusHeaders {
			k, v, _ := strings.Cut(h, "=")
			k = http.CanonicalHeaderKey(strings.TrimSpace(k))
			hdr := hc.HTTPHeaders.Headers[k]
			hdr.Values = append(hdr.Values, v)
			hc.HTTPHeaders.Headers[k] = hdr
		}
	}
	return promclient.Options{
		URL: o.PrometheusURL, HTTP: hc, Verb: o.PrometheusVerb, Timeout: o.PrometheusTimeout,
		MaxAnswerBytes: o.PrometheusMaxAnswerBytes, MaxSamples: o.PrometheusMaxSamples, AllowPartial: o.AllowPartialAnswers,
	}, nil
}

// fromRESTConfig copies TLS and credentials of a kubeconfig context into hc.
func fromRESTConfig(hc *config.HTTPClientConfig, rc *rest.Config) error {
	tc := rc.TLSClientConfig
	hc.TLSConfig.CAFile, hc.TLSConfig.CA = tc.CAFile, string(tc.CAData)
	hc.TLSConfig.CertFile, hc.TLSConfig.Cert = tc.CertFile, string(tc.CertData)
	hc.TLSConfig.KeyFile, hc.TLSConfig.Key = tc.KeyFile, config.Secret(tc.KeyData)
	hc.TLSConfig.InsecureSkipVerify = rc.Insecure
	hc.TLSConfig.ServerName = tc.ServerName
	switch {
	case rc.BearerTokenFile != "":
		hc.Authorization = &config.Authorization{Type: "Bearer", CredentialsFile: rc.BearerTokenFile}
	case rc.BearerToken != "":
		hc.Authorization = &config.Authorization{Type: "Bearer", Credentials: config.Secret(rc.BearerToken)}
	case rc.Username != "":
		hc.BasicAuth = &config.BasicAuth{Username: rc.Username, Password: config.Secret(rc.Password)}
	}
	if rc.ExecProvider != nil || rc.AuthProvider != nil {
		return fmt.Errorf("exec and auth-provider credentials are not supported for Prometheus: use a token, a client certificate or basic auth")
	}
	return nil
}

// RedactURL returns raw with its password replaced by "xxxxx" (url.URL.Redacted), for logs
// and messages. A URL that does not parse is cut to its scheme and host, or hidden, since
// the text that failed to parse may hold the password.
func RedactURL(raw string) string {
	// In "user:pass@host" url.Parse takes "user" for a scheme and the rest for opaque data,
	// which Redacted keeps: such an '@' still hides what precedes it.
	if u, err := url.Parse(raw); err == nil && !strings.Contains(u.Opaque, "@") {
		return u.Redacted()
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		if strings.Contains(raw, "@") {
			return "(an unparsable URL, not shown as it may hold a password)"
		}
		return raw
	}
	// A password may hold characters that end the host ('/', '#', '?'): the host is what
	// follows the last '@', whatever comes before it.
	userinfo := ""
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		userinfo, rest = "xxxxx@", rest[at+1:]
	}
	host := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		host = rest[:i]
	}
	return scheme + "://" + userinfo + host + "/…"
}
