package discovery

import (
	"fmt"
	"time"
)

// now is the discoverer's clock: Now, or time.Now when unset.
func (d *Discoverer) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// markAlive records a sign of life of the discovery loop.
func (d *Discoverer) markAlive() { d.alive.Store(d.now().UnixNano()) }

// Stalled reports an error when discovery has shown no sign of life for longer than maxQuiet:
// no pass started or ended and no backend call returned. It is a liveness check: a pass
// against a Prometheus that is down still ends (each call is bounded by the client's
// timeout), so an outage never makes discovery look stuck; only a loop that has stopped or
// hangs outside the backend does. Before the loop's first sign of life it reports nothing.
func (d *Discoverer) Stalled(maxQuiet time.Duration) error {
	last := d.alive.Load()
	if last == 0 {
		return nil
	}
	if quiet := d.now().Sub(time.Unix(0, last)); quiet > maxQuiet {
		return fmt.Errorf("metric discovery has shown no sign of life for %s (more than %s): no pass started or ended and no call to Prometheus returned; its loop is stuck", quiet.Round(time.Second), maxQuiet)
	}
	return nil
}
