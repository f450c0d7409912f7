// Package promclient talks to one Prometheus-compatible backend through the v1 HTTP API:
// Prometheus 2 and 3, Thanos, Cortex, Mimir, VictoriaMetrics, and the managed services of AWS,
// Azure and Google. Transport concerns (TLS, bearer tokens, basic auth, OAuth 2.0, headers,
// proxies) come from prometheus/common's HTTPClientConfig, so they behave exactly as in
// Prometheus itself; what differs between the kinds of backend is handled here, not left to
// the configuration.
//
// # Cloud authentication
//
// Besides what config.HTTPClientConfig offers:
//
//   - Amazon Managed Service for Prometheus: Options.SigV4 signs every request with AWS
//     Signature Version 4 (service "aps" unless SigV4Config.ServiceName says otherwise), with
//     static keys, a profile, or the default credential chain (environment, IRSA web identity,
//     EKS Pod Identity, instance role), and an optional role to assume.
//   - Azure Monitor managed service for Prometheus: Options.AzureAD gets tokens for
//     AzureMonitorScope from a managed identity, a workload identity, a client secret or the
//     SDK's default chain, as Prometheus' remote write does.
//   - Google Cloud Managed Service for Prometheus needs nothing of its own. Either point URL at
//     Google's frontend proxy (gke.gcr.io/prometheus-engine/frontend), which signs requests with
//     the pod's Workload Identity; or set HTTP.OAuth2 for Google's service-account JWT flow:
//     grant_type urn:ietf:params:oauth:grant-type:jwt-bearer, client_id the service account's
//     email (it is the JWT's iss and sub), client_certificate_key_file its private key (PEM),
//     token_url https://oauth2.googleapis.com/token and scopes
//     [https://www.googleapis.com/auth/monitoring.read], with URL
//     https://monitoring.googleapis.com/v1/projects/PROJECT/location/global/prometheus; or keep
//     an access token in a file that something refreshes, named by
//     HTTP.Authorization.CredentialsFile (read again on every request).
//
// One way of authenticating applies to a backend: SigV4 and AzureAD each set the Authorization
// header, as do HTTP's authorization, basic_auth and oauth2, and New refuses more than one.
package promclient

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/storage/remote/azuread"
	"github.com/prometheus/sigv4"
)

// MaxGETQueryBytes is the longest encoded form that is still sent as a GET query string when
// the verb is GET; longer requests go by POST so no server rejects them with HTTP 414.
const MaxGETQueryBytes = 4096

// DefaultMaxAnswerBytes is the largest answer body accepted when Options.MaxAnswerBytes is 0.
// A vector of 500,000 samples with a handful of labels each is about 100 MiB in JSON; the
// answers the adapter's rules ask for are a few MiB at most.
const DefaultMaxAnswerBytes int64 = 64 << 20

// DefaultMaxSamples is the largest number of samples in a query result accepted when
// Options.MaxSamples is 0: a vector element counts one, a matrix series one per point.
const DefaultMaxSamples = 500000

// DefaultName is the name of a backend whose Options.Name is empty: the backend of the
// --prometheus-* flags. Its errors name the flags; those of other backends name their fields.
const DefaultName = "default"

