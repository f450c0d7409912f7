package informeraccess

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// listWatch answers lists and watches with the errors given (nil: an empty list, a watch that
// never sends anything).
func listWatch(listErr, watchErr error) *cache.ListWatch {
	return &cache.ListWatch{
		ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) {
			if listErr != nil {
				return nil, listErr
			}
			return &corev1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: "1"}}, nil
		},
		WatchFuncWithContext: func(context.Context, metav1.ListOptions) (watch.Interface, error) {
			if watchErr != nil {
				return nil, watchErr
			}
			return watch.NewFake(), nil
		},
	}
}

func TestRefusedListsAndWatchesAreReportedUntilTheyStop(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New(`User "system:serviceaccount:promadapter:promadapter" cannot list resource "pods"`))
	for _, c := range []struct {
		name              string
		listErr, watchErr error
		wantRefused       bool
	}{
		// client-go first tries a streaming list (a watch that sends the initial objects), then
		// falls back to list: without any right, both are refused.
		{"a ServiceAccount without rights is reported", forbidden, forbidden, true},
		{"a refused watch is reported although the list succeeded", nil, forbidden, true},
		{"an expired token is reported", apierrors.NewUnauthorized("token expired"), apierrors.NewUnauthorized("token expired"), true},
		{"other errors (the kube-apiserver down) are not refusals", errors.New("connection refused"), errors.New("connection refused"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var now atomic.Pointer[time.Time]
			start := time.Now()
			now.Store(&start)
			r := &Refusals{Now: func() time.Time { return *now.Load() }}
			inf := cache.NewSharedIndexInformer(listWatch(c.listErr, c.watchErr), &corev1.Pod{}, 0, cache.Indexers{})
			if err := r.Track("pods", inf); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go inf.RunWithContext(ctx)

			// The first list and watch fail within milliseconds; retries follow after 0.8 s.
			deadline := time.Now().Add(2 * time.Second)
			for r.Err("pods") == nil && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			err := r.Check("pods", "nodes")
			if (err != nil) != c.wantRefused {
				t.Fatalf("Check = %v, want a refusal: %v", err, c.wantRefused)
			}
			if !c.wantRefused {
				return
			}
			for _, want := range []string{"list and watch pods", "ClusterRole"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Check = %q, want it to name %q", err, want)
				}
			}
			if r.Err("nodes") != nil {
				t.Errorf("nodes reported refused, only pods were")
			}
			cancel()
			later := start.Add(Recent + time.Second)
			now.Store(&later)
			if err := r.Err("pods"); err != nil {
				t.Errorf("%s after the last refusal: %v, want none (the rights were granted since)", Recent+time.Second, err)
			}
		})
	}
}
