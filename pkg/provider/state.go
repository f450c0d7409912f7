package provider

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/promadapter/promadapter/pkg/discovery"
	"github.com/promadapter/promadapter/pkg/naming"
	"github.com/promadapter/promadapter/pkg/planner"
)

// State is one consistent view of what the adapter serves: the metrics discovered for the
// loaded rules and the backends those rules query. A reload builds a new State beside the
// old one; a request reads the State it started with from start to end, so it never mixes a
// rule of one config with a backend of another.
type State struct {
	Registry *discovery.Registry
	Backends Backends
}

// Backends resolves where a rule's query for a namespace goes: the backend the rule names,
// with the tenant it carries for that namespace.
type Backends interface {
	For(rule *naming.Rule, namespace string) (planner.Backend, error)
}

// Source hands out the current State.
type Source interface {
	Current() *State
}

// StaticSource is a Source that never changes (tests, fixed configs).
type StaticSource struct{ State *State }

// Current implements Source.
func (s StaticSource) Current() *State { return s.State }

// OneBackend sends every rule's queries to one backend, without a tenant.
type OneBackend planner.Backend

// For implements Backends.
func (b OneBackend) For(*naming.Rule, string) (planner.Backend, error) {
	return planner.Backend(b), nil
}

// backendFor resolves the rule's backend; a failure (a tenant that cannot be derived from the
// request) is the request's problem when it lacks what the tenant needs, else the config's.
func (st *State) backendFor(rule *naming.Rule, namespace string) (planner.Backend, error) {
	b, err := st.Backends.For(rule, namespace)
	if err != nil {
		return planner.Backend{}, apierrors.NewInternalError(fmt.Errorf("rule %s: choosing its backend: %w", rule.ID, err))
	}
	return b, nil
}
