package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const thanosAndTenants = `backends:
- name: thanos
  url: http://thanos-query.monitoring.svc:9090
  kind: thanos
  timeout: 10s
  verb: POST
  allowPartialAnswers: true
  queryParameters: {max_source_resolution: 5m}
  headers: {X-Team: shop}
  httpConfig:
    authorization: {type: Bearer, credentials_file: /var/run/secrets/token}
    tls_config: {ca_file: /etc/ca.pem}
- name: mimir
  url: https://mimir.example.com
  kind: mimir
  tenant: {namespaceTemplate: "tenant-<<.Namespace>>", discoveryValue: "tenant-a|tenant-b"}
  sigv4: {region: eu-west-1}
- name: azure
  url: https://example.eastus.prometheus.monitor.azure.com
  azureAD: {cloud: AzurePublic, managed_identity: {client_id: 00000000-0000-0000-0000-000000000000}}
rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  backend: thanos
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
externalRules:
- seriesQuery: 'queue_depth'
  backend: mimir
  tenant: tenant-ops
  metricsQuery: 'max(<<.Series>>{<<.LabelMatchers>>})'
resourceRules:
  backend: thanos
  window: 2m
  cpu: {containerQuery: 'sum(x{<<.LabelMatchers>>}) by (<<.GroupBy>>)', nodeQuery: 'sum(y{<<.LabelMatchers>>}) by (<<.GroupBy>>)', resources: {template: '<<.Resource>>'}, containerLabel: container}
  memory: {containerQuery: 'sum(x{<<.LabelMatchers>>}) by (<<.GroupBy>>)', nodeQuery: 'sum(y{<<.LabelMatchers>>}) by (<<.GroupBy>>)', resources: {template: '<<.Resource>>'}, containerLabel: container}
`

// A config with backends loads each field where serve reads it.
func TestBackendsLoad(t *testing.T) {
	cfg, err := Parse([]byte(thanosAndTenants), "rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Backends) != 3 {
		t.Fatalf("got %d backends, want 3", len(cfg.Backends))
	}
	if az := cfg.Backends[2].AzureAD; az == nil || az.ManagedIdentity == nil || az.ManagedIdentity.ClientID != "00000000-0000-0000-0000-000000000000" {
		t.Errorf("azure backend's azureAD = %+v", az)
	}
	th, mi := cfg.Backends[0], cfg.Backends[1]
	if th.Name != "thanos" || th.Kind != "thanos" || th.Timeout != 10*time.Second || th.Verb != "POST" ||
		th.AllowPartialAnswers == nil || !*th.AllowPartialAnswers || th.QueryParameters["max_source_resolution"] != "5m" ||
		th.Headers["X-Team"] != "shop" || th.Line != 2 {
		t.Errorf("thanos backend = %+v", th)
	}
	if th.HTTP == nil || th.HTTP.Authorization == nil || th.HTTP.Authorization.CredentialsFile != "/var/run/secrets/token" || th.HTTP.TLSConfig.CAFile != "/etc/ca.pem" {
		t.Errorf("thanos httpConfig = %+v", th.HTTP)
	}
	if mi.Tenant == nil || mi.Tenant.NamespaceTemplate != "tenant-<<.Namespace>>" || mi.Tenant.DiscoveryValue != "tenant-a|tenant-b" {
		t.Errorf("mimir tenant = %+v", mi.Tenant)
	}
	if mi.SigV4 == nil || mi.SigV4.Region != "eu-west-1" {
		t.Errorf("mimir sigv4 = %+v", mi.SigV4)
	}
	if th.Fingerprint == "" || th.Fingerprint == mi.Fingerprint {
		t.Errorf("fingerprints %q and %q: want two different non-empty ones", th.Fingerprint, mi.Fingerprint)
	}
	if cfg.Rules[0].Backend != "thanos" || cfg.ExternalRules[0].Backend != "mimir" || cfg.ExternalRules[0].Tenant != "tenant-ops" || cfg.ResourceRules.Backend != "thanos" {
		t.Errorf("rule backends: custom %q, external %q (tenant %q), resource %q", cfg.Rules[0].Backend, cfg.ExternalRules[0].Backend, cfg.ExternalRules[0].Tenant, cfg.ResourceRules.Backend)
	}
}

