// Package promclient talks to one Prometheus-compatible backend through the v1 HTTP API.
// Transport concerns (TLS, bearer tokens, basic auth, headers, proxies) come from
// prometheus/common's HTTPClientConfig, so they behave exactly as in Prometheus itself.
package promclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
)

// MaxGETQueryBytes is the longest encoded form that is still sent as a GET query string when
// the verb is GET; longer requests go by POST so no server rejects them with HTTP 414.
const MaxGETQueryBytes = 4096

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
}

// Client is a Prometheus backend. It is a value: several may exist side by side.
type Client struct {
	url     string
	base    api.Client // sends queries; carries TLS, authorization and headers
	api     v1.API     // label names and values
	verb    string
	timeout time.Duration
}

// New validates opts and builds a client. It does not contact the server.
func New(opts Options) (*Client, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("prometheus URL %q is not an absolute http(s) URL: set --prometheus-url to e.g. http://prometheus-k8s.monitoring.svc:9090", opts.URL)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("prometheus URL %q has scheme %q: only http and https are supported; fix --prometheus-url", opts.URL, u.Scheme)
	}
	verb := strings.ToUpper(opts.Verb)
	if verb == "" {
		verb = http.MethodGet
	}
	if verb != http.MethodGet && verb != http.MethodPost {
		return nil, fmt.Errorf("prometheus verb %q is not GET or POST: set --prometheus-verb=GET or POST", opts.Verb)
	}
	if err := opts.HTTP.Validate(); err != nil {
		return nil, fmt.Errorf("prometheus HTTP client config: %w", err)
	}
	rt, err := config.NewRoundTripperFromConfig(opts.HTTP, "promadapter")
	if err != nil {
		return nil, fmt.Errorf("prometheus HTTP client config: %w", err)
	}
	base, err := api.NewClient(api.Config{Address: opts.URL, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("prometheus client: %w", err)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	var labels api.Client = base
	if verb == http.MethodGet {
		labels = getClient{base}
	}
	return &Client{url: opts.URL, base: base, api: v1.NewAPI(labels), verb: verb, timeout: timeout}, nil
}

// URL is the backend's base URL, for messages.
func (c *Client) URL() string { return c.url }

// Query runs an instant query at ts, or at the adapter's "now" when ts is zero. Sample
// timestamps in the result are the evaluation time.
//
// The request goes through the same transport as client_golang's, but the answer is decoded by
// decodeQueryResponse: decoding is most of the adapter's CPU, and client_golang parses a vector
// three times over, partly by reflection.
func (c *Client) Query(ctx context.Context, query string, ts time.Time) (model.Value, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if ts.IsZero() {
		ts = time.Now()
	}
	u := c.base.URL("/api/v1/query", nil)
	form := u.Query() // parameters in the configured URL go with every query, as with client_golang
	form.Set("query", query)
	form.Set("time", formatTime(ts))
	form.Set("timeout", c.timeout.String())
	resp, body, err := c.send(ctx, u, form.Encode())
	if err == nil && resp.StatusCode/100 != 2 {
		err = answerError(resp.StatusCode, body)
	}
	var v model.Value
	if err == nil {
		v, err = decodeQueryResponse(body)
	}
	if err != nil {
		return nil, c.wrap("query", err)
	}
	return v, nil
}

// send asks for u with the form-encoded parameters: as a GET query string when the verb is GET
// and they fit in MaxGETQueryBytes, else as a POST form. Like client_golang, it retries a POST
// refused with 403, 405 or 501 as a GET.
func (c *Client) send(ctx context.Context, u *url.URL, form string) (*http.Response, []byte, error) {
	if c.verb == http.MethodGet && len(form) <= MaxGETQueryBytes {
		return c.get(ctx, u, form)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// An Idempotency-Key, even empty and so not sent, lets net/http retry the POST on a
	// keep-alive connection the server had closed: a query has no side effects.
	req.Header["Idempotency-Key"] = nil
	resp, body, err := c.base.Do(ctx, req)
	if resp != nil {
		switch resp.StatusCode {
		case http.StatusForbidden, http.StatusMethodNotAllowed, http.StatusNotImplemented:
			return c.get(ctx, u, form)
		}
	}
	return resp, body, err
}

func (c *Client) get(ctx context.Context, u *url.URL, form string) (*http.Response, []byte, error) {
	withQuery := *u
	withQuery.RawQuery = form
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, withQuery.String(), nil)
	if err != nil {
		return nil, nil, err
	}
	return c.base.Do(ctx, req)
}

// formatTime is the API's time format, as client_golang writes it: Unix seconds with a fraction.
func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.Unix())+float64(t.Nanosecond())/1e9, 'f', -1, 64)
}

// answerError is the *v1.Error that client_golang makes of a non-2xx answer, so that wrap
// classifies queries and label calls alike: Prometheus' error body for 400 and 422, which
// it answers to bad queries, else the status, with the body kept in Detail.
func answerError(code int, body []byte) *v1.Error {
	if code == http.StatusBadRequest || code == http.StatusUnprocessableEntity {
		var answer struct {
			Status    string       `json:"status"`
			ErrorType v1.ErrorType `json:"errorType"`
			Error     string       `json:"error"`
		}
		if json.Unmarshal(body, &answer) == nil {
			if answer.Status == "success" {
				return &v1.Error{Type: v1.ErrBadResponse, Msg: "inconsistent body for response code"}
			}
			if answer.ErrorType == "" {
				answer.ErrorType = v1.ErrClient
			}
			if answer.Error == "" {
				answer.Error = fmt.Sprintf("client error: %d", code)
			}
			return &v1.Error{Type: answer.ErrorType, Msg: answer.Error}
		}
	}
	switch code / 100 {
	case 4:
		return &v1.Error{Type: v1.ErrClient, Msg: fmt.Sprintf("client error: %d", code), Detail: string(body)}
	case 5:
		return &v1.Error{Type: v1.ErrServer, Msg: fmt.Sprintf("server error: %d", code), Detail: string(body)}
	}
	return &v1.Error{Type: v1.ErrBadResponse, Msg: fmt.Sprintf("bad response code %d", code), Detail: string(body)}
}

