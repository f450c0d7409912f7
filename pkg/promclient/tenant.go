package promclient

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/common/config"
	"golang.org/x/net/http/httpguts"
)

// TenantOptions say where a backend takes the tenant id of a request: in a header (Cortex's
// and Mimir's X-Scope-OrgID, Thanos' THANOS-TENANT, a gateway's own) or in a query parameter
// (prom-label-proxy's namespace, say). At most one is set. For KindCortex and KindMimir, Header
// is X-Scope-OrgID when neither is set. Which tenant goes there is chosen per request, with
// Client.WithTenant.
type TenantOptions struct {
	Header    string
	Parameter string
}

// MaxTenantBytes is the longest tenant id accepted, in bytes. Cortex and Mimir allow 150 per
// tenant, and a federated query joins several with "|"; anything longer is a template gone wrong.
const MaxTenantBytes = 256

// tenancy is what New made of Options.Tenant. Tenant copies share it.
type tenancy struct {
	header    string // header name as configured, or ""
	parameter string // query parameter name, or ""
	// required: the kind needs a tenant on every request, and none is configured statically.
	required bool
	// static says where a tenant is configured already (in the backend's headers, URL or query
	// parameters), for messages; "" when it is not.
	static string
}

// newTenancy checks opts.Tenant against the kind and the rest of the configuration.
func newTenancy(opts *Options, name string, u *url.URL) (tenancy, error) {
	t := tenancy{header: opts.Tenant.Header, parameter: opts.Tenant.Parameter}
	switch {
	case t.header != "" && t.parameter != "":
		return t, fmt.Errorf("backend %s: tenant.header %q and tenant.parameter %q are both set: a tenant goes in one place; keep one of them", name, t.header, t.parameter)
	case t.header == "" && t.parameter == "" && opts.Kind.cortexLike():
		t.header = defaultTenantHeader
	}
	if t.header != "" {
		if !httpguts.ValidHeaderFieldName(t.header) {
			return t, fmt.Errorf("backend %s: tenant.header %q is not a valid HTTP header name; fix tenant.header", name, t.header)
		}
		if configuredHeader(opts.HTTP, t.header) {
			t.static = fmt.Sprintf("its headers (%s)", t.header)
		}
	}
	if t.parameter != "" {
		if err := checkParameterName(t.parameter); err != nil {
			return t, fmt.Errorf("backend %s: tenant.parameter: %w", name, err)
		}
		if u.Query().Has(t.parameter) || opts.QueryParameters.Has(t.parameter) {
			t.static = fmt.Sprintf("its URL or query parameters (%s)", t.parameter)
		}
	}
	t.required = opts.Kind.cortexLike() && t.static == ""
	return t, nil
}

// configuredHeader tells whether the HTTP configuration already sends header.
func configuredHeader(hc config.HTTPClientConfig, header string) bool {
	if hc.HTTPHeaders == nil {
		return false
	}
	for name := range hc.HTTPHeaders.Headers {
		if strings.EqualFold(name, header) {
			return true
		}
	}
	return false
}

// adapterParameters are the request parameters the adapter sets per request: configuring them
// as well would make every request ambiguous.
var adapterParameters = []string{"query", "time", "timeout", "match[]", "start", "end"}

func checkParameterName(name string) error {
	for _, p := range adapterParameters {
		if name == p {
			return fmt.Errorf("parameter %q is set by the adapter on each request; remove it", name)
		}
	}
	if name == "" || strings.ContainsFunc(name, unicode.IsControl) {
		return fmt.Errorf("parameter name %q is empty or holds control characters; fix it", name)
	}
	return nil
}

// WithTenant returns a copy of c whose requests carry tenant in the configured header or
// parameter; c is unchanged. The copy shares c's transport, metrics and limits, so it is cheap
// enough to make per request.
//
// An empty tenant is allowed only when the kind does not need one (a Cortex or Mimir backend
// does). A tenant longer than MaxTenantBytes, with control characters or not UTF-8, is refused:
// it would be cut or refused in a header, or be a template gone wrong. So is any tenant when
// the backend has no place for one, or already sends a fixed one in its headers or URL.
func (c *Client) WithTenant(tenant string) (*Client, error) {
	t := c.tenancy
	if t.header == "" && t.parameter == "" {
		return nil, fmt.Errorf("backend %s has no place for a tenant id: configure tenant.header or tenant.parameter on backend %s", c.name, c.name)
	}
	switch {
	case tenant == "" && t.required:
		return nil, c.noTenantError()
	case tenant != "" && t.static != "":
		return nil, fmt.Errorf("backend %s already sends a fixed tenant in %s: remove it there, or leave the tenant out", c.name, t.static)
	case tenant != "":
		if err := checkTenant(tenant); err != nil {
			return nil, fmt.Errorf("backend %s: %w; fix the tenant (tenant.value, tenant.namespaceTemplate, or the rule's tenant)", c.name, err)
		}
	}
	cp := *c
	cp.tenant = tenant
	return &cp, nil
}

// Tenant is the tenant id the client's requests carry, "" for none.
func (c *Client) Tenant() string { return c.tenant }

// checkTenant refuses a tenant that cannot go in a header or a URL as it is.
func checkTenant(tenant string) error {
	const shown = 32
	switch {
	case len(tenant) > MaxTenantBytes:
		return fmt.Errorf("tenant %q… is %d bytes long, over the limit of %d", tenant[:shown], len(tenant), MaxTenantBytes)
	case !utf8.ValidString(tenant):
		return fmt.Errorf("tenant %q is not valid UTF-8", tenant)
	}
	if i := strings.IndexFunc(tenant, unicode.IsControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(tenant[i:])
		return fmt.Errorf("tenant %q holds the control character %U", tenant, r)
	}
	return nil
}

// noTenantError is the refusal of a request that needs a tenant and has none.
func (c *Client) noTenantError() error {
	return fmt.Errorf("backend %s is of kind %s, which needs a tenant id (header %s) on every request, and none was given: set tenant.value or tenant.namespaceTemplate on backend %s",
		c.name, c.kind, c.tenancy.header, c.name)
}

// setTenantHeader puts the client's tenant in a request's headers, when it goes there.
func (c *Client) setTenantHeader(h http.Header) {
	if c.tenant != "" && c.tenancy.header != "" {
		h.Set(c.tenancy.header, c.tenant)
	}
}

// setTenantParameter puts the client's tenant in a request's parameters, when it goes there.
func (c *Client) setTenantParameter(form url.Values) {
	if c.tenant != "" && c.tenancy.parameter != "" {
		form.Set(c.tenancy.parameter, c.tenant)
	}
}
