package check

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/promadapter/promadapter/pkg/config"
)

// Report is what a check found. -o json prints it as it is; the text output says the same in
// words.
type Report struct {
	// Config names the file checked ("<embedded default>" for the default).
	Config string `json:"config"`
	// Summary counts the config's rules and backends; nil when the config does not load.
	Summary *Summary `json:"summary,omitempty"`
	// Errors are the config's own errors (file:line:column, the fix) and those that stop the
	// online check as a whole (a rule that does not compile against the cluster).
	Errors []Finding `json:"errors,omitempty"`
	// Warnings are the config's warnings.
	Warnings []Finding `json:"warnings,omitempty"`
	// Online is what the online check was run against; nil offline.
	Online *Online `json:"online,omitempty"`
	// Rules has one entry per rule (custom, external, then resourceRules.cpu and .memory) when
	// the check ran online.
	Rules []RuleReport `json:"rules,omitempty"`
}

// Summary counts the rules and backends of a config that loads.
type Summary struct {
	CustomRules   int  `json:"customRules"`
	ExternalRules int  `json:"externalRules"`
	ResourceRules bool `json:"resourceRules"`
	// Backends counts the config's backends and the flags' one ("default").
	Backends int `json:"backends"`
}

// Online says what the online check asked.
type Online struct {
	Backends []BackendInfo `json:"backends"`
	// Cluster is the API server resources were checked against; empty without --kubeconfig.
	Cluster string `json:"cluster,omitempty"`
	// ResourcesChecked is false without --kubeconfig: resource names are then assumed to exist.
	ResourcesChecked bool     `json:"resourcesChecked"`
	Notes            []string `json:"notes,omitempty"`
	// MetricsMaxAge is discovery's look-back (--metrics-max-age), as serve's discovery uses it.
	MetricsMaxAge string `json:"metricsMaxAge"`
}

// BackendInfo is one backend, its URL without secrets.
type BackendInfo struct {
	Name string `json:"name"`
	URL  string `json:"url,omitempty"`
	// Checked is false for the flags' backend without --prometheus-url.
	Checked bool `json:"checked"`
}

// Finding is one problem, placed in the file when its place is known.
type Finding struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

func findingOf(p config.Problem) Finding {
	return Finding{File: p.Source, Line: p.Line, Column: p.Column, Path: p.Path, Message: p.Message}
}

// String is FILE:LINE:COLUMN: PATH: MESSAGE, as the config loader writes problems.
func (f Finding) String() string {
	if f.File == "" {
		return f.Message
	}
	return config.Problem{Source: f.File, Line: f.Line, Column: f.Column, Path: f.Path, Message: f.Message}.String()
}

