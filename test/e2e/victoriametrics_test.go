//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/promadapter/promadapter/pkg/naming"
	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

// victoriaMetricsBin is where Debian's victoria-metrics package puts the single-node server.
const victoriaMetricsBin = "/usr/bin/victoria-metrics"

// victoriaMetricsMaxQueryLen is VictoriaMetrics' default -search.maxQueryLen: it refuses longer
// queries. prometheus-adapter's selector queries list every pod (pod=~"a|b|…", 26 KB for a
// namespace of 1,000 pods); this test keeps the default.
const victoriaMetricsMaxQueryLen = 16 << 10

// bigNamespacePods is the size of the one namespace of TestVictoriaMetrics.
const bigNamespacePods = 5000

var installVictoriaMetricsOnce sync.Once

// ensureVictoriaMetrics returns the VictoriaMetrics binary, installing Debian's package
// (apt-get update, then apt-get install victoria-metrics, as root) when it is absent.
func ensureVictoriaMetrics(t *testing.T) string {
	t.Helper()
	installVictoriaMetricsOnce.Do(func() {
		if _, err := os.Stat(victoriaMetricsBin); err == nil {
			return
		}
		t.Logf("%s is missing; installing Debian's victoria-metrics package", victoriaMetricsBin)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		for _, args := range [][]string{
			{"apt-get", "update", "-qq"},
			{"apt-get", "install", "-y", "-qq", "--no-install-recommends", "victoria-metrics"},
		} {
			cmd := exec.CommandContext(ctx, args[0], args[1:]...)
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Logf("%s: %v\n%s", strings.Join(args, " "), err, out)
				return
			}
		}
		// The package may start a service of its own; the test runs its own server on a free
		// loopback port. Stop only that service, through its init system.
		_ = exec.CommandContext(ctx, "systemctl", "stop", "victoria-metrics").Run()
	})
	if _, err := os.Stat(victoriaMetricsBin); err != nil {
		t.Fatalf("VictoriaMetrics is not installed (%v) and installing it failed; as root, run "+
			"`apt-get update && apt-get install --no-install-recommends victoria-metrics`", err)
	}
	return victoriaMetricsBin
}

// victoriaMetrics is a single-node VictoriaMetrics on 127.0.0.1.
type victoriaMetrics struct {
	URL     string
	process *testbed.Process
}

// startVictoriaMetrics starts VictoriaMetrics with its data in dir and waits for /health.
func startVictoriaMetrics(t *testing.T, ctx context.Context, bin, dir string) *victoriaMetrics {
	t.Helper()
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	vm := &victoriaMetrics{URL: "http://127.0.0.1:" + strconv.Itoa(port)}
	vm.process, err = testbed.StartProcess(context.WithoutCancel(ctx), "victoria-metrics", filepath.Join(dir, "victoria-metrics.log"), bin,
		"-storageDataPath="+filepath.Join(dir, "data"),
		"-httpListenAddr=127.0.0.1:"+strconv.Itoa(port),
		"-retentionPeriod=1",
		// Answers must come from the imported data, never from a result cached during import.
		"-search.disableCache",
		"-loggerLevel=WARN",
	)
	if err != nil {
		t.Fatal(err)
	}
	vm.process.Cleanup(t)
	waitFor(t, ctx, time.Minute, "VictoriaMetrics to answer GET /health with OK (log "+vm.process.LogPath+")", func() (bool, string) {
		resp, err := http.Get(vm.URL + "/health")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) == "OK", resp.Status + " " + string(body)
	})
	return vm
}

// importFixture streams the spec's series from start to end into VictoriaMetrics through its
// Prometheus text import endpoint, converting timestamps to milliseconds on the way.
func (vm *victoriaMetrics) importFixture(ctx context.Context, spec fixture.Spec, start, end time.Time) error {
	body, writer := io.Pipe()
	go func() {
		converter := &promTextWriter{w: bufio.NewWriterSize(writer, 1<<20)}
		err := spec.WriteOpenMetrics(converter, start, end, fixture.DefaultStep)
		if err == nil {
			err = converter.Flush()
		}
		writer.CloseWithError(err)
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, vm.URL+"/api/v1/import/prometheus", body)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("importing the fixture into VictoriaMetrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("importing the fixture into VictoriaMetrics: %s: %s", resp.Status, msg)
	}
	return nil
}

// promTextWriter turns OpenMetrics text, as fixture.WriteOpenMetrics writes it, into the
// Prometheus text format VictoriaMetrics imports: comment lines (# TYPE, # HELP, # EOF) are
// dropped and each sample's timestamp, in seconds with up to three decimals, becomes whole
// milliseconds. Label values may hold spaces, so the timestamp is the text after the last space.
type promTextWriter struct {
	w       *bufio.Writer
	partial []byte // the start of a line not yet ended
	err     error
}

