//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

// faultEnv is a cluster, a Prometheus with the fixture, a testbed.FaultProxy in front of it and
// an adapter pointed at the proxy. The adapter is started here rather than by
// testbed.StartAdapter so the tests know its process (for its RSS and whether it is alive).
type faultEnv struct {
	t       *testing.T
	cluster *testbed.Cluster
	prom    *testbed.Prometheus
	proxy   *testbed.FaultProxy
	adapter *testbed.Process
	port    int // the adapter's secure port
	spec    fixture.Spec

	api    *http.Client // to kube-apiserver as admin (impersonation by header)
	direct *http.Client // to the adapter's port, as the aggregator: front-proxy client certificate
	anon   *http.Client // to the adapter's port without a certificate: anonymous (health checks)
}

// faultAdapterArgs are the flags the fault tests add: no query cache, so every request reaches
// the proxy, and a short backend timeout for the Delay fault.
var faultAdapterArgs = []string{"--query-cache-period=0", "--prometheus-timeout=4s", "--metrics-max-age=10m"}

// startFaultEnv starts everything for Prometheus major version major with the fixture backfilled
// and the adapter on the embedded default configuration plus adapterArgs.
func startFaultEnv(t *testing.T, major string, adapterArgs ...string) *faultEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bins, adapterBin := testBinaries(t)
	var err error
	dir := t.TempDir()
	e := &faultEnv{t: t}
	e.cluster, err = testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: bins, Dir: filepath.Join(dir, "cluster")})
	if err != nil {
		t.Fatal(err)
	}
	e.cluster.Cleanup(t)
	if err := e.spec.ApplyObjects(ctx, e.cluster.Client); err != nil {
		t.Fatal(err)
	}
	if n := len(e.appPods()); n < 2 {
		t.Fatalf("the fixture has %d pods of %s in %s; the tests need 2", n, faultApp, faultNamespace)
	}
	var om bytes.Buffer
	now := time.Now()
	if err := e.spec.WriteOpenMetrics(&om, now.Add(-30*time.Minute), now.Add(3*time.Hour), 15*time.Second); err != nil {
		t.Fatal(err)
	}
	e.prom, err = testbed.StartPrometheus(ctx, testbed.PrometheusOptions{Bins: bins, Major: major, Dir: filepath.Join(dir, "prometheus"), OpenMetrics: om.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	e.prom.Cleanup(t)
	e.proxy, err = testbed.StartFaultProxy(e.prom.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.proxy.Close)

	if e.api, err = rest.HTTPClientFor(e.cluster.RESTConfig); err != nil {
		t.Fatal(err)
	}
	e.api.Timeout = time.Minute
	frontProxy, err := tls.LoadX509KeyPair(e.cluster.Certs.FrontProxyClientCert, e.cluster.Certs.FrontProxyClientKey)
	if err != nil {
		t.Fatal(err)
	}
	e.direct = &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{frontProxy}},
		MaxIdleConnsPerHost: 64,
	}}
	// A front-proxy certificate without X-Remote-User is refused (401), not anonymous.
	e.anon = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

	if e.port, err = testbed.FreePort(); err != nil {
		t.Fatal(err)
	}
	adapterDir := filepath.Join(dir, "promadapter")
	args := append([]string{
		"--prometheus-url=" + e.proxy.URL,
		"--secure-port=" + strconv.Itoa(e.port), "--bind-address=127.0.0.1", "--cert-dir=" + adapterDir,
		"--lister-kubeconfig=" + e.cluster.Kubeconfig,
		"--authentication-kubeconfig=" + e.cluster.Kubeconfig, "--authorization-kubeconfig=" + e.cluster.Kubeconfig,
		"--metrics-relist-interval=5s", "--v=2",
	}, adapterArgs...)
	e.adapter, err = testbed.StartProcess(context.WithoutCancel(ctx), "promadapter", filepath.Join(adapterDir, "promadapter.log"), adapterBin, args...)
	if err != nil {
		t.Fatal(err)
	}
	e.adapter.Cleanup(t)
	t.Logf("adapter (pid %d): %s", e.adapter.PID(), e.adapter.CommandLine())
	e.poll(t, time.Minute, "the adapter's /readyz answers 200", func() error {
		if exited, exitErr := e.adapter.Exited(); exited {
			t.Fatalf("the adapter exited during start-up (%v); log %s:\n%s", exitErr, e.adapter.LogPath, e.adapter.LogTail(30))
		}
		status, body, err := e.directGet("/readyz", "")
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("%d %s", status, body)
		}
		return err
	})
	if err := e.cluster.RegisterAdapter(ctx, e.port, testbed.AllAdapterGroups); err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(testbed.AllAdapterGroups))
	for i, g := range testbed.AllAdapterGroups {
		names[i] = g.Name()
	}
	if err := e.cluster.WaitAPIServicesAvailable(ctx, names...); err != nil {
		t.Fatal(err)
	}
	return e
}

