//go:build e2e

// The checks of TestMigrationFromMetricsServer: who answers pod metrics, the poller that reads
// them throughout, and the comparisons with the fixture and with metrics-server's formula.

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

// Who answered a read of pod metrics.
const (
	migrationByPromadapter   = "promadapter"
	migrationByMetricsServer = "metrics-server (stand-in)"
)

// migrationProbe reads one container's CPU through kube-apiserver and tells who answered.
type migrationProbe struct {
	pod, container string
	cores          float64 // the fixture's rate: promadapter's answer; the stand-in answers twice it
}

func migrationProbeFor(t *testing.T, spec fixture.Spec) migrationProbe {
	t.Helper()
	for _, p := range spec.PodList() {
		if p.Namespace == "ns-1" && p.Complete() {
			return migrationProbe{pod: p.Name, container: p.Containers[0].Name, cores: p.Containers[0].CPUCores}
		}
	}
	t.Fatal("the fixture has no complete pod in ns-1")
	return migrationProbe{}
}

const migrationProbePath = "/apis/metrics.k8s.io/v1beta1/namespaces/ns-1/pods"

func (p migrationProbe) read(ctx context.Context, cluster *testbed.Cluster) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	body, err := cluster.Client.Discovery().RESTClient().Get().AbsPath(migrationProbePath).DoRaw(ctx)
	if err != nil {
		return "", err
	}
	var list metricsv1beta1.PodMetricsList
	if err := json.Unmarshal(body, &list); err != nil {
		return "", fmt.Errorf("decoding %s: %w", migrationProbePath, err)
	}
	for _, pm := range list.Items {
		if pm.Name != p.pod {
			continue
		}
		for _, c := range pm.Containers {
			if c.Name != p.container {
				continue
			}
			q := c.Usage["cpu"]
			switch {
			case near(q, p.cores):
				return migrationByPromadapter, nil
			case near(q, 2*p.cores):
				return migrationByMetricsServer, nil
			}
			return "", fmt.Errorf("pod %s container %s has cpu %s: neither the fixture's %v nor the stand-in's %v", p.pod, p.container, q.String(), p.cores, 2*p.cores)
		}
	}
	return "", fmt.Errorf("%s lists no container %s of pod %s", migrationProbePath, p.container, p.pod)
}

// migrationPoller reads pod metrics every 25 ms until stopped and records who answered.
type migrationPoller struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	n        int
	failures []string
	runs     []string // "who ×count" in order
	last     string
	count    int
}

