// Package snapshot holds what the adapter serves as one immutable value: a loaded config, its
// backends, its compiled rules and the metrics discovered for them. A reload builds a new
// Snapshot beside the current one and swaps it in whole (Holder); a request reads the one it
// started with to the end, so it never mixes a rule of one config with a backend of another.
package snapshot

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	corev1listers "k8s.io/client-go/listers/core/v1"

	"github.com/promadapter/promadapter/pkg/backend"
	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/pkg/discovery"
	"github.com/promadapter/promadapter/pkg/naming"
	"github.com/promadapter/promadapter/pkg/planner"
	"github.com/promadapter/promadapter/pkg/provider"
	"github.com/promadapter/promadapter/pkg/resourceprovider"
)

// Snapshot is one loaded config, ready to serve. Nothing in it changes after Build but the
// registry's discovered metrics, which its own discovery loop keeps current.
type Snapshot struct {
	Config   *config.Config
	Backends *backend.Set
	Custom   []*naming.Rule
	External []*naming.Rule
	// Registry holds the metrics discovered for Custom and External; Discoverer fills it.
	Registry   *discovery.Registry
	Discoverer *discovery.Discoverer
	// Resources serves metrics.k8s.io; nil when the group is off.
	Resources *resourceprovider.Provider

	state *provider.State
	// changed are the rules whose metrics were not carried over from the previous snapshot:
	// new or edited rules, discovered before the swap (DiscoverChanged).
	changedCustom, changedExternal []*naming.Rule
}

// Builder compiles configs into Snapshots; its fields are the parts every snapshot shares.
type Builder struct {
	// Defaults are the --prometheus-* flags: the "default" backend and inherited settings.
	Defaults backend.Defaults
	// Mapper resolves resource names of rules against the cluster.
	Mapper  apimeta.RESTMapper
	Planner *planner.Planner
	// Custom and External enable discovery of those rules; Resources serves metrics.k8s.io
	// when the config has resourceRules, with Pods and Nodes the informers' listers. The
	// group is installed once: a reload may change resourceRules but not add or remove them.
	Custom, External, Resources bool
	Pods                        resourceprovider.PodLister
	Nodes                       corev1listers.NodeLister
	// MetricsMaxAge is discovery's look-back and how long unseen metrics stay listed
	// (--metrics-max-age).
	MetricsMaxAge time.Duration
}

// Build compiles cfg. When prev is given, metrics discovered for rules that did not change
// (same spec, same backend configuration) are carried over, so they stay served while
// discovery reruns for the new config.
func (b *Builder) Build(cfg *config.Config, prev *Snapshot) (*Snapshot, error) {
	backends, err := backend.Build(cfg.Backends, b.Defaults)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{Config: cfg, Backends: backends, Registry: discovery.NewRegistry()}
	fail := func(err error) (*Snapshot, error) {
		backends.Close()
		return nil, err
	}
	if s.Custom, err = naming.CompileRules(naming.KindCustom, cfg.Rules, cfg.Source, b.Mapper); err != nil {
		return fail(err)
	}
	if s.External, err = naming.CompileRules(naming.KindExternal, cfg.ExternalRules, cfg.Source, b.Mapper); err != nil {
		return fail(err)
	}
	for _, r := range append(slices.Clip(s.Custom), s.External...) {
		if err := r.CheckRender(); err != nil {
			return fail(err)
		}
	}
	resources := b.Resources && cfg.ResourceRules != nil
	switch {
	case prev != nil && prev.Resources != nil && !resources:
		return fail(fmt.Errorf("%s has no resourceRules but metrics.k8s.io is served: put resourceRules back (the default config has them); to stop serving metrics.k8s.io, restart with --enable-resource-metrics=false", cfg.Source))
	case prev != nil && prev.Resources == nil && resources:
		return fail(fmt.Errorf("%s adds resourceRules, but metrics.k8s.io is not served by this process (it started without them, or with --enable-resource-metrics=false): restart the adapter to serve it", cfg.Source))
	}
	if resources {
		rb, ok := backends.Get(cfg.ResourceRules.Backend)
		if !ok {
			return fail(fmt.Errorf("resourceRules: no backend is named %q", cfg.ResourceRules.Backend))
		}
		if s.Resources, err = resourceprovider.New(cfg.ResourceRules, b.Planner, resourceBackend{rb}, b.Pods, b.Nodes, b.Mapper); err != nil {
			return fail(err)
		}
	}
	d := &discovery.Discoverer{Registry: s.Registry, MaxAge: b.MetricsMaxAge, ListerFor: s.lister}
	if b.Custom {
		d.Custom = s.Custom
	}
	if b.External {
		d.External = s.External
	}
	s.Discoverer = d
	s.state = &provider.State{Registry: s.Registry, Backends: ruleBackends{backends}}
	if prev != nil {
		rebind := rebinder(prev, s)
		s.Registry.Adopt(prev.Registry, rebind)
		s.changedCustom, s.changedExternal = unbound(d.Custom, rebind, prev.Custom), unbound(d.External, rebind, prev.External)
	}
	return s, nil
}

