package planner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/klog/v2"
)

// ErrNoQuerySlot is wrapped (with context.DeadlineExceeded, so the API answers 503) by the
// error of a query that found no free slot within Options.MaxSlotWait.
var ErrNoQuerySlot = errors.New("no free query slot")

// acquireSlot takes a slot for r's upstream call, waiting at most p.slotWait (when set) and
// while the call's context lasts (while one of its callers still waits).
func (p *Planner) acquireSlot(ctx context.Context, r Request) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	default:
	}
	var expired <-chan time.Time
	if p.slotWait > 0 {
		t := time.NewTimer(p.slotWait)
		defer t.Stop()
		expired = t.C
	}
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		// Every waiter left before a slot was free; nobody sees this error.
		return fmt.Errorf("waiting for a free query slot: %w", ctx.Err())
	case <-expired:
		klog.V(2).InfoS("No free query slot", "backend", r.Backend.Name, "rule", r.Rule, "waited", p.slotWait, "slots", cap(p.slots))
		return fmt.Errorf("rule %s: %s on backend %q: all %d query slots stayed busy for %s, so Prometheus is slow or down (or --max-concurrent-queries is too low for the load): %w (%w)",
			r.Rule, describeQuery(r.Query), r.Backend.Name, cap(p.slots), p.slotWait, ErrNoQuerySlot, context.DeadlineExceeded)
	}
}
