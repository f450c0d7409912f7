package provider

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

func TestCountObjectsAnswersFromExistingCachesOnly(t *testing.T) {
	pod := func(ns, name string) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	}
	list := &corev1.PodList{Items: []corev1.Pod{pod("a", "web-1"), pod("a", "web-0"), pod("a", "db-0"), pod("b", "web-2")}}
	inf := cache.NewSharedIndexInformer(listThenWatch{&cache.ListWatch{
		ListWithContextFunc:  func(context.Context, metav1.ListOptions) (runtime.Object, error) { return list, nil },
		WatchFuncWithContext: func(context.Context, metav1.ListOptions) (watch.Interface, error) { return watch.NewFake(), nil },
	}}, &corev1.Pod{}, 0, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	mapper := apimeta.NewDefaultRESTMapper(nil)
	mapper.Add(corev1.SchemeGroupVersion.WithKind("Pod"), apimeta.RESTScopeNamespace)
	mapper.Add(corev1.SchemeGroupVersion.WithKind("Service"), apimeta.RESTScopeNamespace)
	objects := NewInformerObjects(nil, mapper, ctx.Done())
	objects.Share(corev1.SchemeGroupVersion.WithResource("pods"), inf)

	if n, ok := objects.CountObjects(corev1.Resource("pods"), "a"); ok {
		t.Errorf("CountObjects before the cache synced = %d, want unknown", n)
	}
	go inf.RunWithContext(ctx)
	// ListNames waits for the sync.
	if _, err := objects.ListNames(ctx, corev1.Resource("pods"), "a", labels.Everything()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		namespace string
		want      int
	}{{"a", 3}, {"b", 1}, {"c", 0}, {"", 4}} {
		n, ok := objects.CountObjects(corev1.Resource("pods"), c.namespace)
		if !ok || n != c.want {
			t.Errorf("CountObjects(pods, %q) = %d, %v; want %d, true", c.namespace, n, ok, c.want)
		}
	}
	// No informer was started for services, and counting starts none.
	if n, ok := objects.CountObjects(corev1.Resource("services"), "a"); ok {
		t.Errorf("CountObjects(services) = %d, want unknown: no cache holds services", n)
	}
	objects.mu.Lock()
	defer objects.mu.Unlock()
	if len(objects.informers) != 1 {
		t.Errorf("%d informers after counting, want only the shared pod informer", len(objects.informers))
	}
}
