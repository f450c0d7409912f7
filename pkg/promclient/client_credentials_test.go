// Tests that credentials, headers and TLS settings reach the server.

package promclient_test

import (
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/promadapter/promadapter/pkg/promclient"
)

func TestCredentialsAndHeadersReachTheServer(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("first-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		http  config.HTTPClientConfig
		check func(t *testing.T, h http.Header)
	}{
		{
			name: "a --prometheus-header style header arrives with its value",
			http: config.HTTPClientConfig{HTTPHeaders: &config.Headers{Headers: map[string]config.Header{
				"X-Scope-Orgid": {Values: []string{"tenant1"}},
			}}},
			check: func(t *testing.T, h http.Header) {
				if got := h.Values("X-Scope-Orgid"); !reflect.DeepEqual(got, []string{"tenant1"}) {
					t.Errorf("X-Scope-OrgID = %q, want [tenant1]", got)
				}
			},
		},
		{
			name: "a bearer token file arrives as an Authorization header",
			http: config.HTTPClientConfig{Authorization: &config.Authorization{Type: "Bearer", CredentialsFile: tokenFile}},
			check: func(t *testing.T, h http.Header) {
				if got := h.Get("Authorization"); got != "Bearer first-token" {
					t.Errorf("Authorization = %q, want %q", got, "Bearer first-token")
				}
			},
		},
		{
			name: "basic auth arrives as user and password",
			http: config.HTTPClientConfig{BasicAuth: &config.BasicAuth{Username: "adapter", Password: "pa:ss"}},
			check: func(t *testing.T, h http.Header) {
				r := &http.Request{Header: h}
				user, pass, ok := r.BasicAuth()
				if !ok || user != "adapter" || pass != "pa:ss" {
					t.Errorf("basic auth = (%q, %q, %v), want (adapter, pa:ss, true)", user, pass, ok)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, verb := range []string{"GET", "POST"} {
				f := newFakePrometheus(t, nil)
				c := mustNew(t, promclient.Options{URL: f.URL, Verb: verb, HTTP: tc.http})
				if _, err := c.Query(context.Background(), "up", time.Time{}); err != nil {
					t.Fatalf("%s Query: %v", verb, err)
				}
				if _, err := c.LabelValues(context.Background(), "__name__", nil, time.Time{}, time.Time{}); err != nil {
					t.Fatalf("%s LabelValues: %v", verb, err)
				}
				seen := f.requests()
				if len(seen) != 2 {
					t.Fatalf("%s: server saw %d requests, want 2", verb, len(seen))
				}
				for _, r := range seen {
					t.Logf("%s %s", r.Method, r.Path)
					tc.check(t, r.Header)
				}
			}
		})
	}
}

func TestBearerTokenFileIsReadAgainForEachRequest(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("old-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFakePrometheus(t, nil)
	c := mustNew(t, promclient.Options{URL: f.URL, HTTP: config.HTTPClientConfig{
		Authorization: &config.Authorization{Type: "Bearer", CredentialsFile: tokenFile},
	}})
	if _, err := c.Query(context.Background(), "up", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile, []byte("rotated-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Query(context.Background(), "up", time.Time{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range f.requests() {
		got = append(got, r.Header.Get("Authorization"))
	}
	want := []string{"Bearer old-token", "Bearer rotated-token"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Authorization headers = %q, want %q", got, want)
	}
}

func TestTLSServerIsVerifiedWithTheConfiguredCA(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, vectorBody)
	}))
	t.Cleanup(srv.Close)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		tls  config.TLSConfig
	}{
		{"a CA given inline", config.TLSConfig{CA: string(caPEM)}},
		{"a CA given as a file", config.TLSConfig{CAFile: caFile}},
		{"verification switched off", config.TLSConfig{InsecureSkipVerify: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustNew(t, promclient.Options{URL: srv.URL, HTTP: config.HTTPClientConfig{TLSConfig: tc.tls}})
			v, err := c.Query(context.Background(), "up", time.Time{})
			if err != nil {
				t.Fatalf("Query over TLS: %v", err)
			}
			if got := v.(model.Vector); len(got) != 1 || got[0].Value != 0.25 {
				t.Errorf("Query over TLS = %v, want one sample of 0.25", v)
			}
		})
	}
}
