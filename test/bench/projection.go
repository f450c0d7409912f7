package main

// renderProjection fits a straight line through the measured sizes' figures and states what it
// gives at issue #18's target size when the run did not measure that size: memory and list
// times grow with the pods the adapter caches and answers, so a line is the model; the fit's
// worst residual is printed with it so a reader can judge it.
func renderProjection(p printer, r *Results) {
	if len(r.Sizes) < 2 || sizeOf(r, targetScalePods) != nil {
		return
	}
	type figure struct {
		name string
		unit string
		of   func(SizeResult) float64
	}
	figures := []figure{
		{"Adapter RSS after the latency measurements", "MiB", func(s SizeResult) float64 { return float64(s.CacheOn.RSS.AfterRequests) / (1 << 20) }},
		{"Adapter peak RSS (VmHWM)", "MiB", func(s SizeResult) float64 { return float64(max(s.CacheOn.RSS.Peak, s.CacheOff.RSS.Peak)) / (1 << 20) }},
		{"`kubectl top pods -A`, median, cache on", "ms", func(s SizeResult) float64 { return s.CacheOn.TopPods.P50.Millis() }},
		{"kubectl's own time on the replayed answer, median", "ms", func(s SizeResult) float64 { return s.CacheOn.TopPodsReplayed.P50.Millis() }},
	}
	p("**Projection to %s pods** (not measured in this report): a least-squares line through the %d sizes measured.\n\n", count(targetScalePods), len(r.Sizes))
	p("| Figure | Projected at %s pods | Slope per 10,000 pods | Worst residual of the fit |\n|---|---:|---:|---:|\n", count(targetScalePods))
	for _, f := range figures {
		xs, ys := make([]float64, len(r.Sizes)), make([]float64, len(r.Sizes))
		for i, s := range r.Sizes {
			xs[i], ys[i] = float64(s.Pods), f.of(s)
		}
		slope, intercept, residual := fitLine(xs, ys)
		p("| %s | %.0f %s | %.1f %s | %.1f %s |\n", f.name, intercept+slope*targetScalePods, f.unit, slope*10_000, f.unit, residual, f.unit)
	}
	p("\n")
}

// fitLine returns the least-squares line y = slope·x + intercept through the points and the
// largest absolute distance of a point from it.
func fitLine(xs, ys []float64) (slope, intercept, worst float64) {
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx, sy, sxx, sxy = sx+xs[i], sy+ys[i], sxx+xs[i]*xs[i], sxy+xs[i]*ys[i]
	}
	if d := n*sxx - sx*sx; d != 0 {
		slope = (n*sxy - sx*sy) / d
	}
	intercept = (sy - slope*sx) / n
	for i := range xs {
		worst = max(worst, abs(ys[i]-(slope*xs[i]+intercept)))
	}
	return slope, intercept, worst
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}
