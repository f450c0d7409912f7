package options_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
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

	"github.com/prometheus/common/config"
	"github.com/spf13/pflag"

	"github.com/promadapter/promadapter/cmd/promadapter/app/options"
	"github.com/promadapter/promadapter/pkg/promclient"
)

// parse builds options from a command line, as `promadapter serve` does.
func parse(t *testing.T, args ...string) *options.Options {
	t.Helper()
	o := options.New()
	fs := pflag.NewFlagSet("promadapter", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parsing %q: %v", args, err)
	}
	return o
}

// testFiles are the files the flags point at, in dir; expand replaces DIR in arguments with dir.
type testFiles struct {
	dir                         string
	config, ca, token           string
	clientCert, clientKey       string
	caPEM                       []byte
	clientCertPEM, clientKeyPEM []byte
}

func newTestFiles(t *testing.T) testFiles {
	t.Helper()
	dir := t.TempDir()
	caPEM, _ := selfSigned(t, "test CA")
	certPEM, keyPEM := selfSigned(t, "promadapter client")
	f := testFiles{
		dir: dir, config: filepath.Join(dir, "config.yaml"), ca: filepath.Join(dir, "ca.pem"),
		token: filepath.Join(dir, "token"), clientCert: filepath.Join(dir, "client.pem"), clientKey: filepath.Join(dir, "client-key.pem"),
		caPEM: caPEM, clientCertPEM: certPEM, clientKeyPEM: keyPEM,
	}
	for path, content := range map[string][]byte{
		f.config: []byte("rules: []\n"), f.ca: caPEM, f.token: []byte("file-token\n"), f.clientCert: certPEM, f.clientKey: keyPEM,
	} {
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f testFiles) expand(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, "DIR", f.dir)
	}
	return out
}

