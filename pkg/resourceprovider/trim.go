package resourceprovider

import (
	"fmt"
	"maps"
	"slices"
	"unique"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// Pod is what the adapter keeps of a pod in its informer cache: what metrics.k8s.io and
// selector requests read, and nothing else. A corev1.Pod is kilobytes even when emptied (its
// spec and status structs, a container struct per container), and even an ObjectMeta is 240
// bytes of mostly empty fields; this record is 128 bytes besides its strings, which matters
// at tens of thousands of pods.
type Pod struct {
	Name, Namespace string
	UID             types.UID
	// ResourceVersion lets the informer tell a real update from a resync.
	ResourceVersion string
	// Labels is shared with other pods that have the same labels: never change it.
	Labels map[string]string
	Phase  corev1.PodPhase
	// Containers are the containers that run for the pod's whole life and must report usage:
	// its containers, then its native sidecars (init containers with restartPolicy Always).
	Containers []string
	// labelSet keeps the interned Labels alive in the trimmer's table.
	labelSet *labelSet
}

// GetName and GetLabels are what selector requests read of a cached object.
func (p *Pod) GetName() string              { return p.Name }
func (p *Pod) GetLabels() map[string]string { return p.Labels }

// GetObjectMeta implements metav1.ObjectMetaAccessor, through which informers' key and index
// functions (meta.Accessor) read the record. It builds an ObjectMeta on each call: they run
// once per event, never per request.
func (p *Pod) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion, Labels: p.Labels}
}

// GetObjectKind implements runtime.Object; a cached record carries no kind.
func (p *Pod) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject implements runtime.Object, for client-go's cache mutation detector.
func (p *Pod) DeepCopyObject() runtime.Object {
	out := *p
	out.Labels = maps.Clone(p.Labels)
	out.Containers = slices.Clone(p.Containers)
	out.labelSet = nil
	return &out
}

// PodTrimmer turns the pods an informer receives into Pod records. Pods with the same
// labels share one label map, and namespace names are interned.
type PodTrimmer struct{ labels labelSets }

// Transform is the informer transform (cache.TransformFunc). Objects other than pods (a
// DeletedFinalStateUnknown tombstone) pass unchanged.
func (t *PodTrimmer) Transform(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	set := t.labels.intern(pod.Labels)
	out := &Pod{
		Name: pod.Name, Namespace: unique.Make(pod.Namespace).Value(), UID: pod.UID, ResourceVersion: pod.ResourceVersion,
		Phase:    pod.Status.Phase,
		labelSet: set,
	}
	if set != nil {
		out.Labels = set.labels
	}
	n := len(pod.Spec.Containers)
	for _, c := range pod.Spec.InitContainers {
		if isSidecar(c) {
			n++
		}
	}
	out.Containers = make([]string, 0, n)
	for _, c := range pod.Spec.Containers {
		out.Containers = append(out.Containers, c.Name)
	}
	for _, c := range pod.Spec.InitContainers {
		if isSidecar(c) {
			out.Containers = append(out.Containers, c.Name)
		}
	}
	return out, nil
}

// isSidecar reports whether an init container is a native sidecar: it keeps running beside
// the pod's containers, so its usage is part of the pod's.
func isSidecar(c corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// TrimNode is an informer transform that keeps a node's identity and labels only.
func TrimNode(obj any) (any, error) {
	node, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	return &corev1.Node{ObjectMeta: trimMeta(node.ObjectMeta)}, nil
}

func trimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion, Labels: m.Labels,
	}
}

// PodLister reads Pod records from the indexer of a pod informer whose transform is a PodTrimmer's
// and which has the namespace index.
type PodLister struct{ indexer cache.Indexer }

// NewPodLister wraps the indexer of a pod informer that uses a PodTrimmer.
func NewPodLister(indexer cache.Indexer) PodLister { return PodLister{indexer: indexer} }

// List returns the pods of namespace ("" for all namespaces) whose labels match sel.
func (l PodLister) List(namespace string, sel labels.Selector) ([]*Pod, error) {
	var objs []any
	if namespace == "" {
		objs = l.indexer.List()
	} else {
		var err error
		if objs, err = l.indexer.ByIndex(cache.NamespaceIndex, namespace); err != nil {
			return nil, err
		}
	}
	everything := sel == nil || sel.Empty()
	pods := make([]*Pod, 0, len(objs))
	for _, obj := range objs {
		pod, ok := obj.(*Pod)
		if !ok {
			return nil, fmt.Errorf("the pod cache holds a %T, not a trimmed pod: the informer needs the PodTrimmer transform", obj)
		}
		if everything || sel.Matches(labels.Set(pod.Labels)) {
			pods = append(pods, pod)
		}
	}
	return pods, nil
}

// Get returns one pod, or a NotFound error.
func (l PodLister) Get(namespace, name string) (*Pod, error) {
	obj, ok, err := l.indexer.GetByKey(namespace + "/" + name)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, apierrors.NewNotFound(corev1.Resource("pods"), name)
	}
	pod, ok := obj.(*Pod)
	if !ok {
		return nil, fmt.Errorf("the pod cache holds a %T, not a trimmed pod: the informer needs the PodTrimmer transform", obj)
	}
	return pod, nil
}
