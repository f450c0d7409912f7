// Command bench measures promadapter on the project's real test bed (etcd, kube-apiserver,
// Prometheus 3.x and kubectl from test/tools/deps.sh) at several cluster sizes, and writes the
// figures, the issue #10 targets met or not, and a plot into docs/benchmarks.md and
// docs/benchmarks.svg. `make bench` runs it through test/bench/run.sh.
//
// For each size it creates the fixture's objects (test/fixture) in a fresh cluster, backfills
// the fixture's series into Prometheus, starts the adapter on its embedded default config,
// once with the query cache on (the default period) and once with it off, and measures selector
// request latency through the aggregator and straight to the adapter, the raw PromQL time of the
// same query, upstream queries and pod LISTs per 100 requests, the longest query sent, the
// adapter's memory and `kubectl top` wall time. A separate phase measures discovery against
// Prometheus servers holding 10k, 100k and 1M synthetic application series, and another the
// selector request answered from each kind of backend (Prometheus 2 and 3, Thanos,
// VictoriaMetrics) through a rule on a `backends:` entry (backends.go).
//
//	go run ./test/bench -sizes 1000,10000,30000 -report docs/benchmarks.md
//	go run ./test/bench -render-only /tmp/promadapter-bench/results.json   # re-render a report
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

// options are the command's flags.
type options struct {
	sizes           []int
	discoverySeries []int
	requests        int
	loadSize        int
	loadRate        int
	loadDuration    time.Duration
	topRuns         int
	workDir         string
	report          string
	plot            string
	renderOnly      string
	keepWorkDir     bool
	adapterVersion  string
	profileDir      string
	// backendKinds and backendPods configure the backend measurement (backends.go).
	backendKinds []string
	backendPods  int
	// adaptivePods is the namespace size of the adaptive planner's measurement (adaptive.go).
	adaptivePods int
	// hpas and hpaSyncs configure the HPA measurement (hpa.go).
	hpas, hpaSyncs int
	// podsPerNode sets the node count of each size's cluster (pods ÷ podsPerNode).
	podsPerNode int
	// baseline is the previous run's results (compare.go).
	baseline string
	// merge are earlier runs' results whose sizes this run adds to its report (merge.go).
	merge []string
	// adapterGoMemLimit is the GOMEMLIMIT of the size measurements' adapters ("" unset).
	adapterGoMemLimit string
}

