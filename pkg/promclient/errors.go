package promclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Cause classifies a failure so the API layer can answer 503 (the backend is down or
// incomplete: retry later) or 500 (a rule or the adapter's configuration must change).
type Cause string

const (
	CauseUnreachable Cause = "unreachable" // connection refused, DNS, TLS handshake: 503
	CauseTimeout     Cause = "timeout"     // the request or the query timed out: 503
	CauseCanceled    Cause = "canceled"    // the caller went away: 503
	CausePartial     Cause = "partial"     // an answer with warnings (a store is down), refused: 503
	CauseBadQuery    Cause = "bad_query"   // Prometheus rejected the PromQL (a rule bug): 500
	CauseHistogram   Cause = "histogram"   // a native histogram where a number is needed (a rule bug): 500
	CauseBadRequest  Cause = "bad_request" // Prometheus refused a parameter the adapter set (timeout, time): 500
	CauseTooLarge    Cause = "too_large"   // the answer exceeds --prometheus-max-answer-bytes or --prometheus-max-samples: 500
	CauseServer      Cause = "server"      // Prometheus answered 5xx or an unusable response: 503 (a retry may succeed)
	CauseConfig      Cause = "config"      // the backend's configuration cannot make the request (no tenant for Cortex or Mimir): 500
)

// Error is a backend failure with a cause and a message meant for people. URL is the
// backend's redacted URL: it never holds a password nor the values of the URL's parameters,
// and neither does the message. Backend is the backend's name (Options.Name); Tenant is the
// tenant the request carried, "" for none: a tenant id is not a secret, and it tells whose data
// was asked for.
type Error struct {
	Cause   Cause
	URL     string
	Op      string
	Err     error
	Backend string
	Tenant  string
}

func (e *Error) Error() string {
	at, op := e.where(), e.Op
	if e.Tenant != "" {
		op += fmt.Sprintf(" for tenant %q", e.Tenant)
	}
	switch e.Cause {
	case CauseUnreachable:
		return fmt.Sprintf("cannot reach %s (%s): %v; check %s, network policy and TLS settings", at, op, e.Err, e.setting("--prometheus-url", "url"))
	case CauseTimeout:
		return fmt.Sprintf("%s timed out (%s): %v; the query may be too expensive or the server overloaded", at, op, e.Err)
	case CauseBadQuery:
		return fmt.Sprintf("%s rejected the %s: %v; fix the rule's query template", at, op, e.Err)
	case CauseBadRequest:
		return fmt.Sprintf("%s refused a request parameter of the %s: %v; the parameter comes from the adapter, not from the rule: check %s and the parameters in %s",
			at, op, e.Err, e.setting("--prometheus-timeout", "timeout"), e.setting("--prometheus-url", "url and queryParameters"))
	case CauseHistogram:
		return fmt.Sprintf("%s answered the %s with a native histogram: %v", at, op, e.Err)
	case CausePartial, CauseTooLarge:
		return fmt.Sprintf("%s: %s refused: %v", at, op, e.Err)
	case CauseConfig:
		return fmt.Sprintf("%s: cannot send the %s: %v", at, op, e.Err)
	default:
		return fmt.Sprintf("%s failed (%s): %v", at, op, e.Err)
	}
}

// where names the backend in messages: the flags' backend as plain Prometheus, as it always was.
func (e *Error) where() string {
	if e.Backend == "" || e.Backend == DefaultName {
		return "Prometheus at " + e.URL
	}
	return fmt.Sprintf("backend %s at %s", e.Backend, e.URL)
}

// setting names where a person changes something: a flag for the flags' backend, else the
// field of the backend in the rule file.
func (e *Error) setting(flag, field string) string {
	if e.Backend == "" || e.Backend == DefaultName {
		return flag
	}
	return fmt.Sprintf("%s of backend %s", field, e.Backend)
}

func (e *Error) Unwrap() error { return e.Err }

// CauseOf returns the cause of a backend error, or "" when err is not one.
func CauseOf(err error) Cause {
	var e *Error
	if errors.As(err, &e) {
		return e.Cause
	}
	return ""
}

// histogramError is a native histogram sample in a result: it has no single value.
type histogramError struct{ series model.Metric }

func (e *histogramError) Error() string {
	return fmt.Sprintf("series %s is a native histogram, which has no single value; make the rule's query return numbers "+
		"by wrapping it in histogram_sum(), histogram_count(), histogram_avg(), histogram_fraction(lower, upper, …) "+
		"or histogram_quantile(φ, …)", answerStart(e.series.String()))
}

// tooManySamplesError is a result with more samples than Options.MaxSamples.
type tooManySamplesError struct {
	limit int
	seen  int // 0 when only "more than limit" is known
}

func (e *tooManySamplesError) Error() string {
	seen := fmt.Sprintf("more than %d", e.limit)
	if e.seen > 0 {
		seen = fmt.Sprint(e.seen)
	}
	return fmt.Sprintf("the result holds %s samples, over the limit of %d; narrow or aggregate the rule's query (e.g. sum by (namespace, pod)), or raise --prometheus-max-samples", seen, e.limit)
}

// tooLargeError is an answer body longer than Options.MaxAnswerBytes.
type tooLargeError struct {
	limit int64
	seen  int64 // the announced Content-Length, or 0 when only "more than limit" is known
}

func (e *tooLargeError) Error() string {
	seen := fmt.Sprintf("more than %d bytes", e.limit)
	if e.seen > 0 {
		seen = fmt.Sprintf("%d bytes", e.seen)
	}
	return fmt.Sprintf("the answer is %s, over the limit of %d bytes, and was not read further; narrow or aggregate the rule's query, or raise --prometheus-max-answer-bytes", seen, e.limit)
}

// partialError is an answer with warnings, refused because Options.AllowPartial is false.
type partialError struct {
	warnings []string
	optIn    string // how a person allows partial answers on this backend
}

// maxQuotedWarnings bounds how many warnings a partialError quotes.
const maxQuotedWarnings = 2

func (e *partialError) Error() string {
	quoted := make([]string, 0, maxQuotedWarnings)
	for _, w := range e.warnings[:min(len(e.warnings), maxQuotedWarnings)] {
		quoted = append(quoted, fmt.Sprintf("%q", answerStart(w)))
	}
	more := ""
	if n := len(e.warnings) - len(quoted); n > 0 {
		more = fmt.Sprintf(" and %d more", n)
	}
	return fmt.Sprintf("the answer may be incomplete (a store or shard did not answer): warnings %s%s; "+
		"fix the backend, or %s to serve such answers", strings.Join(quoted, ", "), more, e.optIn)
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

// invalidParameter matches the start of Prometheus' (and Thanos') message for a request
// parameter it cannot use: `invalid parameter "timeout": cannot parse "1.5s" …`.
var invalidParameter = regexp.MustCompile(`^invalid parameter "([^"]*)"`)

// ruleParameter tells whether a request parameter comes from a rule: the PromQL of a query,
// the seriesQuery selectors of a label call. Others (time, timeout, start, end, those of
// --prometheus-url) are the adapter's.
func ruleParameter(name string) bool { return name == "query" || name == "match[]" }

// classify returns the cause of a failed call, and err with its text made fit for people.
func classify(err error) (Cause, error) {
	var apiErr *v1.Error
	var urlErr *url.Error
	var netErr net.Error
	var histErr *histogramError
	var samplesErr *tooManySamplesError
	var largeErr *tooLargeError
	var partialErr *partialError
	switch {
	case errors.Is(err, context.Canceled):
		return CauseCanceled, err
	case errors.Is(err, context.DeadlineExceeded):
		return CauseTimeout, err
	case errors.As(err, &histErr):
		return CauseHistogram, err
	case errors.As(err, &samplesErr), errors.As(err, &largeErr):
		return CauseTooLarge, err
	case errors.As(err, &partialErr):
		return CausePartial, err
	case errors.As(err, &apiErr):
		return classifyAPIError(apiErr)
	case errors.As(err, &netErr) && netErr.Timeout():
		return CauseTimeout, err
	case errors.As(err, &urlErr):
		// Transport failures (connection refused, DNS, TLS handshake and certificate errors)
		// arrive as *url.Error: the server could not be talked to at all.
		return CauseUnreachable, err
	}
	return CauseServer, err
}

func classifyAPIError(apiErr *v1.Error) (Cause, error) {
	switch apiErr.Type {
	case v1.ErrBadData:
		if m := invalidParameter.FindStringSubmatch(apiErr.Msg); m != nil && !ruleParameter(m[1]) {
			return CauseBadRequest, apiErr
		}
		return CauseBadQuery, apiErr
	case v1.ErrTimeout, v1.ErrCanceled:
		return CauseTimeout, apiErr
	}
	if apiErr.Detail == "" {
		return CauseServer, apiErr
	}
	// Error bodies are decoded only for 400 and 422 and otherwise kept in Detail.
	// Prometheus answers its own query timeouts with 503 and {"errorType":"timeout",
	// "error":"…"}; a proxy answers a 401 or a 502 with text or HTML: quote its start.
	var body struct {
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
	}
	if json.Unmarshal([]byte(apiErr.Detail), &body) != nil || body.Error == "" {
		return CauseServer, fmt.Errorf("%w; the answer starts with %q", apiErr, answerStart(apiErr.Detail))
	}
	err := fmt.Errorf("%s: %s", body.ErrorType, body.Error)
	if apiErr.Type == v1.ErrServer && (body.ErrorType == string(v1.ErrTimeout) || body.ErrorType == string(v1.ErrCanceled)) {
		return CauseTimeout, err
	}
	return CauseServer, err
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
