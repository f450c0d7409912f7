package options_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/promadapter/promadapter/cmd/promadapter/app/options"
)

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

func TestReservedHeaderIsRefusedWithoutEchoingItsValue(t *testing.T) {
	o := options.New()
	o.PrometheusURL = "http://127.0.0.1:9090"
	o.PrometheusHeaders = []string{"Authorization=Bearer s3cret"}
	errs := o.Validate()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "--prometheus-token-file") || strings.Contains(errs[0].Error(), "s3cret") {
		t.Fatalf("errs = %v", errs)
	}
}
