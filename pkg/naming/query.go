// Package naming holds the rule engine: which series a rule covers, the metric names it
// serves, which labels name which Kubernetes resources, and the PromQL its templates render.
//
// Everything a request contributes to a query (namespace, object names, selector values) is
// escaped here, so a request can never widen a query beyond what it asked for.
package naming

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// QueryData is what a query template sees. Field names are prometheus-adapter's (plus Window).
type QueryData struct {
	// Series is the series (metric) name.
	Series string
	// LabelMatchers is a comma-separated list of escaped PromQL matchers. It is never empty for
	// custom and resource queries; for a cluster-wide external rule without a selector it is.
	LabelMatchers string
	// GroupBy is a comma-separated list of label names to aggregate by; may be empty.
	GroupBy string
	// GroupBySlice is GroupBy as a slice.
	GroupBySlice []string
	// LabelValuesByName maps a label to an escaped regex alternation of the values asked for.
	LabelValuesByName map[string]string
	// Window is the resource rules' window in Prometheus duration syntax (e.g. "5m").
	Window string
}

// QueryTemplate is a metricsQuery-style template, parsed once when the rule is compiled.
type QueryTemplate struct {
	src  string
	tmpl *template.Template
	// groups reports whether the template aggregates by .GroupBy or .GroupBySlice. When it
	// does, one query can serve every object of a namespace and results are filtered in the
	// adapter; when it does not, object names must be part of the query.
	groups bool
}

// ParseQueryTemplate parses src with << >> delimiters and checks it renders with sample data.
func ParseQueryTemplate(name, src string) (*QueryTemplate, error) {
	t, err := template.New(name).Delims("<<", ">>").Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, err
	}
	q := &QueryTemplate{src: src, tmpl: t, groups: usesField(t, "GroupBy") || usesField(t, "GroupBySlice")}
	sample := QueryData{Series: "x", LabelMatchers: `a="b"`, GroupBy: "a", GroupBySlice: []string{"a"},
		LabelValuesByName: map[string]string{"a": "b"}, Window: "5m"}
	if _, err := q.Render(sample); err != nil {
		return nil, err
	}
	return q, nil
}

// Source is the template text.
func (q *QueryTemplate) Source() string { return q.src }

// Groups reports whether the template aggregates by the resource label (see QueryTemplate).
func (q *QueryTemplate) Groups() bool { return q.groups }

// Render executes the template.
func (q *QueryTemplate) Render(d QueryData) (string, error) {
	var b bytes.Buffer
	if err := q.tmpl.Execute(&b, d); err != nil {
		return "", err
	}
	return b.String(), nil
}

func usesField(t *template.Template, field string) bool {
	found := false
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		if found || n == nil {
			return
		}
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				walk(c)
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.PipeNode:
			if n == nil {
				return
			}
			for _, c := range n.Cmds {
				walk(c)
			}
		case *parse.CommandNode:
			for _, a := range n.Args {
				walk(a)
			}
		case *parse.FieldNode:
			for _, id := range n.Ident {
				if id == field {
					found = true
				}
			}
		case *parse.IfNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		}
	}
	for _, tt := range t.Templates() {
		if tt.Tree != nil {
			walk(tt.Tree.Root)
		}
	}
	return found
}

// MatchOp is a PromQL label matching operator.
type MatchOp string

const (
	OpEqual    MatchOp = "="
	OpNotEqual MatchOp = "!="
	OpRegex    MatchOp = "=~"
	OpNotRegex MatchOp = "!~"
)

// Matcher is one PromQL label matcher. Value is raw: String escapes it.
type Matcher struct {
	Name  string
	Op    MatchOp
	Value string
}

// String renders the matcher with the value as a PromQL double-quoted string literal.
// strconv.Quote emits exactly the escapes PromQL's lexer accepts (\" \\ \n \xNN \uNNNN …),
// so no value can close the string early.
func (m Matcher) String() string {
	return m.Name + string(m.Op) + strconv.Quote(m.Value)
}

// JoinMatchers renders matchers comma-separated, in the given order.
func JoinMatchers(ms []Matcher) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return strings.Join(parts, ",")
}

// AnyOf returns an anchored-by-Prometheus regex that matches exactly the given values.
func AnyOf(values []string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = regexp.QuoteMeta(v)
	}
	sort.Strings(quoted)
	return strings.Join(quoted, "|")
}

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// ValidLabelName reports whether s may be used as a Prometheus label name in a query.
func ValidLabelName(s string) bool { return labelNameRE.MatchString(s) }

// SelectorMatchers converts a Kubernetes label selector (an HPA's metric selector or a
// metricLabelSelector) into PromQL matchers. Keys must be valid Prometheus label names:
// anything else is rejected rather than mangled, since it could never match a series.
func SelectorMatchers(sel labels.Selector) ([]Matcher, error) {
	if sel == nil {
		return nil, nil
	}
	reqs, selectable := sel.Requirements()
	if !selectable {
		return nil, fmt.Errorf("label selector %q can never match", sel.String())
	}
	var out []Matcher
	for _, r := range reqs {
		key := r.Key()
		if !ValidLabelName(key) {
			return nil, fmt.Errorf("label selector key %q is not a valid Prometheus label name (letters, digits and underscores, not starting with a digit)", key)
		}
		vals := r.Values().List() // sorted
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals:
			out = append(out, Matcher{key, OpEqual, vals[0]})
		case selection.NotEquals:
			out = append(out, Matcher{key, OpNotEqual, vals[0]})
		case selection.In:
			if len(vals) == 1 {
				out = append(out, Matcher{key, OpEqual, vals[0]})
			} else {
				out = append(out, Matcher{key, OpRegex, AnyOf(vals)})
			}
		case selection.NotIn:
			if len(vals) == 1 {
				out = append(out, Matcher{key, OpNotEqual, vals[0]})
			} else {
				out = append(out, Matcher{key, OpNotRegex, AnyOf(vals)})
			}
		case selection.Exists:
			out = append(out, Matcher{key, OpNotEqual, ""})
		case selection.DoesNotExist:
			out = append(out, Matcher{key, OpEqual, ""})
		default:
			return nil, fmt.Errorf("label selector operator %q (in %q) is not supported: use =, !=, in, notin, exists or !exists", r.Operator(), r.String())
		}
	}
	return out, nil
}
