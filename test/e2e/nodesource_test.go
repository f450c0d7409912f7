//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

// nodeSourceScenarios are the clusters TestNodeSource runs: each has Prometheus series from exactly
// the listed sources, node by node.
var nodeSourceScenarios = []struct {
	name string
	spec fixture.NodeSourceSpec
}{
	{"kubelet resource endpoint with a node label", sourcedNodes(fixture.NodeSourceKubelet)},
	{"kubelet resource endpoint with the node name as instance", sourcedNodes(fixture.NodeSourceKubeletByInstance)},
	{"cAdvisor root cgroup with a node label", sourcedNodes(fixture.NodeSourceCadvisorRoot)},
	{"node-exporter with the node name as instance, with and without node_uname_info", fixture.NodeSourceSpec{Nodes: []fixture.SourcedNode{
		{Sources: []fixture.NodeSource{fixture.NodeSourceNodeExporter}},
		{Sources: []fixture.NodeSource{fixture.NodeSourceNodeExporter}, NoUname: true},
	}}},
	{"node-exporter mapped through node_uname_info", sourcedNodes(fixture.NodeSourceNodeExporterUname)},
	{"a duplicated node_uname_info neither fails the query nor counts twice", fixture.NodeSourceSpec{Nodes: []fixture.SourcedNode{
		{Sources: []fixture.NodeSource{fixture.NodeSourceNodeExporterUname}, DuplicateUname: true},
		{Sources: []fixture.NodeSource{fixture.NodeSourceNodeExporterUname}},
	}}},
	{"a mixed cluster, each node from its best source", fixture.NodeSourceSpec{Nodes: []fixture.SourcedNode{
		{Sources: []fixture.NodeSource{fixture.NodeSourceNodeExporter, fixture.NodeSourceCadvisorRoot, fixture.NodeSourceKubelet}},
		{Sources: []fixture.NodeSource{fixture.NodeSourceNodeExporterUname, fixture.NodeSourceCadvisorRoot}},
		{Sources: []fixture.NodeSource{fixture.NodeSourceNodeExporter}, NoUname: true},
		{Sources: []fixture.NodeSource{fixture.NodeSourceNodeExporterUname}, DuplicateUname: true},
		{Sources: []fixture.NodeSource{fixture.NodeSourceKubeletByInstance}},
		{}, // no series at all: left out, the others still served
	}}},
}

// sourcedNodes is a two-node cluster where both nodes report through src only.
func sourcedNodes(src fixture.NodeSource) fixture.NodeSourceSpec {
	return fixture.NodeSourceSpec{Nodes: []fixture.SourcedNode{{Sources: []fixture.NodeSource{src}}, {Sources: []fixture.NodeSource{src}}}}
}

// TestNodeSource: with no --config (the embedded default), the NodeMetrics API and `kubectl top
// nodes` report every node's usage from the best source Prometheus has for that node: the kubelet's
// resource endpoint, cAdvisor's root cgroup, node-exporter by node name, node-exporter through
// node_uname_info. Values are exact: CPU in nano-cores, memory in bytes.
//
// One cluster per Prometheus major version; each scenario creates its Nodes, starts its own
// Prometheus backfilled with its series and its own adapter, and deletes the Nodes afterwards.
func TestNodeSource(t *testing.T) {
	bins, adapterBin := testBinaries(t)
	for _, major := range []string{"2", "3"} {
		t.Run("prometheus-"+major, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			cluster, err := testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: bins, Dir: filepath.Join(t.TempDir(), "cluster")})
			if err != nil {
				t.Fatal(err)
			}
			cluster.Cleanup(t)
			for _, sc := range nodeSourceScenarios {
				t.Run(sc.name, func(t *testing.T) {
					runNodeSourceScenario(t, bins, adapterBin, cluster, major, sc.spec)
				})
			}
		})
	}
}

// nodeUsage is one node's usage as served: CPU in nano-cores, memory in bytes.
type nodeUsage struct{ nanoCores, bytes int64 }

func (u nodeUsage) String() string { return fmt.Sprintf("cpu %dn memory %d", u.nanoCores, u.bytes) }

