//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promadapter/promadapter/test/testbed"
)

// faultRSSLimit bounds the adapter's resident memory while Prometheus misbehaves, including
// while it sends a 200 MiB answer: the adapter reads at most --prometheus-max-answer-bytes
// (64 MiB by default) of it, and must neither hold the rest nor keep what it read.
const faultRSSLimit = 300 << 20

// errorFault is a fault every query fails under: each API must answer an error, never a 200.
type errorFault struct {
	name  string
	fault testbed.Fault
	// status are the acceptable statuses.
	status oneOf
	// want are substrings every message must hold (compared in lower case); "$backend" stands
	// for the proxy's host:port, the Prometheus URL the adapter was given.
	want []string
	// wantAny, when set, are substrings of which the message must hold at least one.
	wantAny []string
}

// TestFault points the adapter at a testbed.FaultProxy in front of a real Prometheus (2.x and
// 3.x) and, for each way a backend fails, checks through kube-apiserver that custom, external
// and resource metrics answer an error that says what is wrong (never a 200 with a made-up
// value), that the adapter stays alive with its memory bounded, and that it recovers by itself
// once the backend is healthy again. Last, kube-apiserver restarts under the adapter.
//
// Reproduce: go build -o /tmp/promadapter ./cmd/promadapter &&
// PROMADAPTER_BIN=/tmp/promadapter go test -tags e2e -count=1 ./test/e2e -run 'TestFault' -v
func TestFault(t *testing.T) {
	for _, major := range []string{"2", "3"} {
		t.Run("prometheus-"+major, func(t *testing.T) {
			e := startFaultEnv(t, major, faultAdapterArgs...)
			// The aggregator may answer 404 for a moment after the APIServices turn Available.
			e.poll(t, time.Minute, "every API serves its known values", e.checkAll)
			for _, f := range []errorFault{
				{name: "down (connection refused)", fault: testbed.Fault{Kind: testbed.Down},
					status: oneOf{http.StatusServiceUnavailable}, want: []string{"$backend", "connection refused"}},
				{name: "killed mid-answer", fault: testbed.Fault{Kind: testbed.KillMidAnswer},
					status: oneOf{http.StatusServiceUnavailable}, want: []string{"$backend"}, wantAny: []string{"eof", "closed", "reset"}},
				{name: "slower than --prometheus-timeout", fault: testbed.Fault{Kind: testbed.Delay, Delay: 15 * time.Second},
					status: oneOf{http.StatusServiceUnavailable}, want: []string{"$backend"}, wantAny: []string{"timed out", "timeout", "deadline"}},
				{name: "invalid JSON", fault: testbed.Fault{Kind: testbed.InvalidJSON},
					status: oneOf{http.StatusInternalServerError, http.StatusServiceUnavailable}, want: []string{"$backend"}, wantAny: []string{"json", "decod", "invalid", "unexpected", "not a prometheus"}},
				{name: "an HTML 502 page", fault: testbed.Fault{Kind: testbed.HTML502},
					status: oneOf{http.StatusServiceUnavailable}, want: []string{"$backend", "502"}},
				{name: "truncated body", fault: testbed.Fault{Kind: testbed.TruncatedBody},
					status: oneOf{http.StatusInternalServerError, http.StatusServiceUnavailable}, want: []string{"$backend"}, wantAny: []string{"eof", "truncated", "unexpected end", "incomplete", "end of the answer", "not a prometheus"}},
				{name: "a matrix instead of a vector", fault: testbed.Fault{Kind: testbed.MatrixResult},
					status: oneOf{http.StatusInternalServerError}, want: []string{"matrix"}},
				{name: "native histograms instead of values", fault: testbed.Fault{Kind: testbed.NativeHistogram},
					status: oneOf{http.StatusInternalServerError}, want: []string{"histogram"}},
				{name: "a partial answer with warnings", fault: testbed.Fault{Kind: testbed.PartialWarning},
					status: oneOf{http.StatusServiceUnavailable}, want: []string{"$backend", "partial response"}},
				// Last: the Go runtime keeps what it grew to for a while, and the faults after it would
				// inherit that RSS.
				{name: "a 200 MiB answer", fault: testbed.Fault{Kind: testbed.HugeAnswer},
					status: oneOf{http.StatusInternalServerError, http.StatusServiceUnavailable}, want: []string{"$backend", "--prometheus-max-answer-bytes"}},
			} {
				t.Run(f.name, func(t *testing.T) { e.testErrorFault(t, f) })
			}
			t.Run("NaN values: those objects are left out, the others kept", func(t *testing.T) { e.testSpecialValue(t, "NaN") })
			t.Run("+Inf values: those objects are left out, the others kept", func(t *testing.T) { e.testSpecialValue(t, "+Inf") })
			t.Run("duplicate series for one pod: an error naming it", e.testDuplicateSeries)
			t.Run("kube-apiserver restarts on the same port and data", e.testAPIServerRestart)
		})
	}
}

