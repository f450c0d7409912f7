package config

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"slices"
	"strings"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/storage/remote/azuread"
	yamlv2 "go.yaml.in/yaml/v2"
	"gopkg.in/yaml.v3"
)

// DefaultBackend is the name of the backend the --prometheus-* flags describe. Rules that name
// no backend use it, so a prometheus-adapter config without a backends section loads unchanged.
const DefaultBackend = "default"

// Backend is one Prometheus-compatible server the rules may query (backends[i]).
type Backend struct {
	// Name identifies the backend in rules, metrics (label backend) and messages.
	Name string
	// URL is the base URL of the Prometheus HTTP API, without /api/v1.
	URL string
	// Kind is prometheus (""), thanos, cortex, mimir or victoriametrics; the client adapts
	// paths and parameters to it. Checked when the backend is built (pkg/backend).
	Kind string
	// Timeout bounds each request; 0 means --prometheus-timeout.
	Timeout time.Duration
	// Verb is GET or POST for queries; "" means --prometheus-verb.
	Verb string
	// AllowPartialAnswers serves answers with warnings; nil means --allow-partial-answers.
	AllowPartialAnswers *bool
	// QueryParameters are sent with every request, queries and label calls.
	QueryParameters map[string]string
	// Headers are sent with every request.
	Headers map[string]string
	// Tenant says where a tenant id goes and which one; nil means none.
	Tenant *Tenant
	// HTTP is Prometheus' own http_config: authorization, basic auth, OAuth2, TLS, proxy.
	HTTP *commoncfg.HTTPClientConfig
	// SigV4 signs requests for Amazon Managed Prometheus; nil means no signing.
	SigV4 *SigV4
	// AzureAD authenticates to Azure Monitor's managed Prometheus with Prometheus' own azuread
	// configuration (managed identity, workload identity, OAuth client, or the SDK chain).
	AzureAD *azuread.AzureADConfig

	// Fingerprint is a hash of the backend's YAML (secrets included, never shown): equal
	// fingerprints mean the same server queried the same way, so cached answers may be shared
	// across a reload. Set by the loader.
	Fingerprint string

	// Line is the 1-based line of the backend in its file; set by the loader.
	Line int
}

// Tenant places a tenant id on a backend's requests (X-Scope-OrgID for Cortex and Mimir,
// THANOS-TENANT or a label-enforcing proxy's parameter elsewhere).
type Tenant struct {
	// Header or Parameter names where the id goes; exactly one, or neither for the kind's default.
	Header    string
	Parameter string
	// Value is a static id. NamespaceTemplate (<<.Namespace>>) derives one per request from the
	// namespace asked for, so one namespace's HPA reads only its own tenant.
	Value             string
	NamespaceTemplate string
	// DiscoveryValue is the id discovery lists series with when NamespaceTemplate is used (for
	// Cortex or Mimir with tenant federation, e.g. "team-a|team-b").
	DiscoveryValue string
}

// SigV4 is the AWS signing configuration (Amazon Managed Prometheus): prometheus/sigv4's
// fields, with the same YAML names.
type SigV4 struct {
	Region    string
	AccessKey string
	SecretKey commoncfg.Secret
	Profile   string
	RoleARN   string
}

var (
	backendFields = fieldSet{names: []string{"name", "url", "kind", "timeout", "verb", "allowPartialAnswers",
		"queryParameters", "headers", "tenant", "httpConfig", "sigv4", "azureAD"}}
	tenantFields = fieldSet{names: []string{"header", "parameter", "value", "namespaceTemplate", "discoveryValue"}}
	sigv4Fields  = fieldSet{names: []string{"region", "access_key", "secret_key", "profile", "role_arn"}}

	backendName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
)

// backends decodes the backends section.
func (d *decoder) backends(n *yaml.Node, path string) []Backend {
	items, ok := d.list(n, path)
	if !ok {
		return nil
	}
	var out []Backend
	seen := map[string]int{}
	for i, item := range items {
		b := d.backend(item, index(path, i))
		if b.Name != "" {
			if line, dup := seen[b.Name]; dup {
				d.report(resolve(item), index(path, i)+".name", "backend %q is defined twice (first at line %d); give each backend its own name", b.Name, line)
			}
			seen[b.Name] = b.Line
		}
		out = append(out, b)
	}
	return out
}