// poll calls check until it returns nil, failing the test with check's last error after timeout.
func (e *faultEnv) poll(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, still not true that %s: %v", timeout, what, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// answer is one HTTP answer: its status, body and, for errors, the metav1.Status message.
type answer struct {
	Status  int
	Body    string
	Message string
}

func (a answer) String() string {
	if a.Message != "" {
		return fmt.Sprintf("%d %q", a.Status, a.Message)
	}
	return fmt.Sprintf("%d %s", a.Status, truncateText(a.Body, 600))
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func readAnswer(resp *http.Response) (answer, error) {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return answer{}, err
	}
	a := answer{Status: resp.StatusCode, Body: string(body)}
	var status struct {
		Kind    string `json:"kind"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &status) == nil && status.Kind == "Status" {
		a.Message = status.Message
	}
	return a, nil
}

// get GETs path (already escaped) through kube-apiserver as admin, or impersonating user when
// given. The printed reproduction is `kubectl get --raw PATH [--as=USER]`.
func (e *faultEnv) get(path, user string) answer {
	req, err := http.NewRequest(http.MethodGet, e.cluster.URL+path, nil)
	if err != nil {
		return answer{Message: "building the request: " + err.Error()}
	}
	if user != "" {
		req.Header.Set("Impersonate-User", user)
	}
	resp, err := e.api.Do(req)
	if err != nil {
		return answer{Message: "no answer from kube-apiserver: " + err.Error()}
	}
	a, err := readAnswer(resp)
	if err != nil {
		return answer{Status: a.Status, Message: "reading the answer: " + err.Error()}
	}
	return a
}

// directGet GETs path (already escaped) from the adapter's port as the aggregator would send it
// for user (in the system:masters group when user is "admin"); no user: anonymously, without
// a client certificate.
func (e *faultEnv) directGet(path, user string) (int, string, error) {
	a, err := e.directAnswer(path, user)
	return a.Status, a.Body, err
}

func (e *faultEnv) directAnswer(path, user string) (answer, error) {
	req, err := http.NewRequest(http.MethodGet, "https://127.0.0.1:"+strconv.Itoa(e.port)+path, nil)
	if err != nil {
		return answer{}, err
	}
	if user != "" {
		req.Header.Set("X-Remote-User", user)
		if user == "admin" {
			req.Header.Set("X-Remote-Group", "system:masters")
		}
	}
	client := e.direct
	if user == "" {
		client = e.anon
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, err
	}
	return readAnswer(resp)
}

// kubectl runs kubectl as admin and returns its output and error.
func (e *faultEnv) kubectl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return e.cluster.Kubectl(ctx, args...)
}

// alive checks the adapter process still runs and answers /livez with 200.
func (e *faultEnv) alive(t *testing.T) {
	t.Helper()
	if exited, exitErr := e.adapter.Exited(); exited {
		t.Fatalf("the adapter exited (%v); log %s:\n%s", exitErr, e.adapter.LogPath, e.adapter.LogTail(40))
	}
	status, body, err := e.directGet("/livez", "")
	if err != nil || status != http.StatusOK {
		t.Fatalf("the adapter's /livez: %d %q %v, want 200", status, body, err)
	}
}

// rss reads the adapter's resident set size and its peak since the last resetPeakRSS, in bytes,
// from /proc/<pid>/status (VmRSS, VmHWM).
func (e *faultEnv) rss(t *testing.T) (current, peak int64) {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", e.adapter.PID()))
	if err != nil {
		t.Fatalf("reading the adapter's memory: %v", err)
	}
	field := func(name string) int64 {
		for _, line := range strings.Split(string(status), "\n") {
			if rest, ok := strings.CutPrefix(line, name+":"); ok {
				kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				if err != nil {
					t.Fatalf("/proc/%d/status: %q: %v", e.adapter.PID(), line, err)
				}
				return kib << 10
			}
		}
		t.Fatalf("/proc/%d/status has no %s", e.adapter.PID(), name)
		return 0
	}
	return field("VmRSS"), field("VmHWM")
}

// resetPeakRSS sets the adapter's VmHWM to its current RSS (clear_refs value 5).
func (e *faultEnv) resetPeakRSS(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", e.adapter.PID()), []byte("5"), 0); err != nil {
		t.Fatalf("resetting the adapter's peak RSS: %v", err)
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
