//go:build e2e

// TestTwoReplicasBehindOneAPIService's steps that kill a replica under load.

package e2e

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/promadapter/promadapter/test/testbed"
)

// ensureReplicas starts replicas and adds them to the Service's endpoints until n are live, and
// waits until kube-apiserver sends each new one requests.
func (s *haSuite) ensureReplicas(t *testing.T, n int) {
	t.Helper()
	for len(s.replicas) < n {
		r := s.startReplica(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := s.cluster.AddAdapterReplica(ctx, r.port)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		before := s.mustServedCustom(t, r)
		s.poll(t, 30*time.Second, fmt.Sprintf("kube-apiserver sends %v requests", r), func() error {
			for range 10 {
				if err := s.checkCustom(""); err != nil {
					return err
				}
			}
			served, err := s.servedCustom(r)
			if err == nil && served == before {
				err = fmt.Errorf("%v has served no custom metric request since its EndpointSlice %s was added", r, testbed.ReplicaEndpointSliceName(r.port))
			}
			return err
		})
		t.Logf("%v replaces the dead replica behind the Service", r)
	}
}

// haResult is one request of the load.
type haResult struct {
	due, sent, done time.Time
	// answer is the answer as a person reads it ("503 dial tcp …: connection refused"); empty
	// when the request succeeded.
	answer string
	err    error // nil when kube-apiserver answered 200 with the exact values
}

// runLoad sends GET target.path through kube-apiserver at rate per second until stop is closed,
// then waits for the answers, and returns one result per request. Like reloadSuite.runLoad it is
// open-loop (request i is due at started + i/rate) with at most haLoadWorkers in flight; unlike
// it, it keeps each request's sending and answer times, which attribute a failure to the phase
// of the kill it belongs to.
func (s *haSuite) runLoad(started time.Time, rate int, target loadTarget, stop <-chan struct{}) []haResult {
	queue := make(chan time.Time, 1<<20)
	var (
		mu      sync.Mutex
		results []haResult
		wg      sync.WaitGroup
	)
	for range haLoadWorkers {
		wg.Go(func() {
			for due := range queue {
				sent := time.Now()
				a := s.get(target.path, "")
				err := checkPodAnswer(target.path, a, target.want)
				r := haResult{due: due, sent: sent, done: time.Now(), err: err}
				if err != nil {
					r.answer = a.String()
					if errors.Is(err, errWrong) {
						r.answer = err.Error()
					}
					r.answer = truncateText(haVolatile.ReplaceAllString(strings.TrimSpace(r.answer), "${1}${2}…${3}"), 300)
				}
				mu.Lock()
				results = append(results, r)
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
		queue <- due
	}
	close(queue)
	wg.Wait()
	slices.SortFunc(results, func(a, b haResult) int { return a.sent.Compare(b.sent) })
	return results
}

// haVolatile matches the parts of an error that differ between requests failing the same way
// (HTTP/2 stream ids, ephemeral client ports), so runLoad can group them.
var haVolatile = regexp.MustCompile(`(stream ID )\d+|(127\.0\.0\.1:)\d+(->)`)

// haPhase is the requests of one phase of a kill, and their failures grouped by answer.
type haPhase struct {
	name     string
	requests int
	failures map[string]int // answer -> count
}

func (p *haPhase) errors() int {
	n := 0
	for _, c := range p.failures {
		n += c
	}
	return n
}

func (p *haPhase) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-58s %5d requests, %4d failed", p.name+":", p.requests, p.errors())
	if p.requests > 0 && p.errors() > 0 {
		fmt.Fprintf(&b, " (%.1f%%)", 100*float64(p.errors())/float64(p.requests))
	}
	for _, answer := range slices.Sorted(maps.Keys(p.failures)) {
		fmt.Fprintf(&b, "\n      %5d× %s", p.failures[answer], answer)
	}
	return b.String()
}

func (s *haSuite) testKillUnderLoad(removalDelay time.Duration) func(*testing.T) {
	return func(t *testing.T) {
		s.ensureReplicas(t, 2)
		victim, survivor := s.replicas[0], s.replicas[1]
		target := loadTarget{customPath, s.customWant()}
		if err := checkPodAnswer(target.path, s.get(target.path, ""), target.want); err != nil {
			t.Fatalf("before the load: %v", err)
		}
		survivorBefore := s.mustServedCustom(t, survivor)

		stop := make(chan struct{})
		started := time.Now()
		var results []haResult
		loadDone := make(chan struct{})
		go func() {
			defer close(loadDone)
			results = s.runLoad(started, haLoadRate, target, stop)
		}()
		stopLoad := sync.OnceFunc(func() { close(stop); <-loadDone })
		t.Cleanup(stopLoad)
		waitUntil := func(at time.Time) {
			if d := time.Until(at); d > 0 {
				time.Sleep(d)
			}
		}

		waitUntil(started.Add(haLoadBefore))
		killed := time.Now()
		if err := syscall.Kill(victim.process.PID(), syscall.SIGKILL); err != nil {
			t.Fatalf("SIGKILL to %v: %v", victim, err)
		}
		// The endpoint controller's delay: time passing, not a condition to poll for.
		waitUntil(killed.Add(removalDelay))
		removing := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := s.cluster.RemoveAdapterReplica(ctx, victim.port)
		cancel()
		removed := time.Now()
		if err != nil {
			t.Fatalf("removing the endpoint of %v: %v", victim, err)
		}
		s.replicas = slices.DeleteFunc(s.replicas, func(r *haReplica) bool { return r == victim })
		waitUntil(removed.Add(haLoadAfter))
		stopLoad()
		select {
		case <-victim.process.Done():
		case <-time.After(10 * time.Second):
			t.Errorf("%v still runs 10 s after SIGKILL", victim)
		}

		// Each request in exactly one phase, by when it was sent and answered.
		phases := []*haPhase{
			{name: "answered before the kill"},
			{name: "in flight at the kill"},
			{name: "sent between the kill and the endpoint's removal"},
			{name: fmt.Sprintf("sent within %v after the removal (propagation)", haPropagation)},
			{name: fmt.Sprintf("sent later than %v after the removal", haPropagation)},
		}
		var (
			wrong   []string
			latency []time.Duration // due time to checked answer, of the successes
			service []time.Duration // sending to checked answer, of the successes
			failed  []loadError
		)
		for _, r := range results {
			var p *haPhase
			switch {
			case r.done.Before(killed):
				p = phases[0]
			case r.sent.Before(killed):
				p = phases[1]
			case r.sent.Before(removed):
				p = phases[2]
			case r.sent.Before(removed.Add(haPropagation)):
				p = phases[3]
			default:
				p = phases[4]
			}
			p.requests++
			if r.err == nil {
				latency = append(latency, r.done.Sub(r.due))
				service = append(service, r.done.Sub(r.sent))
				continue
			}
			if p.failures == nil {
				p.failures = map[string]int{}
			}
			p.failures[r.answer]++
			failed = append(failed, loadError{at: r.sent.Sub(started), path: target.path, err: r.err})
			if errors.Is(r.err, errWrong) {
				wrong = append(wrong, r.answer)
			}
		}
		if len(results) == 0 {
			t.Fatal("the load sent no request")
		}
		var lastDone time.Time
		for _, r := range results {
			if r.done.After(lastDone) {
				lastDone = r.done
			}
		}
		elapsed := lastDone.Sub(started)
		achieved := float64(len(results)) / elapsed.Seconds()
		survivorServed := s.mustServedCustom(t, survivor) - survivorBefore

		var report strings.Builder
		fmt.Fprintf(&report, "SIGKILL of %v at %.3fs; its EndpointSlice deleted from %.3fs to %.3fs (%v after the kill, the API call took %v); %v survives\n",
			victim, killed.Sub(started).Seconds(), removing.Sub(started).Seconds(), removed.Sub(started).Seconds(),
			removing.Sub(killed).Round(time.Millisecond), removed.Sub(removing).Round(time.Millisecond), survivor)
		fmt.Fprintf(&report, "load: %d requests due at %d/s over %v, achieved %.0f/s; %d answered exactly, %d failed; the survivor served %v of them\n",
			len(results), haLoadRate, elapsed.Round(time.Millisecond), achieved, len(results)-len(failed), len(failed), survivorServed)
		fmt.Fprintf(&report, "latency of the successes from due time: p50 %v, p99 %v, max %v; from sending: p50 %v, p99 %v\n",
			percentile(latency, 0.50).Round(time.Microsecond), percentile(latency, 0.99).Round(time.Microsecond), percentile(latency, 1).Round(time.Microsecond),
			percentile(service, 0.50).Round(time.Microsecond), percentile(service, 0.99).Round(time.Microsecond))
		for _, p := range phases {
			fmt.Fprintf(&report, "  %v\n", p)
		}
		if len(failed) > 0 {
			last := started.Add(failed[len(failed)-1].at)
			fmt.Fprintf(&report, "the last failed request was sent %s the kill, %s the removal returned\n",
				beforeOrAfter(last.Sub(killed)), beforeOrAfter(last.Sub(removed)))
		}
		lost := phases[1].errors() + phases[2].errors() + phases[3].errors()
		exposed := phases[1].requests + phases[2].requests + phases[3].requests
		fmt.Fprintf(&report, "%d of the %d requests in flight at the kill or sent while the dead replica could still be picked failed: kube-apiserver answered them without trying the survivor", lost, exposed)
		t.Log(report.String())
		if len(failed) > 0 {
			t.Logf("the failures over time (since the load started):\n%s", describeLoadErrors(failed))
		}
		if achieved < 0.95*haLoadRate {
			t.Logf("NOTE: this machine did not sustain %d requests/s through kube-apiserver; the load ran at the %.0f/s it sustained", haLoadRate, achieved)
		}

		if len(wrong) > 0 {
			t.Errorf("%d answers were 200 with wrong values; want an error or the exact values, never a wrong value. The first: %s", len(wrong), wrong[0])
		}
		if n := phases[0].errors(); n > 0 {
			t.Errorf("%d requests failed before the kill; want none", n)
		}
		if n := phases[4].errors(); n > 0 {
			t.Errorf("%d requests sent more than %v after the dead replica's endpoint was removed failed; want none (the survivor serves them all)", n, haPropagation)
		}
		if phases[4].requests == 0 {
			t.Errorf("no request was sent more than %v after the removal; the load stopped too early to check the survivor alone", haPropagation)
		}
		if survivorServed == 0 {
			t.Errorf("%v served no request of the load", survivor)
		}
		if err := s.checkAll(); err != nil {
			t.Errorf("after the kill, through kube-apiserver: %v", err)
		}
		names := make([]string, len(testbed.AllAdapterGroups))
		for i, g := range testbed.AllAdapterGroups {
			names[i] = g.Name()
		}
		ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.cluster.WaitAPIServicesAvailable(ctx, names...); err != nil {
			t.Errorf("after the kill: %v", err)
		}
	}
}

// beforeOrAfter says "5ms before" for -5ms and "5ms after" for 5ms.
func beforeOrAfter(d time.Duration) string {
	if d < 0 {
		return (-d).Round(time.Millisecond).String() + " before"
	}
	return d.Round(time.Millisecond).String() + " after"
}
