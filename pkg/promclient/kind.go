package promclient

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Kind is the software behind a backend's Prometheus HTTP API. The client handles what differs
// between them (parameters, path prefixes, tenancy) so that a backend's configuration names the
// kind and nothing more.
type Kind string

const (
	// KindPrometheus is Prometheus 2 or 3, or anything that serves its API as Prometheus does:
	// the default. Hosted services behind a gateway that takes the tenant from the credentials
	// and serves the API under a path of their own (Grafana Cloud's /api/prom) are this kind too.
	KindPrometheus Kind = "prometheus"
	// KindThanos is a Thanos Querier (or Query Frontend). Every request asks for deduplicated
	// series (dedup=true) and for partial responses (partial_response=true), unless the URL or
	// Options.QueryParameters set them. Partial responses are asked for so that a store that is
	// down shows as what it is: Thanos then answers with warnings, which the client refuses as
	// CausePartial ("partial answer", 503) unless Options.AllowPartial, and counts. Without
	// them Thanos fails the whole query with a 422 that reads like a broken server.
	KindThanos Kind = "thanos"
	// KindCortex is Cortex: its API is under /prometheus, and every request needs a tenant
	// (X-Scope-OrgID unless Options.Tenant says otherwise).
	KindCortex Kind = "cortex"
	// KindMimir is Grafana Mimir: as KindCortex.
	KindMimir Kind = "mimir"
	// KindVictoriaMetrics is VictoriaMetrics, single-node or cluster (the URL of a cluster ends
	// in /select/<accountID>/prometheus; extra_label and extra_filters[] go in
	// Options.QueryParameters). Label calls always carry start and end: without them
	// VictoriaMetrics looks at the last day only, and with match[] may answer nothing
	// (VictoriaMetrics issue #1398).
	KindVictoriaMetrics Kind = "victoriametrics"
)

// kinds are the valid kinds, in the order error messages list them.
var kinds = []Kind{KindPrometheus, KindThanos, KindCortex, KindMimir, KindVictoriaMetrics}

// ParseKind reads a backend's kind as a configuration spells it, in any case; "" is
// KindPrometheus.
func ParseKind(s string) (Kind, error) {
	if s == "" {
		return KindPrometheus, nil
	}
	for _, k := range kinds {
		if strings.EqualFold(s, string(k)) {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown backend kind %q: use one of %s", s, kindList())
}

func kindList() string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

// valid tells whether k is one of the constants, or "" (KindPrometheus).
func (k Kind) valid() bool { return k == "" || slices.Contains(kinds, k) }

// cortexLike tells whether the kind serves its API under /prometheus and needs a tenant.
func (k Kind) cortexLike() bool { return k == KindCortex || k == KindMimir }

// defaultTenantHeader is the header a tenant goes in when Options.Tenant names no place.
const defaultTenantHeader = "X-Scope-OrgID"

// apiBase returns the base URL of the kind's Prometheus API: for Cortex and Mimir, u with
// /prometheus appended unless its path already ends in it.
func (k Kind) apiBase(u *url.URL) *url.URL {
	if !k.cortexLike() {
		return u
	}
	out := *u
	trimmed := strings.TrimSuffix(out.Path, "/")
	if strings.HasSuffix(trimmed, "/prometheus") {
		return &out
	}
	out.Path = trimmed + "/prometheus"
	if out.RawPath != "" {
		out.RawPath = strings.TrimSuffix(out.RawPath, "/") + "/prometheus"
	}
	return &out
}

// defaultParameters adds to params what the kind sends with every request, unless configured
// already (in the URL or Options.QueryParameters: the explicit choice wins).
func (k Kind) defaultParameters(params url.Values, configured func(name string) bool) {
	if k != KindThanos {
		return
	}
	// Without dedup=true Thanos returns one series per replica of an HA pair, and the adapter
	// would add them up. partial_response=true: see KindThanos; a partial answer is refused
	// by checkWarnings unless allowed, so it never becomes a silently smaller sum.
	if !configured("dedup") {
		params.Set("dedup", "true")
	}
	if !configured("partial_response") {
		params.Set("partial_response", "true")
	}
}