// The fingerprint follows the backend's text, secrets included, and not its position.
func TestBackendFingerprint(t *testing.T) {
	load := func(yaml string) string {
		t.Helper()
		cfg, err := Parse([]byte(yaml), "rules.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Backends[0].Fingerprint
	}
	base := load("backends:\n- name: a\n  url: http://a:9090\n  httpConfig: {basic_auth: {username: u, password: one}}\n")
	moved := load("\n\n# moved down\nbackends:\n- name: a\n  url: http://a:9090\n  httpConfig: {basic_auth: {username: u, password: one}}\n")
	rotated := load("backends:\n- name: a\n  url: http://a:9090\n  httpConfig: {basic_auth: {username: u, password: two}}\n")
	if base != moved {
		t.Errorf("moving a backend changed its fingerprint: %s vs %s", base, moved)
	}
	if base == rotated {
		t.Errorf("a new password kept the fingerprint %s: cached answers of the old credentials would be served", base)
	}
}

// Mistakes in backends are reported at their line, with the fix.
func TestBackendsRefuse(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"a rule naming an undefined backend",
			"backends:\n- {name: thanos, url: 'http://t:9090'}\nrules:\n- seriesQuery: up\n  backend: thanks\n  metricsQuery: up\n",
			[]string{`rules.yaml:5:12: rules[0].backend: no backend is named "thanks"; define it under backends, or use one of: default, thanos`}},
		{"resourceRules naming an undefined backend",
			"resourceRules:\n  backend: nope\n",
			[]string{`rules.yaml:2:12: resourceRules.backend: no backend is named "nope"`}},
		{"two backends with one name",
			"backends:\n- {name: a, url: 'http://a:9090'}\n- {name: a, url: 'http://b:9090'}\n",
			[]string{`rules.yaml:3:3: backends[1].name: backend "a" is defined twice (first at line 2)`}},
		{"the reserved name default",
			"backends:\n- {name: default, url: 'http://a:9090'}\n",
			[]string{`backends[0].name: the name "default" is the backend of the --prometheus-* flags`}},
		{"a name that is not a label value",
			"backends:\n- {name: My_Thanos, url: 'http://a:9090'}\n",
			[]string{`backend name "My_Thanos" is not valid`}},
		{"a missing url",
			"backends:\n- name: a\n",
			[]string{`rules.yaml:2:3: backends[0].url: required field is missing`}},
		{"an unknown field",
			"backends:\n- {name: a, url: 'http://a:9090', tennant: {value: x}}\n",
			[]string{`rules.yaml:2:35: backends[0].tennant: unknown field "tennant"; did you mean "tenant"?`}},
		{"both value and namespaceTemplate",
			"backends:\n- name: a\n  url: http://a:9090\n  tenant: {header: X-Scope-OrgID, value: x, namespaceTemplate: '<<.Namespace>>'}\n",
			[]string{`tenant has both value and namespaceTemplate`}},
		{"a namespace template naming another field",
			"backends:\n- name: a\n  url: http://a:9090\n  tenant: {namespaceTemplate: '<<.Pod>>'}\n",
			[]string{`backends[0].tenant.namespaceTemplate`, `.Pod`}},
		{"an http_config field Prometheus does not know",
			"backends:\n- name: a\n  url: http://a:9090\n  httpConfig: {bearer_tokn: x}\n",
			[]string{`rules.yaml:4:15: backends[0].httpConfig: not a valid Prometheus http_config`, `bearer_tokn`}},
		{"an http_config Prometheus refuses",
			"backends:\n- name: a\n  url: http://a:9090\n  httpConfig: {basic_auth: {username: u, password: p}, authorization: {credentials: t}}\n",
			[]string{`backends[0].httpConfig: not a valid Prometheus http_config`, `at most one of basic_auth, oauth2 & authorization must be configured`}},
		{"a sigv4 key without its secret",
			"backends:\n- name: a\n  url: http://a:9090\n  sigv4: {access_key: AKIA}\n",
			[]string{`sigv4 needs both access_key and secret_key`}},
		{"an azureAD section Prometheus refuses",
			"backends:\n- name: a\n  url: http://a:9090\n  azureAD: {cloud: AzurePublic}\n",
			[]string{`backends[0].azureAD: not a valid Prometheus azuread`}},
		{"an azureAD field Prometheus does not know",
			"backends:\n- name: a\n  url: http://a:9090\n  azureAD: {managed_identity: {client_id: 00000000-0000-0000-0000-000000000000}, clowd: x}\n",
			[]string{`backends[0].azureAD: not a valid Prometheus azuread`, `clowd`}},
		{"a timeout that is not a duration",
			"backends:\n- {name: a, url: 'http://a:9090', timeout: soon}\n",
			[]string{`backends[0].timeout: "soon" is not a positive duration`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "rules.yaml")
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("got %v, want a config *Error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%s", w, err)
				}
			}
		})
	}
}

// A secret in httpConfig never appears in an error about the section.
func TestBackendErrorsKeepSecrets(t *testing.T) {
	_, err := Parse([]byte("backends:\n- name: a\n  url: http://a:9090\n  httpConfig: {basic_auth: {username: u, password: hunter2}, authorization: {credentials: s3cr3t}}\n"), "rules.yaml")
	if err == nil {
		t.Fatal("want an error: basic_auth and authorization together")
	}
	for _, secret := range []string{"hunter2", "s3cr3t"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error shows the secret %q: %s", secret, err)
		}
	}
}