// selfSigned returns a PEM certificate valid for 127.0.0.1 and its PEM private key.
func selfSigned(t *testing.T, cn string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

func TestValidateNamesEachBadFlag(t *testing.T) {
	const url = "--prometheus-url=http://127.0.0.1:9090"
	cases := []struct {
		name string
		args []string
		// want holds one substring per expected error, in any order.
		want []string
	}{
		{"a URL alone is a valid configuration", []string{url}, nil},
		{
			"every file flag pointing at an existing file is valid",
			[]string{url, "--config=DIR/config.yaml", "--prometheus-ca-file=DIR/ca.pem", "--prometheus-token-file=DIR/token",
				"--prometheus-client-tls-cert-file=DIR/client.pem", "--prometheus-client-tls-key-file=DIR/client-key.pem"},
			nil,
		},
		{"a lower-case verb is valid", []string{url, "--prometheus-verb=post"}, nil},
		{"a header value may hold =", []string{url, "--prometheus-header=X-Query=a=b"}, nil},
		{"a missing --prometheus-url is reported", nil, []string{"--prometheus-url is required: set it to the Prometheus HTTP API"}},
		{
			"a --prometheus-url without scheme is reported",
			[]string{"--prometheus-url=prometheus-k8s.monitoring.svc:9090"},
			[]string{`--prometheus-url="prometheus-k8s.monitoring.svc:9090" is not an http(s) URL with a host`},
		},
		{
			"a --prometheus-url with another scheme is reported",
			[]string{"--prometheus-url=ftp://127.0.0.1:9090"},
			[]string{`--prometheus-url="ftp://127.0.0.1:9090" is not an http(s) URL with a host`},
		},
		{
			"a --prometheus-url without host is reported",
			[]string{"--prometheus-url=http:///api"},
			[]string{`--prometheus-url="http:///api" is not an http(s) URL with a host`},
		},
		{"a bad --prometheus-verb is reported", []string{url, "--prometheus-verb=PUT"}, []string{`--prometheus-verb="PUT": must be GET or POST`}},
		{"a header without = is reported", []string{url, "--prometheus-header=X-Scope-OrgID"}, []string{`--prometheus-header="X-Scope-OrgID": must be name=value`}},
		{"a header without a name is reported", []string{url, "--prometheus-header= =tenant1"}, []string{`--prometheus-header has an empty name`}},
		{
			"each bad header is reported",
			[]string{url, "--prometheus-header=A", "--prometheus-header=X-Ok=1", "--prometheus-header=B"},
			[]string{`--prometheus-header="A"`, `--prometheus-header="B"`},
		},
		{
			"a client certificate without key is reported",
			[]string{url, "--prometheus-client-tls-cert-file=DIR/client.pem"},
			[]string{"--prometheus-client-tls-cert-file and --prometheus-client-tls-key-file go together"},
		},
		{
			"a client key without certificate is reported",
			[]string{url, "--prometheus-client-tls-key-file=DIR/client-key.pem"},
			[]string{"--prometheus-client-tls-cert-file and --prometheus-client-tls-key-file go together"},
		},
		{
			"in-cluster auth and an auth config together are reported",
			[]string{url, "--prometheus-auth-incluster", "--prometheus-auth-config=DIR/config.yaml"},
			[]string{"--prometheus-auth-incluster and --prometheus-auth-config are exclusive"},
		},
		{"a missing --config file is reported", []string{url, "--config=DIR/nope.yaml"}, []string{"--config=DIR/nope.yaml: stat DIR/nope.yaml: no such file or directory"}},
		{"a missing --prometheus-ca-file is reported", []string{url, "--prometheus-ca-file=DIR/nope.pem"}, []string{"--prometheus-ca-file=DIR/nope.pem: stat DIR/nope.pem: no such file"}},
		{"a missing --prometheus-token-file is reported", []string{url, "--prometheus-token-file=DIR/nope"}, []string{"--prometheus-token-file=DIR/nope: stat DIR/nope: no such file"}},
		{"a missing --prometheus-auth-config is reported", []string{url, "--prometheus-auth-config=DIR/nope"}, []string{"--prometheus-auth-config=DIR/nope: stat DIR/nope: no such file"}},
		{
			"a missing client certificate and key are reported each",
			[]string{url, "--prometheus-client-tls-cert-file=DIR/nope.pem", "--prometheus-client-tls-key-file=DIR/nope-key.pem"},
			[]string{"--prometheus-client-tls-cert-file=DIR/nope.pem: stat", "--prometheus-client-tls-key-file=DIR/nope-key.pem: stat"},
		},
		{
			"a max age shorter than the relist interval is reported",
			[]string{url, "--metrics-relist-interval=5m", "--metrics-max-age=1m"},
			[]string{"--metrics-max-age=1m0s is shorter than --metrics-relist-interval=5m0s: metrics would flap between relists"},
		},
		{"a max age equal to the relist interval is valid", []string{url, "--metrics-relist-interval=5m", "--metrics-max-age=5m"}, nil},
		{"a zero relist interval is reported", []string{url, "--metrics-relist-interval=0"}, []string{"--metrics-relist-interval must be positive"}},
		{"a zero Prometheus timeout is reported", []string{url, "--prometheus-timeout=0"}, []string{"--prometheus-timeout must be positive"}},
		{"a negative cache period is reported", []string{url, "--query-cache-period=-1s"}, []string{"--query-cache-period must not be negative"}},
		{"a zero cache period is valid (no cache)", []string{url, "--query-cache-period=0"}, nil},
		{"zero concurrent queries is reported", []string{url, "--max-concurrent-queries=0"}, []string{"--max-concurrent-queries must be at least 1"}},
		{
			"every problem is reported at once",
			[]string{"--prometheus-verb=HEAD", "--prometheus-header=X", "--prometheus-client-tls-cert-file=DIR/client.pem", "--metrics-max-age=1s"},
			[]string{"--prometheus-url is required", `--prometheus-verb="HEAD"`, `--prometheus-header="X"`,
				"--prometheus-client-tls-cert-file and --prometheus-client-tls-key-file go together", "--metrics-max-age=1s is shorter"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := newTestFiles(t)
			errs := parse(t, files.expand(tc.args)...).Validate()
			var got []string
			for _, err := range errs {
				got = append(got, err.Error())
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Validate() = %d errors %q, want %d matching %q", len(got), got, len(tc.want), files.expand(tc.want))
			}
			for _, w := range files.expand(tc.want) {
				found := false
				for _, g := range got {
					found = found || strings.Contains(g, w)
				}
				if !found {
					t.Errorf("no error contains %q; errors: %q", w, got)
				}
			}
		})
	}
}

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

// kubeconfig writes a kubeconfig whose only context uses the given cluster and user fields.
func kubeconfig(t *testing.T, dir, cluster, user string) string {
	t.Helper()
	path := filepath.Join(dir, "kubeconfig")
	content := "apiVersion: v1\nkind: Config\nclusters:\n- name: prometheus\n  cluster:\n    server: https://127.0.0.1:9091\n" + cluster +
		"users:\n- name: adapter\n  user:\n" + user +
		"contexts:\n- name: prometheus\n  context: {cluster: prometheus, user: adapter}\ncurrent-context: prometheus\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestPrometheusAuthConfigMapsAKubeconfig(t *testing.T) {
	cases := []struct {
		name          string
		cluster, user func(f testFiles) string
		want          func(f testFiles) config.HTTPClientConfig
		wantErr       []string
	}{
		{
			name:    "a token and CA data map to a bearer authorization and the TLS CA",
			cluster: func(f testFiles) string { return "    certificate-authority-data: " + b64(f.caPEM) + "\n" },
			user:    func(testFiles) string { return "    token: kube-token\n" },
			want: func(f testFiles) config.HTTPClientConfig {
				hc := config.DefaultHTTPClientConfig
				hc.TLSConfig = config.TLSConfig{CA: string(f.caPEM)}
				hc.Authorization = &config.Authorization{Type: "Bearer", Credentials: "kube-token"}
				return hc
			},
		},
		{
			name:    "a token file and CA file map to file settings, so rotation is picked up",
			cluster: func(f testFiles) string { return "    certificate-authority: " + f.ca + "\n" },
			user:    func(f testFiles) string { return "    tokenFile: " + f.token + "\n" },
			want: func(f testFiles) config.HTTPClientConfig {
				hc := config.DefaultHTTPClientConfig
				hc.TLSConfig = config.TLSConfig{CAFile: f.ca}
				hc.Authorization = &config.Authorization{Type: "Bearer", CredentialsFile: f.token}
				return hc
			},
		},
		{
			name:    "user name and password map to basic auth",
			cluster: func(testFiles) string { return "" },
			user:    func(testFiles) string { return "    username: admin\n    password: s3cret\n" },
			want: func(testFiles) config.HTTPClientConfig {
				hc := config.DefaultHTTPClientConfig
				hc.BasicAuth = &config.BasicAuth{Username: "admin", Password: "s3cret"}
				return hc
			},
		},
		{
			name:    "client certificate and key data map to the TLS client certificate",
			cluster: func(testFiles) string { return "    insecure-skip-tls-verify: true\n" },
			user: func(f testFiles) string {
				return "    client-certificate-data: " + b64(f.clientCertPEM) + "\n    client-key-data: " + b64(f.clientKeyPEM) + "\n"
			},
			want: func(f testFiles) config.HTTPClientConfig {
				hc := config.DefaultHTTPClientConfig
				hc.TLSConfig = config.TLSConfig{Cert: string(f.clientCertPEM), Key: config.Secret(f.clientKeyPEM), InsecureSkipVerify: true}
				return hc
			},
		},
		{
			name:    "client certificate files and the TLS server name carry over",
			cluster: func(testFiles) string { return "    tls-server-name: prometheus.monitoring.svc\n" },
			user: func(f testFiles) string {
				return "    client-certificate: " + f.clientCert + "\n    client-key: " + f.clientKey + "\n"
			},
			want: func(f testFiles) config.HTTPClientConfig {
				hc := config.DefaultHTTPClientConfig
				hc.TLSConfig = config.TLSConfig{CertFile: f.clientCert, KeyFile: f.clientKey, ServerName: "prometheus.monitoring.svc"}
				return hc
			},
		},
		{
			name:    "an exec credential plugin is refused, naming the flag",
			cluster: func(testFiles) string { return "" },
			user: func(testFiles) string {
				return "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: get-token\n      interactiveMode: Never\n"
			},
			wantErr: []string{"--prometheus-auth-config=DIR/kubeconfig", "exec and auth-provider credentials are not supported for Prometheus"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := newTestFiles(t)
			path := kubeconfig(t, files.dir, tc.cluster(files), tc.user(files))
			o := parse(t, "--prometheus-url=https://127.0.0.1:9091", "--prometheus-auth-config="+path)
			if errs := o.Validate(); len(errs) != 0 {
				t.Fatalf("Validate() = %v", errs)
			}
			got, err := o.PrometheusOptions()
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("PrometheusOptions() = %+v, want an error", got.HTTP)
				}
				for _, w := range files.expand(tc.wantErr) {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("PrometheusOptions(): %v", err)
			}
			if want := tc.want(files); !reflect.DeepEqual(got.HTTP, want) {
				t.Errorf("HTTP config =\n%+v\nwant\n%+v", got.HTTP, want)
			}
			if _, err := promclient.New(got); err != nil {
				t.Errorf("promclient.New refuses the options: %v", err)
			}
		})
	}
}