// setFault switches the proxy and, for the test's end, back to pass-through.
func (e *faultEnv) setFault(t *testing.T, f testbed.Fault) {
	t.Helper()
	if err := e.proxy.SetFault(f); err != nil {
		t.Fatal(err)
	}
	t.Logf("the proxy in front of %s now injects: %v", e.prom.URL, f)
	t.Cleanup(func() { _ = e.proxy.SetFault(testbed.Fault{Kind: testbed.PassThrough}) })
}

// heal switches the proxy back to pass-through and waits until every API answers exactly again.
func (e *faultEnv) heal(t *testing.T, f testbed.Fault) {
	t.Helper()
	if err := e.proxy.SetFault(testbed.Fault{Kind: testbed.PassThrough}); err != nil {
		t.Fatal(err)
	}
	e.waitRecovered(t, "the fault ("+f.String()+") ended")
}

// rssSampler records the adapter's largest VmRSS, sampled every 20 ms until stop.
type rssSampler struct {
	max  int64
	stop func() int64
}

func (e *faultEnv) sampleRSS(t *testing.T) *rssSampler {
	s := &rssSampler{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ticker := time.NewTicker(20 * time.Millisecond)
		defer ticker.Stop()
		for {
			if rss, err := readVmRSS(e.adapter.PID()); err == nil && rss > s.max {
				s.max = rss
			}
			select {
			case <-done:
				return
			case <-ticker.C:
			}
		}
	}()
	s.stop = func() int64 {
		close(done)
		wg.Wait()
		return s.max
	}
	return s
}