func runNodeSourceScenario(t *testing.T, bins testbed.Bins, adapterBin string, cluster *testbed.Cluster, major string, spec fixture.NodeSourceSpec) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	if err := spec.ApplyObjects(ctx, cluster.Client); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, n := range spec.NodeList() {
			if err := cluster.Client.CoreV1().Nodes().Delete(context.Background(), n.Name, metav1.DeleteOptions{}); err != nil {
				t.Errorf("deleting node %s for the next scenario: %v", n.Name, err)
			}
		}
	})

	now := time.Now()
	var om bytes.Buffer
	if err := spec.WriteOpenMetrics(&om, now.Add(-30*time.Minute), now.Add(3*time.Hour), fixture.DefaultStep); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	prom, err := testbed.StartPrometheus(ctx, testbed.PrometheusOptions{Bins: bins, Major: major, Dir: filepath.Join(dir, "prometheus"), OpenMetrics: om.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	prom.Cleanup(t)
	adapter, err := cluster.StartAdapter(ctx, testbed.AdapterOptions{Bin: adapterBin, PrometheusURL: prom.URL, Dir: filepath.Join(dir, "promadapter")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if log, err := os.ReadFile(adapter.LogPath); err == nil {
				t.Logf("adapter log (%s), last lines:\n%s", adapter.LogPath, tail(string(log), 40))
			}
			t.Logf("reproduce: make build && PROMADAPTER_BIN=$PWD/bin/promadapter go test -tags e2e ./test/e2e -run 'TestNodeSource/prometheus-%s' -v", major)
		}
		adapter.Stop()
	})

	want := map[string]nodeUsage{}
	var unserved []string
	for _, n := range spec.NodeList() {
		cpu, cpuSrc, okC := spec.NodeCPUCores(n.Name)
		mem, memSrc, okM := spec.NodeMemoryBytes(n.Name)
		if !okC || !okM {
			unserved = append(unserved, n.Name)
			continue
		}
		want[n.Name] = nodeUsage{nanoCores: int64(math.Round(cpu * 1e9)), bytes: int64(mem)}
		t.Logf("%s: expecting %s (cpu from %s, memory from %s)", n.Name, want[n.Name], cpuSrc, memSrc)
	}

	// The aggregator may still point at the previous scenario's adapter for a moment: poll.
	const path = "/apis/metrics.k8s.io/v1beta1/nodes"
	waitFor(t, ctx, 60*time.Second, "GET "+path+" to serve exactly "+fmt.Sprint(want), func() (bool, string) {
		got, err := servedNodeUsage(ctx, cluster, path)
		if err != nil {
			return false, err.Error()
		}
		return fmt.Sprint(got) == fmt.Sprint(want), "served " + fmt.Sprint(got)
	})

	out, err := cluster.Kubectl(ctx, "top", "nodes", "--no-headers")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows[f[0]] = f
		}
	}
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		w := want[name]
		cpu, mem := topCPU(float64(w.nanoCores)/1e9), topMem(float64(w.bytes))
		if row := rows[name]; len(row) < 4 || row[1] != cpu || row[3] != mem {
			t.Errorf("kubectl top nodes shows %s as %v; want CPU %s and memory %s", name, row, cpu, mem)
		}
	}
	for _, name := range unserved {
		if row := rows[name]; len(row) > 1 && row[1] != "<unknown>" {
			t.Errorf("kubectl top nodes shows usage %v for %s, which has no series", row, name)
		}
		if _, err := cluster.Kubectl(ctx, "get", "--raw", path+"/"+name); err == nil || !strings.Contains(err.Error(), "NotFound") {
			t.Errorf("GET %s/%s: %v; want NotFound (the node has no series)", path, name, err)
		}
	}
	if t.Failed() {
		t.Logf("kubectl top nodes:\n%s", out)
	}
}

// servedNodeUsage GETs a NodeMetricsList through the aggregator and returns each node's usage.
func servedNodeUsage(ctx context.Context, cluster *testbed.Cluster, path string) (map[string]nodeUsage, error) {
	out, err := cluster.Kubectl(ctx, "get", "--raw", path)
	if err != nil {
		return nil, err
	}
	var list metricsv1beta1.NodeMetricsList
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("decoding %q: %w", out, err)
	}
	got := map[string]nodeUsage{}
	for _, item := range list.Items {
		cpu, mem := item.Usage[corev1.ResourceCPU], item.Usage[corev1.ResourceMemory]
		got[item.Name] = nodeUsage{nanoCores: cpu.ScaledValue(resource.Nano), bytes: mem.Value()}
	}
	return got, nil
}
