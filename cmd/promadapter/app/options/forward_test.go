package options_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/promadapter/promadapter/pkg/provider"
)

func TestValidateNamesEachBadExternalForwardFlag(t *testing.T) {
	const (
		prom = "--prometheus-url=http://127.0.0.1:9090"
		keda = "--external-metrics-forward-url=https://keda-operator-metrics-apiserver.keda.svc:443"
	)
	cases := []struct {
		name string
		args []string
		want []string // one substring per expected error, in any order
	}{
		{"no forwarding is valid", []string{prom}, nil},
		{
			"a URL with every file flag pointing at an existing file is valid",
			[]string{prom, keda, "--external-metrics-forward-ca-file=DIR/ca.pem", "--external-metrics-forward-token-file=DIR/token",
				"--external-metrics-forward-client-cert-file=DIR/client.pem", "--external-metrics-forward-client-key-file=DIR/client-key.pem"},
			nil,
		},
		{
			"a file flag without the URL is reported",
			[]string{prom, "--external-metrics-forward-token-file=DIR/token"},
			[]string{"--external-metrics-forward-token-file is set but --external-metrics-forward-url is not: set the URL of the server to forward to, or drop --external-metrics-forward-token-file"},
		},
		{
			"plain http is refused: the requests carry the adapter's credentials",
			[]string{prom, "--external-metrics-forward-url=http://keda.svc"},
			[]string{`--external-metrics-forward-url="http://keda.svc" is not an https URL with a host: use e.g. https://keda-operator-metrics-apiserver.keda.svc:443`},
		},
		{
			"a password in the URL is refused without being shown",
			[]string{prom, "--external-metrics-forward-url=https://user:hunter2@keda.svc"},
			[]string{"--external-metrics-forward-url=https://user:xxxxx@keda.svc holds a user or password: remove it and use --external-metrics-forward-token-file"},
		},
		{
			"a query in the URL is refused",
			[]string{prom, "--external-metrics-forward-url=https://keda.svc/?x=1"},
			[]string{"has a query or fragment: give the base URL only, e.g. https://keda.svc"},
		},
		{
			"forwarding needs the external metrics API",
			[]string{prom, keda, "--enable-external-metrics=false"},
			[]string{"--external-metrics-forward-url needs --enable-external-metrics=true"},
		},
		{
			"a client certificate without its key is reported",
			[]string{prom, keda, "--external-metrics-forward-client-cert-file=DIR/client.pem"},
			[]string{"--external-metrics-forward-client-cert-file and --external-metrics-forward-client-key-file go together"},
		},
		{
			"a missing file is reported with its flag",
			[]string{prom, keda, "--external-metrics-forward-ca-file=DIR/absent.pem"},
			[]string{"--external-metrics-forward-ca-file=DIR/absent.pem: stat DIR/absent.pem: no such file or directory"},
		},
		{
			"a timeout that is not positive is reported",
			[]string{prom, keda, "--external-metrics-forward-timeout=0s"},
			[]string{"--external-metrics-forward-timeout=0s must be positive (default 10s)"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := newTestFiles(t)
			var got []string
			for _, err := range parse(t, files.expand(tc.args)...).Validate() {
				got = append(got, err.Error())
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("the error %q shows the password", err)
				}
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

func TestExternalForwardConfigCarriesTheFlags(t *testing.T) {
	if _, on := parse(t).ExternalForwardConfig(); on {
		t.Errorf("forwarding is on without --external-metrics-forward-url")
	}
	if o := parse(t); o.ExternalMetricsForwardTimeout != 10*time.Second {
		t.Errorf("default --external-metrics-forward-timeout = %s, want 10s", o.ExternalMetricsForwardTimeout)
	}
	got, on := parse(t, "--external-metrics-forward-url=https://keda.svc:443", "--external-metrics-forward-ca-file=/ca.crt",
		"--external-metrics-forward-client-cert-file=/tls.crt", "--external-metrics-forward-client-key-file=/tls.key",
		"--external-metrics-forward-token-file=/token", "--external-metrics-forward-timeout=3s").ExternalForwardConfig()
	want := provider.ForwardConfig{URL: "https://keda.svc:443", CAFile: "/ca.crt", ClientCertFile: "/tls.crt", ClientKeyFile: "/tls.key",
		TokenFile: "/token", Timeout: 3 * time.Second}
	if !on || !reflect.DeepEqual(got, want) {
		t.Errorf("ExternalForwardConfig() = %+v, %v; want %+v, true", got, on, want)
	}

	files := newTestFiles(t)
	real, _ := parse(t, files.expand([]string{"--external-metrics-forward-url=https://keda.svc:443", "--external-metrics-forward-ca-file=DIR/ca.pem",
		"--external-metrics-forward-client-cert-file=DIR/client.pem", "--external-metrics-forward-client-key-file=DIR/client-key.pem",
		"--external-metrics-forward-token-file=DIR/token"})...).ExternalForwardConfig()
	if _, err := provider.NewForwarder(real); err != nil {
		t.Errorf("NewForwarder(%+v) = %v", real, err)
	}
}
