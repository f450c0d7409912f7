package explain

import (
	"fmt"
	"sort"
	"strings"
)

// conclude tells whether t served anything and, when it did not, the precise reason, from
// what the serving code recorded. The first failure on the way decides: no rule, no object,
// a query that failed, then objects without a series.
func conclude(t *Trace) (bool, *Reason) {
	if t.Status.Code/100 == 2 && len(t.Values) > 0 {
		return true, nil
	}
	return false, reasonOf(t)
}

func reasonOf(t *Trace) *Reason {
	if t.NoRule != nil && !t.Forwarded {
		return noRuleReason(t.NoRule, t.Backends)
	}
	if o := t.Objects; o != nil {
		if o.Error != "" {
			return &Reason{ReasonListObjects, fmt.Sprintf("the %s the request covers could not be listed: %s", o.Resource, o.Error)}
		}
		if len(o.Names) == 0 {
			if r := leftOutReason(t); r != nil {
				return r // e.g. the pods selected are not Running
			}
			return &Reason{ReasonNoObjects, noObjectsText(o)}
		}
	}
	for _, q := range t.Queries {
		if q.Error != "" {
			return queryReason(q)
		}
	}
	if r := leftOutReason(t); r != nil {
		return r
	}
	if len(t.Queries) > 0 && kept(t) == 0 && t.Status.Code != 400 {
		return &Reason{ReasonNoSeries, "the query matched no series: " + lookbackText(t.Queries[0])}
	}
	switch {
	case t.Status.Code == 400:
		return &Reason{ReasonRequest, t.Status.Message}
	case t.Status.Message != "":
		return &Reason{ReasonOther, t.Status.Message}
	}
	return &Reason{ReasonOther, fmt.Sprintf("the answer (HTTP %d) holds no value", t.Status.Code)}
}

// noRuleReason says why no rule serves the metric: discovery has not run or cannot reach its
// backend, the metric's series lack the label of the resource asked for, or no rule makes
// that name.
func noRuleReason(n *NoRule, backends []Backend) *Reason {
	what := fmt.Sprintf("metric %q", n.Metric)
	if n.Resource == "" {
		what = fmt.Sprintf("external metric %q", n.Metric)
	}
	if !n.DiscoveryReady {
		return &Reason{ReasonDiscovery, fmt.Sprintf("%s is not known yet: discovery has not completed its first pass (it lists the series of every rule); ask again in a few seconds", what)}
	}
	if len(n.DiscoveryFailing) > 0 {
		for _, b := range backends {
			if b.Error != "" {
				return &Reason{ReasonUnreachable, fmt.Sprintf("%s is not known: discovery cannot list series, since backend %q at %s does not answer (%s): %s",
					what, b.Name, b.URL, b.Cause, b.Error)}
			}
		}
	}
	if len(n.Elsewhere) > 0 {
		e := n.Elsewhere[0]
		others := make([]string, 0, len(n.Elsewhere))
		for _, o := range n.Elsewhere {
			others = append(others, o.Resource)
		}
		if e.Label == "" {
			return &Reason{ReasonNoLabel, fmt.Sprintf("%s is served for %s, not for %s: rule %s maps no label to %s; add one to its resources (overrides or template)",
				what, strings.Join(others, ", "), n.Resource, e.Rule.ID, n.Resource)}
		}
		return &Reason{ReasonNoLabel, fmt.Sprintf("%s is served for %s, not for %s: rule %s maps %s to label %q, and its series %s carry no %q label (series of a container runtime or a node agent often name only the namespace); "+
			"add the label to the series (relabeling), or ask for the metric of %s",
			what, strings.Join(others, ", "), n.Resource, e.Rule.ID, n.Resource, e.Label, e.Rule.Series, e.Label, strings.Join(others, " or "))}
	}
	text := fmt.Sprintf("no rule serves %s", what)
	if n.Resource != "" {
		text += " for " + n.Resource
	}
	switch {
	case len(n.Close) > 0:
		text += fmt.Sprintf("; close names served: %s", strings.Join(n.Close, ", "))
	case n.Served == 0:
		text += "; nothing is served for it: check that a rule's seriesQuery matches series carrying a label that names it"
	default:
		text += fmt.Sprintf(" (%d names are served for it, none close)", n.Served)
	}
	if len(n.DiscoveryFailing) > 0 {
		text += fmt.Sprintf("; discovery is failing for %d rule(s), first: %s", len(n.DiscoveryFailing), n.DiscoveryFailing[0])
	}
	return &Reason{ReasonNoRule, text}
}

