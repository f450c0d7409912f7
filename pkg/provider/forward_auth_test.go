// Tests of the credentials the Forwarder presents to the other server.

package provider_test

import (
	"context"
	"crypto/x509"
	"os"
	"reflect"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/promadapter/promadapter/pkg/provider"
)

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
