package promclient

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"k8s.io/klog/v2"
)

// call makes one call of op to the endpoint u. It adds to form the parameters every request
// carries (the URL's, Options.QueryParameters, the kind's, the tenant's; form's own win), sends
// it, and hands the body of a 2xx answer to decode, which returns the answer's warnings and
// infos. It records the call in the backend's metrics, and returns failures as *Error.
func (c *Client) call(ctx context.Context, op string, u *url.URL, form url.Values, decode func(body []byte) (warnings, infos []string, err error)) error {
	start := time.Now()
	if c.tenancy.required && c.tenant == "" {
		// Sending it would only earn a 401 ("no org id") that names no fix.
		c.m.call(op, start, 0, false, false, false)
		c.m.failed(CauseConfig, "")
		return &Error{Cause: CauseConfig, URL: c.url, Op: opText(op), Err: c.noTenantError(), Backend: c.name}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	all := u.Query() // the parameters of the configured URL go with every request, as with client_golang
	for k, vs := range c.params {
		all[k] = vs
	}
	c.setTenantParameter(all)
	for k, vs := range form {
		all[k] = vs
	}
	// Prometheus serves label values by GET only; client_golang never POSTs them either.
	resp, body, err := c.send(ctx, u, all.Encode(), op == opLabelValues)
	if err == nil && resp.StatusCode/100 != 2 {
		err = answerError(resp.StatusCode, body)
	}
	var warnings, infos []string
	if err == nil {
		warnings, infos, err = decode(body)
	}
	if err == nil {
		err = c.checkWarnings(warnings, infos)
	}
	unreachable := false
	if err != nil && resp == nil {
		cause, _ := classify(err)
		unreachable = cause == CauseUnreachable || cause == CauseTimeout
	}
	c.m.call(op, start, len(body), body != nil, resp != nil, unreachable)
	if err != nil {
		return c.wrap(op, err)
	}
	return nil
}

// opText is an operation as messages name it: "label names" for label_names.
func opText(op string) string { return strings.ReplaceAll(op, "_", " ") }

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

// checkWarnings counts an answer's warnings and infos, and refuses it when it has warnings,
// unless partial answers are allowed. Infos never refuse an answer.
func (c *Client) checkWarnings(warnings, infos []string) error {
	if len(warnings) == 0 {
		c.m.notices(0, len(infos), false)
		return nil
	}
	if !c.allowPartial {
		c.m.notices(len(warnings), len(infos), false)
		optIn := "pass --allow-partial-answers"
		if c.name != DefaultName {
			optIn = fmt.Sprintf("set allowPartialAnswers: true on backend %s", c.name)
		}
		return &partialError{warnings: warnings, optIn: optIn}
	}
	c.m.notices(len(warnings), len(infos), true)
	klog.V(2).InfoS("Serving a partial answer (partial answers are allowed on the backend)", "backend", c.name, "prometheus", c.url,
		"warnings", len(warnings), "firstWarning", c.redact.scrub(answerStart(warnings[0])))
	return nil
}

// wrap makes err an *Error: classified, counted, and with no secret of the backend left in
// its text.
func (c *Client) wrap(op string, err error) error {
	cause, err := classify(err)
	reason := ""
	var samplesErr *tooManySamplesError
	switch cause {
	case CausePartial:
		reason = reasonPartial
	case CauseHistogram:
		reason = reasonHistogram
	case CauseTooLarge:
		reason = reasonTooLarge
		if errors.As(err, &samplesErr) {
			reason = reasonTooManySamples
		}
	}
	c.m.failed(cause, reason)
	return &Error{Cause: cause, URL: c.url, Op: opText(op), Err: c.redact.error(err), Backend: c.name, Tenant: c.tenant}
}
