package backend

import (
	"strings"
	"testing"

	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/pkg/promclient"
)

func build(t *testing.T, yaml string) (*Set, error) {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return Build(cfg.Backends, Defaults{Options: promclient.Options{URL: "http://127.0.0.1:9090"}})
}

// Each request's tenant comes from the rule, else the backend's value, else its namespace
// template; answers of different tenants never share a cache key.
func TestTenantsPerRequest(t *testing.T) {
	s, err := build(t, `backends:
- name: static
  url: http://127.0.0.1:9091
  kind: cortex
  tenant: {value: team-ops}
- name: per-namespace
  url: http://127.0.0.1:9092
  kind: mimir
  tenant: {namespaceTemplate: "tenant-<<.Namespace>>", discoveryValue: "tenant-a|tenant-b"}
- name: plain
  url: http://127.0.0.1:9093
`)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, backend, namespace, ruleTenant string
		want, wantErr                        string
	}{
		{name: "a static tenant", backend: "static", namespace: "shop", want: "team-ops"},
		{name: "a rule's tenant wins over the backend's", backend: "static", namespace: "shop", ruleTenant: "team-b", want: "team-b"},
		{name: "one tenant per namespace", backend: "per-namespace", namespace: "shop", want: "tenant-shop"},
		{name: "another namespace, another tenant", backend: "per-namespace", namespace: "bank", want: "tenant-bank"},
		{name: "no namespace to derive a tenant from", backend: "per-namespace", wantErr: "derives its tenant from the namespace"},
		{name: "no tenancy: no tenant", backend: "plain", namespace: "shop", want: ""},
		{name: "a rule tenant on a backend without tenancy", backend: "plain", namespace: "shop", ruleTenant: "x", wantErr: `has no tenant section`},
	}
	keys := map[string]string{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, ok := s.Get(tc.backend)
			if !ok {
				t.Fatalf("no backend %q", tc.backend)
			}
			pb, err := b.For(tc.namespace, tc.ruleTenant)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := pb.Querier.(*promclient.Client).Tenant(); got != tc.want {
				t.Errorf("tenant %q, want %q", got, tc.want)
			}
			if pb.Name != tc.backend {
				t.Errorf("name %q, want %q", pb.Name, tc.backend)
			}
			if other, dup := keys[pb.Key]; dup && other != tc.want {
				t.Errorf("key %q is shared by tenants %q and %q", pb.Key, other, tc.want)
			}
			keys[pb.Key] = tc.want
		})
	}
	l, err := mustGet(t, s, "per-namespace").Lister()
	if err != nil || l.Tenant() != "tenant-a|tenant-b" {
		t.Errorf("discovery lister tenant %q (%v), want the discoveryValue", l.Tenant(), err)
	}
}

func mustGet(t *testing.T, s *Set, name string) *Backend {
	t.Helper()
	b, ok := s.Get(name)
	if !ok {
		t.Fatalf("no backend %q", name)
	}
	return b
}

// Backends that cannot work are refused when the config loads, naming the fix.
func TestBuildRefuses(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"a Cortex backend without a tenant", "backends:\n- {name: c, url: 'http://127.0.0.1:9009', kind: cortex}\n",
			`backend "c" (line 2): a cortex backend needs a tenant on every request`},
		{"a Mimir tenant per namespace without a discovery tenant", "backends:\n- {name: m, url: 'http://127.0.0.1:9009', kind: mimir, tenant: {namespaceTemplate: '<<.Namespace>>'}}\n",
			`discovery needs a tenant on this backend: set tenant.value, or tenant.discoveryValue`},
		{"an unknown kind", "backends:\n- {name: k, url: 'http://127.0.0.1:9009', kind: influx}\n",
			`backend "k" (line 2)`},
		{"a URL that is not http", "backends:\n- {name: u, url: 'ftp://127.0.0.1'}\n", `backend "u" (line 2)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := build(t, tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// The flags' backend is always there as "default"; rules without a backend use it.
func TestTheFlagsBackendIsDefault(t *testing.T) {
	s, err := build(t, "backends:\n- {name: thanos, url: 'http://127.0.0.1:10902', kind: thanos}\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Names(), ","); got != "default,thanos" {
		t.Errorf("names %s, want default,thanos", got)
	}
	d, _ := s.Get("")
	if d == nil || d.Name != "default" || d.Client.URL() != "http://127.0.0.1:9090" {
		t.Errorf("the empty name resolves to %+v, want the flags' backend", d)
	}
	s.Close()
}
