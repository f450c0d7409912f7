package check

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// listed is how many series names and metrics a rule's block lists; -o json lists all.
const listed = 10

// writeOnline writes what the online check found, one block per rule, then the totals.
func (r *Report) writeOnline(w io.Writer) {
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	if o := r.Online; o != nil {
		fmt.Fprintln(w)
		for _, b := range o.Backends {
			if b.Checked {
				fmt.Fprintf(w, "backend %s: %s\n", b.Name, b.URL)
			} else {
				fmt.Fprintf(w, "backend %s: not checked (no --prometheus-url)\n", b.Name)
			}
		}
		switch {
		case !o.ResourcesChecked:
			fmt.Fprintln(w, "cluster: none: resources not checked: no --kubeconfig")
		case o.Cluster != "":
			fmt.Fprintf(w, "cluster: %s\n", o.Cluster)
		}
		fmt.Fprintf(w, "discovery looks back %s (--metrics-max-age)\n", o.MetricsMaxAge)
		for _, n := range o.Notes {
			fmt.Fprintf(w, "note: %s\n", n)
		}
	}
	for i := range r.Rules {
		fmt.Fprintln(w)
		r.Rules[i].write(w)
	}
	errs, warnings := r.counts()
	fmt.Fprintf(w, "\n%s, %s\n", plural(errs, "error"), plural(warnings, "warning"))
}

func (r *RuleReport) write(w io.Writer) {
	fmt.Fprintf(w, "%s (%s), backend %s\n", r.title(), r.where(), r.Backend)
	if r.SeriesQuery != "" {
		fmt.Fprintf(w, "  seriesQuery: %s\n", r.SeriesQuery)
	}
	if r.Checked {
		r.writeSeries(w)
		r.writeMetrics(w)
	}
	r.writeLabels(w)
	if s := r.Sample; s != nil {
		s.write(w)
	}
	for _, m := range r.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", m)
	}
	for _, m := range r.Errors {
		fmt.Fprintf(w, "  error: %s\n", m)
	}
	for _, m := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", m)
	}
}

func (r *RuleReport) writeSeries(w io.Writer) {
	if len(r.SeriesNames) == 0 {
		return
	}
	fmt.Fprintf(w, "  matches %s now, of %s:\n", plural(r.Series, "series"), plural(len(r.SeriesNames), "name"))
	for i, s := range r.SeriesNames {
		if i == listed {
			fmt.Fprintf(w, "    and %d more (-o json lists every one)\n", len(r.SeriesNames)-listed)
			break
		}
		becomes := "left out by seriesFilters or name.matches"
		if s.Metric != "" {
			becomes = "metric " + s.Metric
		}
		fmt.Fprintf(w, "    %s: %s, %s\n", s.Name, plural(s.Series, "series"), becomes)
	}
}

func (r *RuleReport) writeMetrics(w io.Writer) {
	for i, m := range r.Metrics {
		if i == listed {
			fmt.Fprintf(w, "  and %d more metrics (-o json lists every one)\n", len(r.Metrics)-listed)
			break
		}
		var resources []string
		for _, res := range m.Resources {
			if res.Namespaced {
				resources = append(resources, res.Resource)
			} else {
				resources = append(resources, res.Resource+" (cluster-scoped)")
			}
		}
		line := "  serves " + strconv.Quote(m.Name)
		if len(resources) > 0 {
			line += " for " + strings.Join(resources, ", ")
		}
		if m.ServedBy != "" {
			line += "; " + m.ServedBy + " serves it first"
		}
		fmt.Fprintln(w, line)
	}
}

// writeLabels writes the labels that map to no resource, grouped by reason.
func (r *RuleReport) writeLabels(w io.Writer) {
	if len(r.UnmappedLabels) == 0 {
		return
	}
	byReason := map[string][]string{}
	var reasons []string
	for _, l := range r.UnmappedLabels {
		if _, ok := byReason[l.Reason]; !ok {
			reasons = append(reasons, l.Reason)
		}
		byReason[l.Reason] = append(byReason[l.Reason], strconv.Quote(l.Label))
	}
	sort.Strings(reasons)
	fmt.Fprintln(w, "  labels that map to no resource:")
	for _, reason := range reasons {
		fmt.Fprintf(w, "    %s: %s\n", strings.Join(byReason[reason], ", "), reason)
	}
}

func (s *Sample) write(w io.Writer) {
	what := "external metric " + strconv.Quote(s.Metric)
	if s.Resource != "" {
		what = fmt.Sprintf("%q of %s", s.Metric, s.Resource)
		if len(s.Objects) > 0 {
			what += " " + strings.Join(quoteAll(s.Objects), ", ")
		}
	}
	if s.Namespace != "" {
		what += " in namespace " + strconv.Quote(s.Namespace)
	}
	fmt.Fprintf(w, "  sample request: %s\n", what)
	if s.PromQL != "" {
		fmt.Fprintf(w, "    query (%s): %s\n", plural(len(s.PromQL), "byte"), s.PromQL)
	}
	if s.Error != "" {
		fmt.Fprintf(w, "    not answered: %s\n", s.Error)
		return
	}
	answer := fmt.Sprintf("    answer: %s, %s, %.1f ms", plural(s.Series, "series"), plural(int(s.Bytes), "byte"), s.Seconds*1000)
	if s.Resource != "" {
		answer += fmt.Sprintf("; %d of the %d %s asked for have a value", s.ObjectsWithValue, len(s.Objects), s.Resource)
	}
	fmt.Fprintln(w, answer)
}

// plural is "1 error", "2 errors"; "series" stays "series".
func plural(n int, noun string) string {
	if n == 1 || strings.HasSuffix(noun, "s") {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}