// Options configure one backend.
type Options struct {
	// Name is the backend's name, [a-z0-9-]+; "" means DefaultName. It is the value of the
	// backend label of the client's metrics, and errors name it.
	Name string
	// URL is the base URL of the Prometheus HTTP API (without /api/v1). Its query parameters
	// go with every request. For KindCortex and KindMimir, /prometheus is appended unless the
	// path already ends in it.
	URL string
	// Kind is the software behind URL; "" means KindPrometheus.
	Kind Kind
	// HTTP is the transport configuration: TLS, authorization, basic auth, OAuth 2.0, proxy,
	// and the headers sent with every request (HTTPHeaders). Files it names
	// (credentials_file, password_file, client_secret_file, TLS files) are read again as they
	// change, without a new client.
	HTTP config.HTTPClientConfig
	// SigV4, when set, signs every request with AWS Signature Version 4 (Amazon Managed
	// Service for Prometheus); see the package's note on cloud authentication.
	SigV4 *sigv4.SigV4Config
	// AzureAD, when set, authenticates with Microsoft Entra ID (Azure Monitor managed service
	// for Prometheus); the scope defaults to AzureMonitorScope.
	AzureAD *azuread.AzureADConfig
	// QueryParameters go with every request, queries and label calls alike, besides those of
	// URL; for a name in both, these win. Thanos' max_source_resolution and VictoriaMetrics'
	// extra_label go here. The parameters the adapter sets per request (query, time, timeout,
	// match[], start, end) are refused.
	QueryParameters url.Values
	// Tenant says where a tenant id goes; which one, per request, is Client.WithTenant's.
	Tenant TenantOptions
	// Verb is GET or POST for queries (prometheus-adapter's --prometheus-verb).
	Verb string
	// Timeout bounds each request; 0 means 30s.
	Timeout time.Duration
	// MaxAnswerBytes is the largest answer body accepted, in bytes, for queries and label
	// calls alike; reading stops and the connection is closed beyond it. 0 means
	// DefaultMaxAnswerBytes (--prometheus-max-answer-bytes).
	MaxAnswerBytes int64
	// MaxSamples is the largest number of samples in a query result; a larger result is
	// refused while decoding, before it is held in memory. 0 means DefaultMaxSamples
	// (--prometheus-max-samples).
	MaxSamples int
	// AllowPartial serves answers that carry warnings (a Thanos or federated backend with a
	// store down answers 200 with what it has, plus warnings). When false, such an answer is
	// an error with CausePartial (--allow-partial-answers).
	AllowPartial bool
}

// Client is one backend. It is a value: several may exist side by side, and WithTenant makes
// copies that share its transport and metrics. Nothing in it changes after New, so it is safe
// for concurrent use.
type Client struct {
	name   string
	kind   Kind
	url    string     // redacted, for messages and logs
	base   api.Client // a *boundedClient: sends every request, bounds every answer
	idle   func()     // closes the transport's idle connections
	redact *redactor  // removes the backend's secrets from error text
	m      *backendMetrics
	// params go with every request: QueryParameters and the kind's defaults (those of the URL
	// come with it). Read only.
	params  url.Values
	tenancy tenancy
	tenant  string // "" for none

	verb         string
	timeout      time.Duration
	maxSamples   int
	allowPartial bool
}

// validName is the form of a backend's name: it goes in metric labels and messages.
var validName = regexp.MustCompile(`^[a-z0-9-]+$`)

