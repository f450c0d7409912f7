// Tests of --prometheus-auth-config kubeconfigs, in-cluster auth and flags that override them.

package options_test

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"io"
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

	"github.com/promadapter/promadapter/cmd/promadapter/app/options"
	"github.com/promadapter/promadapter/pkg/promclient"
)

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