// backend decodes one entry of backends.
func (d *decoder) backend(n *yaml.Node, path string) Backend {
	n = resolve(n)
	b := Backend{Line: n.Line}
	if text, err := yaml.Marshal(n); err == nil {
		sum := sha256.Sum256(text)
		b.Fingerprint = hex.EncodeToString(sum[:6])
	}
	f, ok := d.fields(n, path, backendFields)
	if !ok {
		return b
	}
	var node *yaml.Node
	if b.Name, node = d.requiredString(f, n, path, "name", `name the backend, e.g. name: thanos, and refer to it from rules with backend: thanos`); node != nil && !backendName.MatchString(b.Name) {
		d.report(resolve(node), join(path, "name"), "backend name %q is not valid: use lower-case letters, digits and '-' (it becomes a metric label value)", b.Name)
	} else if b.Name == DefaultBackend {
		d.report(resolve(node), join(path, "name"), "the name %q is the backend of the --prometheus-* flags, which rules without a backend use; give this backend another name", DefaultBackend)
	}
	b.URL, _ = d.requiredString(f, n, path, "url", `give the base URL of the Prometheus HTTP API (without /api/v1), e.g. url: http://thanos-query.monitoring.svc:9090`)
	if e, ok := f["kind"]; ok {
		b.Kind, _ = d.str(e.value, join(path, "kind"))
	}
	if e, ok := f["verb"]; ok {
		b.Verb, _ = d.str(e.value, join(path, "verb"))
	}
	if e, ok := f["timeout"]; ok {
		if s, ok := d.str(e.value, join(path, "timeout")); ok {
			t, err := model.ParseDuration(s)
			if err != nil || t <= 0 {
				d.report(resolve(e.value), join(path, "timeout"), "%q is not a positive duration; write one such as 10s or 1m", s)
			}
			b.Timeout = time.Duration(t)
		}
	}
	if e, ok := f["allowPartialAnswers"]; ok {
		b.AllowPartialAnswers = d.boolean(e.value, join(path, "allowPartialAnswers"))
	}
	if e, ok := f["queryParameters"]; ok {
		b.QueryParameters = d.stringMap(e.value, join(path, "queryParameters"))
	}
	if e, ok := f["headers"]; ok {
		b.Headers = d.stringMap(e.value, join(path, "headers"))
	}
	if e, ok := f["tenant"]; ok {
		b.Tenant = d.tenant(e.value, join(path, "tenant"))
	}
	if e, ok := f["httpConfig"]; ok {
		b.HTTP = d.httpConfig(e.value, join(path, "httpConfig"))
	}
	if e, ok := f["sigv4"]; ok {
		b.SigV4 = d.sigv4(e.value, join(path, "sigv4"))
	}
	if e, ok := f["azureAD"]; ok {
		var az azuread.AzureADConfig
		if d.prometheusSection(e.value, join(path, "azureAD"), &az, "azuread",
			"https://prometheus.io/docs/prometheus/latest/configuration/configuration/#remote_write") {
			b.AzureAD = &az
		}
	}
	return b
}

// tenant decodes a backend's tenant.
func (d *decoder) tenant(n *yaml.Node, path string) *Tenant {
	n = resolve(n)
	f, ok := d.fields(n, path, tenantFields)
	if !ok {
		return nil
	}
	t := &Tenant{}
	for _, s := range []struct {
		name string
		dst  *string
	}{{"header", &t.Header}, {"parameter", &t.Parameter}, {"value", &t.Value}, {"namespaceTemplate", &t.NamespaceTemplate}, {"discoveryValue", &t.DiscoveryValue}} {
		if e, ok := f[s.name]; ok {
			*s.dst, _ = d.str(e.value, join(path, s.name))
		}
	}
	switch {
	case t.Header != "" && t.Parameter != "":
		d.report(n, path, "tenant has both header and parameter; the tenant id goes in one place: keep one of them")
	case t.Value != "" && t.NamespaceTemplate != "":
		d.report(n, path, "tenant has both value and namespaceTemplate; keep value for one tenant, or namespaceTemplate for one tenant per namespace")
	}
	if e, ok := f["namespaceTemplate"]; ok && t.NamespaceTemplate != "" {
		d.checkTemplate(resolve(e.value), join(path, "namespaceTemplate"), t.NamespaceTemplate, []string{"Namespace"})
	}
	return t
}

