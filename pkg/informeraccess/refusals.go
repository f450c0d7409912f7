// Package informeraccess notices when the kube-apiserver refuses an informer's list or watch
// (RBAC, a revoked token), so that the adapter says so at once, naming the resource and the fix,
// instead of waiting for a cache that never fills or serving one that silently goes stale.
//
// A reflector whose list or watch fails calls its informer's watch error handler and retries
// with a backoff; nothing is called when a retry succeeds. So a refusal is remembered with its
// time and counts for Recent: the backoff grows to 30 s with up to 100% jitter, so a refusal that
// persists is seen again well within Recent, and one that is not seen again for Recent was fixed.
package informeraccess

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/cache"
)

// Recent is how long a refusal counts after it was last seen.
const Recent = 2 * time.Minute

// Refusals records, per informer, the last list or watch the kube-apiserver refused. The zero
// value is ready to use; it is safe for concurrent use.
type Refusals struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu   sync.Mutex
	last map[string]refusal // by the name given to Track
}

type refusal struct {
	at  time.Time
	err error
}

// Track makes inf report its refused lists and watches under name (e.g. "pods"). It must be
// called before inf starts; errors are still logged as client-go logs them.
func (r *Refusals) Track(name string, inf cache.SharedIndexInformer) error {
	return inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, rf *cache.Reflector, err error) {
		cache.DefaultWatchErrorHandler(ctx, rf, err)
		if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
			r.record(name, err)
		}
	})
}

func (r *Refusals) record(name string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = map[string]refusal{}
	}
	r.last[name] = refusal{at: r.now(), err: err}
}

func (r *Refusals) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Err returns the refusal of name's list or watch seen within Recent, or nil. The error says
// which rights the adapter's ServiceAccount lacks and where to grant them.
func (r *Refusals) Err(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, ok := r.last[name]
	if !ok || r.now().Sub(f.at) > Recent {
		return nil
	}
	return fmt.Errorf("the kube-apiserver refused to let the adapter list and watch %s: %v; grant the adapter's ServiceAccount "+
		"list and watch on %s in its ClusterRole (deploy/manifests/rbac.yaml, or the chart's rbac.extraRules): "+
		"until then the adapter cannot know which %s exist, or its copy of them goes stale", name, f.err, name, name)
}

// Check returns one error naming every one of names with a recent refusal, or nil.
func (r *Refusals) Check(names ...string) error {
	var errs []error
	for _, name := range names {
		if err := r.Err(name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
