package provider_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promadapter/promadapter/internal/promtest"
	"github.com/promadapter/promadapter/pkg/provider"
)

// kedaList is what KEDA's metrics server answers for one metric: two values, one with labels
// and a window.
const kedaList = `{"kind":"ExternalMetricValueList","apiVersion":"external.metrics.k8s.io/v1beta1","metadata":{},"items":[
 {"metricName":"s0-rabbitmq-orders","metricLabels":null,"timestamp":"2026-03-01T12:00:00Z","value":"17"},
 {"metricName":"s0-rabbitmq-orders","metricLabels":{"queue":"b"},"timestamp":"2026-03-01T12:00:05Z","window":60,"value":"2500m"}]}`

// kedaDiscovery is KEDA's discovery list: its placeholder, a metric, a name the adapter
// serves too (depth) and a subresource that is not a metric.
const kedaDiscovery = `{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"external.metrics.k8s.io/v1beta1","resources":[
 {"name":"externalmetrics","namespaced":true,"kind":"ExternalMetricValueList","verbs":["get"]},
 {"name":"s0-rabbitmq-orders","namespaced":true,"kind":"ExternalMetricValueList","verbs":["get"]},
 {"name":"depth","namespaced":true,"kind":"ExternalMetricValueList","verbs":["get"]},
 {"name":"s0-rabbitmq-orders/status","namespaced":true,"kind":"ExternalMetricValueList","verbs":["get"]}]}`