func noObjectsText(o *Objects) string {
	where := "in every namespace"
	if o.Namespace != "" {
		where = fmt.Sprintf("in namespace %q", o.Namespace)
	}
	if o.Selector == "" {
		return fmt.Sprintf("there are no %s %s for the request (a metrics.k8s.io request covers Running pods only)", o.Resource, where)
	}
	return fmt.Sprintf("the label selector %q selects no %s %s", o.Selector, o.Resource, where)
}

// queryReason says why a failed query serves nothing: an unreachable or slow backend, or an
// error it answered.
func queryReason(q Query) *Reason {
	switch q.Cause {
	case "unreachable", "timeout", "canceled":
		return &Reason{ReasonUnreachable, fmt.Sprintf("backend %q at %s did not answer the %s query (%s): %s", q.Backend, q.URL, q.What, q.Cause, q.Error)}
	}
	cause := q.Cause
	if cause == "" {
		cause = "error"
	}
	return &Reason{ReasonBackend, fmt.Sprintf("backend %q at %s failed the %s query (%s): %s", q.Backend, q.URL, q.What, cause, q.Error)}
}

// leftOutReason explains objects that got no value: the reason most of them share, with the
// objects named.
func leftOutReason(t *Trace) *Reason {
	if len(t.LeftOut) == 0 {
		return nil
	}
	byCode := map[string][]LeftOut{}
	for _, l := range t.LeftOut {
		byCode[l.Code] = append(byCode[l.Code], l)
	}
	codes := make([]string, 0, len(byCode))
	for c := range byCode {
		codes = append(codes, c)
	}
	sort.Slice(codes, func(i, j int) bool {
		if len(byCode[codes[i]]) != len(byCode[codes[j]]) {
			return len(byCode[codes[i]]) > len(byCode[codes[j]])
		}
		return codes[i] < codes[j]
	})
	top := byCode[codes[0]]
	objects := make([]string, 0, len(top))
	for _, l := range top {
		objects = append(objects, l.Object)
	}
	text := fmt.Sprintf("%s: %s", objects[0], top[0].Reason)
	if len(objects) > 1 {
		text = fmt.Sprintf("%s get no value; %s", listed(objects, 5), text)
	}
	if top[0].Code == ReasonNoSeries {
		for _, q := range t.Queries {
			text += "; " + lookbackText(q)
			break
		}
	}
	if len(codes) > 1 {
		text += fmt.Sprintf(" (%d more left out for other reasons)", len(t.LeftOut)-len(top))
	}
	return &Reason{top[0].Code, text}
}

// lookbackText says which samples a query can see.
func lookbackText(q Query) string {
	if q.Lookback == "" {
		return "the query reads each series' latest sample within the backend's lookback delta (5m by default in Prometheus)"
	}
	return fmt.Sprintf("the query reads the last %s of samples (its longest range), so a series with fewer samples than it needs in that window (rate needs two) yields nothing", q.Lookback)
}

// kept counts the samples the queries kept for the objects covered.
func kept(t *Trace) int {
	n := 0
	for _, q := range t.Queries {
		n += len(q.Samples) + q.Omitted
	}
	return n
}

// listed names items, at most max of them.
func listed(items []string, max int) string {
	if len(items) <= max {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:max], ", "), len(items)-max)
}

// CloseNames returns up to n of candidates nearest to name: those within an edit distance of
// a third of name's length, or sharing a word (between underscores) of 3 or more letters
// other than the common ones (per, second, total...), nearest first.
func CloseNames(name string, candidates []string, n int) []string {
	words := map[string]bool{}
	for _, w := range strings.Split(name, "_") {
		if len(w) >= 3 && !commonWords[w] {
			words[w] = true
		}
	}
	type scored struct {
		name     string
		distance int
	}
	var close []scored
	for _, c := range candidates {
		if c == name {
			continue
		}
		d := editDistance(name, c)
		shares := false
		for _, w := range strings.Split(c, "_") {
			if words[w] {
				shares = true
				break
			}
		}
		if d <= len(name)/3+1 || shares {
			close = append(close, scored{c, d})
		}
	}
	sort.Slice(close, func(i, j int) bool {
		if close[i].distance != close[j].distance {
			return close[i].distance < close[j].distance
		}
		return close[i].name < close[j].name
	})
	out := make([]string, 0, min(n, len(close)))
	for _, c := range close[:min(n, len(close))] {
		out = append(out, c.name)
	}
	return out
}

// commonWords are the words of metric names that say nothing of what is measured.
var commonWords = map[string]bool{
	"per": true, "second": true, "seconds": true, "total": true, "bytes": true, "count": true, "sum": true,
	"ratio": true, "rate": true, "info": true, "usage": true, "avg": true, "max": true, "min": true,
}

// editDistance is the Levenshtein distance of a and b, over bytes (metric names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
