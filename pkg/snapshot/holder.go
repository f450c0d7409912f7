package snapshot

import (
	"sync/atomic"
	"time"

	"github.com/promadapter/promadapter/pkg/provider"
	"github.com/promadapter/promadapter/pkg/resourceprovider"
)

// Holder is the current Snapshot, swapped whole. Readers Load once per request.
type Holder struct {
	p atomic.Pointer[Snapshot]
}

// NewHolder holds first.
func NewHolder(first *Snapshot) *Holder {
	h := &Holder{}
	h.p.Store(first)
	return h
}

// Load returns the current snapshot.
func (h *Holder) Load() *Snapshot { return h.p.Load() }

// swap makes next current and returns the one it replaces.
func (h *Holder) swap(next *Snapshot) *Snapshot { return h.p.Swap(next) }

// Providers is the holder as the custom and external providers read it.
func (h *Holder) Providers() provider.Source { return providerSource{h} }

// Resources is the holder as metrics.k8s.io reads it.
func (h *Holder) Resources() resourceprovider.Source { return resourceSource{h} }

// Ready reports whether the current snapshot's discovery has completed a pass.
func (h *Holder) Ready() bool { return h.Load().Registry.Ready() }

// Stalled is the current discovery loop's liveness (discovery.Discoverer.Stalled).
func (h *Holder) Stalled(maxQuiet time.Duration) error {
	return h.Load().Discoverer.Stalled(maxQuiet)
}

type providerSource struct{ h *Holder }

func (s providerSource) Current() *provider.State { return s.h.Load().State() }

type resourceSource struct{ h *Holder }

func (s resourceSource) Current() *resourceprovider.Provider { return s.h.Load().Resources }