// New validates opts and builds a client. It does not contact the backend (except, with
// SigV4 and no static keys, the AWS credential chain, so that missing credentials are an error
// now rather than on every request).
func New(opts Options) (*Client, error) {
	name := opts.Name
	if name == "" {
		name = DefaultName
	}
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("backend name %q must be lowercase letters, digits and dashes: fix the backend's name", name)
	}
	fix := func(flag, field string) string {
		if name == DefaultName {
			return flag
		}
		return fmt.Sprintf("%s of backend %s", field, name)
	}
	u, err := url.Parse(opts.URL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("prometheus URL %q is not an absolute http(s) URL: set %s to e.g. http://prometheus-k8s.monitoring.svc:9090", displayRaw(opts.URL), fix("--prometheus-url", "url"))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("prometheus URL %q has scheme %q: only http and https are supported; fix %s", displayURL(u), u.Scheme, fix("--prometheus-url", "url"))
	}
	if !opts.Kind.valid() {
		return nil, fmt.Errorf("backend %s: unknown kind %q: use one of %s", name, opts.Kind, kindList())
	}
	if opts.Kind == "" {
		opts.Kind = KindPrometheus
	}
	verb := strings.ToUpper(opts.Verb)
	if verb == "" {
		verb = http.MethodGet
	}
	if verb != http.MethodGet && verb != http.MethodPost {
		return nil, fmt.Errorf("prometheus verb %q is not GET or POST: set %s=GET or POST", opts.Verb, fix("--prometheus-verb", "verb"))
	}
	if opts.MaxAnswerBytes < 0 || opts.MaxSamples < 0 {
		return nil, fmt.Errorf("prometheus answer limits must not be negative (%d bytes, %d samples): fix --prometheus-max-answer-bytes and --prometheus-max-samples, or leave them at 0 for the defaults", opts.MaxAnswerBytes, opts.MaxSamples)
	}
	for p := range opts.QueryParameters {
		if err := checkParameterName(p); err != nil {
			return nil, fmt.Errorf("backend %s: queryParameters: %w", name, err)
		}
	}
	tenancy, err := newTenancy(&opts, name, u)
	if err != nil {
		return nil, err
	}
	redact := newRedactor(u, configSecrets(&opts)...)
	t, err := newTransport(&opts, name)
	if err != nil {
		return nil, fmt.Errorf("prometheus %s", redact.scrub(err.Error()))
	}
	apiURL := opts.Kind.apiBase(u)
	endpoints, err := api.NewClient(api.Config{Address: apiURL.String(), RoundTripper: t.rt})
	if err != nil {
		return nil, fmt.Errorf("prometheus URL %q: %v; fix %s", displayURL(u), redact.scrub(err.Error()), fix("--prometheus-url", "url"))
	}
	maxBytes := opts.MaxAnswerBytes
	if maxBytes == 0 {
		maxBytes = DefaultMaxAnswerBytes
	}
	maxSamples := opts.MaxSamples
	if maxSamples == 0 {
		maxSamples = DefaultMaxSamples
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	params := url.Values{}
	for k, vs := range opts.QueryParameters {
		params[k] = append([]string(nil), vs...)
	}
	urlParams := u.Query()
	opts.Kind.defaultParameters(params, func(p string) bool { return params.Has(p) || urlParams.Has(p) })
	httpClient := &http.Client{Transport: t.rt}
	return &Client{
		name:   name,
		kind:   opts.Kind,
		url:    displayURL(apiURL),
		base:   &boundedClient{Client: endpoints, http: httpClient, maxBytes: maxBytes},
		idle:   t.idle,
		redact: redact,
		m:      newBackendMetrics(name),
		params: params, tenancy: tenancy,
		verb: verb, timeout: timeout, maxSamples: maxSamples, allowPartial: opts.AllowPartial,
	}, nil
}

// URL is the base URL of the backend's Prometheus API for messages and logs (for Cortex and
// Mimir, with /prometheus), with its password and the values of its parameters replaced by
// xxxxx.
func (c *Client) URL() string { return c.url }

// Name is the backend's name, Options.Name or DefaultName.
func (c *Client) Name() string { return c.name }

// Kind is the backend's kind, never "".
func (c *Client) Kind() Kind { return c.kind }

// Close closes the transport's idle connections; call it when the snapshot holding the client
// is retired. Calls still in flight, on the client or its tenant copies, finish normally (their
// connections close once idle), and calls made afterwards open new connections: Close only
// gives back what nothing uses.
func (c *Client) Close() { c.idle() }

// Query runs an instant query at ts, or when ts is zero at the backend's "now": the adapter's
// clock is not consulted, so a node whose clock is skewed beyond Prometheus' 5 m lookback still
// gets answers. Sample timestamps in the result are the evaluation time, the backend's clock.
//
// The request goes through the same transport as client_golang's, but the answer is decoded by
// decodeQueryResponse: decoding is most of the adapter's CPU, and client_golang parses a vector
// three times over, partly by reflection. An answer over Options.MaxAnswerBytes or
// Options.MaxSamples, holding a native histogram, or with warnings unless
// Options.AllowPartial, is an *Error rather than a value.
func (c *Client) Query(ctx context.Context, query string, ts time.Time) (model.Value, error) {
	form := url.Values{"query": {query}, "timeout": {formatTimeout(c.timeout)}}
	if !ts.IsZero() {
		form.Set("time", formatTime(ts))
	}
	var value model.Value
	err := c.call(ctx, opQuery, c.base.URL("/api/v1/query", nil), form, func(body []byte) ([]string, []string, error) {
		a, err := decodeQueryResponse(body, c.maxSamples)
		value = a.value
		return a.warnings, a.infos, err
	})
	if err != nil {
		return nil, err
	}
	return value, nil
}
