package provider_test

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promadapter/promadapter/internal/promtest"
	"github.com/promadapter/promadapter/pkg/provider"
)

func TestForwardedExternalMetrics(t *testing.T) {
	const token = "forward-token-7f3a"
	tokenFile := writeTestFile(t, "token", []byte(token+"\n"))
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v.UTC() }
	cases := []struct {
		name      string
		metric    string
		namespace string
		selector  string
		answer    func(*http.Request) (int, string)
		timeout   time.Duration
		closedURL bool // the backend is down
		want      []externalValue
		// wantRequest is what the backend received; nil means it received nothing.
		wantRequest *forwardRequest
		wantErr     *errorCheck
	}{
		{
			name:   "a metric no rule serves is answered with the forward backend's values, converted",
			metric: "s0-rabbitmq-orders", namespace: "shop", selector: "scaledobject.keda.sh/name=orders",
			want: []externalValue{
				{"s0-rabbitmq-orders", nil, "17", at("2026-03-01T12:00:00Z")},
				{"s0-rabbitmq-orders", map[string]string{"queue": "b"}, "2500m", at("2026-03-01T12:00:05Z")},
			},
			wantRequest: &forwardRequest{path: "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/s0-rabbitmq-orders",
				labelSelector: "scaledobject.keda.sh/name=orders", hasSelector: true, authorization: "Bearer " + token},
		},
		{
			name:   "the selector is passed exactly, in the canonical form both servers parse alike",
			metric: "s0-rabbitmq-orders", namespace: "batch", selector: "tier!=db, scaledobject.keda.sh/name=orders,queue in (b,a),!canary",
			want: []externalValue{
				{"s0-rabbitmq-orders", nil, "17", at("2026-03-01T12:00:00Z")},
				{"s0-rabbitmq-orders", map[string]string{"queue": "b"}, "2500m", at("2026-03-01T12:00:05Z")},
			},
			wantRequest: &forwardRequest{path: "/apis/external.metrics.k8s.io/v1beta1/namespaces/batch/s0-rabbitmq-orders",
				labelSelector: "!canary,queue in (a,b),scaledobject.keda.sh/name=orders,tier!=db", hasSelector: true, authorization: "Bearer " + token},
		},
		{
			name:   "an empty selector sends no labelSelector parameter",
			metric: "s0-rabbitmq-orders", namespace: "shop", selector: "",
			want: []externalValue{
				{"s0-rabbitmq-orders", nil, "17", at("2026-03-01T12:00:00Z")},
				{"s0-rabbitmq-orders", map[string]string{"queue": "b"}, "2500m", at("2026-03-01T12:00:05Z")},
			},
			wantRequest: &forwardRequest{path: "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/s0-rabbitmq-orders", authorization: "Bearer " + token},
		},
		{
			name:   "a metric a rule serves is answered by the adapter and never forwarded",
			metric: "jobs_waiting", namespace: "batch",
			want: []externalValue{{"jobs_waiting", nil, "1500m", plannerTime.UTC()}},
		},
		{
			name:   "the backend's 404 is a 404 naming both servers",
			metric: "nope", namespace: "shop", selector: "a=b",
			answer: answerWith(404, kedaNotFound),
			wantRequest: &forwardRequest{path: "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/nope",
				labelSelector: "a=b", hasSelector: true, authorization: "Bearer " + token},
			wantErr: &errorCheck{404, []string{`external metric "nope" is served by neither promadapter nor the forward backend 127.0.0.1:`,
				`(namespace "shop", selector "a=b"; it answered: no metric named nope)`, "`kubectl get --raw /apis/external.metrics.k8s.io/v1beta1` lists both sets"}},
		},
		{
			name:   "the backend's 500 is a 503 naming it, with its message",
			metric: "s0-rabbitmq-orders", namespace: "shop",
			answer:      answerWith(500, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"scaler rabbitmq: connection refused","code":500}`),
			wantRequest: &forwardRequest{path: "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/s0-rabbitmq-orders", authorization: "Bearer " + token},
			wantErr: &errorCheck{503, []string{`external metric "s0-rabbitmq-orders" (namespace "shop") is not served by promadapter, and the forward backend 127.0.0.1:`,
				"failed (500: scaler rabbitmq: connection refused)"}},
		},
		{
			name:   "an unreachable backend is a 503 naming it",
			metric: "s0-rabbitmq-orders", namespace: "shop", closedURL: true,
			wantErr: &errorCheck{503, []string{"is not served by promadapter, and the forward backend 127.0.0.1:", "cannot be reached: ", "connection refused"}},
		},
		{
			name:   "a backend slower than the timeout is a 503 saying how long it waited",
			metric: "s0-rabbitmq-orders", namespace: "shop", timeout: 200 * time.Millisecond,
			answer: func(r *http.Request) (int, string) {
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
				return 200, kedaList
			},
			wantRequest: &forwardRequest{path: "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/s0-rabbitmq-orders", authorization: "Bearer " + token},
			wantErr:     &errorCheck{503, []string{"the forward backend 127.0.0.1:", "did not answer within 200ms (--external-metrics-forward-timeout)"}},
		},
		{
			name:   "the backend refusing the adapter's identity is a 500 saying what to grant",
			metric: "s0-rabbitmq-orders", namespace: "shop",
			answer:      answerWith(403, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"forbidden: User \"system:serviceaccount:monitoring:promadapter\" cannot get resource","code":403}`),
			wantRequest: &forwardRequest{path: "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/s0-rabbitmq-orders", authorization: "Bearer " + token},
			wantErr:     &errorCheck{500, []string{"refused promadapter's identity (403: forbidden: User", "allow the adapter's ServiceAccount (or client certificate) to get and list external.metrics.k8s.io there (RBAC)"}},
		},
		{
			name:   "a 200 that is no ExternalMetricValueList is a 503",
			metric: "s0-rabbitmq-orders", namespace: "shop",
			answer:      answerWith(200, `{"kind":"APIResourceList","apiVersion":"v1"}`),
			wantRequest: &forwardRequest{path: "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/s0-rabbitmq-orders", authorization: "Bearer " + token},
			wantErr:     &errorCheck{503, []string{`answered 200 with a "APIResourceList" of "v1" instead of an ExternalMetricValueList of external.metrics.k8s.io/v1beta1`}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			backend := newFakeForwardBackend(t, nil)
			if tc.answer != nil {
				backend.setAnswer(tc.answer)
			}
			cfg := provider.ForwardConfig{URL: backend.srv.URL, CAFile: backend.caFile, TokenFile: tokenFile, Timeout: 2 * time.Second}
			if tc.closedURL {
				cfg.URL = strings.Replace(promtest.ClosedURL(t), "http://", "https://", 1)
			}
			if tc.timeout != 0 {
				cfg.Timeout = tc.timeout
			}
			fwd, err := provider.NewForwarder(cfg)
			if err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, envOptions{external: externalRules, series: shopSeries})
			e.prom.SetAnswer(vectorAnswer())
			e.external.Forward = fwd
			sel, err := labels.Parse(tc.selector)
			if err != nil {
				t.Fatal(err)
			}
			list, err := e.external.GetExternalMetric(context.Background(), tc.namespace, sel, cmprovider.ExternalMetricInfo{Metric: tc.metric})
			checkAPIError(t, err, tc.wantErr)
			if err != nil && tc.wantErr != nil && strings.Contains(err.Error(), token) {
				t.Errorf("the error %q holds the token", err)
			}
			if tc.wantErr == nil {
				var got []externalValue
				for _, v := range list.Items {
					got = append(got, flattenExternal(v))
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("values:\n got %+v\nwant %+v", got, tc.want)
				}
			}
			var want []forwardRequest
			if tc.wantRequest != nil {
				want = []forwardRequest{*tc.wantRequest}
			}
			if got := backend.takeRequests(); !reflect.DeepEqual(got, want) {
				t.Errorf("the backend received\n %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestForwardedValueKeepsTheBackendsWindow(t *testing.T) {
	backend := newFakeForwardBackend(t, nil)
	fwd, err := provider.NewForwarder(provider.ForwardConfig{URL: backend.srv.URL, CAFile: backend.caFile, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	list, err := fwd.GetExternalMetric(context.Background(), "shop", labels.Everything(), "s0-rabbitmq-orders")
	if err != nil {
		t.Fatal(err)
	}
	if w := list.Items[1].WindowSeconds; w == nil || *w != 60 {
		t.Errorf("window of the second value = %v, want 60", w)
	}
	if got := backend.takeRequests(); len(got) != 1 || got[0].authorization != "" {
		t.Errorf("without a token file the backend received %+v, want one request without Authorization", got)
	}
}

func TestNewForwarderRefusesAConfigThatCannotWork(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  provider.ForwardConfig
		want string
	}{
		{"plain http would send the token in the clear", provider.ForwardConfig{URL: "http://keda.svc", Timeout: time.Second}, "must be an https URL with a host"},
		{"a password in the URL", provider.ForwardConfig{URL: "https://u:secret@keda.svc", Timeout: time.Second}, "must have no user, query or fragment"},
		{"no timeout", provider.ForwardConfig{URL: "https://keda.svc"}, "timeout must be positive"},
		{"a certificate without its key", provider.ForwardConfig{URL: "https://keda.svc", Timeout: time.Second, ClientCertFile: "/c.pem"}, "keda.svc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := provider.NewForwarder(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewForwarder() = %v, want an error with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("the error %q shows the password", err)
			}
		})
	}
}
