package resourceprovider

import (
	"maps"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

func TestPodTrimmerKeepsWhatUsageNeeds(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u", ResourceVersion: "42", Labels: map[string]string{"app": "a"},
			Annotations: map[string]string{"big": "x"}, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "m"}}},
		Spec: corev1.PodSpec{
			Containers:     []corev1.Container{{Name: "app", Image: "i", Env: []corev1.EnvVar{{Name: "A"}}}},
			InitContainers: []corev1.Container{{Name: "init"}, {Name: "sidecar", RestartPolicy: &always}},
			NodeName:       "n",
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1"},
	}
	got, err := (&PodTrimmer{}).Transform(pod)
	if err != nil {
		t.Fatal(err)
	}
	p := got.(*Pod)
	if p.Name != "p" || p.Namespace != "ns" || p.UID != "u" || p.Labels["app"] != "a" || p.Phase != corev1.PodRunning {
		t.Errorf("identity, labels or phase lost: %+v", p)
	}
	if p.ResourceVersion != pod.ResourceVersion {
		t.Errorf("resource version %q, want %q (informers compare it on updates)", p.ResourceVersion, pod.ResourceVersion)
	}
	if size := unsafe.Sizeof(*p); size > 128 {
		t.Errorf("a Pod record is %d bytes, want at most 128 (see its comment)", size)
	}
	if len(p.Containers) != 2 || p.Containers[0] != "app" || p.Containers[1] != "sidecar" {
		t.Errorf("containers that must report usage = %v, want [app sidecar]", p.Containers)
	}
	if key, err := cache.MetaNamespaceKeyFunc(p); err != nil || key != "ns/p" {
		t.Errorf("informers key the record as %q, %v; want ns/p", key, err)
	}
	if ns, err := cache.MetaNamespaceIndexFunc(p); err != nil || len(ns) != 1 || ns[0] != "ns" {
		t.Errorf("the namespace index files the record under %v, %v; want [ns]", ns, err)
	}
	if m, err := meta.Accessor(p); err != nil || m.GetResourceVersion() != pod.ResourceVersion || m.GetUID() != "u" {
		t.Errorf("meta.Accessor = %v, %v; want the record's identity and resource version", m, err)
	}
	if c := p.DeepCopyObject().(*Pod); c.Labels["app"] != "a" || &c.Containers[0] == &p.Containers[0] {
		t.Errorf("DeepCopyObject = %+v, want an independent copy", c)
	}
}

func TestPodTrimmerPassesTombstones(t *testing.T) {
	tomb := cache.DeletedFinalStateUnknown{Key: "ns/p"}
	if got, err := (&PodTrimmer{}).Transform(tomb); err != nil || got != tomb {
		t.Errorf("TrimPod(tombstone) = %v, %v; want it unchanged", got, err)
	}
}

func TestPodListerRejectsUntrimmedPods(t *testing.T) {
	index := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	if err := index.Add(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}}); err != nil {
		t.Fatal(err)
	}
	l := NewPodLister(index)
	if _, err := l.List("ns", nil); err == nil || !strings.Contains(err.Error(), "PodTrimmer") {
		t.Errorf("List over untrimmed pods: err = %v, want one naming PodTrimmer", err)
	}
	if _, err := l.Get("ns", "p"); err == nil || !strings.Contains(err.Error(), "PodTrimmer") {
		t.Errorf("Get of an untrimmed pod: err = %v, want one naming PodTrimmer", err)
	}
	if _, err := l.Get("ns", "q"); !apierrors.IsNotFound(err) {
		t.Errorf("Get of a missing pod: err = %v, want NotFound", err)
	}
}

func TestPodTrimmerSharesEqualLabels(t *testing.T) {
	var trimmer PodTrimmer
	trim := func(name string, labels map[string]string) *Pod {
		t.Helper()
		got, err := trimmer.Transform(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: labels}})
		if err != nil {
			t.Fatal(err)
		}
		return got.(*Pod)
	}
	a := trim("a", map[string]string{"app": "web", "pod-template-hash": "h1"})
	b := trim("b", map[string]string{"pod-template-hash": "h1", "app": "web"})
	c := trim("c", map[string]string{"app": "web", "pod-template-hash": "h2"})
	d := trim("d", map[string]string{"app": "web\x00pod-template-hash", "": "h1"})
	e := trim("e", nil)
	if reflect.ValueOf(a.Labels).UnsafePointer() != reflect.ValueOf(b.Labels).UnsafePointer() {
		t.Error("pods with equal labels do not share one map")
	}
	for _, other := range []*Pod{c, d} {
		if reflect.ValueOf(a.Labels).UnsafePointer() == reflect.ValueOf(other.Labels).UnsafePointer() {
			t.Errorf("pods with different labels share a map: %v and %v", a.Labels, other.Labels)
		}
	}
	if !maps.Equal(c.Labels, map[string]string{"app": "web", "pod-template-hash": "h2"}) || e.Labels != nil {
		t.Errorf("labels changed by interning: %v, %v", c.Labels, e.Labels)
	}
	if n := trimmer.labels.size(); n != 3 {
		t.Errorf("the table holds %d label sets, want 3", n)
	}
	runtime.KeepAlive([]*Pod{a, b, c, d, e})
}

func TestPodTrimmerForgetsUnusedLabelSets(t *testing.T) {
	var trimmer PodTrimmer
	for i := range 100 {
		if _, err := trimmer.Transform(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{"i": strconv.Itoa(i)}}}); err != nil {
			t.Fatal(err)
		}
	}
	// No pod holds the sets any more: collections free them and their cleanups (which run
	// on a goroutine of their own) empty the table.
	for range 1000 {
		if trimmer.labels.size() == 0 {
			return
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	t.Errorf("the table still holds %d label sets that no pod uses", trimmer.labels.size())
}