func startMigrationPoller(ctx context.Context, cluster *testbed.Cluster, probe migrationProbe) *migrationPoller {
	ctx, cancel := context.WithCancel(ctx)
	p := &migrationPoller{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for {
			who, err := probe.read(ctx, cluster)
			if ctx.Err() != nil {
				return
			}
			p.record(who, err)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

func (p *migrationPoller) record(who string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if err != nil {
		p.failures = append(p.failures, fmt.Sprintf("%s: %v", time.Now().Format("15:04:05.000"), err))
		who = "error"
	}
	if who != p.last && p.count > 0 {
		p.runs = append(p.runs, fmt.Sprintf("%s ×%d", p.last, p.count))
		p.count = 0
	}
	p.last = who
	p.count++
}

func (p *migrationPoller) stop() {
	p.cancel()
	<-p.done
}

func (p *migrationPoller) result() (int, []string, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	runs := p.runs
	if p.count > 0 {
		runs = append(runs, fmt.Sprintf("%s ×%d", p.last, p.count))
	}
	return p.n, append([]string(nil), p.failures...), strings.Join(runs, ", ")
}

func (p *migrationPoller) summary() string {
	_, failures, runs := p.result()
	if len(failures) > 0 {
		return runs + "; last failure: " + failures[len(failures)-1]
	}
	return runs
}

// migrationCheckNodes checks a NodeMetricsList against the fixture, whose CPU is scaled by factor.
func migrationCheckNodes(t *testing.T, spec fixture.Spec, list metricsv1beta1.NodeMetricsList, factor float64) {
	t.Helper()
	if len(list.Items) != len(spec.NodeList()) {
		t.Fatalf("%d nodes listed, want the fixture's %d", len(list.Items), len(spec.NodeList()))
	}
	for _, nm := range list.Items {
		cpu, okC := spec.NodeCPUCores(nm.Name)
		mem, okM := spec.NodeMemoryBytes(nm.Name)
		if !okC || !okM || !near(nm.Usage["cpu"], factor*cpu) || !near(nm.Usage["memory"], mem) {
			t.Errorf("node %s: cpu %s memory %s; want %v cores and %v bytes", nm.Name, nm.Usage.Cpu(), nm.Usage.Memory(), factor*cpu, mem)
		}
	}
}

// migrationSideBySide prints promadapter's kubectl top beside what metrics-server's formula
// gives from the same raw samples in Prometheus, and checks they agree: a container's or node's
// CPU is the increase of its cumulative counter between its last two samples divided by the time
// between them, its memory the last working-set sample. Nodes come from the kubelet's node
// counters (/metrics/resource); the fixture's last node has none (node-exporter only), so the
// formula has nothing to compute for it.
func migrationSideBySide(t *testing.T, k *migrationKubectl, e *env) {
	t.Helper()
	formula := func(cpuSel, memSel string) (string, string) {
		cpu := e.rawSamples(t, cpuSel+"[1m]")
		mem := e.rawSamples(t, memSel+"[1m]")
		if len(cpu) < 2 || len(mem) < 1 {
			t.Fatalf("too few raw samples of %s (%d) or %s (%d)", cpuSel, len(cpu), memSel, len(mem))
		}
		a, b := cpu[len(cpu)-2], cpu[len(cpu)-1]
		return topCPU((b[1] - a[1]) / (b[0] - a[0])), topMem(mem[len(mem)-1][1])
	}

	pods := k.run("top", "pods", "-n", "ns-1", "--containers")
	k.log("kubectl top pods -n ns-1 --containers", pods)
	var table strings.Builder
	fmt.Fprintf(&table, "%-10s %-6s %-18s %-18s\n", "POD", "NAME", "promadapter", "formula on raw samples")
	shown := map[string][2]string{}
	for _, line := range strings.Split(strings.TrimSpace(pods), "\n")[1:] {
		if f := strings.Fields(line); len(f) == 4 {
			shown[f[0]+"/"+f[1]] = [2]string{f[2], f[3]}
		}
	}
	for _, p := range e.spec.PodList() {
		if p.Namespace != "ns-1" {
			continue
		}
		for _, c := range p.Containers {
			if !c.HasSeries {
				continue
			}
			sel := fmt.Sprintf(`{namespace="ns-1",pod=%q,container=%q}`, p.Name, c.Name)
			cpu, mem := formula("container_cpu_usage_seconds_total"+sel, "container_memory_working_set_bytes"+sel)
			got := shown[p.Name+"/"+c.Name]
			fmt.Fprintf(&table, "%-10s %-6s %-18s %-18s\n", p.Name, c.Name, got[0]+" "+got[1], cpu+" "+mem)
			if got != [2]string{cpu, mem} {
				t.Errorf("%s/%s: kubectl top shows %v; metrics-server's formula gives %s %s", p.Name, c.Name, got, cpu, mem)
			}
		}
	}
	k.log("kubectl top pods beside metrics-server's formula on Prometheus' raw samples", table.String())

	nodes := k.run("top", "nodes")
	k.log("kubectl top nodes", nodes)
	table.Reset()
	fmt.Fprintf(&table, "%-8s %-18s %-18s\n", "NAME", "promadapter", "formula on raw samples")
	for _, line := range strings.Split(strings.TrimSpace(nodes), "\n")[1:] {
		f := strings.Fields(line) // NAME CPU CPU% MEMORY MEMORY%
		if len(f) != 5 {
			continue
		}
		sel := fmt.Sprintf(`{node=%q,metrics_path="/metrics/resource"}`, f[0])
		if migrationSeriesCount(t, e.prom.URL, "node_cpu_usage_seconds_total"+sel) == 0 {
			fmt.Fprintf(&table, "%-8s %-18s %-18s\n", f[0], f[1]+" "+f[3], "(no kubelet series)")
			continue
		}
		cpu, mem := formula("node_cpu_usage_seconds_total"+sel, "node_memory_working_set_bytes"+sel)
		fmt.Fprintf(&table, "%-8s %-18s %-18s\n", f[0], f[1]+" "+f[3], cpu+" "+mem)
		if f[1] != cpu || f[3] != mem {
			t.Errorf("node %s: kubectl top shows %s %s; metrics-server's formula gives %s %s", f[0], f[1], f[3], cpu, mem)
		}
	}
	k.log("kubectl top nodes beside metrics-server's formula on Prometheus' raw samples", table.String())
}

// migrationSeriesCount counts the series a query returns from Prometheus at promURL (0 or more).
func migrationSeriesCount(t *testing.T, promURL, query string) int {
	t.Helper()
	resp, err := http.Get(promURL + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Data struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("query %s: %v %s", query, err, body)
	}
	return len(r.Data.Result)
}
