package snapshot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/component-base/metrics/testutil"

	"github.com/promadapter/promadapter/internal/promtest"
	"github.com/promadapter/promadapter/pkg/backend"
	"github.com/promadapter/promadapter/pkg/planner"
	"github.com/promadapter/promadapter/pkg/promclient"
)

const queueRule = `
externalRules:
- seriesQuery: 'queue_depth'
  metricsQuery: 'max(<<.Series>>{<<.LabelMatchers>>})'
`

const withSecondBackend = `
backends:
- name: second
  url: %s
externalRules:
- seriesQuery: 'queue_depth'
  metricsQuery: 'max(<<.Series>>{<<.LabelMatchers>>})'
- seriesQuery: 'jobs_pending'
  backend: second
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>})'
`

// configMapDir writes files the way the kubelet updates a mounted ConfigMap: the data lives in
// a timestamped directory, ..data is a symlink to it swapped by rename, and config.yaml is a
// symlink through ..data. The file's own inode never changes name, so only a watch on the
// directory sees an update.
type configMapDir struct {
	t   *testing.T
	dir string
	gen int
}

func newConfigMapDir(t *testing.T, content string) *configMapDir {
	d := &configMapDir{t: t, dir: t.TempDir()}
	d.write(content)
	if err := os.Symlink(filepath.Join("..data", "config.yaml"), filepath.Join(d.dir, "config.yaml")); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *configMapDir) path() string { return filepath.Join(d.dir, "config.yaml") }

func (d *configMapDir) write(content string) {
	d.t.Helper()
	d.gen++
	ts := fmt.Sprintf("..2026_11_30_%04d", d.gen)
	if err := os.Mkdir(filepath.Join(d.dir, ts), 0o755); err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.dir, ts, "config.yaml"), []byte(content), 0o644); err != nil {
		d.t.Fatal(err)
	}
	tmp := filepath.Join(d.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		d.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(d.dir, "..data")); err != nil {
		d.t.Fatal(err)
	}
}

// replaceFile writes content beside file and renames it over: one step, as editors and
// kubectl do, so a reload never reads it half-written.
func replaceFile(t *testing.T, file, content string) {
	t.Helper()
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
}

func newReloader(t *testing.T, file string, prom *promtest.Server) *Reloader {
	t.Helper()
	r := &Reloader{
		File: file, Relist: time.Hour, Debounce: 20 * time.Millisecond,
		Builder: &Builder{
			Defaults: backend.Defaults{Options: promclient.Options{URL: prom.URL()}},
			Planner:  planner.New(planner.Options{}), External: true, MetricsMaxAge: time.Hour,
		},
	}
	loaded, err := r.Load()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := r.Init(ctx, loaded); err != nil {
		t.Fatal(err)
	}
	go func() { _ = r.Run(ctx) }()
	<-r.Watching()
	return r
}

// eventually polls cond every 10 ms until it holds or 5 s have passed: the bound for a
// new metric to be served after an edit.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5 s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func served(r *Reloader, metric string) bool {
	_, ok := r.Holder.Load().Registry.External(metric)
	return ok
}