func (e *faultEnv) testErrorFault(t *testing.T, f errorFault) {
	e.resetPeakRSS(t)
	sampler := e.sampleRSS(t)
	e.setFault(t, f.fault)
	backend := strings.TrimPrefix(e.proxy.URL, "http://")
	for _, path := range []string{customPath, externalPath, resourcePath} {
		start := time.Now()
		a := e.get(path, "")
		took := time.Since(start).Round(time.Millisecond)
		if a.Status == http.StatusOK {
			t.Errorf("kubectl get --raw '%s' under %q answered 200 after %v (a value the backend never gave): %s", path, f.name, took, truncateText(a.Body, 600))
			continue
		}
		problems := []string{}
		if !f.status.has(a.Status) {
			problems = append(problems, fmt.Sprintf("status %d, want one of %v", a.Status, f.status))
		}
		message := strings.ToLower(a.Message)
		if a.Message == "" {
			problems = append(problems, "no Status message")
		}
		var want []string
		for _, w := range f.want {
			want = append(want, strings.ReplaceAll(strings.ToLower(w), "$backend", backend))
		}
		if missing := missingFrom(message, want...); len(missing) > 0 {
			problems = append(problems, fmt.Sprintf("the message lacks %q", missing))
		}
		if len(f.wantAny) > 0 && len(missingFrom(message, f.wantAny...)) == len(f.wantAny) {
			problems = append(problems, fmt.Sprintf("the message names none of %q", f.wantAny))
		}
		if len(problems) > 0 {
			t.Errorf("kubectl get --raw '%s' under %q: %s; got %v after %v", path, f.name, strings.Join(problems, "; "), a, took)
		} else {
			t.Logf("%s: %v after %v", path, a, took)
		}
	}
	if f.fault.Kind == testbed.Down {
		out, err := e.kubectl("top", "pods", "-n", faultNamespace)
		if err == nil {
			t.Errorf("kubectl top pods -n %s succeeded with Prometheus down:\n%s", faultNamespace, out)
		} else if !strings.Contains(err.Error(), backend) {
			t.Errorf("kubectl top pods -n %s with Prometheus down: the error does not name the backend %s: %v", faultNamespace, backend, err)
		}
	} else if e.proxy.Faulted() == 0 {
		t.Errorf("no query met the fault (the proxy saw %d queries): the answers above prove nothing", e.proxy.Queries())
	}
	e.alive(t)
	maxRSS := sampler.stop()
	rss, peak := e.rss(t)
	t.Logf("adapter RSS under %q: now %.1f MiB, sampled max %.1f MiB, peak (VmHWM) %.1f MiB", f.name, mib(rss), mib(maxRSS), mib(peak))
	if peak > faultRSSLimit {
		t.Errorf("the adapter's peak RSS under %q was %.1f MiB, over the %d MiB limit", f.name, mib(peak), faultRSSLimit>>20)
	}
	e.heal(t, f.fault)
	e.alive(t)
}

func readVmRSS(pid int) (int64, error) {
	var rss int64
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			_, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &rss)
			return rss << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// testSpecialValue makes one pod's, then one Deployment's, value special (NaN or +Inf): lists
// leave that object out and keep the others with their exact values; asking for that pod by
// name is an error naming the value.
func (e *faultEnv) testSpecialValue(t *testing.T, special string) {
	// By pod alone: the custom rule's answer is grouped by pod and has no namespace label (the
	// fixture's pod names are unique across namespaces).
	pod := e.appPods()[0].Name
	f := testbed.Fault{Kind: testbed.SpecialValue, Value: special, Select: map[string]string{"pod": pod}}
	e.setFault(t, f)
	if err := e.checkCustom(pod); err != nil {
		t.Errorf("custom metrics with %s for pod %s: %v", special, pod, err)
	}
	if err := e.checkResource(pod); err != nil {
		t.Errorf("metrics.k8s.io with %s for pod %s: %v", special, pod, err)
	}
	byName := "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + faultNamespace + "/pods/" + pod + "/http_requests_per_second"
	if a := e.get(byName, ""); a.Status == http.StatusOK || a.Status < 400 || !strings.Contains(a.Message, strings.TrimPrefix(special, "+")) {
		t.Errorf("kubectl get --raw '%s' with %s for that pod: got %v, want an error naming %s", byName, special, a, special)
	} else {
		t.Logf("%s: %v", byName, a)
	}
	if e.proxy.Faulted() == 0 {
		t.Fatalf("no query answer held pod %s: the checks above prove nothing", pod)
	}

	deployment := e.spec.Deployments()[0]
	for _, d := range e.spec.Deployments() {
		if d.Namespace == faultNamespace {
			deployment = d
			break
		}
	}
	f = testbed.Fault{Kind: testbed.SpecialValue, Value: special, Select: map[string]string{"namespace": deployment.Namespace, "deployment": deployment.Name}}
	e.setFault(t, f)
	if err := e.checkExternal(deployment.Namespace + "/" + deployment.Name); err != nil {
		t.Errorf("external metrics with %s for Deployment %s/%s: %v", special, deployment.Namespace, deployment.Name, err)
	}
	if e.proxy.Faulted() == 0 {
		t.Fatalf("no query answer held Deployment %s/%s: the check above proves nothing", deployment.Namespace, deployment.Name)
	}
	e.alive(t)
	e.heal(t, f)
}