// sigv4 decodes a backend's sigv4 section.
func (d *decoder) sigv4(n *yaml.Node, path string) *SigV4 {
	n = resolve(n)
	f, ok := d.fields(n, path, sigv4Fields)
	if !ok {
		return nil
	}
	s := &SigV4{}
	var secret string
	for _, e := range []struct {
		name string
		dst  *string
	}{{"region", &s.Region}, {"access_key", &s.AccessKey}, {"secret_key", &secret}, {"profile", &s.Profile}, {"role_arn", &s.RoleARN}} {
		if v, ok := f[e.name]; ok {
			*e.dst, _ = d.str(v.value, join(path, e.name))
		}
	}
	s.SecretKey = commoncfg.Secret(secret)
	if (s.AccessKey == "") != (secret == "") {
		d.report(n, path, "sigv4 needs both access_key and secret_key, or neither (then the AWS default credential chain is used: environment, profile, IRSA)")
	}
	return s
}

// stringMap decodes a mapping of strings to strings.
func (d *decoder) stringMap(n *yaml.Node, path string) map[string]string {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.wrongType(n, path, expectMapping)
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		if v, ok := d.str(n.Content[i+1], join(path, k)); ok {
			out[k] = v
		}
	}
	return out
}

// httpConfig decodes Prometheus' http_config strictly, with Prometheus' own types, so every
// field and check is exactly Prometheus'.
func (d *decoder) httpConfig(n *yaml.Node, path string) *commoncfg.HTTPClientConfig {
	hc := commoncfg.DefaultHTTPClientConfig
	if !d.prometheusSection(n, path, &hc, "http_config", "https://prometheus.io/docs/prometheus/latest/configuration/configuration/#http_config") {
		return nil
	}
	if err := hc.Validate(); err != nil {
		d.report(resolve(n), path, "not a valid Prometheus http_config: %v", err)
		return nil
	}
	return &hc
}

// prometheusSection decodes a mapping into one of Prometheus' own configuration types (which
// unmarshal with yaml.v2 and validate themselves), strictly; errors carry the section's
// position and name what Prometheus calls it.
func (d *decoder) prometheusSection(n *yaml.Node, path string, dst any, what, doc string) bool {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		d.wrongType(n, path, expectMapping)
		return false
	}
	text, err := yaml.Marshal(n)
	if err != nil {
		d.report(n, path, "cannot re-encode the section: %v", err)
		return false
	}
	if err := yamlv2.UnmarshalStrict(text, dst); err != nil {
		d.report(n, path, "not a valid Prometheus %s: %s; see %s", what, strings.TrimPrefix(err.Error(), "yaml: "), doc)
		return false
	}
	return true
}

// backendRef reads a rule's backend field, reporting a name the config does not define.
func (d *decoder) backendRef(f map[string]entry, path string) string {
	e, ok := f["backend"]
	if !ok {
		return ""
	}
	name, ok := d.str(e.value, join(path, "backend"))
	if !ok || name == "" || name == DefaultBackend {
		return name
	}
	names := []string{DefaultBackend}
	for _, b := range d.defined {
		if b.Name == name {
			return name
		}
		names = append(names, b.Name)
	}
	slices.Sort(names)
	d.report(resolve(e.value), join(path, "backend"), "no backend is named %q; define it under backends, or use one of: %s", name, strings.Join(slices.Compact(names), ", "))
	return name
}