// unbound lists the rules of next that no rule of prev was rebound to.
func unbound(next []*naming.Rule, rebind func(*naming.Rule) *naming.Rule, prev []*naming.Rule) []*naming.Rule {
	kept := map[*naming.Rule]bool{}
	for _, p := range prev {
		if r := rebind(p); r != nil {
			kept[r] = true
		}
	}
	var out []*naming.Rule
	for _, r := range next {
		if !kept[r] {
			out = append(out, r)
		}
	}
	return out
}

// DiscoverChanged runs one discovery pass over the new and edited rules only, into the
// snapshot's registry (which already holds the carried-over metrics of the others). A reload
// runs it before the swap, so a metric whose rule was edited is served by the new rule the
// moment the snapshot serves, with no gap of 404s; unchanged rules cost nothing.
func (s *Snapshot) DiscoverChanged(ctx context.Context) error {
	if len(s.changedCustom) == 0 && len(s.changedExternal) == 0 {
		return nil
	}
	d := &discovery.Discoverer{Registry: s.Registry, MaxAge: s.Discoverer.MaxAge, ListerFor: s.lister,
		Custom: s.changedCustom, External: s.changedExternal}
	return d.RunOnce(ctx)
}

// State is the snapshot as the custom and external providers read it.
func (s *Snapshot) State() *provider.State { return s.state }

// lister is the discovery lister of a rule's backend.
func (s *Snapshot) lister(rule *naming.Rule) (discovery.Lister, error) {
	b, ok := s.Backends.Get(rule.Backend)
	if !ok {
		return nil, fmt.Errorf("no backend is named %q", rule.Backend)
	}
	return b.Lister()
}

// ruleBackends resolves a rule's backend and tenant in one snapshot's set.
type ruleBackends struct{ set *backend.Set }

func (r ruleBackends) For(rule *naming.Rule, namespace string) (planner.Backend, error) {
	name, tenant := "", ""
	if rule != nil {
		name, tenant = rule.Backend, rule.Tenant
	}
	b, ok := r.set.Get(name)
	if !ok {
		return planner.Backend{}, fmt.Errorf("no backend is named %q", name)
	}
	return b.For(namespace, tenant)
}

// resourceBackend is the backend of resourceRules, with the tenant of the namespace asked for.
type resourceBackend struct{ b *backend.Backend }

func (r resourceBackend) For(namespace string) (planner.Backend, error) {
	return r.b.For(namespace, "")
}

// rebinder maps each rule of prev to the rule of next with the same kind, spec (position
// aside) and backend configuration; nil when it changed or is gone.
func rebinder(prev, next *Snapshot) func(*naming.Rule) *naming.Rule {
	same := map[*naming.Rule]*naming.Rule{}
	for _, pair := range [][2][]*naming.Rule{{prev.Custom, next.Custom}, {prev.External, next.External}} {
		for _, old := range pair[0] {
			for _, nu := range pair[1] {
				if sameRule(old, prev.Backends, nu, next.Backends) {
					same[old] = nu
					break
				}
			}
		}
	}
	return func(r *naming.Rule) *naming.Rule { return same[r] }
}

func sameRule(a *naming.Rule, as *backend.Set, b *naming.Rule, bs *backend.Set) bool {
	sa, sb := a.Spec, b.Spec
	sa.Line, sb.Line = 0, 0
	if a.Kind != b.Kind || !reflect.DeepEqual(sa, sb) {
		return false
	}
	ba, okA := as.Get(a.Backend)
	bb, okB := bs.Get(b.Backend)
	return okA && okB && ba.Fingerprint() == bb.Fingerprint()
}
