//go:build e2e

package e2e

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// loadTarget is one kind of request the load sends, with its check.
type loadTarget struct {
	path string
	want podValues
}

// loadError is one failed request of the load: when it was sent, since the start (the
// time to set beside the reloads', which the due time is not once requests queue).
type loadError struct {
	at   time.Duration
	path string
	err  error
}

// loadReport is what a load run measured.
type loadReport struct {
	sent     int
	answered int // answered 200 with the exact values
	errors   []loadError
	elapsed  time.Duration   // from the first request due to the last answer
	latency  []time.Duration // from each request's due time to its checked answer
	service  []time.Duration // from each request's sending to its checked answer
}

// runLoad sends requests at rate per second, round robin over targets, until stop is closed,
// then waits for the answers. It is open-loop: request i is due at start + i/rate whatever
// became of the earlier ones, and its latency counts from that due time, so a stall of the
// adapter shows as latency instead of being hidden by a slower sender. At most
// reloadLoadWorkers requests are in flight; beyond that, due requests queue (and their
// latency grows), so when the machine cannot keep up the achieved rate is what it sustains.
func (r *reloadSuite) runLoad(started time.Time, rate int, targets []loadTarget, stop <-chan struct{}) loadReport {
	type request struct {
		i   int
		due time.Time
	}
	queue := make(chan request, 1<<20)
	var (
		mu  sync.Mutex
		rep loadReport
		wg  sync.WaitGroup
	)
	for range reloadLoadWorkers {
		wg.Go(func() {
			for req := range queue {
				target := targets[req.i%len(targets)]
				sent := time.Now()
				err := checkPodAnswer(target.path, r.get(target.path, ""), target.want)
				done := time.Now()
				mu.Lock()
				if err != nil {
					rep.errors = append(rep.errors, loadError{at: sent.Sub(started), path: target.path, err: err})
				} else {
					rep.answered++
					rep.latency = append(rep.latency, done.Sub(req.due))
					rep.service = append(rep.service, done.Sub(sent))
				}
				mu.Unlock()
			}
		})
	}
	interval := time.Second / time.Duration(rate)
	timer := time.NewTimer(0)
	defer timer.Stop()
send:
	for i := 0; ; i++ {
		due := started.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-stop:
				break send
			case <-timer.C:
			}
		} else {
			select {
			case <-stop:
				break send
			default:
			}
		}
		queue <- request{i: i, due: due}
		rep.sent++
	}
	close(queue)
	wg.Wait()
	rep.elapsed = time.Since(started)
	return rep
}