func (p *promTextWriter) Write(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.partial = append(p.partial, b...)
			break
		}
		line := append(p.partial, b[:i]...)
		b = b[i+1:]
		p.partial = p.partial[:0]
		if err := p.line(string(line)); err != nil {
			p.err = err
			return 0, err
		}
	}
	return n, nil
}

func (p *promTextWriter) line(line string) error {
	if line == "" || strings.HasPrefix(line, "#") {
		return nil
	}
	cut := strings.LastIndexByte(line, ' ')
	if cut < 0 {
		return fmt.Errorf("openmetrics sample line without timestamp: %q", line)
	}
	ms, err := fixture.SecondsToMillis(line[cut+1:])
	if err != nil {
		return fmt.Errorf("openmetrics sample line %q: %w", line, err)
	}
	_, err = fmt.Fprintf(p.w, "%s %d\n", line[:cut], ms)
	return err
}

// Flush ends the conversion; text after the last newline is an error.
func (p *promTextWriter) Flush() error {
	if p.err != nil {
		return p.err
	}
	if len(p.partial) > 0 {
		return fmt.Errorf("openmetrics text ends inside a line: %q", p.partial)
	}
	return p.w.Flush()
}

func TestPromTextWriterConvertsSamplesAndDropsComments(t *testing.T) {
	in := "# HELP kube_node_info Information about a cluster node.\n" +
		"# TYPE kube_node_info gauge\n" +
		`kube_node_info{node="node-0",os_image="Debian GNU/Linux 12 (bookworm)"} 1 1700000000.25` + "\n" +
		`http_requests_total{code="200",pod="app-0-0"} 1000.5 1700000030` + "\n" +
		"# EOF\n"
	want := `kube_node_info{node="node-0",os_image="Debian GNU/Linux 12 (bookworm)"} 1 1700000000250` + "\n" +
		`http_requests_total{code="200",pod="app-0-0"} 1000.5 1700000030000` + "\n"
	var out strings.Builder
	p := &promTextWriter{w: bufio.NewWriter(&out)}
	// Write in small pieces: lines arrive split across calls.
	for i := 0; i < len(in); i += 7 {
		if _, err := p.Write([]byte(in[i:min(i+7, len(in))])); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	if out.String() != want {
		t.Errorf("converted text:\n%s\nwant:\n%s", out.String(), want)
	}
}

// waitFor polls check every 200 ms until it reports done, failing the test with what was awaited
// and check's last word after timeout.
func waitFor(t *testing.T, ctx context.Context, timeout time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, state := check()
		if done {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("waited %s for %s; last state: %s", timeout, what, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// vmInstantQuery runs an instant query on VictoriaMetrics and returns the number of series in
// the result.
func vmInstantQuery(vm *victoriaMetrics, query string) (int, error) {
	resp, err := http.PostForm(vm.URL+"/api/v1/query", url.Values{"query": {query}})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s", resp.Status, body)
	}
	// A count() answers one sample whose value is the count: "value":[<time>,"<count>"].
	_, value, found := strings.Cut(string(body), `"value":[`)
	if !found {
		return 0, errors.New("no sample in " + string(body))
	}
	_, value, _ = strings.Cut(value, `,"`)
	value, _, _ = strings.Cut(value, `"`)
	return strconv.Atoi(value)
}

// TestVictoriaMetrics runs the adapter against VictoriaMetrics' Prometheus-compatible API, which
// refuses queries longer than 16 KiB by default, with one namespace of 5,000 pods: a selector
// request over all of them must answer 5,000 exact values (the adapter's query does not list the
// pods), and `kubectl top pods -n` must list every complete pod with its exact usage.
//
// Reproduce with: make build && PROMADAPTER_BIN=$PWD/bin/promadapter go test -tags e2e ./test/e2e -run TestVictoriaMetrics -v
func TestVictoriaMetrics(t *testing.T) {
	bin := ensureVictoriaMetrics(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bins, adapterBin := testBinaries(t)
	dir := t.TempDir()
	spec := fixture.Spec{Pods: bigNamespacePods, Namespaces: 1, AppsPerNamespace: 2, Nodes: 50}
	const namespace = "ns-0"

	cluster, err := testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: bins, Dir: filepath.Join(dir, "cluster")})
	if err != nil {
		t.Fatal(err)
	}
	cluster.Cleanup(t)
	// 5,000 pods: lift client-go's default rate limit of 5 requests per second.
	fast := *cluster.RESTConfig
	fast.QPS, fast.Burst = -1, 0
	client, err := kubernetes.NewForConfig(&fast)
	if err != nil {
		t.Fatal(err)
	}
	if err := spec.ApplyObjects(ctx, client); err != nil {
		t.Fatal(err)
	}

	vm := startVictoriaMetrics(t, ctx, bin, filepath.Join(dir, "victoria-metrics"))
	now := time.Now()
	if err := vm.importFixture(ctx, spec, now.Add(-6*time.Minute), now.Add(6*time.Minute)); err != nil {
		t.Fatal(err)
	}
	wantSeries := 2 * bigNamespacePods // http_requests_total: codes 200 and 500 per pod
	waitFor(t, ctx, time.Minute, fmt.Sprintf("VictoriaMetrics to hold the %d http_requests_total series just imported", wantSeries), func() (bool, string) {
		n, err := vmInstantQuery(vm, `count(http_requests_total{namespace="`+namespace+`"})`)
		if err != nil {
			return false, err.Error()
		}
		return n == wantSeries, fmt.Sprintf("%d series", n)
	})

	adapter, err := cluster.StartAdapter(ctx, testbed.AdapterOptions{Bin: adapterBin, PrometheusURL: vm.URL})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, cluster: cluster, adapter: adapter, spec: spec}
	t.Cleanup(func() {
		if t.Failed() {
			if log, err := os.ReadFile(adapter.LogPath); err == nil {
				t.Logf("adapter log (%s), last lines:\n%s", adapter.LogPath, tail(string(log), 40))
			}
		}
		adapter.Stop()
	})

	t.Run("VictoriaMetrics refuses a query that lists the 5,000 pods by name", func(t *testing.T) {
		// What an adapter that selects pods by name would send: the limit is in force here.
		var names []string
		for _, p := range spec.PodList() {
			names = append(names, p.Name)
		}
		query := `sum(rate(http_requests_total{namespace="` + namespace + `",pod=~"` + naming.AnyOf(names) + `"}[2m])) by (pod)`
		_, err := vmInstantQuery(vm, query)
		if err == nil || !strings.Contains(err.Error(), "maxQueryLen") {
			t.Errorf("a %d-byte query: got error %v, want VictoriaMetrics to refuse it for -search.maxQueryLen", len(query), err)
		}
	})

	t.Run("a selector request over all 5,000 pods of a namespace answers 5,000 exact values", func(t *testing.T) {
		e.t = t
		var list metricValueList
		e.raw("/apis/custom.metrics.k8s.io/v1beta2/namespaces/"+namespace+"/pods/*/http_requests_per_second?labelSelector="+url.QueryEscape(fixture.AppLabel), &list)
		if len(list.Items) != bigNamespacePods {
			t.Fatalf("got %d items, want %d (one per pod of %s)", len(list.Items), bigNamespacePods, namespace)
		}
		seen := map[string]bool{}
		for _, it := range list.Items {
			name := it.DescribedObject.Name
			want, ok := spec.PodRequestRate(namespace, name)
			if !ok || !near(it.Value, want) {
				t.Errorf("pod %s: got %s, want %v", name, it.Value.String(), want)
			}
			if seen[name] {
				t.Errorf("pod %s is listed twice", name)
			}
			seen[name] = true
		}
	})

	t.Run("kubectl top pods -n lists every pod of the namespace with the usage of its containers that have series", func(t *testing.T) {
		e.t = t
		out := e.kubectl("top", "pods", "-n", namespace, "--no-headers")
		got := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Fields(line); len(f) == 3 { // NAME CPU MEMORY
				got[f[0]] = f[1] + " " + f[2]
			}
		}
		want := map[string]string{}
		for _, p := range spec.PodList() {
			cpu, cpuOK := spec.PodCPUCores(p.Namespace, p.Name)
			mem, memOK := spec.PodMemoryBytes(p.Namespace, p.Name)
			if cpuOK && memOK {
				want[p.Name] = topCPU(cpu) + " " + topMem(mem)
			}
		}
		if len(want) != bigNamespacePods {
			t.Fatalf("the fixture should list all %d pods (one with its app container only), lists %d", bigNamespacePods, len(want))
		}
		if len(got) != len(want) {
			t.Errorf("kubectl top lists %d pods, want %d (every pod; the one whose sidecar has no series with its app container's usage)", len(got), len(want))
		}
		var wrong int
		for name, w := range want {
			if got[name] != w {
				if wrong++; wrong <= 10 {
					t.Errorf("%s: kubectl shows %q, want %q", name, got[name], w)
				}
			}
		}
		if wrong > 10 {
			t.Errorf("and %d more pods differ", wrong-10)
		}
	})

	t.Run("every query stayed under VictoriaMetrics' 16 KiB limit", func(t *testing.T) {
		e.t = t
		longest := sumCounter(e.adapterMetrics(t), "promadapter_planner_longest_query_bytes")
		if longest <= 0 || longest >= victoriaMetricsMaxQueryLen {
			t.Errorf("promadapter_planner_longest_query_bytes = %v, want between 1 and %d", longest, victoriaMetricsMaxQueryLen-1)
		}
	})
}