// LabelNames lists label names of series matching any of matches within [start, end].
func (c *Client) LabelNames(ctx context.Context, matches []string, start, end time.Time) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	names, _, _, err := c.api.LabelNames(ctx, matches, start, end)
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
	vals, _, _, err := c.api.LabelValues(ctx, label, matches, start, end)
	if err != nil {
		return nil, c.wrap("label values", err)
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = string(v)
	}
	return out, nil
}

// Cause classifies a failure so the API layer can answer 503 (backend down) or 500 (bad rule).
type Cause string

const (
	CauseUnreachable Cause = "unreachable" // connection refused, DNS, TLS handshake
	CauseTimeout     Cause = "timeout"     // the request or the query timed out
	CauseBadQuery    Cause = "bad_query"   // Prometheus rejected the PromQL (a rule bug)
	CauseServer      Cause = "server"      // Prometheus answered 5xx or an unusable response
	CauseCanceled    Cause = "canceled"    // the caller went away
)

// Error is a backend failure with a cause and a message meant for people.
type Error struct {
	Cause Cause
	URL   string
	Op    string
	Err   error
}

func (e *Error) Error() string {
	switch e.Cause {
	case CauseUnreachable:
		return fmt.Sprintf("cannot reach Prometheus at %s (%s): %v; check --prometheus-url, network policy and TLS settings", e.URL, e.Op, e.Err)
	case CauseTimeout:
		return fmt.Sprintf("Prometheus at %s timed out (%s): %v; the query may be too expensive or the server overloaded", e.URL, e.Op, e.Err)
	case CauseBadQuery:
		return fmt.Sprintf("Prometheus at %s rejected the %s: %v; fix the rule's query template", e.URL, e.Op, e.Err)
	default:
		return fmt.Sprintf("Prometheus at %s failed (%s): %v", e.URL, e.Op, e.Err)
	}
}

func (e *Error) Unwrap() error { return e.Err }

func (c *Client) wrap(op string, err error) error {
	e := &Error{Cause: CauseServer, URL: c.url, Op: op, Err: err}
	var apiErr *v1.Error
	var urlErr *url.Error
	var netErr net.Error
	switch {
	case errors.Is(err, context.Canceled):
		e.Cause = CauseCanceled
	case errors.Is(err, context.DeadlineExceeded):
		e.Cause = CauseTimeout
	case errors.As(err, &apiErr):
		switch apiErr.Type {
		case v1.ErrBadData:
			e.Cause = CauseBadQuery
		case v1.ErrTimeout, v1.ErrCanceled:
			e.Cause = CauseTimeout
		default:
			if apiErr.Detail == "" {
				break
			}
			// Error bodies are decoded only for 400 and 422 and otherwise kept in Detail.
			// Prometheus answers its own query timeouts with 503 and {"errorType":"timeout",
			// "error":"…"}; a proxy answers a 401 or a 502 with text or HTML: quote its start.
			var body struct {
				ErrorType string `json:"errorType"`
				Error     string `json:"error"`
			}
			if json.Unmarshal([]byte(apiErr.Detail), &body) != nil || body.Error == "" {
				e.Err = fmt.Errorf("%w; the answer starts with %q", apiErr, answerStart(apiErr.Detail))
				break
			}
			e.Err = fmt.Errorf("%s: %s", body.ErrorType, body.Error)
			if apiErr.Type == v1.ErrServer && (body.ErrorType == string(v1.ErrTimeout) || body.ErrorType == string(v1.ErrCanceled)) {
				e.Cause = CauseTimeout
			}
		}
	case errors.As(err, &netErr) && netErr.Timeout():
		e.Cause = CauseTimeout
	case errors.As(err, &urlErr):
		// Transport failures (connection refused, DNS, TLS handshake and certificate errors)
		// arrive as *url.Error: the server could not be talked to at all.
		e.Cause = CauseUnreachable
	}
	return e
}

// maxQuoted bounds how much of an unexpected answer an error message quotes.
const maxQuoted = 200

// answerStart is the start of an answer, for quoting.
func answerStart(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	return s[:maxQuoted] + "…"
}

// CauseOf returns the cause of a backend error, or "" when err is not one.
func CauseOf(err error) Cause {
	var e *Error
	if errors.As(err, &e) {
		return e.Cause
	}
	return ""
}

// getClient, for the label calls that go through client_golang, sends form-encoded POSTs as
// GETs while they fit in MaxGETQueryBytes, honouring
// --prometheus-verb=GET for servers or proxies that only allow GET, and falling back to POST
// for long queries so nothing is rejected for its length.
type getClient struct{ api.Client }

func (g getClient) Do(ctx context.Context, req *http.Request) (*http.Response, []byte, error) {
	if req.Method == http.MethodPost && req.Header.Get("Content-Type") == "application/x-www-form-urlencoded" && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, nil, err
		}
		if len(body) <= MaxGETQueryBytes {
			get := req.Clone(ctx)
			get.Method = http.MethodGet
			get.Body = nil
			get.ContentLength = 0
			get.Header.Del("Content-Type")
			get.URL.RawQuery = string(body)
			return g.Client.Do(ctx, get)
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	return g.Client.Do(ctx, req)
}