// testDuplicateSeries gives one pod a second series (one more label, same value). The
// adapter cannot tell which is the pod's value: custom metrics must answer an error naming
// the pod, and metrics.k8s.io must not report a doubled (or otherwise made-up) usage. External
// metrics are not asked: there a series with one more label is a distinct series, listed with
// its labels.
func (e *faultEnv) testDuplicateSeries(t *testing.T) {
	pod := e.appPods()[0].Name
	f := testbed.Fault{Kind: testbed.DuplicateSeries, Select: map[string]string{"pod": pod}}
	e.setFault(t, f)
	a := e.get(customPath, "")
	switch {
	case a.Status == http.StatusOK:
		t.Errorf("kubectl get --raw '%s' with two series for pod %s answered 200: %s", customPath, pod, truncateText(a.Body, 600))
	case a.Status < 400 || !strings.Contains(a.Message, pod):
		t.Errorf("kubectl get --raw '%s' with two series for pod %s: got %v, want an error naming the pod and its duplicated labels", customPath, pod, a)
	default:
		t.Logf("%s: %v (names %s: %v)", customPath, a, testbed.DuplicateLabel, strings.Contains(a.Message, testbed.DuplicateLabel))
	}
	// metrics.k8s.io: an error naming the pod, or the pod left out, or its exact usage; never a sum.
	r := e.get(resourcePath, "")
	if r.Status == http.StatusOK {
		if errAll, errLeftOut := e.checkResource(""), e.checkResource(pod); errAll != nil && errLeftOut != nil {
			t.Errorf("metrics.k8s.io with two series for pod %s: neither exact nor left out: %v", pod, errAll)
		}
	} else if !strings.Contains(r.Message, pod) {
		t.Errorf("kubectl get --raw '%s' with two series for pod %s: got %v, want the pod named", resourcePath, pod, r)
	}
	if e.proxy.Faulted() == 0 {
		t.Fatalf("no query answer held pod %s: the checks above prove nothing", pod)
	}
	e.alive(t)
	e.heal(t, f)
}

// testAPIServerRestart stops kube-apiserver and starts it again with the same command line (same
// port, same etcd): the adapter must stay up and, once the aggregator is back, serve exact values
// again without being restarted.
func (e *faultEnv) testAPIServerRestart(t *testing.T) {
	var apiserver *testbed.Process
	for _, p := range e.cluster.Processes() {
		if p.Name == "kube-apiserver" {
			apiserver = p
		}
	}
	if apiserver == nil {
		t.Fatal("the cluster has no kube-apiserver process")
	}
	apiserver.Stop()
	e.api.CloseIdleConnections()
	if a, err := e.api.Get(e.cluster.URL + "/readyz"); err == nil {
		a.Body.Close()
		t.Fatalf("kube-apiserver still answers after Stop: %s", a.Status)
	}
	e.alive(t)
	restarted, err := testbed.StartProcess(context.Background(), "kube-apiserver", apiserver.LogPath, apiserver.Args[0], apiserver.Args[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	// The rest of the test (and the cluster's etcd) needs it: stop it with the whole test.
	e.t.Cleanup(restarted.Stop)
	t.Logf("restarted kube-apiserver (pid %d)", restarted.PID())
	e.poll(t, 90*time.Second, "the restarted kube-apiserver answers /readyz with ok", func() error {
		if exited, exitErr := restarted.Exited(); exited {
			t.Fatalf("the restarted kube-apiserver exited (%v):\n%s", exitErr, restarted.LogTail(30))
		}
		resp, err := e.api.Get(e.cluster.URL + "/readyz")
		if err != nil {
			return err
		}
		a, err := readAnswer(resp)
		if err == nil && (a.Status != http.StatusOK || a.Body != "ok") {
			err = fmt.Errorf("%d %q", a.Status, a.Body)
		}
		return err
	})
	e.waitRecovered(t, "kube-apiserver restarted")
	e.alive(t)
}
