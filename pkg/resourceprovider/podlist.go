package resourceprovider

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/metrics/pkg/apis/metrics"

	"github.com/promadapter/promadapter/pkg/explain"
)

// podList is a PodMetrics list whose usage has been read from Prometheus but whose items are
// not built yet. Reading and building are apart so that a list can be encoded item by item as
// it is built (stream.go) rather than held whole: at 150,000 pods the built items are about
// 200 MB, their compact usage about 15 MB. Every query has answered before the first item is
// built, so a failing query fails the list before any of it is written.
type podList struct {
	p   *Provider
	rec *explain.Recorder
	// parts are the pods in list order (namespace, name), each run with its usage.
	parts []podListPart
	pods  int
}

type podListPart struct {
	pods  []*Pod
	usage *podUsage
}

// listPodMetrics serves a PodMetrics list of one namespace, or of all namespaces when
// namespace is "", built whole (see readPodList).
func (p *Provider) listPodMetrics(ctx context.Context, namespace string, labelSel labels.Selector, fieldSel fields.Selector) (*metrics.PodMetricsList, error) {
	l, err := p.readPodList(ctx, namespace, labelSel, fieldSel)
	if err != nil {
		return nil, err
	}
	list := &metrics.PodMetricsList{Items: make([]metrics.PodMetrics, 0, l.pods)}
	l.each(func(pm *metrics.PodMetrics) error {
		list.Items = append(list.Items, *pm)
		return nil
	})
	return list, nil
}

// readPodList reads the usage of a PodMetrics list of one namespace, or of all namespaces when
// namespace is "". Running pods from the lister that match both selectors (nil means
// everything) are listed when they have usage (see podMetrics); the others are left out and
// logged once. The list is sorted by namespace and name.
func (p *Provider) readPodList(ctx context.Context, namespace string, labelSel labels.Selector, fieldSel fields.Selector) (*podList, error) {
	if fieldSel == nil {
		fieldSel = fields.Everything()
	}
	if namespace == "" {
		// `kubectl get podmetrics -A --field-selector metadata.namespace=x` needs only x.
		if ns, ok := fieldSel.RequiresExactMatch("metadata.namespace"); ok && ns != "" {
			namespace = ns
		}
	}
	rec := explain.FromContext(ctx)
	cached, err := p.pods.List(namespace, labelSel)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("listing pods from the adapter's cache: %w", err))
	}
	pods := cached[:0]
	for _, pod := range cached {
		if pod.Phase == corev1.PodRunning && (fieldSel.Empty() || fieldSel.Matches(podFields(pod))) {
			pods = append(pods, pod)
		} else if rec != nil && pod.Phase != corev1.PodRunning && (fieldSel.Empty() || fieldSel.Matches(podFields(pod))) {
			explainNotRunning(rec, pod)
		}
	}
	if rec != nil {
		explainPods(rec, namespace, selectorText(labelSel, fieldSel), pods)
	}
	l := &podList{p: p, rec: rec, pods: len(pods)}
	if len(pods) == 0 {
		// Nothing could be served: spare Prometheus the queries.
		return l, nil
	}
	// Sorting the pods rather than the finished items moves pointers, not PodMetrics structs.
	slices.SortFunc(pods, func(a, b *Pod) int {
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	if namespace == "" && len(pods) >= shardMinPods {
		shards, err := p.planShards(pods)
		if err != nil {
			return nil, err
		}
		err = p.usageByShard(ctx, shards, len(pods) <= cachedShardsMaxPods, rec, func(pods []*Pod, usage *podUsage) error {
			l.parts = append(l.parts, podListPart{pods: pods, usage: usage})
			return nil
		})
		if err != nil {
			return nil, err
		}
		return l, nil
	}
	results, err := p.queryUsage(ctx, "pods", namespace, podsScope(namespace), func(q *resourceQueries) (string, error) { return q.podsQuery(namespace) }, rec, false)
	if err != nil {
		return nil, err
	}
	if rec != nil {
		p.explainPodAnswers(rec, results, pods)
	}
	usage, err := p.indexContainerUsage(results, pods, podsScope(namespace))
	if err != nil {
		return nil, err
	}
	l.parts = []podListPart{{pods: pods, usage: usage}}
	return l, nil
}

// each builds the list's items in order and calls fn with each; the item is fn's only for
// the call. Pods without complete usage are left out (and logged once). It stops at fn's
// first error.
func (l *podList) each(fn func(*metrics.PodMetrics) error) error {
	return l.build(listPosition{}, true, func(_ listPosition, pm *metrics.PodMetrics) error { return fn(pm) })
}

// listPosition is a pod's place in a podList: its part and its index there.
type listPosition struct{ part, pod int }

// build builds the items from position from on and calls fn with each and its position.
// Unless record, it does not note which pods were served or left out: for a second pass over
// items a first one has recorded.
func (l *podList) build(from listPosition, record bool, fn func(listPosition, *metrics.PodMetrics) error) error {
	for at := from; at.part < len(l.parts); at = (listPosition{part: at.part + 1}) {
		part := l.parts[at.part]
		for ; at.pod < len(part.pods); at.pod++ {
			pod := part.pods[at.pod]
			pm, lo := l.p.podMetrics(pod, part.usage.of(at.pod))
			if record {
				l.record(pod, &pm, lo)
			}
			if lo != nil {
				continue
			}
			if err := fn(at, &pm); err != nil {
				return err
			}
		}
	}
	return nil
}

// record notes that pod was served, or left out and why (logged once; explained when asked).
func (l *podList) record(pod *Pod, pm *metrics.PodMetrics, lo *leftOut) {
	ref := objectRef{pod.Namespace, pod.Name, pod.UID}
	if lo != nil {
		l.p.podsLeftOut.leftOut(ref, lo.reason)
		if l.rec != nil {
			l.rec.Left(pod.Namespace+"/"+pod.Name, lo.code(), lo.reason)
		}
		return
	}
	l.p.podsLeftOut.served(ref)
	if l.rec != nil {
		explainPodMetrics(l.rec, pm)
	}
}
