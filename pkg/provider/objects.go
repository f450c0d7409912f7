package provider

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"

	"github.com/promadapter/promadapter/pkg/informeraccess"
)

// ObjectLister lists the names of objects of a resource that match a label selector. It is
// how a selector request learns which objects it covers; implementations must answer from a
// cache, never with a LIST per request.
type ObjectLister interface {
	ListNames(ctx context.Context, gr schema.GroupResource, namespace string, selector labels.Selector) ([]string, error)
}

// InformerObjects answers from metadata-only informers, started on the first request for a
// resource and kept for the process lifetime (an HPA asks again every 15 s).
type InformerObjects struct {
	mapper  apimeta.RESTMapper
	factory metadatainformer.SharedInformerFactory
	stop    <-chan struct{}
	// SyncTimeout bounds the wait for a new informer's first list.
	SyncTimeout time.Duration
	// Refusals learns which informers the kube-apiserver refuses to serve (RBAC): a request for
	// such a resource fails at once, naming the missing rights, rather than after SyncTimeout or
	// with a cache that no watch keeps current.
	Refusals *informeraccess.Refusals

	mu        sync.Mutex
	informers map[schema.GroupVersionResource]cache.SharedIndexInformer
}

// NewInformerObjects builds the lister; informers stop when stop closes.
func NewInformerObjects(client metadata.Interface, mapper apimeta.RESTMapper, stop <-chan struct{}) *InformerObjects {
	return &InformerObjects{
		mapper:      mapper,
		factory:     metadatainformer.NewSharedInformerFactory(client, 0),
		stop:        stop,
		SyncTimeout: 30 * time.Second,
		Refusals:    &informeraccess.Refusals{},
		informers:   map[schema.GroupVersionResource]cache.SharedIndexInformer{},
	}
}

// Share makes ListNames answer gvr from an informer that already exists (e.g. the pod
// informer metrics.k8s.io uses) instead of starting a second cache of the same objects.
// It must be called before the first request.
func (o *InformerObjects) Share(gvr schema.GroupVersionResource, inf cache.SharedIndexInformer) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.informers[gvr] = inf
}

// ListNames implements ObjectLister.
func (o *InformerObjects) ListNames(ctx context.Context, gr schema.GroupResource, namespace string, selector labels.Selector) ([]string, error) {
	gvr, err := o.mapper.ResourceFor(gr.WithVersion(""))
	if err != nil {
		return nil, fmt.Errorf("resource %s is not served by this cluster: %w", gr, err)
	}
	o.mu.Lock()
	inf, ok := o.informers[gvr]
	if !ok {
		inf = o.factory.ForResource(gvr).Informer()
		// Names and labels are all a selector needs; drop annotations and managed fields.
		_ = inf.SetTransform(trimMetadata)
		_ = o.Refusals.Track(gvr.GroupResource().String(), inf)
		o.informers[gvr] = inf
		o.factory.Start(o.stop)
	}
	o.mu.Unlock()
	name := gvr.GroupResource().String()
	if err := o.Refusals.Err(name); err != nil {
		return nil, err
	}
	if !inf.HasSynced() {
		err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, o.SyncTimeout, true, func(context.Context) (bool, error) {
			if err := o.Refusals.Err(name); err != nil {
				return false, err
			}
			return inf.HasSynced(), nil
		})
		if err != nil && !wait.Interrupted(err) {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("the cache of %s objects did not sync within %s: check the adapter's RBAC allows list/watch on %s", gr, o.SyncTimeout, gr)
		}
	}
	var objs []any
	if namespace != "" {
		objs, err = inf.GetIndexer().ByIndex(cache.NamespaceIndex, namespace)
		if err != nil {
			return nil, err
		}
	} else {
		objs = inf.GetStore().List()
	}
	var names []string
	for _, obj := range objs {
		m, ok := obj.(labeledObject)
		if !ok {
			continue
		}
		if selector == nil || selector.Matches(labels.Set(m.GetLabels())) {
			names = append(names, m.GetName())
		}
	}
	sort.Strings(names)
	return names, nil
}

// labeledObject is what ListNames reads of a cached object: metadata-only objects and the
// resource provider's compact pod records both provide it.
type labeledObject interface {
	GetName() string
	GetLabels() map[string]string
}

func trimMetadata(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	return &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion, Labels: m.Labels,
	}}, nil
}
