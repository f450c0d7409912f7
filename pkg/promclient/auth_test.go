package promclient_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/config"

	"github.com/promadapter/promadapter/pkg/promclient"
)

// assertNoSecret fails when err's text holds any of secrets.
func assertNoSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q holds the secret %q", err, s)
		}
	}
}

// guarded is a fake Prometheus that answers only requests that allow accepts, else 401 with a
// body that echoes the request's Authorization header, as a careless proxy might.
func guarded(t *testing.T, allow func(r *http.Request) bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allow(r) {
			http.Error(w, "unauthorized: "+r.Header.Get("Authorization"), http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/query") {
			_, _ = io.WriteString(w, vectorBody)
			return
		}
		_, _ = io.WriteString(w, `{"status":"success","data":["up"]}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestOAuth2ClientCredentialsTokensAreFetchedAndSent(t *testing.T) {
	const clientID, clientSecret = "promadapter", "s3cret-client-secret"
	var mu sync.Mutex
	issued := 0
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if err := r.ParseForm(); err != nil || !ok || user != clientID || pass != clientSecret ||
			r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("scope") != "metrics:read" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"invalid_client"}`)
			return
		}
		mu.Lock()
		issued++
		token := fmt.Sprintf("issued-token-%d", issued)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, token)
	}))
	t.Cleanup(tokens.Close)
	backend := guarded(t, func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer issued-token-1" })
	cases := []struct {
		name    string
		secret  string
		wantErr bool
	}{
		{"the token issued for the client's credentials opens the backend, once fetched for every call", clientSecret, false},
		{"a wrong client secret is refused without quoting it", "wrong-client-secret", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			secretFile := writeFile(t, t.TempDir(), "secret", []byte(tc.secret))
			c := mustNew(t, promclient.Options{URL: backend.URL, HTTP: config.HTTPClientConfig{OAuth2: &config.OAuth2{
				ClientID: clientID, ClientSecretFile: secretFile, TokenURL: tokens.URL, Scopes: []string{"metrics:read"},
			}}})
			for _, call := range calls {
				err := call.call(c)
				if tc.wantErr {
					if err == nil {
						t.Fatalf("%s with a wrong client secret succeeded", call.op)
					}
					assertNoSecret(t, err, tc.secret)
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", call.op, err)
				}
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if issued != 1 {
		t.Errorf("the token endpoint issued %d tokens, want 1 (the token is cached until it expires)", issued)
	}
}

func TestMutualTLSPresentsTheConfiguredClientCertificate(t *testing.T) {
	ca := newTestCA(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != "promadapter" {
			http.Error(w, "who are you?", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, vectorBody)
	}))
	srv.TLS = ca.serverTLS(t, true)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	caFile := writeFile(t, dir, "ca.pem", ca.pem)
	certPEM, keyPEM := ca.issue(t, "promadapter", x509.ExtKeyUsageClientAuth)
	certFile, keyFile := writeFile(t, dir, "tls.crt", certPEM), writeFile(t, dir, "tls.key", keyPEM)
	otherCA := newTestCA(t)
	otherCert, otherKey := otherCA.issue(t, "promadapter", x509.ExtKeyUsageClientAuth)
	cases := []struct {
		name      string
		tls       config.TLSConfig
		wantCause promclient.Cause // "" for success
		want      string           // in the error
	}{
		{"a certificate from the server's CA is accepted", config.TLSConfig{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}, "", ""},
		{"an inline certificate and key are accepted", config.TLSConfig{CA: string(ca.pem), Cert: string(certPEM), Key: config.Secret(keyPEM)}, "", ""},
		{"without a client certificate the handshake fails: the backend is unreachable", config.TLSConfig{CAFile: caFile}, promclient.CauseUnreachable, "certificate"},
		{"a certificate from another CA is refused", config.TLSConfig{CAFile: caFile, Cert: string(otherCert), Key: config.Secret(otherKey)}, promclient.CauseUnreachable, "certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustNew(t, promclient.Options{URL: srv.URL, HTTP: config.HTTPClientConfig{TLSConfig: tc.tls}})
			_, err := c.Query(context.Background(), "up", time.Time{})
			if tc.wantCause == "" {
				if err != nil {
					t.Fatalf("Query over mTLS: %v", err)
				}
				return
			}
			if promclient.CauseOf(err) != tc.wantCause || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Query = %v, want cause %s and %q", err, tc.wantCause, tc.want)
			}
			assertNoSecret(t, err, string(keyPEM), string(otherKey))
		})
	}
}

