package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Plot geometry, in SVG user units: two rows of two panels.
const (
	plotWidth   = 920
	plotHeight  = 680
	panelWidth  = 400
	panelHeight = 200
	panelTop    = 50
	panelLeft   = 60
	panelGap    = 60
	// rowHeight is the distance between the two rows' panel tops (panel, axis labels, legend).
	rowHeight = 320
)

// line is one data series of a panel; its values are in the panel's unit, one per size (NaN
// where there is no value).
type line struct {
	label  string
	color  string
	dashed bool
	values []float64
}

// panel is one chart: lines over the measured sizes, and an optional target drawn as a
// horizontal rule.
type panel struct {
	title       string
	unit        string
	lines       []line
	target      float64
	targetLabel string
}

// prometheusAdapterPoints are prometheus-adapter's published figures by pod count (see
// renderReference); sizes without one are left out of its line.
var prometheusAdapterPoints = struct{ rssMiB, topPodsMillis map[int]float64 }{
	rssMiB:        map[int]float64{1_000: 104, 10_000: 506},
	topPodsMillis: map[int]float64{1_000: 101, 10_000: 557},
}

// renderPlot draws the cost curve: selector latency, `kubectl top pods -A`, adapter memory and
// adapter CPU against pod count, as a standalone SVG (no scripts, no external resources), with
// prometheus-adapter's published points where they exist.
func renderPlot(r *Results) string {
	sizes := make([]string, len(r.Sizes))
	pick := func(f func(SizeResult) float64) []float64 {
		out := make([]float64, len(r.Sizes))
		for i, s := range r.Sizes {
			out[i] = f(s)
			if out[i] == 0 {
				out[i] = math.NaN() // not measured (a run from before the figure existed)
			}
		}
		return out
	}
	reference := func(points map[int]float64) []float64 {
		return pick(func(s SizeResult) float64 { return points[s.Pods] })
	}
	for i, s := range r.Sizes {
		sizes[i] = count(s.Pods)
	}
	latency := panel{
		title: "Selector request through kube-apiserver (ms)",
		unit:  "ms",
		lines: []line{
			{label: "p99, cache off", color: "#d62728", values: pick(func(s SizeResult) float64 { return s.CacheOff.ViaAPIServer.P99.Millis() })},
			{label: "p50, cache off", color: "#ff9896", values: pick(func(s SizeResult) float64 { return s.CacheOff.ViaAPIServer.P50.Millis() })},
			{label: "p99, cache on", color: "#1f77b4", values: pick(func(s SizeResult) float64 { return s.CacheOn.ViaAPIServer.P99.Millis() })},
			{label: "p50, cache on", color: "#aec7e8", values: pick(func(s SizeResult) float64 { return s.CacheOn.ViaAPIServer.P50.Millis() })},
			{label: "raw PromQL p50", color: "#2ca02c", dashed: true, values: pick(func(s SizeResult) float64 { return s.CacheOff.RawPromQL.P50.Millis() })},
		},
		target:      ms(targetP99),
		targetLabel: "target p99 10 ms (prometheus-adapter: 193 ms p50)",
	}
	top := panel{
		title: "kubectl top pods -A, median (ms)",
		unit:  "ms",
		lines: []line{
			{label: "cache on", color: "#1f77b4", values: pick(func(s SizeResult) float64 { return s.CacheOn.TopPods.P50.Millis() })},
			{label: "cache off", color: "#d62728", values: pick(func(s SizeResult) float64 { return s.CacheOff.TopPods.P50.Millis() })},
			{label: "kubectl alone (replayed)", color: "#2ca02c", dashed: true, values: pick(func(s SizeResult) float64 { return s.CacheOn.TopPodsReplayed.P50.Millis() })},
			{label: "prometheus-adapter", color: "#7f7f7f", dashed: true, values: reference(prometheusAdapterPoints.topPodsMillis)},
		},
	}
	memory := panel{
		title: "Adapter resident memory (MiB)",
		unit:  "MiB",
		lines: []line{
			{label: "peak (VmHWM)", color: "#9467bd", values: pick(func(s SizeResult) float64 { return float64(s.CacheOn.RSS.Peak) / (1 << 20) })},
			{label: "after requests", color: "#8c564b", values: pick(func(s SizeResult) float64 { return float64(s.CacheOn.RSS.AfterRequests) / (1 << 20) })},
			{label: "after start-up", color: "#e377c2", values: pick(func(s SizeResult) float64 { return float64(s.CacheOn.RSS.AfterStart) / (1 << 20) })},
			{label: "prometheus-adapter", color: "#7f7f7f", dashed: true, values: reference(prometheusAdapterPoints.rssMiB)},
		},
		target:      float64(targetRSSAtScale) / (1 << 20),
		targetLabel: "target 256 MiB at 150k pods",
	}
	cpu := panel{
		title: "Adapter CPU time per request (ms of CPU)",
		unit:  "ms",
		lines: []line{
			{label: "selector, cache off", color: "#d62728", values: pick(func(s SizeResult) float64 { return s.CacheOff.CPUPerRequest.Millis() })},
			{label: "selector, cache on", color: "#1f77b4", values: pick(func(s SizeResult) float64 { return s.CacheOn.CPUPerRequest.Millis() })},
			{label: "top pods -A ÷ 100, cache off", color: "#ff7f0e", dashed: true, values: pick(func(s SizeResult) float64 { return s.CacheOff.CPUPerPodMetricsList.Millis() / 100 })},
		},
	}

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		plotWidth, plotHeight, plotWidth, plotHeight)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", plotWidth, plotHeight)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14" font-weight="bold">promadapter's cost by cluster size in pods (evenly spaced, not to scale), %s, %d CPUs</text>`+"\n",
		panelLeft, html.EscapeString(r.Started.Format("2006-01-02")), r.Machine.CPUs)
	drawPanel(&b, latency, sizes, panelLeft, panelTop)
	drawPanel(&b, top, sizes, panelLeft+panelWidth+panelGap, panelTop)
	drawPanel(&b, memory, sizes, panelLeft, panelTop+rowHeight)
	drawPanel(&b, cpu, sizes, panelLeft+panelWidth+panelGap, panelTop+rowHeight)
	b.WriteString("</svg>\n")
	return b.String()
}

