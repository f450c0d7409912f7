package promclient

import (
	"context"
	"fmt"
	"net/url"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
)

// victoriaMetricsLabelWindow is how far back label calls to VictoriaMetrics look when the
// caller gives no start: the window VictoriaMetrics itself would use without match[].
const victoriaMetricsLabelWindow = 24 * time.Hour

// LabelNames lists label names of series matching any of matches within [start, end]; a zero
// start or end leaves that bound to the backend (VictoriaMetrics excepted, see KindVictoriaMetrics).
func (c *Client) LabelNames(ctx context.Context, matches []string, start, end time.Time) ([]string, error) {
	return c.labels(ctx, opLabelNames, c.base.URL("/api/v1/labels", nil), matches, start, end)
}

// LabelValues lists values of label among series matching any of matches within [start, end];
// a zero start or end leaves that bound to the backend (VictoriaMetrics excepted, see
// KindVictoriaMetrics). It is always a GET: Prometheus serves no other method there.
func (c *Client) LabelValues(ctx context.Context, label string, matches []string, start, end time.Time) ([]string, error) {
	return c.labels(ctx, opLabelValues, c.base.URL("/api/v1/label/:name/values", map[string]string{"name": label}), matches, start, end)
}

func (c *Client) labels(ctx context.Context, op string, u *url.URL, matches []string, start, end time.Time) ([]string, error) {
	if c.kind == KindVictoriaMetrics {
		if end.IsZero() {
			end = time.Now()
		}
		if start.IsZero() {
			start = end.Add(-victoriaMetricsLabelWindow)
		}
	}
	form := url.Values{}
	if !start.IsZero() {
		form.Set("start", formatTime(start))
	}
	if !end.IsZero() {
		form.Set("end", formatTime(end))
	}
	if len(matches) > 0 {
		form["match[]"] = matches
	}
	var values []string
	err := c.call(ctx, op, u, form, func(body []byte) ([]string, []string, error) {
		a, err := decodeLabelsResponse(body)
		values = a.values
		return a.warnings, a.infos, err
	})
	if err != nil {
		return nil, err
	}
	return values, nil
}

// labelsAnswer is a decoded success answer to a label call.
type labelsAnswer struct {
	values   []string // never nil
	warnings []string
	infos    []string
}

// decodeLabelsResponse decodes the body of a 2xx answer to a label call: a list of strings.
// An answer with status "error" yields the *v1.Error it carries, as client_golang's does; a
// body that is not a list of strings is a v1.ErrBadResponse, quoting where it went wrong.
func decodeLabelsResponse(body []byte) (labelsAnswer, error) {
	d := decoder{b: body}
	var status, errorType, errorMsg string
	var a labelsAnswer
	seenData := false
	err := d.object(func(key []byte) (err error) {
		switch field(key, "status", "errorType", "error", "data", "warnings", "infos") {
		case "status":
			status, err = d.stringOrNull()
		case "errorType":
			errorType, err = d.stringOrNull()
		case "error":
			errorMsg, err = d.stringOrNull()
		case "data":
			seenData = true
			a.values, err = d.strings()
		case "warnings":
			a.warnings, err = d.strings()
		case "infos":
			a.infos, err = d.strings()
		default:
			err = d.skip()
		}
		return err
	})
	if err == nil {
		if d.ws(); d.i < len(d.b) {
			err = d.errorf("unexpected data after the answer")
		}
	}
	switch {
	case err != nil:
		return labelsAnswer{}, &v1.Error{Type: v1.ErrBadResponse, Msg: fmt.Sprintf("answer is not a Prometheus label list: %v", err)}
	case status == "error":
		return labelsAnswer{}, &v1.Error{Type: v1.ErrorType(errorType), Msg: errorMsg}
	case !seenData:
		return labelsAnswer{}, &v1.Error{Type: v1.ErrBadResponse, Msg: fmt.Sprintf(`answer is not a Prometheus label list: status %q without "data"`, status)}
	}
	if a.values == nil {
		a.values = []string{}
	}
	return a, nil
}
