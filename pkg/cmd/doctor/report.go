package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Status is a check's outcome. Only Fail makes `doctor` exit non-zero: Warn is something that
// works today but is fragile or unverified (insecureSkipTLSVerify, a certificate about to
// expire), Skip a check that could not run from where doctor runs, with the reason.
type Status string

const (
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
	Skip Status = "skip"
)

// mark is the status as one character for the text output.
func (s Status) mark() string {
	switch s {
	case Pass:
		return "✓"
	case Warn:
		return "!"
	case Fail:
		return "✗"
	}
	return "-"
}

// Check is one finding: what was checked, the outcome in one line, the evidence that led to it
// (objects, conditions, answers, timings) and, unless it passed, the exact fix.
type Check struct {
	Section  string   `json:"section"`
	Name     string   `json:"name"`
	Status   Status   `json:"status"`
	Summary  string   `json:"summary"`
	Evidence []string `json:"evidence,omitempty"`
	Fix      string   `json:"fix,omitempty"`
}

// The sections, in the order a request travels: the aggregation layer routes to the adapter,
// over TLS, the adapter acts with its ServiceAccount's rights, reads Prometheus with its rules,
// and the answer comes back through kube-apiserver.
const (
	sectionAPIServices = "APIServices"
	sectionTLS         = "TLS and the aggregation layer"
	sectionRBAC        = "RBAC"
	sectionPrometheus  = "Prometheus"
	sectionRules       = "Rules"
	sectionEndToEnd    = "End to end, through kube-apiserver"
)

// Report is everything one run found.
type Report struct {
	// Cluster is kube-apiserver's URL; Adapter the adapter's Service ("namespace/name");
	// ServiceAccount its identity, with where doctor found it; Prometheus the (redacted) URL
	// checked, with where it came from.
	Cluster        string  `json:"cluster"`
	Adapter        string  `json:"adapter"`
	ServiceAccount string  `json:"serviceAccount"`
	Prometheus     string  `json:"prometheus"`
	Checks         []Check `json:"checks"`
	Counts         Counts  `json:"counts"`
}

// Counts are the number of checks per status.
type Counts struct {
	Pass int `json:"pass"`
	Warn int `json:"warn"`
	Fail int `json:"fail"`
	Skip int `json:"skip"`
}

// add appends checks and counts them.
func (r *Report) add(checks ...Check) {
	for _, c := range checks {
		r.Checks = append(r.Checks, c)
		switch c.Status {
		case Pass:
			r.Counts.Pass++
		case Warn:
			r.Counts.Warn++
		case Fail:
			r.Counts.Fail++
		default:
			r.Counts.Skip++
		}
	}
}

// WriteJSON writes the report as one indented JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// WriteText writes the report for a person: a header, then per section one line per check
// (mark, name, summary), its evidence and its fix indented below, and a closing count.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "cluster %s\nadapter Service %s, ServiceAccount %s\nPrometheus %s\n", r.Cluster, r.Adapter, r.ServiceAccount, r.Prometheus)
	section := ""
	for _, c := range r.Checks {
		if c.Section != section {
			section = c.Section
			fmt.Fprintf(&b, "\n%s\n", section)
		}
		fmt.Fprintf(&b, "%s %s: %s\n", c.Status.mark(), c.Name, c.Summary)
		for _, e := range c.Evidence {
			writeIndented(&b, "    ", "    ", e)
		}
		if c.Fix != "" && c.Status != Pass {
			writeIndented(&b, "    fix: ", "         ", c.Fix)
		}
	}
	fmt.Fprintf(&b, "\n%d passed, %d warned, %d failed, %d skipped\n", r.Counts.Pass, r.Counts.Warn, r.Counts.Fail, r.Counts.Skip)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeIndented writes text with first before its first line and rest before the others.
func writeIndented(b *strings.Builder, first, rest, text string) {
	for i, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if i == 0 {
			b.WriteString(first)
		} else {
			b.WriteString(rest)
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
}
