package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

// Layout of the measured clusters: namespaces of 1,000 pods (the namespace size of
// prometheus-adapter's reference figures), apps of 10 pods (what a selector request selects),
// and -pods-per-node pods per node.
const (
	podsPerNamespace = 1000
	podsPerApp       = 10
)

// Timing of the backfilled data: samples every sampleStep from dataLookback before the
// backfill until the horizon after it. The default rules' rate windows are 2m and 5m, so
// lookback covers a 5m window with a margin and every window holds at least 4 samples.
const (
	sampleStep   = 30 * time.Second
	dataLookback = 6 * time.Minute
)

// adapterArgs bring the test bed's short relist interval back to the adapter's defaults, so a
// rediscovery does not run (and load Prometheus) every few seconds during the measurements.
var adapterArgs = []string{"--metrics-relist-interval=1m", "--metrics-max-age=10m"}

// adapterEnv is the environment the size measurements' adapters get beyond the bench's own.
func adapterEnv(o options) []string {
	if o.adapterGoMemLimit == "" {
		return nil
	}
	return []string{"GOMEMLIMIT=" + o.adapterGoMemLimit}
}

// defaultCachePeriod is promadapter's default --query-cache-period, the "cache on" setting.
const defaultCachePeriod = 10 * time.Second

// bench holds what every phase needs.
type bench struct {
	opts       options
	workDir    string
	bins       testbed.Bins
	adapterBin string
}

func newBench(ctx context.Context, workDir string, o options) (*bench, error) {
	bins, err := testbed.FindBins()
	if err != nil {
		return nil, err
	}
	if _, ok := bins.Prometheus["3"]; !ok {
		return nil, errors.New("no Prometheus 3.x among the test binaries; run test/tools/deps.sh")
	}
	adapterBin, err := testbed.AdapterBin()
	if err != nil {
		return nil, err
	}
	return &bench{opts: o, workDir: workDir, bins: bins, adapterBin: adapterBin}, nil
}

// measure runs every phase. It returns what was measured so far even when a phase fails.
func (b *bench) measure(ctx context.Context) (*Results, error) {
	started := time.Now()
	results := &Results{Started: started.UTC().Truncate(time.Second), CachePeriod: secondsOf(defaultCachePeriod), AdapterGoMemLimit: b.opts.adapterGoMemLimit}
	var err error
	if results.Machine, err = describeMachine(); err != nil {
		return nil, err
	}
	if results.Versions, err = b.versions(ctx); err != nil {
		return nil, err
	}
	klog.InfoS("Benchmark starting", "sizes", b.opts.sizes, "discoverySeries", b.opts.discoverySeries, "workDir", b.workDir)
	for _, pods := range b.opts.sizes {
		sizeStarted := time.Now()
		r, err := b.runSize(ctx, pods)
		if err != nil {
			return results, fmt.Errorf("measuring %d pods: %w", pods, err)
		}
		r.Promadapter = results.Versions.Promadapter
		results.Sizes = append(results.Sizes, r)
		klog.InfoS("Size measured", "pods", pods, "elapsed", time.Since(sizeStarted).Round(time.Second))
	}
	if len(b.opts.discoverySeries) > 0 {
		phaseStarted := time.Now()
		r, err := b.runDiscovery(ctx, b.opts.discoverySeries)
		results.Discovery = r
		if err != nil {
			return results, fmt.Errorf("measuring discovery: %w", err)
		}
		klog.InfoS("Discovery measured", "elapsed", time.Since(phaseStarted).Round(time.Second))
	}
	results.Duration = secondsOf(time.Since(started))
	return results, nil
}

// layoutFor sizes the fixture for a pod count.
func (b *bench) layoutFor(pods int) fixture.Spec {
	namespaces := max(1, pods/podsPerNamespace)
	return fixture.Spec{
		Pods:             pods,
		Namespaces:       namespaces,
		AppsPerNamespace: max(1, pods/namespaces/podsPerApp),
		Nodes:            max(3, pods/b.opts.podsPerNode),
	}
}