// drawPanel draws one panel with its top left corner at (x0, y0): axes, grid, lines, target and
// legend.
func drawPanel(b *strings.Builder, p panel, sizes []string, x0, y0 int) {
	top := math.Max(p.target, 0)
	for _, l := range p.lines {
		for _, v := range l.values {
			if !math.IsNaN(v) {
				top = math.Max(top, v)
			}
		}
	}
	yMax := niceCeil(top * 1.05)
	x := func(i int) float64 {
		if len(sizes) == 1 {
			return float64(x0) + panelWidth/2
		}
		return float64(x0) + 20 + float64(i)*(panelWidth-40)/float64(len(sizes)-1)
	}
	y := func(v float64) float64 { return float64(y0) + panelHeight - v/yMax*panelHeight }

	fmt.Fprintf(b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", x0, y0-10, html.EscapeString(p.title))
	for _, tick := range ticks(yMax) {
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", x0, y(tick), x0+panelWidth, y(tick))
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", x0-5, y(tick)+4, trimFloat(tick))
	}
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>`+"\n", x0, y0, panelWidth, panelHeight)
	for i, s := range sizes {
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(i), y0+panelHeight+16, html.EscapeString(s))
	}
	if p.target > 0 {
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#000" stroke-dasharray="2,3"/>`+"\n", x0, y(p.target), x0+panelWidth, y(p.target))
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" font-size="10">%s</text>`+"\n", x0+panelWidth-4, y(p.target)-4, html.EscapeString(p.targetLabel))
	}
	for _, l := range p.lines {
		var points []string
		for i, v := range l.values {
			if math.IsNaN(v) {
				continue
			}
			points = append(points, fmt.Sprintf("%.1f,%.1f", x(i), y(v)))
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s: %s %s</title></circle>`+"\n",
				x(i), y(v), l.color, html.EscapeString(l.label), trimFloat(v), p.unit)
		}
		if len(points) == 0 {
			continue // nothing measured: no line, but the legend still names it
		}
		dash := ""
		if l.dashed {
			dash = ` stroke-dasharray="6,3"`
		}
		fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(points, " "), l.color, dash)
	}
	for i, l := range p.lines {
		ly := y0 + panelHeight + 34 + (i/3)*16
		lx := x0 + (i%3)*(panelWidth/3)
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", lx, ly-4, lx+18, ly-4, l.color)
		fmt.Fprintf(b, `<text x="%d" y="%d" font-size="11">%s</text>`+"\n", lx+22, ly, html.EscapeString(l.label))
	}
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (0 and below become 1).
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) {
		return 1
	}
	magnitude := math.Pow(10, math.Floor(math.Log10(v)))
	for _, step := range []float64{1, 2, 5, 10} {
		if v <= step*magnitude*(1+1e-9) {
			return step * magnitude
		}
	}
	return 10 * magnitude
}

// ticks returns five evenly spaced grid values from 0 to top.
func ticks(top float64) []float64 {
	out := make([]float64, 5)
	for i := range out {
		out[i] = top * float64(i) / 4
	}
	return out
}

// trimFloat prints v with at most two decimals and no trailing zeros.
func trimFloat(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