func gauge(t *testing.T) float64 {
	t.Helper()
	v, err := testutil.GetGaugeMetricValue(reloadMetrics.success)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// An edit of a mounted ConfigMap is served within 5 s; a broken edit is refused and every
// old metric stays served; a fixed edit loads again.
func TestConfigMapEditsAreReloaded(t *testing.T) {
	first := promtest.New(t, promtest.Series("queue_depth", "queue", "a"))
	second := promtest.New(t, promtest.Series("jobs_pending", "queue", "b"))
	cm := newConfigMapDir(t, queueRule)
	r := newReloader(t, cm.path(), first)
	eventually(t, "queue_depth discovered", func() bool { return served(r, "queue_depth") })

	before := r.Holder.Load()
	cm.write(fmt.Sprintf(withSecondBackend, second.URL()))
	eventually(t, "jobs_pending (new rule on the new backend) served", func() bool { return served(r, "jobs_pending") })
	if !served(r, "queue_depth") {
		t.Error("queue_depth is no longer served after adding a rule")
	}
	if gauge(t) != 1 {
		t.Error("promadapter_config_last_reload_successful is not 1 after a good reload")
	}
	if r.Holder.Load() == before {
		t.Fatal("the snapshot was not swapped")
	}

	good := r.Holder.Load()
	cm.write("externalRules:\n- seriesQuery: 'queue_depth{'\n  metricsQuery: x\n")
	eventually(t, "the broken config refused", func() bool { return gauge(t) == 0 })
	if r.Holder.Load() != good {
		t.Fatal("a broken config replaced the serving one")
	}
	for _, m := range []string{"queue_depth", "jobs_pending"} {
		if !served(r, m) {
			t.Errorf("%s is no longer served after a broken edit", m)
		}
	}

	cm.write(queueRule)
	eventually(t, "the fixed config loaded", func() bool { return gauge(t) == 1 && !served(r, "jobs_pending") })
	if !served(r, "queue_depth") {
		t.Error("queue_depth is not served after the fix")
	}
}

// Metrics of rules that did not change are carried into the new snapshot before discovery
// reruns: they are served without a gap.
func TestUnchangedRulesKeepTheirMetrics(t *testing.T) {
	prom := promtest.New(t, promtest.Series("queue_depth", "queue", "a"))
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(file, []byte(queueRule), 0o644); err != nil {
		t.Fatal(err)
	}
	r := newReloader(t, file, prom)
	eventually(t, "queue_depth discovered", func() bool { return served(r, "queue_depth") })
	// Discovery of the next snapshot fails: only adoption can keep queue_depth listed.
	prom.SetFail(func(string, []string) int { return 503 })
	if err := r.Reload(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if !served(r, "queue_depth") {
		t.Fatal("an unchanged rule's metric disappeared at reload")
	}
	if !r.Holder.Ready() {
		t.Error("the adapter became unready at reload")
	}
}

// A file caught empty (truncated before a write) is refused at reload: the rules stay.
func TestAnEmptyFileIsNotReloaded(t *testing.T) {
	prom := promtest.New(t, promtest.Series("queue_depth", "queue", "a"))
	file := filepath.Join(t.TempDir(), "config.yaml")
	replaceFile(t, file, queueRule)
	r := newReloader(t, file, prom)
	eventually(t, "queue_depth discovered", func() bool { return served(r, "queue_depth") })
	replaceFile(t, file, "\n")
	err := r.Reload(context.Background(), false)
	if err == nil || !strings.Contains(err.Error(), "is empty (a write in progress?): not reloading") {
		t.Fatalf("got %v, want the empty file refused", err)
	}
	if !served(r, "queue_depth") {
		t.Error("an empty file dropped the rules")
	}
}

// SIGHUP reloads even an unchanged file.
func TestSIGHUPReloads(t *testing.T) {
	prom := promtest.New(t, promtest.Series("queue_depth", "queue", "a"))
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte(queueRule), 0o644); err != nil {
		t.Fatal(err)
	}
	r := newReloader(t, file, prom)
	before := r.Holder.Load()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a new snapshot after SIGHUP", func() bool { return r.Holder.Load() != before })
}

// Readers racing reloads always see a whole snapshot (run with -race).
func TestReadersDuringReloads(t *testing.T) {
	prom := promtest.New(t, promtest.Series("queue_depth", "queue", "a"), promtest.Series("jobs_pending", "queue", "b"))
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte(queueRule), 0o644); err != nil {
		t.Fatal(err)
	}
	r := newReloader(t, file, prom)
	eventually(t, "queue_depth discovered", func() bool { return served(r, "queue_depth") })
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				st := r.Holder.Providers().Current()
				m, ok := st.Registry.External("queue_depth")
				if !ok {
					t.Error("queue_depth missing during reloads")
					return
				}
				if _, err := st.Backends.For(m.Rule, "shop"); err != nil {
					t.Errorf("resolving the backend: %v", err)
					return
				}
			}
		}()
	}
	for i := range 20 {
		content := queueRule
		if i%2 == 1 {
			content = fmt.Sprintf(withSecondBackend, prom.URL())
		}
		replaceFile(t, file, content)
		if err := r.Reload(context.Background(), false); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

// A metric whose rule was edited is served by the new rule the moment the new snapshot
// serves: the edited rule is discovered before the swap, not after.
func TestEditedRulesAreServedWithoutAGap(t *testing.T) {
	prom := promtest.New(t, promtest.Series("queue_depth", "queue", "a"))
	file := filepath.Join(t.TempDir(), "config.yaml")
	replaceFile(t, file, queueRule)
	r := newReloader(t, file, prom)
	eventually(t, "queue_depth discovered", func() bool { return served(r, "queue_depth") })
	edited := strings.Replace(queueRule, "max(", "sum(", 1)
	replaceFile(t, file, edited)
	if err := r.Reload(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	m, ok := r.Holder.Load().Registry.External("queue_depth")
	if !ok {
		t.Fatal("queue_depth is not served right after its rule was edited")
	}
	if !strings.HasPrefix(m.Rule.Spec.MetricsQuery, "sum(") {
		t.Errorf("queue_depth is served by %q, want the edited rule", m.Rule.Spec.MetricsQuery)
	}
}
