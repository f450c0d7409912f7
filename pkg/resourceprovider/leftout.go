package resourceprovider

import (
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/klog/v2"
)

// objectRef names a pod or node that was left out of a list.
type objectRef struct {
	namespace, name string
	uid             types.UID
}

// leftOutLog logs, at verbosity 4, why a pod or node was left out of a list: once per
// object (namespace, name and UID) until it is served again, not on every request (HPAs
// list every 15 s).
//
// Entries of objects that no longer exist are pruned when the log has doubled in size since
// the last pruning, so pod churn cannot grow it without bound.
type leftOutLog struct {
	kind   string                 // "pod" or "node", for the log line
	exists func(objectRef) bool   // whether the object is still in the lister
	mu     sync.Mutex             // guards logged and pruneAt
	logged map[objectRef]struct{} // objects whose omission has been logged
	// pruneAt is the size of logged at which objects that no longer exist are dropped.
	pruneAt int
}

// minPruneAt is the smallest size at which the log prunes itself.
const minPruneAt = 1024

func newLeftOutLog(kind string, exists func(objectRef) bool) *leftOutLog {
	return &leftOutLog{kind: kind, exists: exists, logged: map[objectRef]struct{}{}, pruneAt: minPruneAt}
}

// leftOut records that ref was left out for reason; the first time, it logs the reason.
// It reports whether it logged.
func (l *leftOutLog) leftOut(ref objectRef, reason string) bool {
	l.mu.Lock()
	if _, ok := l.logged[ref]; ok {
		l.mu.Unlock()
		return false
	}
	l.logged[ref] = struct{}{}
	if len(l.logged) >= l.pruneAt {
		l.prune()
	}
	l.mu.Unlock()
	klog.V(4).InfoS("Resource metrics left out of a list", l.kind, klog.KRef(ref.namespace, ref.name), "reason", reason)
	return true
}

// served records that ref was served, so a later omission is logged again.
func (l *leftOutLog) served(ref objectRef) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.logged) > 0 {
		delete(l.logged, ref)
	}
}

// prune drops objects that no longer exist. l.mu must be held.
func (l *leftOutLog) prune() {
	for ref := range l.logged {
		if !l.exists(ref) {
			delete(l.logged, ref)
		}
	}
	l.pruneAt = max(minPruneAt, 2*len(l.logged))
}

// podStillExists reports whether the pod (same UID) is still in the lister.
func podStillExists(pods PodLister) func(objectRef) bool {
	return func(ref objectRef) bool {
		pod, err := pods.Get(ref.namespace, ref.name)
		return err == nil && pod.UID == ref.uid || err != nil && !apierrors.IsNotFound(err)
	}
}

// nodeStillExists reports whether the node (same UID) is still in the lister.
func nodeStillExists(nodes corev1listers.NodeLister) func(objectRef) bool {
	return func(ref objectRef) bool {
		node, err := nodes.Get(ref.name)
		return err == nil && node.UID == ref.uid || err != nil && !apierrors.IsNotFound(err)
	}
}
