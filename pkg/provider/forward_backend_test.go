// A fake external.metrics.k8s.io backend standing in for KEDA's, and the certificates and files the forwarding tests give it.

package provider_test

import (
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
	"sync"
	"testing"
	"time"
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
