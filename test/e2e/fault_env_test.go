//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
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

// The known-value requests the fault tests make, all in namespace ns-0.
const (
	faultNamespace = "ns-0"
	faultApp       = "app-0"
)

var (
	customPath   = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + faultNamespace + "/pods/*/http_requests_per_second?labelSelector=" + url.QueryEscape("app="+faultApp)
	externalPath = "/apis/external.metrics.k8s.io/v1beta1/namespaces/" + faultNamespace + "/kube_deployment_spec_replicas"
	resourcePath = "/apis/metrics.k8s.io/v1beta1/namespaces/" + faultNamespace + "/pods"
)

// appPods are the pods of faultApp in faultNamespace, sorted by name (startFaultEnv checks
// there are at least two).
func (e *faultEnv) appPods() []fixture.Pod {
	var pods []fixture.Pod
	for _, p := range e.spec.PodList() {
		if p.Namespace == faultNamespace && p.App == faultApp {
			pods = append(pods, p)
		}
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	return pods
}

// errWrong is the error of a check that got a 200 with wrong values, as opposed to an error
// answer: the former is never acceptable while a fault is on.
var errWrong = errors.New("wrong values")

// checkCustom asks for the per-pod request rate of faultApp's pods and checks every pod but
// leftOut has exactly its fixture value and leftOut is absent.
func (e *faultEnv) checkCustom(leftOut string) error {
	a := e.get(customPath, "")
	if a.Status != http.StatusOK {
		return fmt.Errorf("GET %s: %v", customPath, a)
	}
	var list metricValueList
	if err := json.Unmarshal([]byte(a.Body), &list); err != nil {
		return fmt.Errorf("%w: GET %s: decoding %q: %v", errWrong, customPath, a.Body, err)
	}
	got := map[string]string{}
	for _, it := range list.Items {
		got[it.DescribedObject.Name] = it.Value.String()
		if it.DescribedObject.Namespace != faultNamespace {
			return fmt.Errorf("%w: GET %s: an item of namespace %q", errWrong, customPath, it.DescribedObject.Namespace)
		}
	}
	var problems []string
	for _, p := range e.appPods() {
		want, _ := e.spec.PodRequestRate(faultNamespace, p.Name)
		value, listed := got[p.Name]
		delete(got, p.Name)
		switch {
		case p.Name == leftOut && listed:
			problems = append(problems, fmt.Sprintf("%s is listed with %s but should be left out", p.Name, value))
		case p.Name != leftOut && !listed:
			problems = append(problems, fmt.Sprintf("%s is missing (want %v)", p.Name, want))
		case p.Name != leftOut && !near(resource.MustParse(value), want):
			problems = append(problems, fmt.Sprintf("%s is %s, want %v", p.Name, value, want))
		}
	}
	for name, value := range got {
		problems = append(problems, fmt.Sprintf("unexpected item %s=%s", name, value))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: GET %s: %s", errWrong, customPath, strings.Join(problems, "; "))
	}
	return nil
}

// checkExternal asks for kube_deployment_spec_replicas (the embedded default's external rule,
// namespaced) in faultNamespace and checks every Deployment of that namespace but leftOut
// ("namespace/name") has its replicas, and no other namespace's is listed.
func (e *faultEnv) checkExternal(leftOut string) error {
	a := e.get(externalPath, "")
	if a.Status != http.StatusOK {
		return fmt.Errorf("GET %s: %v", externalPath, a)
	}
	var list metricValueList
	if err := json.Unmarshal([]byte(a.Body), &list); err != nil {
		return fmt.Errorf("%w: GET %s: decoding %q: %v", errWrong, externalPath, a.Body, err)
	}
	got := map[string]string{}
	for _, it := range list.Items {
		got[it.MetricLabels["namespace"]+"/"+it.MetricLabels["deployment"]] = it.Value.String()
	}
	var problems []string
	for _, d := range e.spec.Deployments() {
		if d.Namespace != faultNamespace {
			continue
		}
		key := d.Namespace + "/" + d.Name
		value, listed := got[key]
		delete(got, key)
		switch {
		case key == leftOut && listed:
			problems = append(problems, fmt.Sprintf("%s is listed with %s but should be left out", key, value))
		case key != leftOut && !listed:
			problems = append(problems, fmt.Sprintf("%s is missing (want %d)", key, d.Replicas))
		case key != leftOut && value != strconv.Itoa(int(d.Replicas)):
			problems = append(problems, fmt.Sprintf("%s is %s, want %d", key, value, d.Replicas))
		}
	}
	for key, value := range got {
		problems = append(problems, fmt.Sprintf("unexpected series %s=%s", key, value))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: GET %s: %s", errWrong, externalPath, strings.Join(problems, "; "))
	}
	return nil
}

// podMetricsList is the part of a metrics.k8s.io PodMetricsList the tests read.
type podMetricsList struct {
	Items []struct {
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		Containers []struct {
			Name  string `json:"name"`
			Usage struct {
				CPU    resource.Quantity `json:"cpu"`
				Memory resource.Quantity `json:"memory"`
			} `json:"usage"`
		} `json:"containers"`
	} `json:"items"`
}

// checkResource asks metrics.k8s.io for the pods of faultNamespace and checks every complete pod
// but leftOut has its containers' exact usage and leftOut is absent.
func (e *faultEnv) checkResource(leftOut string) error {
	a := e.get(resourcePath, "")
	if a.Status != http.StatusOK {
		return fmt.Errorf("GET %s: %v", resourcePath, a)
	}
	var list podMetricsList
	if err := json.Unmarshal([]byte(a.Body), &list); err != nil {
		return fmt.Errorf("%w: GET %s: decoding %q: %v", errWrong, resourcePath, a.Body, err)
	}
	got := map[string]string{}
	for _, it := range list.Items {
		for _, c := range it.Containers {
			got[it.Metadata.Namespace+"/"+it.Metadata.Name+"/"+c.Name] = fmt.Sprintf("%v %v", c.Usage.CPU.AsApproximateFloat64(), c.Usage.Memory.AsApproximateFloat64())
		}
	}
	var problems []string
	for _, p := range e.spec.PodList() {
		if p.Namespace != faultNamespace || !p.Complete() {
			continue
		}
		for _, c := range p.Containers {
			key := p.Namespace + "/" + p.Name + "/" + c.Name
			want := fmt.Sprintf("%v %v", c.CPUCores, c.MemoryBytes)
			value, listed := got[key]
			delete(got, key)
			switch {
			case p.Name == leftOut && listed:
				problems = append(problems, fmt.Sprintf("%s is listed with %s but should be left out", key, value))
			case p.Name != leftOut && !listed:
				problems = append(problems, fmt.Sprintf("%s is missing (want cpu, memory %s)", key, want))
			case p.Name != leftOut && !sameUsage(value, c.CPUCores, c.MemoryBytes):
				problems = append(problems, fmt.Sprintf("%s is %s, want %s", key, value, want))
			}
		}
	}
	// A pod missing a container's series is TestAPIs' concern (testTopPods); here it is ignored.
	if ns, name, ok := e.spec.IncompletePod(); ok {
		for key := range got {
			if strings.HasPrefix(key, ns+"/"+name+"/") {
				delete(got, key)
			}
		}
	}
	for key, value := range got {
		problems = append(problems, fmt.Sprintf("unexpected container %s=%s", key, value))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: GET %s: %s", errWrong, resourcePath, strings.Join(problems, "; "))
	}
	return nil
}

// sameUsage compares "cpu memory" as checkResource formats it with the fixture's values, CPU to
// a micro-core (rate() extrapolation), memory to the byte.
func sameUsage(got string, cpu, memory float64) bool {
	var gotCPU, gotMemory float64
	if _, err := fmt.Sscanf(got, "%g %g", &gotCPU, &gotMemory); err != nil {
		return false
	}
	return gotCPU > cpu-1e-6 && gotCPU < cpu+1e-6 && gotMemory == memory
}

// checkTop runs `kubectl top pods -n faultNamespace --containers` and checks every container of
// every complete pod shows its fixture values as kubectl formats them.
func (e *faultEnv) checkTop() error {
	out, err := e.kubectl("top", "pods", "-n", faultNamespace, "--containers", "--no-headers")
	if err != nil {
		return err
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) == 4 { // POD NAME CPU MEMORY
			got[f[0]+"/"+f[1]] = f[2] + " " + f[3]
		}
	}
	var problems []string
	for _, p := range e.spec.PodList() {
		if p.Namespace != faultNamespace || !p.Complete() {
			continue
		}
		for _, c := range p.Containers {
			key := p.Name + "/" + c.Name
			if want := topCPU(c.CPUCores) + " " + topMem(c.MemoryBytes); got[key] != want {
				problems = append(problems, fmt.Sprintf("%s shows %q, want %q", key, got[key], want))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: kubectl top pods -n %s --containers: %s\n%s", errWrong, faultNamespace, strings.Join(problems, "; "), out)
	}
	return nil
}

// checkAll runs every known-value check with nothing left out.
func (e *faultEnv) checkAll() error {
	var errs []error
	for _, check := range []func() error{
		func() error { return e.checkCustom("") },
		func() error { return e.checkExternal("") },
		func() error { return e.checkResource("") },
		e.checkTop,
	} {
		if err := check(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// waitRecovered polls until every API answers its exact known values again.
func (e *faultEnv) waitRecovered(t *testing.T, after string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	start := time.Now()
	for {
		err := e.checkAll()
		if err == nil {
			t.Logf("recovered %v after %s", time.Since(start).Round(10*time.Millisecond), after)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("60 s after %s, the adapter has not recovered by itself: %v", after, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// containsAll reports the substrings of want that s lacks.
func missingFrom(s string, want ...string) []string {
	var missing []string
	for _, w := range want {
		if !strings.Contains(s, w) {
			missing = append(missing, w)
		}
	}
	return missing
}

// oneOf is a set of acceptable statuses.
type oneOf []int

func (o oneOf) has(status int) bool { return slices.Contains(o, status) }