func TestPrometheusAuthConfigSendsTheTokenOverTLSVerifiedWithItsCA(t *testing.T) {
	var mu sync.Mutex
	var seenAuth string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seenAuth = r.Header.Get("Authorization")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
	}))
	defer srv.Close()
	serverCA := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	dir := t.TempDir()
	path := kubeconfig(t, dir, "    certificate-authority-data: "+b64(serverCA)+"\n", "    token: kube-token\n")

	o := parse(t, "--prometheus-url="+srv.URL, "--prometheus-auth-config="+path)
	po, err := o.PrometheusOptions()
	if err != nil {
		t.Fatal(err)
	}
	c, err := promclient.New(po)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Query(context.Background(), "up", time.Time{}); err != nil {
		t.Fatalf("query over TLS with the kubeconfig's CA: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if seenAuth != "Bearer kube-token" {
		t.Errorf("Authorization = %q, want %q", seenAuth, "Bearer kube-token")
	}
}

func TestPrometheusAuthInClusterOutsideAClusterNamesTheFlag(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	o := parse(t, "--prometheus-url=http://127.0.0.1:9090", "--prometheus-auth-incluster")
	_, err := o.PrometheusOptions()
	if err == nil {
		t.Fatal("PrometheusOptions() succeeded outside a cluster, want an error")
	}
	if !strings.Contains(err.Error(), "--prometheus-auth-incluster: ") {
		t.Errorf("error %q does not name --prometheus-auth-incluster", err)
	}
}

