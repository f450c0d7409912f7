// Tests that the Prometheus flags map into the client's configuration and reach Prometheus.

package options_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/config"

	"github.com/promadapter/promadapter/pkg/promclient"
)

func TestPrometheusOptionsMapsFlagsIntoTheClientConfig(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want func(f testFiles) promclient.Options
	}{
		{
			name: "without credentials flags the defaults are kept",
			args: []string{"--prometheus-url=http://127.0.0.1:9090"},
			want: func(testFiles) promclient.Options {
				return promclient.Options{URL: "http://127.0.0.1:9090", HTTP: config.DefaultHTTPClientConfig, Verb: "GET", Timeout: 10 * time.Second, MaxAnswerBytes: promclient.DefaultMaxAnswerBytes, MaxSamples: promclient.DefaultMaxSamples}
			},
		},
		{
			name: "URL, verb and timeout pass through",
			args: []string{"--prometheus-url=https://127.0.0.1:9091/prom", "--prometheus-verb=POST", "--prometheus-timeout=3s"},
			want: func(testFiles) promclient.Options {
				return promclient.Options{URL: "https://127.0.0.1:9091/prom", HTTP: config.DefaultHTTPClientConfig, Verb: "POST", Timeout: 3 * time.Second, MaxAnswerBytes: promclient.DefaultMaxAnswerBytes, MaxSamples: promclient.DefaultMaxSamples}
			},
		},
		{
			name: "CA, client certificate and key become TLS file settings",
			args: []string{"--prometheus-url=https://127.0.0.1:9091", "--prometheus-ca-file=DIR/ca.pem",
				"--prometheus-client-tls-cert-file=DIR/client.pem", "--prometheus-client-tls-key-file=DIR/client-key.pem"},
			want: func(f testFiles) promclient.Options {
				hc := config.DefaultHTTPClientConfig
				hc.TLSConfig = config.TLSConfig{CAFile: f.ca, CertFile: f.clientCert, KeyFile: f.clientKey}
				return promclient.Options{URL: "https://127.0.0.1:9091", HTTP: hc, Verb: "GET", Timeout: 10 * time.Second, MaxAnswerBytes: promclient.DefaultMaxAnswerBytes, MaxSamples: promclient.DefaultMaxSamples}
			},
		},
		{
			name: "a token file becomes a bearer authorization read from the file",
			args: []string{"--prometheus-url=http://127.0.0.1:9090", "--prometheus-token-file=DIR/token"},
			want: func(f testFiles) promclient.Options {
				hc := config.DefaultHTTPClientConfig
				hc.Authorization = &config.Authorization{Type: "Bearer", CredentialsFile: f.token}
				return promclient.Options{URL: "http://127.0.0.1:9090", HTTP: hc, Verb: "GET", Timeout: 10 * time.Second, MaxAnswerBytes: promclient.DefaultMaxAnswerBytes, MaxSamples: promclient.DefaultMaxSamples}
			},
		},
		{
			name: "headers are canonicalised, a repeated name keeps every value, and a value may hold =",
			args: []string{"--prometheus-url=http://127.0.0.1:9090", "--prometheus-header=x-scope-orgid=tenant1",
				"--prometheus-header=X-Scope-OrgID=tenant2", "--prometheus-header=X-Query=a=b"},
			want: func(testFiles) promclient.Options {
				hc := config.DefaultHTTPClientConfig
				hc.HTTPHeaders = &config.Headers{Headers: map[string]config.Header{
					"X-Scope-Orgid": {Values: []string{"tenant1", "tenant2"}},
					"X-Query":       {Values: []string{"a=b"}},
				}}
				return promclient.Options{URL: "http://127.0.0.1:9090", HTTP: hc, Verb: "GET", Timeout: 10 * time.Second, MaxAnswerBytes: promclient.DefaultMaxAnswerBytes, MaxSamples: promclient.DefaultMaxSamples}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := newTestFiles(t)
			o := parse(t, files.expand(tc.args)...)
			if errs := o.Validate(); len(errs) != 0 {
				t.Fatalf("Validate() = %v", errs)
			}
			got, err := o.PrometheusOptions()
			if err != nil {
				t.Fatalf("PrometheusOptions(): %v", err)
			}
			if want := tc.want(files); !reflect.DeepEqual(got, want) {
				t.Errorf("PrometheusOptions() =\n%+v\nwant\n%+v", got, want)
			}
			if _, err := promclient.New(got); err != nil {
				t.Errorf("promclient.New refuses the options: %v", err)
			}
		})
	}
}

func TestFlagsReachPrometheus(t *testing.T) {
	var mu sync.Mutex
	var seen http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Header.Clone()
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
	}))
	defer srv.Close()
	files := newTestFiles(t)
	o := parse(t, "--prometheus-url="+srv.URL, "--prometheus-token-file="+files.token,
		"--prometheus-header=X-Scope-OrgID=tenant1", "--prometheus-header=X-Scope-OrgID=tenant2")
	po, err := o.PrometheusOptions()
	if err != nil {
		t.Fatal(err)
	}
	c, err := promclient.New(po)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Query(context.Background(), "up", time.Time{}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := seen.Get("Authorization"); got != "Bearer file-token" {
		t.Errorf("Authorization = %q, want %q", got, "Bearer file-token")
	}
	if got := seen.Values("X-Scope-Orgid"); !reflect.DeepEqual(got, []string{"tenant1", "tenant2"}) {
		t.Errorf("X-Scope-OrgID = %q, want [tenant1 tenant2]", got)
	}
}