func main() {
	klog.InitFlags(nil)
	var o options
	var sizes, discovery, backendKinds string
	flag.StringVar(&sizes, "sizes", "1000,10000,30000", "cluster sizes to measure, in pods, comma-separated")
	flag.StringVar(&discovery, "discovery-series", "10000,100000,1000000", "synthetic series counts for the discovery measurement, comma-separated; empty skips it")
	flag.IntVar(&o.requests, "requests", 300, "sequential selector requests per latency measurement")
	flag.IntVar(&o.loadSize, "load-size", 10000, "cluster size (pods) at which to run the load measurement (cache on); 0 skips it")
	flag.IntVar(&o.loadRate, "load-rate", 1000, "selector requests per second through kube-apiserver in the load measurement")
	flag.DurationVar(&o.loadDuration, "load-duration", 60*time.Second, "how long the load measurement sends requests")
	flag.IntVar(&o.topRuns, "top-runs", 5, "runs of each kubectl top command (the median is reported)")
	flag.StringVar(&o.workDir, "work-dir", "", "directory for clusters, Prometheus data and results.json (default: a new temporary directory)")
	flag.StringVar(&o.report, "report", "docs/benchmarks.md", "markdown file whose generated section (between the bench markers) is replaced")
	flag.StringVar(&o.plot, "plot", "", "SVG file for the plot (default: benchmarks.svg next to -report)")
	flag.StringVar(&o.renderOnly, "render-only", "", "render the report from this results.json without measuring")
	flag.BoolVar(&o.keepWorkDir, "keep-work-dir", false, "keep the work directory (clusters' logs and data) after the run")
	flag.StringVar(&o.profileDir, "profile-dir", "", "save the adapter's heap profile (/debug/pprof/heap) after the latency measurements of each size and cache setting, and its CPU profile over 10 s of PodMetrics lists, into this directory")
	flag.StringVar(&backendKinds, "backend-kinds", strings.Join(allBackendKinds, ","), "backends to serve the selector request from in turn, comma-separated, among "+strings.Join(allBackendKinds, ",")+"; empty skips the backend measurement")
	flag.IntVar(&o.backendPods, "backend-pods", 1000, "cluster size (pods) of the backend measurement")
	flag.IntVar(&o.adaptivePods, "adaptive-pods", 10000, "namespace size (pods) on which one 10-pod selector is answered under each --query-plan (adaptive.go; the second regime, 100 selectors on 1,000 pods, runs with it); 0 skips the measurement")
	flag.IntVar(&o.podsPerNode, "pods-per-node", 30, "pods per node of each size's cluster (30 is metrics-server's tested layout: 5,000 nodes of 30 pods)")
	flag.StringVar(&o.baseline, "baseline", "", "the previous run's results, shown beside this run's and replaced by them when this run measures 10,000 pods (default: benchmarks.json next to -report; \"none\" neither reads nor writes one)")
	flag.IntVar(&o.hpas, "hpas", 1000, "HorizontalPodAutoscalers synced by a real kube-controller-manager against one adapter (hpa.go), a multiple of 10; 0 skips the measurement")
	flag.IntVar(&o.hpaSyncs, "hpa-syncs", 6, "HPA sync periods (15 s) measured after the warm-up")
	flag.StringVar(&o.adapterGoMemLimit, "adapter-gomemlimit", "", "GOMEMLIMIT of the adapter in the size measurements, as its --memory-limit-ratio sets it from a container's limit (230MiB for a 256Mi limit); empty leaves it unset")
	var merge string
	flag.StringVar(&merge, "merge", "", "comma-separated results.json files of earlier runs: their sizes this run does not measure are added to the report and plot, each labelled with when and of which build it was measured (sizes too long to measure in every run, such as 150,000 pods)")
	flag.StringVar(&o.adapterVersion, "adapter-version", "", "promadapter version to print in the report (default: asked from the binary)")
	flag.Parse()
	for _, path := range strings.Split(merge, ",") {
		if path = strings.TrimSpace(path); path != "" {
			o.merge = append(o.merge, path)
		}
	}
	var err error
	if o.sizes, err = parseCounts(sizes); err != nil {
		fatal(fmt.Errorf("-sizes %q: give pod counts such as 1000,10000,30000 (%v)", sizes, err))
	}
	if o.discoverySeries, err = parseCounts(discovery); err != nil {
		fatal(fmt.Errorf("-discovery-series %q: give series counts such as 10000,100000 (%v)", discovery, err))
	}
	if o.backendKinds, err = parseBackendKinds(backendKinds); err != nil {
		fatal(fmt.Errorf("-backend-kinds %q: %w", backendKinds, err))
	}
	if o.backendPods <= 0 {
		fatal(fmt.Errorf("-backend-pods %d: give a pod count such as 1000", o.backendPods))
	}
	if len(o.sizes) == 0 && len(o.discoverySeries) == 0 && len(o.backendKinds) == 0 && o.adaptivePods <= 0 && o.hpas <= 0 && o.renderOnly == "" {
		fatal(errors.New("-sizes, -discovery-series and -backend-kinds are all empty and -adaptive-pods is 0: nothing to measure"))
	}
	if o.podsPerNode <= 0 {
		fatal(fmt.Errorf("-pods-per-node %d: give a positive count such as 30 or 100", o.podsPerNode))
	}
	if o.requests < 100 {
		fatal(fmt.Errorf("-requests %d: at least 100 are needed for a meaningful p99", o.requests))
	}
	if o.plot == "" {
		o.plot = filepath.Join(filepath.Dir(o.report), "benchmarks.svg")
	}
	switch o.baseline {
	case "":
		o.baseline = filepath.Join(filepath.Dir(o.report), "benchmarks.json")
	case "none":
		o.baseline = ""
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	klog.Flush()
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

// parseCounts reads comma-separated positive integers; an empty string is an empty list.
func parseCounts(s string) ([]int, error) {
	var out []int
	for _, field := range strings.Split(s, ",") {
		field = strings.TrimSpace(field)
		if field == "" {
			continue
		}
		n, err := strconv.Atoi(field)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive integer", field)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(ctx context.Context, o options) error {
	if o.renderOnly != "" {
		results, err := readResults(o.renderOnly)
		if err != nil {
			return err
		}
		if err := mergeSizes(results, o.merge); err != nil {
			return err
		}
		return render(results, o.report, o.plot)
	}
	// Fail before twenty minutes of measuring, not after.
	if _, _, err := readGeneratedSection(o.report); err != nil {
		return err
	}
	before, err := readBaseline(o.baseline)
	if err != nil {
		return err
	}

	workDir := o.workDir
	if workDir == "" {
		dir, err := os.MkdirTemp("", "promadapter-bench-")
		if err != nil {
			return err
		}
		workDir = dir
		if !o.keepWorkDir {
			defer func() {
				// Keep results.json: it is all a person needs to re-render the report.
				entries, _ := os.ReadDir(dir)
				for _, e := range entries {
					if e.Name() != "results.json" {
						_ = os.RemoveAll(filepath.Join(dir, e.Name()))
					}
				}
			}()
		}
	}
	b, err := newBench(ctx, workDir, o)
	if err != nil {
		return err
	}
	if err := b.checkBackendBins(); err != nil {
		return err
	}
	results, err := b.measure(ctx)
	if err == nil {
		err = b.measureBackends(ctx, results)
	}
	if err == nil {
		err = b.measureAdaptive(ctx, results)
	}
	if err == nil {
		err = b.measureHPA(ctx, results)
	}
	resultsPath := filepath.Join(workDir, "results.json")
	if results != nil {
		results.Before = before
		err = errors.Join(err, mergeSizes(results, o.merge))
		if werr := writeResults(resultsPath, results); werr != nil {
			err = errors.Join(err, werr)
		} else {
			klog.InfoS("Wrote the measurements", "path", resultsPath)
		}
	}
	if err != nil {
		return err
	}
	if err := render(results, o.report, o.plot); err != nil {
		return err
	}
	if written, err := writeBaseline(o.baseline, results); err != nil {
		return err
	} else if written {
		klog.InfoS("Wrote the next run's baseline", "path", o.baseline)
	}
	return nil
}

// render writes the report's generated section and the plot.
func render(results *Results, reportPath, plotPath string) error {
	svg := renderPlot(results)
	if err := os.WriteFile(plotPath, []byte(svg), 0o644); err != nil {
		return fmt.Errorf("writing the plot: %w", err)
	}
	rel, err := filepath.Rel(filepath.Dir(reportPath), plotPath)
	if err != nil {
		rel = plotPath
	}
	if err := replaceGeneratedSection(reportPath, renderMarkdown(results, filepath.ToSlash(rel))); err != nil {
		return err
	}
	klog.InfoS("Wrote the report", "report", reportPath, "plot", plotPath, "elapsed", time.Duration(float64(results.Duration)*float64(time.Second)).Round(time.Second))
	return nil
}
