// This file holds the Forwarder's HTTP requests and the decoding of the other server's answers.

package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/metrics/pkg/apis/external_metrics"
	externalv1beta1 "k8s.io/metrics/pkg/apis/external_metrics/v1beta1"
)

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
