// Package backend builds the servers the rules query from the config's backends section and
// the --prometheus-* flags: one promclient.Client per backend, plus the tenant each query
// carries. A Set is immutable once built; a reload builds a new one beside it.
package backend

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/template"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/sigv4"

	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/pkg/planner"
	"github.com/promadapter/promadapter/pkg/promclient"
)

// Backend is one configured server: its client and how a request's tenant is chosen.
type Backend struct {
	// Name is the backend's name in the config ("default" for the flags' backend).
	Name string
	// Client talks to the server; tenant copies are made per request (Client.WithTenant).
	Client *promclient.Client

	// fingerprint changes with anything that changes answers (URL, kind, parameters, auth):
	// it keys the planner's cache, so answers never mix across configs.
	fingerprint string
	// tenant: a static value, or a template of the request's namespace; discoveryTenant is the
	// tenant series are listed with.
	tenantValue     string
	tenantTemplate  *template.Template
	discoveryTenant string
	tenancy         bool // the backend places a tenant on requests
}

// Set is the backends of one config, by name.
type Set struct {
	byName map[string]*Backend
}

// Defaults are the --prometheus-* flags: the "default" backend, and the values other
// backends inherit where the config leaves a field unset.
type Defaults struct {
	// Options describe the flags' backend.
	Options promclient.Options
}

// Build makes one client per backend: the flags' one, named "default", and the config's.
// Nothing is contacted. Errors name the backend and its line.
func Build(cfg []config.Backend, d Defaults) (*Set, error) {
	s := &Set{byName: map[string]*Backend{}}
	// The config cannot name a backend "default" (the loader refuses it): that one is the flags'.
	o := d.Options
	o.Name = config.DefaultBackend
	// The flags cannot change while the process runs: one fingerprint for its lifetime.
	flags, err := newBackend(o, nil, "flags")
	if err != nil {
		return nil, err
	}
	s.byName[flags.Name] = flags
	for _, cb := range cfg {
		o, err := options(cb, d.Options)
		if err != nil {
			return nil, fmt.Errorf("backend %q (line %d): %w", cb.Name, cb.Line, err)
		}
		b, err := newBackend(o, cb.Tenant, cb.Fingerprint)
		if err != nil {
			return nil, fmt.Errorf("backend %q (line %d): %w", cb.Name, cb.Line, err)
		}
		s.byName[b.Name] = b
	}
	return s, nil
}

// options turns a config backend into client options, inheriting the flags' limits, verb,
// timeout and partial-answer policy where it sets none.
func options(b config.Backend, d promclient.Options) (promclient.Options, error) {
	kind, err := promclient.ParseKind(b.Kind)
	if err != nil {
		return promclient.Options{}, err
	}
	o := promclient.Options{
		Name: b.Name, URL: b.URL, Kind: kind, Verb: d.Verb, Timeout: d.Timeout,
		MaxAnswerBytes: d.MaxAnswerBytes, MaxSamples: d.MaxSamples, AllowPartial: d.AllowPartial,
		HTTP: commoncfg.DefaultHTTPClientConfig,
	}
	if b.Verb != "" {
		o.Verb = b.Verb
	}
	if b.Timeout > 0 {
		o.Timeout = b.Timeout
	}
	if b.AllowPartialAnswers != nil {
		o.AllowPartial = *b.AllowPartialAnswers
	}
	if b.HTTP != nil {
		o.HTTP = *b.HTTP
	}
	if len(b.Headers) > 0 {
		if o.HTTP.HTTPHeaders == nil {
			o.HTTP.HTTPHeaders = &commoncfg.Headers{Headers: map[string]commoncfg.Header{}}
		}
		for k, v := range b.Headers {
			k = http.CanonicalHeaderKey(k)
			h := o.HTTP.HTTPHeaders.Headers[k]
			h.Values = append(h.Values, v)
			o.HTTP.HTTPHeaders.Headers[k] = h
		}
	}
	if len(b.QueryParameters) > 0 {
		o.QueryParameters = url.Values{}
		for k, v := range b.QueryParameters {
			o.QueryParameters.Set(k, v)
		}
	}
	if b.Tenant != nil {
		o.Tenant = promclient.TenantOptions{Header: b.Tenant.Header, Parameter: b.Tenant.Parameter}
	}
	o.AzureAD = b.AzureAD
	if b.SigV4 != nil {
		o.SigV4 = &sigv4.SigV4Config{Region: b.SigV4.Region, AccessKey: b.SigV4.AccessKey,
			SecretKey: b.SigV4.SecretKey, Profile: b.SigV4.Profile, RoleARN: b.SigV4.RoleARN}
	}
	return o, nil
}