func TestDefaults(t *testing.T) {
	o := parse(t)
	got := []any{o.MetricsRelistInterval, o.MetricsMaxAge, o.PrometheusVerb, o.PrometheusTimeout, o.QueryCachePeriod,
		o.QueryCacheMaxBytes, o.MaxConcurrentQueries, o.EnableResourceMetrics, o.EnableCustomMetrics, o.EnableExternalMetrics}
	want := []any{time.Minute, 10 * time.Minute, "GET", 10 * time.Second, 10 * time.Second,
		int64(64 << 20), 16, true, true, true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults = %v, want %v", got, want)
	}
}

func TestFlagsWinOverKubeconfigInlineCredentials(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	token := filepath.Join(dir, "token")
	for _, f := range []string{ca, token} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	kc := filepath.Join(dir, "kubeconfig")
	kubeconfig := `apiVersion: v1
kind: Config
clusters: [{name: p, cluster: {server: "https://127.0.0.1:9090", certificate-authority-data: "eA=="}}]
users: [{name: u, user: {username: a, password: b}}]
contexts: [{name: c, context: {cluster: p, user: u}}]
current-context: c
`
	if err := os.WriteFile(kc, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	o := options.New()
	o.PrometheusURL = "https://127.0.0.1:9090"
	o.PrometheusAuthConfig = kc
	o.PrometheusCAFile = ca
	o.PrometheusTokenFile = token
	po, err := o.PrometheusOptions()
	if err != nil {
		t.Fatal(err)
	}
	if po.HTTP.TLSConfig.CA != "" || po.HTTP.TLSConfig.CAFile != ca {
		t.Errorf("--prometheus-ca-file should replace the kubeconfig's inline CA: %+v", po.HTTP.TLSConfig)
	}
	if po.HTTP.BasicAuth != nil || po.HTTP.Authorization == nil {
		t.Errorf("--prometheus-token-file should replace the kubeconfig's basic auth")
	}
	if err := po.HTTP.Validate(); err != nil {
		t.Errorf("the resulting HTTP config is invalid: %v", err)
	}
}

func TestReservedHeaderIsRefusedWithoutEchoingItsValue(t *testing.T) {
	o := options.New()
	o.PrometheusURL = "http://127.0.0.1:9090"
	o.PrometheusHeaders = []string{"Authorization=Bearer s3cret"}
	errs := o.Validate()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "--prometheus-token-file") || strings.Contains(errs[0].Error(), "s3cret") {
		t.Fatalf("errs = %v", errs)
	}
}
