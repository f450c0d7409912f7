package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	certutil "k8s.io/client-go/util/cert"
)

// servingWithClientCAs is a TLS server that requests client certificates from the given CAs,
// as the apiserver's serving config does once its CA controller has run.
func servingWithClientCAs(t *testing.T, clientAuth tls.ClientAuthType, cas ...[]byte) string {
	t.Helper()
	pool := x509.NewCertPool()
	for _, ca := range cas {
		if !pool.AppendCertsFromPEM(ca) {
			t.Fatal("bad test CA")
		}
	}
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.TLS = &tls.Config{ClientAuth: clientAuth, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func TestServingCACheck(t *testing.T) {
	frontProxy := frontProxyCA(t)
	other, _, err := certutil.GenerateSelfSignedCertKey("kubernetes-client-ca", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	provider := func(bundle []byte) *authenticatorfactory.RequestHeaderConfig {
		p, err := dynamiccertificates.NewStaticCAContent("front-proxy", bundle)
		if err != nil {
			t.Fatal(err)
		}
		return &authenticatorfactory.RequestHeaderConfig{CAContentProvider: p}
	}
	tests := []struct {
		name    string
		addr    func() string
		rh      *authenticatorfactory.RequestHeaderConfig
		wantErr string
	}{
		{
			name: "ready when the port asks for certificates of the request-header CA",
			addr: func() string { return servingWithClientCAs(t, tls.RequestClientCert, other, frontProxy) },
			rh:   provider(frontProxy),
		},
		{
			name:    "not ready while the port asks only for other CAs (the CA controller has not run yet)",
			addr:    func() string { return servingWithClientCAs(t, tls.RequestClientCert, other) },
			rh:      provider(frontProxy),
			wantErr: "does not accept client certificates of the request-header CA yet",
		},
		{
			name:    "not ready while the port asks for no certificate at all",
			addr:    func() string { return servingWithClientCAs(t, tls.NoClientCert) },
			rh:      provider(frontProxy),
			wantErr: "does not ask for client certificates yet",
		},
		{
			name: "ready without request-header authentication",
			addr: func() string { return "127.0.0.1:1" },
			rh:   nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := servingCACheck(tt.addr(), tt.rh)
			req := httptest.NewRequest(http.MethodGet, "/readyz", nil).WithContext(context.Background())
			err := check.Check(req)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Check() = %v, want ready", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Check() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestServingCACheckPassesForGoodOnceItHasPassed(t *testing.T) {
	frontProxy := frontProxyCA(t)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(frontProxy)
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert, ClientCAs: pool}
	srv.StartTLS()
	addr := srv.Listener.Addr().String()
	p, err := dynamiccertificates.NewStaticCAContent("front-proxy", frontProxy)
	if err != nil {
		t.Fatal(err)
	}
	check := servingCACheck(addr, &authenticatorfactory.RequestHeaderConfig{CAContentProvider: p})
	req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
	if err := check.Check(req); err != nil {
		t.Fatalf("first Check() = %v", err)
	}
	srv.Close() // a passed check must not dial again on every probe
	if err := check.Check(req); err != nil {
		t.Fatalf("Check() after passing, with the port closed = %v, want ready", err)
	}
}

func TestLoopbackAddr(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:6443":   "localhost:6443",
		"[::]:6443":      "localhost:6443",
		"127.0.0.1:8443": "127.0.0.1:8443",
		"10.1.2.3:443":   "10.1.2.3:443",
	} {
		tcp, err := net.ResolveTCPAddr("tcp", in)
		if err != nil {
			t.Fatal(err)
		}
		if got := loopbackAddr(tcp); got != want {
			t.Errorf("loopbackAddr(%s) = %s, want %s", in, got, want)
		}
	}
}