// RuleReport is what one rule does against the backend it names.
type RuleReport struct {
	// Kind is custom, external or resource; Index the rule's position in its list (for
	// resource rules, Name is cpu or memory and Index is 0).
	Kind  string `json:"kind"`
	Index int    `json:"index"`
	Name  string `json:"name,omitempty"`
	File  string `json:"file"`
	Line  int    `json:"line,omitempty"`
	// SeriesQuery is the rule's discovery selector (custom and external rules).
	SeriesQuery string `json:"seriesQuery,omitempty"`
	Backend     string `json:"backend"`
	// Checked is true when the rule was checked against its backend: false without
	// --prometheus-url for a rule on the default backend, and for resourceRules.
	Checked bool `json:"checked"`
	// Series is how many series the seriesQuery matches now; SeriesNames the names discovery
	// found within --metrics-max-age, each with its series now and the metric it becomes.
	Series      int          `json:"series"`
	SeriesNames []SeriesName `json:"seriesNames,omitempty"`
	// Metrics are the metrics the rule serves, as discovery registers them.
	Metrics []Metric `json:"metrics,omitempty"`
	// UnmappedLabels are the series' labels that name no resource, with the reason.
	UnmappedLabels []LabelNote `json:"unmappedLabels,omitempty"`
	// Sample is the query a sample request sends, and its answer.
	Sample   *Sample  `json:"sample,omitempty"`
	Errors   []string `json:"errors,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	Notes    []string `json:"notes,omitempty"`
}

// SeriesName is one series name a rule's seriesQuery matched.
type SeriesName struct {
	Name string `json:"name"`
	// Series is the number of series of this name matching the seriesQuery now (with a sample
	// within Prometheus' lookback, 5 minutes by default).
	Series int `json:"series"`
	// Metric is the metric name the rule serves for it; empty when seriesFilters or
	// name.matches leave it out.
	Metric string `json:"metric,omitempty"`
}

// Metric is one metric a rule serves.
type Metric struct {
	Name string `json:"name"`
	// Series is the series name the metric is queried with.
	Series string `json:"series"`
	// Resources are the resources the metric is served for (custom rules).
	Resources []Resource `json:"resources,omitempty"`
	// ServedBy names the rule that serves the metric instead, when an earlier rule serves the
	// same name (for the same resource): this rule's series are then never queried for it.
	ServedBy string `json:"servedBy,omitempty"`
}

// Resource is a resource a custom metric is served for.
type Resource struct {
	Resource   string `json:"resource"`
	Namespaced bool   `json:"namespaced"`
}

// LabelNote is a label of a rule's series that maps to no resource.
type LabelNote struct {
	Label string `json:"label"`
	// Resource is the resource the rule's mapping names for the label, when it names one.
	Resource string `json:"resource,omitempty"`
	Reason   string `json:"reason"`
}

// Sample is the query of one sample request, as serve renders it, run once.
type Sample struct {
	Metric string `json:"metric"`
	// Resource, Namespace and Objects describe the request (Resource is empty for external
	// metrics): a namespace and up to two objects found in the rule's series.
	Resource  string   `json:"resource,omitempty"`
	Namespace string   `json:"namespace,omitempty"`
	Objects   []string `json:"objects,omitempty"`
	PromQL    string   `json:"promql"`
	// Series is the number of series in the answer; ObjectsWithValue how many of Objects one
	// of them names (custom metrics); Bytes the size of the answer's body; Seconds the time
	// from sending the query to the decoded answer.
	Series           int     `json:"series"`
	ObjectsWithValue int     `json:"objectsWithValue,omitempty"`
	Bytes            int64   `json:"bytes"`
	Seconds          float64 `json:"seconds"`
	Error            string  `json:"error,omitempty"`
}

func newReport(cfg *config.Config) *Report {
	rep := &Report{Config: cfg.Source, Summary: &Summary{
		CustomRules: len(cfg.Rules), ExternalRules: len(cfg.ExternalRules),
		ResourceRules: cfg.ResourceRules != nil, Backends: len(cfg.Backends) + 1,
	}}
	for _, w := range cfg.Warnings {
		rep.Warnings = append(rep.Warnings, findingOf(w))
	}
	return rep
}

// counts returns the number of errors and warnings in the report.
func (r *Report) counts() (errs, warnings int) {
	errs, warnings = len(r.Errors), len(r.Warnings)
	for _, rule := range r.Rules {
		errs += len(rule.Errors)
		warnings += len(rule.Warnings)
	}
	return errs, warnings
}

func (r *Report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// writeHeader writes the offline result as check-config always has: each config warning on
// errOut as "warning: ...", then one "SOURCE: ok: ..." line on out.
func (r *Report) writeHeader(out, errOut io.Writer) {
	for _, w := range r.Warnings {
		fmt.Fprintf(errOut, "warning: %s\n", w)
	}
	s := r.Summary
	fmt.Fprintf(out, "%s: ok: %d custom rules, %d external rules, resource rules: %v, backends: %d\n",
		r.Config, s.CustomRules, s.ExternalRules, s.ResourceRules, s.Backends)
}

// where is a rule's place for people: "rules.yaml:12", or the file alone.
func (r *RuleReport) where() string {
	if r.Line > 0 {
		return r.File + ":" + strconv.Itoa(r.Line)
	}
	return r.File
}

// title names a rule for people: "custom rule 2", "resourceRules.cpu".
func (r *RuleReport) title() string {
	if r.Kind == kindResource {
		return "resourceRules." + r.Name
	}
	return fmt.Sprintf("%s rule %d", r.Kind, r.Index)
}

// ref names a rule and its place for people: "custom rule 2 (rules.yaml:12)".
func (r *RuleReport) ref() string { return r.title() + " (" + r.where() + ")" }

// seconds rounds a duration for the report.
func seconds(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Second)
}
