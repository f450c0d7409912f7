// Package promclient talks to one Prometheus-compatible backend through the v1 HTTP API.
// Transport concerns (TLS, bearer tokens, basic auth, headers, proxies) come from
// prometheus/common's HTTPClientConfig, so they behave exactly as in Prometheus itself.
package promclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"k8s.io/klog/v2"
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

// Options configure one backend.
type Options struct {
	// URL is the base URL of the Prometheus HTTP API (without /api/v1).
	URL string
	// HTTP is the transport configuration: TLS, authorization, basic auth, headers.
	HTTP config.HTTPClientConfig
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

// Client is a Prometheus backend. It is a value: several may exist side by side.
type Client struct {
	url          string     // redacted, for messages and logs
	base         api.Client // a *boundedClient: sends every request, bounds every answer
	api          v1.API     // label names and values
	redact       *redactor  // removes the URL's secrets from error text
	m            *clientMetrics
	verb         string
	timeout      time.Duration
	maxSamples   int
	allowPartial bool
}

// New validates opts and builds a client. It does not contact the server.
func New(opts Options) (*Client, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("prometheus URL %q is not an absolute http(s) URL: set --prometheus-url to e.g. http://prometheus-k8s.monitoring.svc:9090", displayRaw(opts.URL))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("prometheus URL %q has scheme %q: only http and https are supported; fix --prometheus-url", displayURL(u), u.Scheme)
	}
	verb := strings.ToUpper(opts.Verb)
	if verb == "" {
		verb = http.MethodGet
	}
	if verb != http.MethodGet && verb != http.MethodPost {
		return nil, fmt.Errorf("prometheus verb %q is not GET or POST: set --prometheus-verb=GET or POST", opts.Verb)
	}
	if opts.MaxAnswerBytes < 0 || opts.MaxSamples < 0 {
		return nil, fmt.Errorf("prometheus answer limits must not be negative (%d bytes, %d samples): fix --prometheus-max-answer-bytes and --prometheus-max-samples, or leave them at 0 for the defaults", opts.MaxAnswerBytes, opts.MaxSamples)
	}
	if err := opts.HTTP.Validate(); err != nil {
		return nil, fmt.Errorf("prometheus HTTP client config: %w", err)
	}
	rt, err := config.NewRoundTripperFromConfig(opts.HTTP, "promadapter")
	if err != nil {
		return nil, fmt.Errorf("prometheus HTTP client config: %w", err)
	}
	endpoints, err := api.NewClient(api.Config{Address: opts.URL, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("prometheus URL %q: %v; fix --prometheus-url", displayURL(u), newRedactor(u).scrub(err.Error()))
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
	base := &boundedClient{Client: endpoints, http: &http.Client{Transport: rt}, maxBytes: maxBytes}
	var labels api.Client = base
	if verb == http.MethodGet {
		labels = getClient{base}
	}
	return &Client{
		url:          displayURL(u),
		base:         base,
		api:          v1.NewAPI(labels),
		redact:       newRedactor(u),
		m:            registeredMetrics(),
		verb:         verb,
		timeout:      timeout,
		maxSamples:   maxSamples,
		allowPartial: opts.AllowPartial,
	}, nil
}

// URL is the backend's base URL for messages and logs, with its password and the values of its
// parameters replaced by xxxxx.
func (c *Client) URL() string { return c.url }

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
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := c.base.URL("/api/v1/query", nil)
	form := u.Query() // parameters in the configured URL go with every query, as with client_golang
	form.Set("query", query)
	if !ts.IsZero() {
		form.Set("time", formatTime(ts))
	}
	form.Set("timeout", formatTimeout(c.timeout))
	resp, body, err := c.send(ctx, u, form.Encode())
	if err == nil && resp.StatusCode/100 != 2 {
		err = answerError(resp.StatusCode, body)
	}
	var a queryAnswer
	if err == nil {
		a, err = decodeQueryResponse(body, c.maxSamples)
	}
	if err == nil {
		err = c.checkWarnings(a.warnings, a.infos)
	}
	if err != nil {
		return nil, c.wrap("query", err)
	}
	return a.value, nil
}

// formatTime is the API's time format, as client_golang writes it: Unix seconds with a fraction.
func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.Unix())+float64(t.Nanosecond())/1e9, 'f', -1, 64)
}

// formatTimeout writes a duration as seconds with a decimal fraction ("1.5", "0.25", "150"),
// the one form that Prometheus, Thanos and VictoriaMetrics all parse. Go's own form ("1.5s")
// is not a Prometheus duration: Prometheus refuses it with 400.
func formatTimeout(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// LabelNames lists label names of series matching any of matches within [start, end].
func (c *Client) LabelNames(ctx context.Context, matches []string, start, end time.Time) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	names, warnings, infos, err := c.api.LabelNames(ctx, matches, start, end)
	if err == nil {
		err = c.checkWarnings(warnings, infos)
	}
	if err != nil {
		return nil, c.wrap("label names", err)
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = string(n)
	}
	return out, nil
}

// LabelValues lists values of label among series matching any of matches within [start, end].
func (c *Client) LabelValues(ctx context.Context, label string, matches []string, start, end time.Time) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	vals, warnings, infos, err := c.api.LabelValues(ctx, label, matches, start, end)
	if err == nil {
		err = c.checkWarnings(warnings, infos)
	}
	if err != nil {
		return nil, c.wrap("label values", err)
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = string(v)
	}
	return out, nil
}

// checkWarnings counts an answer's warnings and infos, and refuses it when it has warnings,
// unless partial answers are allowed. Infos never refuse an answer.
func (c *Client) checkWarnings(warnings, infos []string) error {
	if len(infos) > 0 {
		c.m.infos.Add(float64(len(infos)))
	}
	if len(warnings) == 0 {
		return nil
	}
	c.m.warnings.Add(float64(len(warnings)))
	if !c.allowPartial {
		return &partialError{warnings: warnings}
	}
	c.m.partialServed.Inc()
	klog.V(2).InfoS("Serving a partial Prometheus answer (--allow-partial-answers)", "prometheus", c.url,
		"warnings", len(warnings), "firstWarning", c.redact.scrub(answerStart(warnings[0])))
	return nil
}

// wrap makes err an *Error: classified, counted when the answer was refused, and with no
// secret of the URL left in its text.
func (c *Client) wrap(op string, err error) error {
	cause, err := classify(err)
	var samplesErr *tooManySamplesError
	switch cause {
	case CausePartial:
		c.m.answersRefused.WithLabelValues(reasonPartial).Inc()
	case CauseHistogram:
		c.m.answersRefused.WithLabelValues(reasonHistogram).Inc()
	case CauseTooLarge:
		if errors.As(err, &samplesErr) {
			c.m.answersRefused.WithLabelValues(reasonTooManySamples).Inc()
		} else {
			c.m.answersRefused.WithLabelValues(reasonTooLarge).Inc()
		}
	}
	return &Error{Cause: cause, URL: c.url, Op: op, Err: c.redact.error(err)}
}