const kedaNotFound = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"no metric named nope","reason":"NotFound","code":404}`

// forwardRequest is one request the fake forward backend received.
type forwardRequest struct {
	path          string
	labelSelector string // "" and hasSelector false: no labelSelector parameter
	hasSelector   bool
	authorization string
	clientCN      string
}

// fakeForwardBackend is an HTTPS server of external.metrics.k8s.io standing in for KEDA's.
type fakeForwardBackend struct {
	srv    *httptest.Server
	caFile string

	mu         sync.Mutex
	requests   []forwardRequest
	answer     func(r *http.Request) (int, string) // metric requests
	listAnswer func(r *http.Request) (int, string) // discovery; nil: kedaDiscovery
}

// newFakeForwardBackend starts the backend; clientCA, when set, makes it require a client
// certificate signed by that CA (mutual TLS).
func newFakeForwardBackend(t *testing.T, clientCA *x509.CertPool) *fakeForwardBackend {
	t.Helper()
	b := &fakeForwardBackend{answer: func(*http.Request) (int, string) { return 200, kedaList }}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := forwardRequest{path: r.URL.Path, authorization: r.Header.Get("Authorization")}
		req.labelSelector, req.hasSelector = r.URL.Query().Get("labelSelector"), r.URL.Query().Has("labelSelector")
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			req.clientCN = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		b.mu.Lock()
		b.requests = append(b.requests, req)
		answer := b.answer
		b.mu.Unlock()
		if r.URL.Path == "/apis/external.metrics.k8s.io/v1beta1" {
			answer = func(*http.Request) (int, string) { return 200, kedaDiscovery }
			b.mu.Lock()
			if b.listAnswer != nil {
				answer = b.listAnswer
			}
			b.mu.Unlock()
		}
		status, body := answer(r)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	b.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes refused on purpose
	if clientCA != nil {
		b.srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCA}
	}
	b.srv.StartTLS()
	t.Cleanup(b.srv.Close)
	b.caFile = writeTestFile(t, "backend-ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.srv.Certificate().Raw}))
	return b
}

func (b *fakeForwardBackend) setAnswer(answer func(r *http.Request) (int, string)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.answer = answer
}

func (b *fakeForwardBackend) setListAnswer(answer func(r *http.Request) (int, string)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.listAnswer = answer
}

func (b *fakeForwardBackend) takeRequests() []forwardRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.requests
	b.requests = nil
	return out
}

func writeTestFile(t *testing.T, name string, content []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func answerWith(status int, body string) func(*http.Request) (int, string) {
	return func(*http.Request) (int, string) { return status, body }
}

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

func TestForwardingPresentsTheClientCertificate(t *testing.T) {
	caCert, caKey := testCA(t)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	backend := newFakeForwardBackend(t, pool)
	certPEM, keyPEM := issueClientCert(t, caCert, caKey, "promadapter")
	cfg := provider.ForwardConfig{URL: backend.srv.URL, CAFile: backend.caFile, Timeout: 2 * time.Second,
		ClientCertFile: writeTestFile(t, "client.pem", certPEM), ClientKeyFile: writeTestFile(t, "client-key.pem", keyPEM)}
	fwd, err := provider.NewForwarder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fwd.GetExternalMetric(context.Background(), "shop", labels.Everything(), "s0-rabbitmq-orders"); err != nil {
		t.Fatal(err)
	}
	if got := backend.takeRequests(); len(got) != 1 || got[0].clientCN != "promadapter" {
		t.Errorf("the backend received %+v, want one request with client certificate CN=promadapter", got)
	}

	cfg.ClientCertFile, cfg.ClientKeyFile = "", ""
	withoutCert, err := provider.NewForwarder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = withoutCert.GetExternalMetric(context.Background(), "shop", labels.Everything(), "s0-rabbitmq-orders")
	checkAPIError(t, err, &errorCheck{503, []string{"the forward backend 127.0.0.1:", "cannot be reached: "}})
}

func TestForwardingRereadsTheTokenFile(t *testing.T) {
	backend := newFakeForwardBackend(t, nil)
	tokenFile := writeTestFile(t, "token", []byte("first"))
	fwd, err := provider.NewForwarder(provider.ForwardConfig{URL: backend.srv.URL, CAFile: backend.caFile, TokenFile: tokenFile, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, token := range []string{"", "rotated"} {
		if token != "" {
			if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := fwd.GetExternalMetric(context.Background(), "shop", labels.Everything(), "m"); err != nil {
			t.Fatal(err)
		}
		for _, r := range backend.takeRequests() {
			got = append(got, r.authorization)
		}
	}
	if want := []string{"Bearer first", "Bearer rotated"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Authorization headers = %q, want %q", got, want)
	}
}

func TestForwardedMetricsAreListedWithTheAdaptersOwn(t *testing.T) {
	logs := captureLogs(t, "0")
	backend := newFakeForwardBackend(t, nil)
	fwd, err := provider.NewForwarder(provider.ForwardConfig{URL: backend.srv.URL, CAFile: backend.caFile, Timeout: 2 * time.Second, ListTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{external: externalRules, series: shopSeries})
	e.prom.SetAnswer(vectorAnswer(sample{value: "5", labels: []string{"namespace", "shop"}}))
	e.external.Forward = fwd
	names := func() []string {
		var out []string
		for _, m := range e.external.ListAllExternalMetrics() {
			out = append(out, m.Metric)
		}
		return out
	}
	own := []string{"cluster_capacity", "depth", "jobs_waiting", "kube_deployment_spec_replicas", "lag_seconds"}
	merged := []string{"cluster_capacity", "depth", "externalmetrics", "jobs_waiting", "kube_deployment_spec_replicas", "lag_seconds", "s0-rabbitmq-orders"}

	if err := fwd.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Run("both lists, sorted, each name once, subresources left out", func(t *testing.T) {
		if got := names(); !reflect.DeepEqual(got, merged) {
			t.Errorf("listed %q, want %q", got, merged)
		}
	})
	t.Run("a name both serve is the adapter's, warned about once", func(t *testing.T) {
		names()
		names()
		if n := strings.Count(logs.String(), `served by promadapter and by the forward backend`); n != 1 {
			t.Errorf("%d clash warnings, want 1; logs:\n%s", n, logs)
		}
		if !strings.Contains(logs.String(), `metric="depth"`) {
			t.Errorf("the warning does not name depth; logs:\n%s", logs)
		}
		list, err := e.external.GetExternalMetric(context.Background(), "shop", labels.Everything(), cmprovider.ExternalMetricInfo{Metric: "depth"})
		if err != nil || len(list.Items) != 1 || list.Items[0].MetricName != "depth" {
			t.Errorf("GET depth = %+v, %v; want the adapter's own value", list, err)
		}
		for _, r := range backend.takeRequests() {
			if strings.HasSuffix(r.path, "/depth") {
				t.Errorf("depth was forwarded: %+v", r)
			}
		}
	})
	t.Run("a failing list keeps the last good one and is logged once", func(t *testing.T) {
		backend.setListAnswer(answerWith(503, `{"kind":"Status","message":"not ready"}`))
		for range 3 {
			if err := fwd.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), "answered 503: not ready") {
				t.Errorf("Refresh() = %v, want an error saying it answered 503", err)
			}
		}
		if got := names(); !reflect.DeepEqual(got, merged) {
			t.Errorf("listed %q, want the last good list %q", got, merged)
		}
		if n := strings.Count(logs.String(), "Cannot list the forward backend's external metrics"); n != 1 {
			t.Errorf("%d failure lines, want 1; logs:\n%s", n, logs)
		}
	})
	t.Run("without forwarding only the adapter's own are listed", func(t *testing.T) {
		e.external.Forward = nil
		if got := names(); !reflect.DeepEqual(got, own) {
			t.Errorf("listed %q, want %q", got, own)
		}
	})
}

func TestForwardedListIsRefreshedInTheBackgroundOnExpiry(t *testing.T) {
	backend := newFakeForwardBackend(t, nil)
	fwd, err := provider.NewForwarder(provider.ForwardConfig{URL: backend.srv.URL, CAFile: backend.caFile, Timeout: 2 * time.Second, ListTTL: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	has := func(list []cmprovider.ExternalMetricInfo, name string) bool {
		for _, m := range list {
			if m.Metric == name {
				return true
			}
		}
		return false
	}
	// The first call does not wait for the backend: it lists the adapter's own only.
	if got := fwd.MergeExternalMetrics([]cmprovider.ExternalMetricInfo{{Metric: "own"}}); !reflect.DeepEqual(got, []cmprovider.ExternalMetricInfo{{Metric: "own"}}) {
		t.Errorf("first list = %v, want only the adapter's own", got)
	}
	poll := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("after 5s, still not true that %s", what)
			}
		}
	}
	poll("the background refresh lists s0-rabbitmq-orders", func() bool {
		return has(fwd.MergeExternalMetrics(nil), "s0-rabbitmq-orders")
	})
	backend.setListAnswer(answerWith(200, `{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"external.metrics.k8s.io/v1beta1","resources":[{"name":"s1-cron","namespaced":true,"kind":"ExternalMetricValueList","verbs":["get"]}]}`))
	poll("after the TTL, the refreshed list replaces the old one", func() bool {
		list := fwd.MergeExternalMetrics(nil)
		return has(list, "s1-cron") && !has(list, "s0-rabbitmq-orders")
	})
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

// testCA is a self-signed CA for client certificates.
func testCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test client CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// issueClientCert returns a PEM client certificate for cn signed by the CA, and its key.
func issueClientCert(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string) ([]byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}