// dataHorizon is how long after the backfill the data must still cover a rate window: the time
// the rest of a size's measurements take, with a wide margin (at 30k pods they take about five
// minutes; the margin grows with size because a busy machine slows big sizes most).
func dataHorizon(pods int) time.Duration {
	return 10*time.Minute + time.Duration(pods/1000)*10*time.Second
}

func (b *bench) versions(ctx context.Context) (Versions, error) {
	v := Versions{
		Promadapter: b.opts.adapterVersion,
		Go:          runtime.Version(),
		Prometheus:  b.bins.Prometheus["3"].Version,
	}
	if v.Promadapter == "" {
		out, err := commandOutput(ctx, b.adapterBin, "--version")
		if err != nil {
			return v, err
		}
		// "promadapter v0.1.0 (go1.26.8, linux/amd64)": the version is the second word.
		if fields := strings.Fields(out); len(fields) > 1 {
			v.Promadapter = fields[1]
		}
	}
	out, err := commandOutput(ctx, b.bins.Etcd, "--version")
	if err != nil {
		return v, err
	}
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, "etcd Version: "); ok {
			v.Etcd = strings.TrimSpace(rest)
		}
	}
	out, err = commandOutput(ctx, b.bins.KubeAPIServer, "--version")
	if err != nil {
		return v, err
	}
	v.Kubernetes = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "Kubernetes "))
	out, err = commandOutput(ctx, b.bins.Kubectl, "version", "--client", "-o", "json")
	if err != nil {
		return v, err
	}
	var kubectl struct {
		ClientVersion struct {
			GitVersion string `json:"gitVersion"`
		} `json:"clientVersion"`
	}
	if err := json.Unmarshal([]byte(out), &kubectl); err != nil {
		return v, fmt.Errorf("reading kubectl's version from %q: %w", out, err)
	}
	v.Kubectl = kubectl.ClientVersion.GitVersion
	return v, nil
}

// describeMachine reads the CPU, memory and kernel from /proc.
func describeMachine() (Machine, error) {
	m := Machine{CPUs: runtime.NumCPU()}
	cpuinfo, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return m, fmt.Errorf("describing the machine: %w", err)
	}
	for _, line := range strings.Split(string(cpuinfo), "\n") {
		if key, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(key) == "model name" {
			m.CPUModel = strings.TrimSpace(value)
			break
		}
	}
	meminfo, err := os.Open("/proc/meminfo")
	if err != nil {
		return m, fmt.Errorf("describing the machine: %w", err)
	}
	defer meminfo.Close()
	scanner := bufio.NewScanner(meminfo)
	for scanner.Scan() {
		if rest, ok := strings.CutPrefix(scanner.Text(), "MemTotal:"); ok {
			fields := strings.Fields(rest)
			if kib, err := strconv.ParseFloat(fields[0], 64); err == nil {
				m.MemoryGiB = kib / (1 << 20)
			}
		}
	}
	if release, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(release))
	}
	return m, nil
}

// fastClient is a client for the cluster without client-go's default rate limit (5 QPS, burst
// 10), for creating thousands of objects and for timing requests back to back.
func fastClient(c *testbed.Cluster) (*kubernetes.Clientset, error) {
	config := *c.RESTConfig
	config.QPS, config.Burst = -1, 0 // a negative QPS turns the rate limiter off
	return kubernetes.NewForConfig(&config)
}

// backfill writes the spec's series from now-dataLookback to now+horizon into an OpenMetrics
// file, turns it into TSDB blocks in dataDir with promtool, and removes the file (30k pods
// make several GiB of text).
func (b *bench) backfill(ctx context.Context, dir string, write func(*bufio.Writer) error) error {
	input := filepath.Join(dir, "backfill.om")
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return err
	}
	f, err := os.Create(input)
	if err != nil {
		return err
	}
	defer os.Remove(input)
	w := bufio.NewWriterSize(f, 1<<20)
	if err := write(w); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", input, err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", input, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", input, err)
	}
	if _, err := commandOutput(ctx, b.bins.Prometheus["3"].Promtool, "tsdb", "create-blocks-from", "openmetrics", input, filepath.Join(dir, "data")); err != nil {
		return fmt.Errorf("backfilling %s: %w", input, err)
	}
	return nil
}
