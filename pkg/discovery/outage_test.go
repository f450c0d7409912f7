package discovery_test

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promadapter/promadapter/internal/promtest"
	"github.com/promadapter/promadapter/pkg/discovery"
	"github.com/promadapter/promadapter/pkg/naming"
	"github.com/promadapter/promadapter/pkg/promclient"
)

// switchableLister sends discovery's calls to one of two backends, as a Prometheus that goes
// down and comes back would.
type switchableLister struct {
	mu       sync.Mutex
	up, down discovery.Lister
	isDown   bool
}

func (s *switchableLister) current() discovery.Lister {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isDown {
		return s.down
	}
	return s.up
}

func (s *switchableLister) setDown(v bool) { s.mu.Lock(); s.isDown = v; s.mu.Unlock() }

func (s *switchableLister) LabelValues(ctx context.Context, label string, matches []string, start, end time.Time) ([]string, error) {
	return s.current().LabelValues(ctx, label, matches, start, end)
}

func (s *switchableLister) LabelNames(ctx context.Context, matches []string, start, end time.Time) ([]string, error) {
	return s.current().LabelNames(ctx, matches, start, end)
}

// eventually polls cond until it holds, failing the test after a generous deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestDiscoveryServesItsLastResultsWhilePrometheusIsDownAndRecoversByItself(t *testing.T) {
	webSeries := promtest.Series("http_requests_total", "namespace", "shop", "pod", "web-1")
	queueSeries := promtest.Series("queue_depth_total", "namespace", "shop", "service", "orders")
	before := []provider.CustomMetricInfo{
		info(namespaces, "http_requests_per_second", false),
		info(pods, "http_requests_per_second", true),
	}
	after := []provider.CustomMetricInfo{
		info(namespaces, "http_requests_per_second", false),
		info(namespaces, "queue_depth_per_second", false),
		info(pods, "http_requests_per_second", true),
		info(services, "queue_depth_per_second", true),
	}
	cases := []struct {
		name string
		// breakBackend makes Prometheus fail; the returned function repairs it.
		breakBackend func(t *testing.T, f *promtest.Server, l *switchableLister) (repair func())
		wantFailure  string
	}{
		{
			name: "when Prometheus refuses connections",
			breakBackend: func(t *testing.T, _ *promtest.Server, l *switchableLister) func() {
				down, err := promclient.New(promclient.Options{URL: promtest.ClosedURL(t), Timeout: 5 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				l.mu.Lock()
				l.down = down
				l.mu.Unlock()
				l.setDown(true)
				return func() { l.setDown(false) }
			},
			wantFailure: "cannot reach Prometheus at http://127.0.0.1:",
		},
		{
			name: "when Prometheus answers 503",
			breakBackend: func(_ *testing.T, f *promtest.Server, _ *switchableLister) func() {
				f.SetFail(func(string, []string) int { return 503 })
				return func() { f.SetFail(nil) }
			},
			wantFailure: "Prometheus at http://127.0.0.1:",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := promtest.New(t, webSeries)
			l := &switchableLister{up: client(t, f)}
			clk := &clock{t: t0}
			reg := discovery.NewRegistry()
			d := &discovery.Discoverer{Backend: l, Registry: reg, MaxAge: 10 * time.Minute, Now: clk.Now,
				Custom: compile(t, naming.KindCustom, appCounterRule)}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			t.Cleanup(func() { cancel(); wg.Wait() })
			if err := d.RunOnce(ctx); err != nil {
				t.Fatalf("first pass: %v", err)
			}
			wg.Add(1)
			go func() { defer wg.Done(); d.Run(ctx, time.Millisecond) }()
			if got := reg.ListCustom(); !reflect.DeepEqual(got, before) {
				t.Fatalf("before the outage: ListCustom() = %v, want %v", got, before)
			}

			repair := tc.breakBackend(t, f, l)
			f.SetSeries(webSeries, queueSeries)
			clk.Set(t0.Add(9 * time.Minute))
			eventually(t, "a pass has seen Prometheus fail", func() bool {
				failing := reg.Failing()
				return len(failing) == 1 && strings.Contains(failing[0], tc.wantFailure)
			})
			if got := reg.ListCustom(); !reflect.DeepEqual(got, before) {
				t.Errorf("9 minutes into the outage (max age 10m): ListCustom() = %v, want the last results %v", got, before)
			}
			if err := d.Stalled(3 * time.Millisecond); err != nil {
				t.Errorf("during the outage: Stalled() = %v, want nil: passes that fail still show the loop is alive", err)
			}

			clk.Set(t0.Add(10 * time.Minute))
			eventually(t, "a pass has dropped metrics absent for --metrics-max-age", func() bool { return len(reg.ListCustom()) == 0 })

			repair()
			eventually(t, "the loop has recovered by itself", func() bool { return len(reg.Failing()) == 0 })
			if got := reg.ListCustom(); !reflect.DeepEqual(got, after) {
				t.Errorf("after recovery: ListCustom() = %v, want %v (with the metric that appeared during the outage)", got, after)
			}
		})
	}
}