func newBackend(o promclient.Options, t *config.Tenant, fingerprint string) (*Backend, error) {
	c, err := promclient.New(o)
	if err != nil {
		return nil, err
	}
	b := &Backend{Name: o.Name, Client: c, fingerprint: o.Name + "@" + fingerprint}
	if t == nil {
		if k := c.Kind(); k == promclient.KindCortex || k == promclient.KindMimir {
			// Every request to these needs a tenant, unless the backend's headers carry one.
			if _, err := c.WithTenant(""); err != nil {
				return nil, fmt.Errorf("a %s backend needs a tenant on every request: add tenant.value (or tenant.namespaceTemplate with tenant.discoveryValue), or send X-Scope-OrgID in headers", k)
			}
		}
		return b, nil
	}
	b.tenancy = true
	b.tenantValue, b.discoveryTenant = t.Value, t.DiscoveryValue
	if b.discoveryTenant == "" {
		b.discoveryTenant = t.Value
	}
	if t.NamespaceTemplate != "" {
		b.tenantTemplate, err = template.New("namespaceTemplate").Delims("<<", ">>").Option("missingkey=error").Parse(t.NamespaceTemplate)
		if err != nil {
			return nil, fmt.Errorf("tenant.namespaceTemplate: %w", err)
		}
	}
	// Discovery lists series with one tenant: a kind that needs one (Cortex, Mimir) must have it.
	if _, err := c.WithTenant(b.discoveryTenant); err != nil {
		if b.discoveryTenant == "" {
			return nil, fmt.Errorf("discovery needs a tenant on this backend: set tenant.value, or tenant.discoveryValue next to tenant.namespaceTemplate (%v)", err)
		}
		return nil, fmt.Errorf("the tenant discovery uses: %w", err)
	}
	return b, nil
}

// Get returns the backend named name ("" is "default").
func (s *Set) Get(name string) (*Backend, bool) {
	if name == "" {
		name = config.DefaultBackend
	}
	b, ok := s.byName[name]
	return b, ok
}

// Names lists the backends' names, sorted.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.byName))
	for n := range s.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Fingerprint identifies the backend's configuration; equal fingerprints answer alike.
func (b *Backend) Fingerprint() string { return b.fingerprint }

// TenantFor is the tenant a query for namespace carries: the rule's own (ruleTenant), else
// the backend's static value, else its namespaceTemplate rendered; "" without tenancy.
func (b *Backend) TenantFor(namespace, ruleTenant string) (string, error) {
	switch {
	case !b.tenancy:
		if ruleTenant != "" {
			return "", fmt.Errorf("the rule sets tenant %q but backend %q has no tenant section: add tenant.header (or tenant.parameter) to the backend", ruleTenant, b.Name)
		}
		return "", nil
	case ruleTenant != "":
		return ruleTenant, nil
	case b.tenantTemplate == nil:
		return b.tenantValue, nil
	case namespace == "":
		return "", fmt.Errorf("backend %q derives its tenant from the namespace (tenant.namespaceTemplate), and this request has none: ask in a namespace, or give the rule a tenant", b.Name)
	}
	var buf bytes.Buffer
	if err := b.tenantTemplate.Execute(&buf, struct{ Namespace string }{namespace}); err != nil {
		return "", fmt.Errorf("backend %q: tenant.namespaceTemplate: %w", b.Name, err)
	}
	return strings.TrimSpace(buf.String()), nil
}

// For is the planner's view of the backend for one request: its client with the tenant set,
// keyed so that answers of different tenants or configs never share a cache entry.
func (b *Backend) For(namespace, ruleTenant string) (planner.Backend, error) {
	tenant, err := b.TenantFor(namespace, ruleTenant)
	if err != nil {
		return planner.Backend{}, err
	}
	if !b.tenancy {
		return planner.Backend{Name: b.Name, Key: b.fingerprint, Querier: b.Client}, nil
	}
	c, err := b.Client.WithTenant(tenant)
	if err != nil {
		return planner.Backend{}, err
	}
	return planner.Backend{Name: b.Name, Key: b.fingerprint + "/" + tenant, Querier: c}, nil
}

// Lister is the client discovery lists series with: with the discovery tenant, if any.
func (b *Backend) Lister() (*promclient.Client, error) {
	if !b.tenancy {
		return b.Client, nil
	}
	return b.Client.WithTenant(b.discoveryTenant)
}

// Close releases the idle connections of every backend (a retired snapshot's).
func (s *Set) Close() {
	for _, b := range s.byName {
		b.Client.Close()
	}
}

// Forget deletes the metric series of backends that next no longer has.
func (s *Set) Forget(next *Set) {
	for name, b := range s.byName {
		if _, kept := next.byName[name]; !kept {
			b.Client.Forget()
		}
	}
}

// Check builds the config's own backends as serve would, without the flags' one and without
// contacting anything: check-config's offline validation of kinds, URLs and auth settings.
func Check(cfg []config.Backend) error {
	for _, cb := range cfg {
		o, err := options(cb, promclient.Options{})
		if err != nil {
			return fmt.Errorf("backend %q (line %d): %w", cb.Name, cb.Line, err)
		}
		b, err := newBackend(o, cb.Tenant, cb.Fingerprint)
		if err != nil {
			return fmt.Errorf("backend %q (line %d): %w", cb.Name, cb.Line, err)
		}
		b.Client.Close()
	}
	return nil
}
