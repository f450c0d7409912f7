// Helpers shared by the provider tests: flattened metric values, selectors, API error checks and selector cases over the custom rules.

package provider_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promadapter/promadapter/internal/promtest"
	"github.com/promadapter/promadapter/pkg/config"
)

// value is a MetricValue flattened into comparable, written-out fields.
type value struct {
	kind, apiVersion, namespace, name string
	metric, selector                  string
	quantity                          string
	at                                time.Time
}

func flatten(v custom_metrics.MetricValue) value {
	sel := ""
	if v.Metric.Selector != nil {
		s, err := metav1.LabelSelectorAsSelector(v.Metric.Selector)
		if err != nil {
			sel = "invalid: " + err.Error()
		} else {
			sel = s.String()
		}
	}
	return value{
		kind: v.DescribedObject.Kind, apiVersion: v.DescribedObject.APIVersion,
		namespace: v.DescribedObject.Namespace, name: v.DescribedObject.Name,
		metric: v.Metric.Name, selector: sel, quantity: v.Value.String(), at: v.Timestamp.Time.UTC(),
	}
}

func pod(ns, name, metric, quantity string) value {
	return value{kind: "Pod", apiVersion: "/v1", namespace: ns, name: name, metric: metric, quantity: quantity, at: sampleTime.UTC()}
}

func mustSelector(t *testing.T, s string) labels.Selector {
	t.Helper()
	sel, err := labels.Parse(s)
	if err != nil {
		t.Fatalf("labels.Parse(%q): %v", s, err)
	}
	return sel
}

// errorCheck describes an expected API error: its HTTP code and parts of its message.
type errorCheck struct {
	code int32
	msg  []string
}

func checkAPIError(t *testing.T, err error, want *errorCheck) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want HTTP %d with %q", want.code, want.msg)
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		t.Fatalf("error %T %v is not an API status", err, err)
	}
	if got := status.Status().Code; got != want.code {
		t.Errorf("status code = %d, want %d (%v)", got, want.code, err)
	}
	for _, m := range want.msg {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("error %q does not contain %q", err, m)
		}
	}
}

var customRules = []config.DiscoveryRule{appCounterRule, queueDepthRule}

const podRequestsQuery = `sum(rate(http_requests_total{namespace="shop",pod!=""}[2m])) by (pod)`

// selectorCase is one GetMetricBySelector request against the fake Prometheus and its expected answer.
type selectorCase struct {
	// rules are the custom rules; nil means customRules.
	rules          []config.DiscoveryRule
	name           string
	info           cmprovider.CustomMetricInfo
	namespace      string
	selector       string
	metricSelector string
	// metricSet is a metric selector that skips Kubernetes' validation, as a client of the
	// provider other than custom-metrics-apiserver could send; it overrides metricSelector.
	metricSet   labels.Set
	answer      func(string) (int, string)
	objects     *fakeObjects
	queryURL    string // empty: the fake Prometheus
	timeout     time.Duration
	wantQueries []string
	want        []value
	wantErr     *errorCheck
}

// requestsPods asks for the app counter rule's metric of pods.
var requestsPods = cmprovider.CustomMetricInfo{GroupResource: podsResource, Metric: "http_requests_per_second", Namespaced: true}

// runSelectorCases runs each case in a new environment over customRules and shopSeries.
func runSelectorCases(t *testing.T, cases []selectorCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runSelectorCase(t, tc) })
	}
}

func runSelectorCase(t *testing.T, tc selectorCase) {
	t.Helper()
	queryURL := tc.queryURL
	if queryURL == "closed" {
		queryURL = promtest.ClosedURL(t)
	}
	rules := tc.rules
	if rules == nil {
		rules = customRules
	}
	e := newEnv(t, envOptions{custom: rules, series: shopSeries, objects: tc.objects, queryURL: queryURL, timeout: tc.timeout})
	e.prom.SetAnswer(tc.answer)
	var metricSelector labels.Selector = labels.Everything()
	if tc.metricSelector != "" {
		metricSelector = mustSelector(t, tc.metricSelector)
	}
	if tc.metricSet != nil {
		metricSelector = labels.SelectorFromValidatedSet(tc.metricSet)
	}
	list, err := e.custom.GetMetricBySelector(context.Background(), tc.namespace, mustSelector(t, tc.selector), tc.info, metricSelector)
	checkAPIError(t, err, tc.wantErr)
	if got := e.prom.TakeQueries(); !reflect.DeepEqual(got, tc.wantQueries) && !(len(got) == 0 && len(tc.wantQueries) == 0) {
		t.Errorf("queries sent =\n%q\nwant\n%q", got, tc.wantQueries)
	}
	if tc.wantErr != nil {
		return
	}
	got := []value{}
	for _, item := range list.Items {
		got = append(got, flatten(item))
	}
	if !reflect.DeepEqual(got, tc.want) {
		t.Errorf("values =\n%+v\nwant\n%+v", got, tc.want)
	}
}
