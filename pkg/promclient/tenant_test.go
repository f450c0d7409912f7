package promclient_test

import (
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/promadapter/promadapter/pkg/promclient"
)

func TestTheTenantGoesWhereTheBackendTakesIt(t *testing.T) {
	cases := []struct {
		name       string
		opts       promclient.Options
		wantHeader http.Header // headers that must be there, nil values for absent
		wantForm   url.Values  // parameters that must be there
	}{
		{"in a header, for Thanos' tenancy",
			promclient.Options{Kind: promclient.KindThanos, Tenant: promclient.TenantOptions{Header: "THANOS-TENANT"}},
			http.Header{"Thanos-Tenant": {"team-a"}}, url.Values{"namespace": nil}},
		{"in a query parameter, for prom-label-proxy",
			promclient.Options{Tenant: promclient.TenantOptions{Parameter: "namespace"}},
			http.Header{"X-Scope-Orgid": nil}, url.Values{"namespace": {"team-a"}}},
		{"in a query parameter, besides the queryParameters",
			promclient.Options{Tenant: promclient.TenantOptions{Parameter: "tenant"}, QueryParameters: url.Values{"other": {"x"}}},
			nil, url.Values{"tenant": {"team-a"}, "other": {"x"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, verb := range []string{"GET", "POST"} {
				f := newFakePrometheus(t, nil)
				opts := tc.opts
				opts.URL, opts.Verb = f.URL, verb
				c, err := mustNew(t, opts).WithTenant("team-a")
				if err != nil {
					t.Fatal(err)
				}
				for _, call := range calls {
					if err := call.call(c); err != nil {
						t.Fatalf("%s %s: %v", verb, call.op, err)
					}
					r := f.lastRequest(t)
					for name, want := range tc.wantHeader {
						if got := r.Header.Values(name); !reflect.DeepEqual(got, []string(want)) {
							t.Errorf("%s %s: header %s = %q, want %q", verb, call.op, name, got, want)
						}
					}
					for name, want := range tc.wantForm {
						if got := r.Form[name]; !reflect.DeepEqual(got, want) {
							t.Errorf("%s %s: parameter %s = %q, want %q", verb, call.op, name, got, want)
						}
					}
				}
			}
		})
	}
}

func TestWithTenantReturnsACopyAndLeavesTheOriginalAlone(t *testing.T) {
	f := newFakePrometheus(t, nil)
	orig := mustNew(t, promclient.Options{URL: f.URL, Kind: promclient.KindThanos, Tenant: promclient.TenantOptions{Header: "X-Tenant"}})
	a, err := orig.WithTenant("team-a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := a.WithTenant("team-b")
	if err != nil {
		t.Fatal(err)
	}
	if orig.Tenant() != "" || a.Tenant() != "team-a" || b.Tenant() != "team-b" {
		t.Errorf("tenants: original %q, a %q, b %q; want \"\", team-a, team-b", orig.Tenant(), a.Tenant(), b.Tenant())
	}
	var got []string
	for _, c := range []*promclient.Client{orig, a, b, orig} {
		if err := calls[0].call(c); err != nil {
			t.Fatal(err)
		}
		got = append(got, f.lastRequest(t).Header.Get("X-Tenant"))
	}
	if want := []string{"", "team-a", "team-b", ""}; !reflect.DeepEqual(got, want) {
		t.Errorf("X-Tenant of the original, a, b, original = %q, want %q", got, want)
	}
	if a.URL() != orig.URL() || a.Name() != orig.Name() || a.Kind() != orig.Kind() {
		t.Errorf("the copy is another backend: %s %s %s, want %s %s %s", a.Name(), a.Kind(), a.URL(), orig.Name(), orig.Kind(), orig.URL())
	}
}

func TestWithTenantRefusesWhatCannotBeSent(t *testing.T) {
	cases := []struct {
		name   string
		opts   promclient.Options
		tenant string
		want   string // the error, "" for none
	}{
		{"a backend without a place for tenants says how to make one",
			promclient.Options{Name: "thanos", Kind: promclient.KindThanos}, "team-a",
			"backend thanos has no place for a tenant id: configure tenant.header or tenant.parameter on backend thanos"},
		{"Mimir refuses an empty tenant and says how to give one",
			promclient.Options{Name: "mimir", Kind: promclient.KindMimir}, "",
			"backend mimir is of kind mimir, which needs a tenant id (header X-Scope-OrgID) on every request, and none was given: set tenant.value or tenant.namespaceTemplate on backend mimir"},
		{"a kind that does not need a tenant takes an empty one",
			promclient.Options{Name: "thanos", Kind: promclient.KindThanos, Tenant: promclient.TenantOptions{Header: "X-Tenant"}}, "", ""},
		{"a tenant with a newline is refused",
			promclient.Options{Name: "mimir", Kind: promclient.KindMimir}, "team-a\r\nX-Evil: 1",
			`backend mimir: tenant "team-a\r\nX-Evil: 1" holds the control character U+000D; fix the tenant (tenant.value, tenant.namespaceTemplate, or the rule's tenant)`},
		{"a tenant that is not UTF-8 is refused",
			promclient.Options{Name: "mimir", Kind: promclient.KindMimir}, "team-\xff",
			`backend mimir: tenant "team-\xff" is not valid UTF-8`},
		{"a tenant over 256 bytes is refused, quoting its start only",
			promclient.Options{Name: "mimir", Kind: promclient.KindMimir}, strings.Repeat("t", 257),
			`backend mimir: tenant "` + strings.Repeat("t", 32) + `"… is 257 bytes long, over the limit of 256`},
		{"a tenant of 256 bytes is taken",
			promclient.Options{Name: "mimir", Kind: promclient.KindMimir}, strings.Repeat("t", 256), ""},
		{"a federated Mimir tenant list is taken",
			promclient.Options{Name: "mimir", Kind: promclient.KindMimir}, "team-a|team-b", ""},
		{"a tenant fixed in the headers cannot be chosen per request",
			promclient.Options{Name: "mimir", Kind: promclient.KindMimir, HTTP: headers("X-Scope-OrgID", "fixed")}, "team-a",
			"backend mimir already sends a fixed tenant in its headers (X-Scope-OrgID): remove it there, or leave the tenant out"},
		{"a tenant fixed in the URL cannot be chosen per request",
			promclient.Options{Name: "p", URL: "http://127.0.0.1:9090/?namespace=a", Tenant: promclient.TenantOptions{Parameter: "namespace"}}, "b",
			"backend p already sends a fixed tenant in its URL or query parameters (namespace)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts.URL == "" {
				tc.opts.URL = "http://127.0.0.1:9090"
			}
			c := mustNew(t, tc.opts)
			got, err := c.WithTenant(tc.tenant)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("WithTenant(%q): %v", tc.tenant, err)
			case tc.want == "" && got.Tenant() != tc.tenant:
				t.Errorf("WithTenant(%q).Tenant() = %q", tc.tenant, got.Tenant())
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Errorf("WithTenant(%.40q) = %v, want the error %q", tc.tenant, err, tc.want)
			}
		})
	}
}