// percentile is the q-quantile (0..1) of samples, nearest rank.
func percentile(samples []time.Duration, q float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

func (r *reloadSuite) testReloadsUnderLoad(t *testing.T) {
	// Two configs that both serve both metrics under load; they differ in rule A's rate
	// window, so every edit replaces the rule serving reloadRateMetric (and its PromQL), while
	// rule B and the default rules stay as they are. X is the config serving now.
	configX := reloadConfig(t, rateRule("2m"), memoryRule(memorySeriesQuery))
	configY := reloadConfig(t, rateRule("3m"), memoryRule(memorySeriesQuery))
	targets := []loadTarget{
		{reloadRatePath, r.rateValues()},
		{reloadMemoryPath, r.memoryValues()},
	}
	for _, target := range targets {
		if err := checkPodAnswer(target.path, r.get(target.path, ""), target.want); err != nil {
			t.Fatalf("before the load: %v", err)
		}
	}
	rate := reloadLoadRate
	if v := os.Getenv("PROMADAPTER_RELOAD_RATE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("PROMADAPTER_RELOAD_RATE=%q: want a positive number of requests per second", v)
		}
		rate = n
	}
	before := r.mustReloadState(t)

	stop := make(chan struct{})
	started := time.Now()
	var rep loadReport
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		rep = r.runLoad(started, rate, targets, stop)
	}()
	stopLoad := sync.OnceFunc(func() { close(stop); <-loadDone })
	t.Cleanup(stopLoad)

	// One second of load before the first reload and after the last.
	next := started.Add(time.Second)
	waitUntil := func(at time.Time) {
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
	}
	var (
		timeline  []string // what happened when, for the report and failures
		successes = before.successes
		reloads   int
	)
	awaitReload := func(what string, at time.Time) {
		t.Helper()
		s := r.waitReloadState(t, 10*time.Second, what+" is loaded (promadapter_config_reloads_total{result=\"success\"} counts it)",
			func(s reloadState) bool { return s.successes > successes })
		if s.successes != successes+1 || s.successful != 1 {
			t.Errorf("after %s the reload metrics are %+v; want exactly one more success (%v) and successful 1", what, s, successes+1)
		}
		successes = s.successes
		reloads++
		timeline = append(timeline, fmt.Sprintf("%6.3fs %s, loaded %v later", at.Sub(started).Seconds(), what, time.Since(at).Round(time.Millisecond)))
	}
	for edit := 1; edit <= reloadEdits; edit++ {
		waitUntil(next)
		data, name := configY, "Y (rule A over 3m)"
		if edit%2 == 0 {
			data, name = configX, "X (rule A over 2m)"
		}
		at := r.mount.write(t, data)
		next = at.Add(reloadEditEvery)
		awaitReload(fmt.Sprintf("edit %d to config %s", edit, name), at)
		if slices.Contains(reloadSIGHUPAfter, edit) {
			waitUntil(next)
			at := time.Now()
			if err := syscall.Kill(r.adapter.PID(), syscall.SIGHUP); err != nil {
				t.Fatalf("sending SIGHUP to the adapter (pid %d): %v", r.adapter.PID(), err)
			}
			next = at.Add(reloadEditEvery)
			awaitReload("SIGHUP", at)
		}
	}
	waitUntil(next.Add(time.Second - reloadEditEvery))
	stopLoad()
	r.alive(t)

	achieved := float64(rep.answered+len(rep.errors)) / rep.elapsed.Seconds()
	t.Logf("reloads under load:\n  %s", strings.Join(timeline, "\n  "))
	t.Logf("load: %d requests due at %d/s over %v (%d reloads: %d edits, %d SIGHUPs), %d answered exactly, %d errors; achieved %.0f requests/s",
		rep.sent, rate, rep.elapsed.Round(time.Millisecond), reloads, reloadEdits, len(reloadSIGHUPAfter), rep.answered, len(rep.errors), achieved)
	t.Logf("latency from due time: p50 %v, p99 %v, max %v; from sending: p50 %v, p99 %v",
		percentile(rep.latency, 0.50).Round(time.Microsecond), percentile(rep.latency, 0.99).Round(time.Microsecond),
		percentile(rep.latency, 1).Round(time.Microsecond),
		percentile(rep.service, 0.50).Round(time.Microsecond), percentile(rep.service, 0.99).Round(time.Microsecond))
	if achieved < 0.95*float64(rate) {
		// Not a failure of the adapter: on a loaded 2-core machine kube-apiserver, the adapter,
		// Prometheus and this client share the CPUs. The run then went at the highest rate the
		// machine sustained (the requests queued behind the workers), and every answer still counts.
		t.Logf("NOTE: this machine did not sustain %d requests/s through kube-apiserver; the load ran at the %.0f/s it sustained (PROMADAPTER_RELOAD_RATE sets the rate)", rate, achieved)
	}
	if len(rep.errors) > 0 {
		t.Errorf("%d of %d requests failed or answered wrong values during the reloads; want none.\n%s", len(rep.errors), rep.sent, describeLoadErrors(rep.errors))
	}
	if rep.answered+len(rep.errors) != rep.sent {
		t.Errorf("%d requests were sent but %d answered", rep.sent, rep.answered+len(rep.errors))
	}
	if s := r.mustReloadState(t); s.failures != before.failures || s.successful != 1 {
		t.Errorf("after the reloads the reload metrics are %+v (before %+v); want no failure and successful 1", s, before)
	}
	if err := r.checkServed(true)(); err != nil {
		t.Errorf("after the reloads: %v", err)
	}
}

// describeLoadErrors summarises failed requests: how many per path, then the windows of
// consecutive failures (none more than 100 ms apart) with the first failure of each, in time
// since the load started, to set beside the reload timeline.
func describeLoadErrors(errs []loadError) string {
	sort.Slice(errs, func(i, j int) bool { return errs[i].at < errs[j].at })
	perPath := map[string]int{}
	for _, e := range errs {
		perPath[e.path]++
	}
	var b strings.Builder
	for _, path := range slices.Sorted(maps.Keys(perPath)) {
		fmt.Fprintf(&b, "  %d failed: GET %s\n", perPath[path], path)
	}
	type window struct {
		from, to time.Duration
		count    int
		first    loadError
	}
	var windows []window
	for _, e := range errs {
		if n := len(windows); n > 0 && e.at-windows[n-1].to <= 100*time.Millisecond {
			windows[n-1].to = e.at
			windows[n-1].count++
			continue
		}
		windows = append(windows, window{from: e.at, to: e.at, count: 1, first: e})
	}
	fmt.Fprintf(&b, "  %d windows of failures:\n", len(windows))
	for i, w := range windows {
		if i == 25 {
			fmt.Fprintf(&b, "    ... %d more\n", len(windows)-i)
			break
		}
		fmt.Fprintf(&b, "    %6.3fs-%6.3fs: %d failed, the first: %v\n", w.from.Seconds(), w.to.Seconds(), w.count, truncateText(w.first.err.Error(), 400))
	}
	return b.String()
}