func TestBasicAuthPasswordFileIsReadAgainWhenItChanges(t *testing.T) {
	var mu sync.Mutex
	password := "first-password"
	srv := guarded(t, func(r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		user, pass, ok := r.BasicAuth()
		return ok && user == "adapter" && pass == password
	})
	passwordFile := writeFile(t, t.TempDir(), "password", []byte("first-password\n"))
	c := mustNew(t, promclient.Options{URL: srv.URL, HTTP: config.HTTPClientConfig{BasicAuth: &config.BasicAuth{Username: "adapter", PasswordFile: passwordFile}}})
	if _, err := c.Query(context.Background(), "up", time.Time{}); err != nil {
		t.Fatalf("with the first password: %v", err)
	}
	mu.Lock()
	password = "rotated-password"
	mu.Unlock()
	_, err := c.Query(context.Background(), "up", time.Time{})
	if err == nil {
		t.Fatal("the server took the old password after it changed")
	}
	assertNoSecret(t, err, "first-password")
	if err := os.WriteFile(passwordFile, []byte("rotated-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Query(context.Background(), "up", time.Time{}); err != nil {
		t.Errorf("after the file was rotated: %v", err)
	}
}

func TestInlineCredentialsEchoedByTheServerAreRedacted(t *testing.T) {
	srv := guarded(t, func(*http.Request) bool { return false }) // echoes the Authorization header
	cases := []struct {
		name    string
		http    config.HTTPClientConfig
		secrets []string
	}{
		{"a bearer token", config.HTTPClientConfig{Authorization: &config.Authorization{Type: "Bearer", Credentials: "inline-bearer-token"}},
			[]string{"inline-bearer-token"}},
		{"a basic-auth password, and the header it makes", config.HTTPClientConfig{BasicAuth: &config.BasicAuth{Username: "adapter", Password: "inline-password"}},
			[]string{"inline-password", base64.StdEncoding.EncodeToString([]byte("adapter:inline-password"))}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustNew(t, promclient.Options{URL: srv.URL, HTTP: tc.http})
			for _, call := range calls {
				err := call.call(c)
				if err == nil || !strings.Contains(err.Error(), "client error: 401") || !strings.Contains(err.Error(), "xxxxx") {
					t.Errorf("%s = %v, want a 401 with the echoed secret replaced by xxxxx", call.op, err)
				}
				assertNoSecret(t, err, tc.secrets...)
			}
		})
	}
}

func TestRequestsGoThroughTheConfiguredProxy(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := parseProxyAuth(r.Header.Get("Proxy-Authorization"))
		if user != "proxy-user" || pass != "proxy-password" {
			http.Error(w, "proxy authentication required", http.StatusProxyAuthRequired)
			return
		}
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Scheme+"://"+r.URL.Host+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/query") {
			_, _ = io.WriteString(w, vectorBody)
			return
		}
		_, _ = io.WriteString(w, `{"status":"success","data":["up"]}`)
	}))
	t.Cleanup(proxy.Close)
	proxyURL, err := url.Parse(proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxyURL.User = url.UserPassword("proxy-user", "proxy-password")
	// The backend's name does not resolve: only the proxy can reach it.
	c := mustNew(t, promclient.Options{URL: "http://prometheus.invalid:9090", HTTP: config.HTTPClientConfig{
		ProxyConfig: config.ProxyConfig{ProxyURL: config.URL{URL: proxyURL}}}})
	for _, call := range calls {
		if err := call.call(c); err != nil {
			t.Fatalf("%s through the proxy: %v", call.op, err)
		}
	}
	want := []string{"GET http://prometheus.invalid:9090/api/v1/query", "GET http://prometheus.invalid:9090/api/v1/labels", "GET http://prometheus.invalid:9090/api/v1/label/job/values"}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("the proxy saw %q, want %q", seen, want)
	}
	proxyURL.User = url.UserPassword("proxy-user", "wrong-proxy-password")
	c = mustNew(t, promclient.Options{URL: "http://prometheus.invalid:9090", HTTP: config.HTTPClientConfig{
		ProxyConfig: config.ProxyConfig{ProxyURL: config.URL{URL: proxyURL}}}})
	err = calls[0].call(c)
	if err == nil || !strings.Contains(err.Error(), "407") {
		t.Errorf("with a wrong proxy password: %v, want the proxy's 407", err)
	}
	assertNoSecret(t, err, "wrong-proxy-password")
}

// parseProxyAuth reads a basic Proxy-Authorization header.
func parseProxyAuth(h string) (user, pass string, ok bool) {
	r := &http.Request{Header: http.Header{"Authorization": {h}}}
	return r.BasicAuth()
}