func TestNewRefusesATenantPlaceThatCannotWork(t *testing.T) {
	cases := []struct {
		name string
		opts promclient.Options
		want string
	}{
		{"a header and a parameter both", promclient.Options{Tenant: promclient.TenantOptions{Header: "X-Tenant", Parameter: "tenant"}},
			`backend b: tenant.header "X-Tenant" and tenant.parameter "tenant" are both set: a tenant goes in one place; keep one of them`},
		{"a header name with a space", promclient.Options{Tenant: promclient.TenantOptions{Header: "X Tenant"}},
			`backend b: tenant.header "X Tenant" is not a valid HTTP header name; fix tenant.header`},
		{"a parameter the adapter sets", promclient.Options{Tenant: promclient.TenantOptions{Parameter: "query"}},
			`backend b: tenant.parameter: parameter "query" is set by the adapter on each request; remove it`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Name, tc.opts.URL = "b", "http://127.0.0.1:9090"
			_, err := promclient.New(tc.opts)
			if err == nil || err.Error() != tc.want {
				t.Errorf("New = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestACortexOrMimirCallWithoutTenantFailsBeforeAnythingIsSent(t *testing.T) {
	for _, kind := range []promclient.Kind{promclient.KindCortex, promclient.KindMimir} {
		f := newFakePrometheus(t, nil)
		c := mustNew(t, promclient.Options{Name: "lgtm", URL: f.URL, Kind: kind})
		for _, call := range calls {
			err := call.call(c)
			var pe *promclient.Error
			if !errors.As(err, &pe) || pe.Cause != promclient.CauseConfig || pe.Backend != "lgtm" {
				t.Fatalf("%s %s: error %v, want a *promclient.Error with cause config for backend lgtm", kind, call.op, err)
			}
			want := "backend lgtm at " + f.URL + "/prometheus: cannot send the " + call.op + ": backend lgtm is of kind " + string(kind) +
				", which needs a tenant id (header X-Scope-OrgID) on every request, and none was given: set tenant.value or tenant.namespaceTemplate on backend lgtm"
			if err.Error() != want {
				t.Errorf("%s %s:\n got %q\nwant %q", kind, call.op, err, want)
			}
		}
		if n := len(f.requests()); n != 0 {
			t.Errorf("%s: the server received %d requests, want none", kind, n)
		}
	}
}

func TestErrorsNameTheBackendAndTheTenant(t *testing.T) {
	f := newFakePrometheus(t, func(*http.Request) (int, string) {
		return http.StatusBadRequest, `{"status":"error","errorType":"bad_data","error":"parse error"}`
	})
	c, err := mustNew(t, promclient.Options{Name: "mimir", URL: f.URL, Kind: promclient.KindMimir}).WithTenant("team-a")
	if err != nil {
		t.Fatal(err)
	}
	err = calls[0].call(c)
	want := `backend mimir at ` + f.URL + `/prometheus rejected the query for tenant "team-a": bad_data: parse error; fix the rule's query template`
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
	var pe *promclient.Error
	if !errors.As(err, &pe) || pe.Tenant != "team-a" || pe.Backend != "mimir" {
		t.Errorf("error %#v, want Backend mimir and Tenant team-a", pe)
	}
}
