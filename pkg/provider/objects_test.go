package provider

import (
	"context"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// compactPod stands for a cached record that is not a metav1.Object (the resource provider's
// Pod): informers reach its metadata through GetObjectMeta, ListNames through GetName and
// GetLabels.
type compactPod struct {
	name, namespace string
	labels          map[string]string
}

func (p *compactPod) GetName() string              { return p.name }
func (p *compactPod) GetLabels() map[string]string { return p.labels }
func (p *compactPod) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Name: p.name, Namespace: p.namespace, Labels: p.labels}
}

// listThenWatch is a fake ListWatch that opts out of client-go's WatchList (a streamed initial
// list ending with a bookmark, which the fake watcher never sends).
type listThenWatch struct{ *cache.ListWatch }

func (listThenWatch) IsWatchListSemanticsUnSupported() bool { return true }

func TestListNamesReadsSharedCompactRecords(t *testing.T) {
	pod := func(ns, name, app string) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": app}}}
	}
	list := &corev1.PodList{Items: []corev1.Pod{pod("a", "web-1", "web"), pod("a", "web-0", "web"), pod("a", "db-0", "db"), pod("b", "web-2", "web")}}
	inf := cache.NewSharedIndexInformer(listThenWatch{&cache.ListWatch{
		ListWithContextFunc:  func(context.Context, metav1.ListOptions) (runtime.Object, error) { return list, nil },
		WatchFuncWithContext: func(context.Context, metav1.ListOptions) (watch.Interface, error) { return watch.NewFake(), nil },
	}}, &corev1.Pod{}, 0, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	if err := inf.SetTransform(func(obj any) (any, error) {
		if p, ok := obj.(*corev1.Pod); ok {
			return &compactPod{name: p.Name, namespace: p.Namespace, labels: p.Labels}, nil
		}
		return obj, nil
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go inf.RunWithContext(ctx)

	mapper := apimeta.NewDefaultRESTMapper(nil)
	mapper.Add(corev1.SchemeGroupVersion.WithKind("Pod"), apimeta.RESTScopeNamespace)
	objects := NewInformerObjects(nil, mapper, ctx.Done())
	objects.Share(corev1.SchemeGroupVersion.WithResource("pods"), inf)

	for _, c := range []struct {
		namespace string
		selector  labels.Selector
		want      []string
	}{
		{"a", labels.SelectorFromSet(labels.Set{"app": "web"}), []string{"web-0", "web-1"}},
		{"a", labels.Everything(), []string{"db-0", "web-0", "web-1"}},
		{"", labels.SelectorFromSet(labels.Set{"app": "web"}), []string{"web-0", "web-1", "web-2"}},
		{"c", labels.Everything(), nil},
	} {
		got, err := objects.ListNames(ctx, corev1.Resource("pods"), c.namespace, c.selector)
		if err != nil {
			t.Fatalf("ListNames(%q, %s): %v", c.namespace, c.selector, err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("ListNames(%q, %s) = %v, want %v", c.namespace, c.selector, got, c.want)
		}
	}
}
