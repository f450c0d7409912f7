package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
)

// The baseline is the last full run's results, committed as docs/benchmarks.json: the next run
// reads it before measuring and the report shows each figure before and after, so a change that
// regresses the 10,000-pod figures shows in the report it produces (issue #18).

// baselineSize is the cluster size whose figures must not regress; a run that measures it
// becomes the next run's baseline.
const baselineSize = 10_000

// readBaseline reads the previous run's results; a missing file is no baseline, not an error.
func readBaseline(path string) (*Results, error) {
	if path == "" {
		return nil, nil
	}
	r, err := readResults(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("-baseline: %w (delete the file to start a new baseline)", err)
	}
	r.Before = nil
	return r, nil
}

// writeBaseline makes r the next run's baseline when it measured baselineSize: a partial run
// (one phase, other sizes) must not replace the figures the next full run is compared with.
func writeBaseline(path string, r *Results) (bool, error) {
	if path == "" || sizeOf(r, baselineSize) == nil {
		return false, nil
	}
	baseline := *r
	baseline.Before = nil
	return true, writeResults(path, &baseline)
}

func sizeOf(r *Results, pods int) *SizeResult {
	if r == nil {
		return nil
	}
	for i := range r.Sizes {
		if r.Sizes[i].Pods == pods {
			return &r.Sizes[i]
		}
	}
	return nil
}

// comparison is one figure before and after; lowerIsBetter says which way is a regression.
type comparison struct {
	name          string
	before, after float64
	unit          string
}

// regressionMargin is the change under which a figure is reported as unchanged: run-to-run
// noise on a shared 2-CPU machine is of this order for latencies (see the same-code reruns in
// docs/benchmarks.md).
const regressionMargin = 0.10

func (c comparison) change() string {
	if c.before == 0 || math.IsNaN(c.before) || math.IsNaN(c.after) {
		return "—"
	}
	rel := (c.after - c.before) / c.before
	word := "within noise"
	switch {
	case rel > regressionMargin:
		word = "**worse**"
	case rel < -regressionMargin:
		word = "better"
	}
	return fmt.Sprintf("%+.0f %% (%s)", rel*100, word)
}

func (c comparison) format(v float64) string {
	if math.IsNaN(v) || v == 0 {
		return "—"
	}
	switch c.unit {
	case "ms":
		return millis(Seconds(v / 1000))
	case "MiB":
		return fmt.Sprintf("%.1f MiB", v)
	}
	return fmt.Sprintf("%.2f %s", v, c.unit)
}

// sizeComparisons lists the figures of one size that must not regress.
func sizeComparisons(before, after SizeResult) []comparison {
	lat := func(name string, f func(SizeResult) Seconds) comparison {
		return comparison{name: name, before: f(before).Millis(), after: f(after).Millis(), unit: "ms"}
	}
	mem := func(name string, f func(SizeResult) int64) comparison {
		return comparison{name: name, before: float64(f(before)) / (1 << 20), after: float64(f(after)) / (1 << 20), unit: "MiB"}
	}
	return []comparison{
		lat("Selector request p50, cache on", func(s SizeResult) Seconds { return s.CacheOn.ViaAPIServer.P50 }),
		lat("Selector request p99, cache on", func(s SizeResult) Seconds { return s.CacheOn.ViaAPIServer.P99 }),
		lat("Selector request p50, cache off", func(s SizeResult) Seconds { return s.CacheOff.ViaAPIServer.P50 }),
		lat("Selector request p99, cache off", func(s SizeResult) Seconds { return s.CacheOff.ViaAPIServer.P99 }),
		lat("Adapter's own time per request, cache off", func(s SizeResult) Seconds { return s.CacheOff.SelfTime }),
		lat("Adapter CPU per selector request, cache off", func(s SizeResult) Seconds { return s.CacheOff.CPUPerRequest }),
		lat("`kubectl top pods -A`, median, cache on", func(s SizeResult) Seconds { return s.CacheOn.TopPods.P50 }),
		lat("… kubectl's own time on a replayed answer, median", func(s SizeResult) Seconds { return s.CacheOn.TopPodsReplayed.P50 }),
		lat("PodMetrics of all namespaces (client-go), median, cache on", func(s SizeResult) Seconds { return s.CacheOn.PodMetricsAPI.P50 }),
		lat("Adapter CPU per PodMetrics list of all namespaces, cache off", func(s SizeResult) Seconds { return s.CacheOff.CPUPerPodMetricsList }),
		lat("`kubectl top nodes`, median, cache on", func(s SizeResult) Seconds { return s.CacheOn.TopNodes.P50 }),
		mem("Adapter RSS after start-up", func(s SizeResult) int64 { return s.CacheOn.RSS.AfterStart }),
		mem("Adapter RSS after the latency measurements", func(s SizeResult) int64 { return s.CacheOn.RSS.AfterRequests }),
		mem("Adapter peak RSS (VmHWM)", func(s SizeResult) int64 { return s.CacheOn.RSS.Peak }),
	}
}

// renderBeforeAfter shows every size measured in both runs, figure by figure.
func renderBeforeAfter(p printer, r *Results) {
	if r.Before == nil {
		return
	}
	b := r.Before
	var shown bool
	for _, after := range r.Sizes {
		before := sizeOf(b, after.Pods)
		if before == nil {
			continue
		}
		if !shown {
			p("### Before and after\n\n")
			p("Each figure of this run beside the same figure of the previous full run (docs/benchmarks.json: promadapter %s, measured %s UTC), at every size both measured. A change beyond ±10 %% is marked; on this shared 2-CPU machine a rerun of the same code moves latencies by about that much, so only a change well beyond it, or one that repeats, is a regression. The machine's load average is given for each run.\n\n",
				b.Versions.Promadapter, b.Started.Format("2006-01-02 15:04"))
			shown = true
		}
		p("**%s pods** (before: %s nodes, load %.1f → %.1f; after: %s nodes, load %.1f → %.1f)\n\n",
			count(after.Pods), count(before.Nodes), before.LoadBefore, before.LoadAfter, count(after.Nodes), after.LoadBefore, after.LoadAfter)
		p("| Figure | Before | After | Change |\n|---|---:|---:|---|\n")
		for _, c := range sizeComparisons(*before, after) {
			p("| %s | %s | %s | %s |\n", c.name, c.format(c.before), c.format(c.after), c.change())
		}
		p("\n")
	}
	for _, d := range r.Discovery {
		for _, old := range b.Discovery {
			if old.Series == d.Series && d.Series == targetDiscoverySeries {
				c := comparison{name: "Adapter RSS after discovering 1,000,000 series", before: float64(old.RSS) / (1 << 20), after: float64(d.RSS) / (1 << 20), unit: "MiB"}
				p("Discovery at %s series: adapter RSS %s before, %s after, %s; first pass %s before, %s after.\n\n",
					count(d.Series), c.format(c.before), c.format(c.after), c.change(), millis(old.Duration), millis(d.Duration))
			}
		}
	}
}