func TestStalledReportsOnlyALoopWithoutSignsOfLife(t *testing.T) {
	const maxQuiet = 3 * time.Minute
	cases := []struct {
		name string
		// run drives the discoverer; clk starts at t0, and before (when set) runs before each
		// backend call.
		run  func(t *testing.T, d *discovery.Discoverer, l *switchableLister, clk *clock, before *func())
		want string // part of Stalled's error at the end; empty for nil
	}{
		{
			name: "a loop that has not started is not stuck",
			run:  func(*testing.T, *discovery.Discoverer, *switchableLister, *clock, *func()) {},
		},
		{
			name: "a loop whose last pass ended within the bound is alive",
			run: func(t *testing.T, d *discovery.Discoverer, _ *switchableLister, clk *clock, _ *func()) {
				_ = d.RunOnce(context.Background())
				clk.Set(t0.Add(maxQuiet))
			},
		},
		{
			name: "a pass that failed because Prometheus is down is a sign of life",
			run: func(t *testing.T, d *discovery.Discoverer, l *switchableLister, clk *clock, _ *func()) {
				l.setDown(true)
				clk.Set(t0.Add(time.Hour))
				if err := d.RunOnce(context.Background()); err == nil {
					t.Fatal("RunOnce succeeded against a Prometheus that is down")
				}
				clk.Set(t0.Add(time.Hour + maxQuiet))
			},
		},
		{
			name: "a loop quiet for longer than the bound is stuck",
			run: func(t *testing.T, d *discovery.Discoverer, _ *switchableLister, clk *clock, _ *func()) {
				_ = d.RunOnce(context.Background())
				clk.Set(t0.Add(maxQuiet + time.Second))
			},
			want: "metric discovery has shown no sign of life for 3m1s (more than 3m0s)",
		},
		{
			name: "a pass longer than the bound is alive while its backend calls keep returning",
			run: func(t *testing.T, d *discovery.Discoverer, _ *switchableLister, clk *clock, before *func()) {
				// Each call takes two minutes of the clock: the pass (three calls) lasts longer
				// than the bound, but no gap between signs of life does.
				calls := 0
				*before = func() {
					calls++
					clk.Set(clk.Now().Add(2 * time.Minute))
					if err := d.Stalled(maxQuiet); err != nil {
						t.Errorf("before backend call %d: Stalled() = %v, want nil", calls, err)
					}
				}
				_ = d.RunOnce(context.Background())
				if calls != 3 {
					t.Errorf("backend calls = %d, want 3", calls)
				}
			},
		},
		{
			name: "a pass hanging on a call for longer than the bound is stuck",
			run: func(t *testing.T, d *discovery.Discoverer, _ *switchableLister, clk *clock, before *func()) {
				started, release := make(chan struct{}), make(chan struct{})
				var once sync.Once
				*before = func() { once.Do(func() { close(started); <-release }) }
				done := make(chan struct{})
				go func() { defer close(done); _ = d.RunOnce(context.Background()) }()
				t.Cleanup(func() { close(release); <-done })
				<-started
				clk.Set(t0.Add(maxQuiet + time.Minute))
			},
			want: "no sign of life for 4m0s",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := promtest.New(t, promtest.Series("http_requests_total", "namespace", "shop", "pod", "web-1"),
				promtest.Series("http_errors_total", "namespace", "shop", "pod", "web-1"))
			down, err := promclient.New(promclient.Options{URL: promtest.ClosedURL(t), Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			l := &switchableLister{up: client(t, f), down: down}
			clk := &clock{t: t0}
			o := &observedLister{l: l}
			d := &discovery.Discoverer{Backend: o, Registry: discovery.NewRegistry(), MaxAge: 10 * time.Minute, Now: clk.Now,
				Parallel: 1, Custom: compile(t, naming.KindCustom, appCounterRule)}
			tc.run(t, d, l, clk, &o.before)
			err = d.Stalled(maxQuiet)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Stalled() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Stalled() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// observedLister runs before ahead of every call to l. Discovery's calls never overlap when
// Discoverer.Parallel is 1.
type observedLister struct {
	l      discovery.Lister
	before func()
}

func (o *observedLister) LabelValues(ctx context.Context, label string, matches []string, start, end time.Time) ([]string, error) {
	if o.before != nil {
		o.before()
	}
	return o.l.LabelValues(ctx, label, matches, start, end)
}

func (o *observedLister) LabelNames(ctx context.Context, matches []string, start, end time.Time) ([]string, error) {
	if o.before != nil {
		o.before()
	}
	return o.l.LabelNames(ctx, matches, start, end)
}
