package resourceprovider

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/common/model"
	ktypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// captureKlog sends klog's output at verbosity v into the returned buffer for the test.
func captureKlog(t *testing.T, v string) *syncBuffer {
	t.Helper()
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	old := map[string]string{}
	set := map[string]string{"v": v, "logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL"}
	for name, value := range set {
		old[name] = fs.Lookup(name).Value.String()
		if err := fs.Set(name, value); err != nil {
			t.Fatal(err)
		}
	}
	buf := &syncBuffer{}
	klog.SetOutput(buf)
	t.Cleanup(func() {
		klog.Flush()
		for name, value := range old {
			_ = fs.Set(name, value)
		}
		klog.SetOutput(nil)
	})
	return buf
}

func TestALeftOutPodIsLoggedOnceUntilItIsServedAgain(t *testing.T) {
	logs := captureKlog(t, "4")
	prom := clusterPrometheus()
	p := newTestProvider(t, prom, clusterPods(), clusterNodes())
	for range 5 {
		if _, err := p.listPodMetrics(context.Background(), "team-a", nil, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := p.listNodeMetrics(context.Background(), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	klog.Flush()
	count := func(s string) int { return strings.Count(logs.String(), s) }
	if n := count(`pod="team-a/half-1"`); n != 1 {
		t.Errorf("half-1 was logged %d times in 5 lists, want once; logs:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), `no memory usage for container \"sidecar\"`) {
		t.Errorf("the log does not say why half-1 was left out:\n%s", logs)
	}
	if n := count(`node="node-c"`); n != 1 {
		t.Errorf("node-c was logged %d times in 5 lists, want once; logs:\n%s", n, logs)
	}
	if n := count(`pod="team-a/web-1"`); n != 0 {
		t.Errorf("web-1 has metrics but was logged %d times", n)
	}

	// Once half-1 has its sidecar's memory, it is served; when the series goes away again,
	// that is news and is logged again.
	complete := append(model.Vector{}, prom.answers[memTeamA]...)
	prom.answers[memTeamA] = append(complete, containerSample("team-a", "half-1", "sidecar", mebibyte, t0))
	list, err := p.listPodMetrics(context.Background(), "team-a", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 4 {
		t.Errorf("with the sidecar's memory, %d pods are listed, want 4", len(list.Items))
	}
	prom.answers[memTeamA] = complete
	if _, err := p.listPodMetrics(context.Background(), "team-a", nil, nil); err != nil {
		t.Fatal(err)
	}
	klog.Flush()
	if n := count(`pod="team-a/half-1"`); n != 2 {
		t.Errorf("half-1 was logged %d times in all, want twice (before and after it was served)", n)
	}
}

func TestTheLeftOutLogForgetsObjectsThatNoLongerExist(t *testing.T) {
	existing := map[objectRef]bool{}
	l := newLeftOutLog("pod", func(ref objectRef) bool { return existing[ref] })
	keep := objectRef{"ns", "keep", "uid-keep"}
	existing[keep] = true
	l.leftOut(keep, "reason")
	for i := range minPruneAt - 1 {
		l.leftOut(objectRef{"ns", fmt.Sprintf("gone-%d", i), ktypes.UID(fmt.Sprintf("uid-%d", i))}, "reason")
	}
	if len(l.logged) != 1 {
		t.Errorf("after %d omissions of deleted pods, the log holds %d entries, want 1 (the existing pod)", minPruneAt-1, len(l.logged))
	}
	if l.leftOut(keep, "reason") {
		t.Error("the existing pod was logged again after pruning")
	}
}
