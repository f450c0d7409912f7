// Package naming holds the rule engine: which series a rule covers, the metric names it
// serves, which labels name which Kubernetes resources, and the PromQL its templates render.
//
// Everything a request contributes to a query (namespace, object names, selector values) is
// escaped here, so a request can never widen a query beyond what it asked for.
package naming

import (
	"bytes"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
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
	// LabelValuesByName maps a label to the values asked for (the namespace, the object
	// names, and each metric-selector label's values), as prometheus-adapter builds it: the
	// values joined by "|". Each value is regex-escaped and the whole is then escaped for a
	// PromQL double-quoted string, so `label=~"<<index .LabelValuesByName "label">>"` matches
	// exactly the values asked for (see LabelValues).
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
	// matchers reports whether the template uses .LabelMatchers; valueKeys are the keys it
	// reads from .LabelValuesByName by a constant name (index .LabelValuesByName "x", or
	// .LabelValuesByName.x). Together they say which request values reach the query.
	matchers  bool
	valueKeys map[string]bool
}

// ParseQueryTemplate parses src with << >> delimiters and checks it renders with sample data.
func ParseQueryTemplate(name, src string) (*QueryTemplate, error) {
	t, err := template.New(name).Delims("<<", ">>").Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, err
	}
	q := &QueryTemplate{src: src, tmpl: t, groups: usesField(t, "GroupBy") || usesField(t, "GroupBySlice"),
		matchers: usesField(t, "LabelMatchers"), valueKeys: valuesKeys(t)}
	// The sample has every .LabelValuesByName key the template names, so that the field
	// form (.LabelValuesByName.pod) passes here; at request time a key the request did not
	// fill is an error (missingkey=error) rather than "<no value>" inside a query.
	sample := QueryData{Series: "x", LabelMatchers: `a="b"`, GroupBy: "a", GroupBySlice: []string{"a"},
		LabelValuesByName: map[string]string{"a": "b"}, Window: "5m"}
	for k := range q.valueKeys {
		sample.LabelValuesByName[k] = "b"
	}
	if _, err := q.Render(sample); err != nil {
		return nil, err
	}
	return q, nil
}

// Source is the template text.
func (q *QueryTemplate) Source() string { return q.src }

// Groups reports whether the template aggregates by the resource label (see QueryTemplate).
func (q *QueryTemplate) Groups() bool { return q.groups }

// Restricts reports whether a rendered query restricts label to the value the request asked
// for: true when the template uses .LabelMatchers (which always carries the request's
// matchers) or reads label's entry of .LabelValuesByName by name.
func (q *QueryTemplate) Restricts(label string) bool { return q.matchers || q.valueKeys[label] }

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
	walkTemplate(t, func(n parse.Node) {
		if f, ok := n.(*parse.FieldNode); ok && slices.Contains(f.Ident, field) {
			found = true
		}
	})
	return found
}

// walkTemplate calls visit for every node of t's trees, parents before children.
func walkTemplate(t *template.Template, visit func(parse.Node)) {
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		if n == nil {
			return
		}
		visit(n)
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

// AnyOf returns an anchored-by-Prometheus regex that matches exactly the given values. It is
// a raw regex: Matcher.String escapes it for a PromQL string; inserted into a template's
// string literal directly it must go through LabelValues instead.
func AnyOf(values []string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = regexp.QuoteMeta(v)
	}
	sort.Strings(quoted)
	return strings.Join(quoted, "|")
}

// LabelValues renders values for .LabelValuesByName: AnyOf(values), then escaped as the body
// of a PromQL double-quoted string (without the quotes). Inside `=~"..."` it matches exactly
// the values; "ip-10-0-0-1.ec2.internal" becomes ip-10-0-0-1\\.ec2\\.internal, which PromQL
// reads as the regex ip-10-0-0-1\.ec2\.internal. No value can end the string early.
func LabelValues(values []string) string {
	q := strconv.Quote(AnyOf(values))
	return q[1 : len(q)-1]
}

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// ValidLabelName reports whether s may be used as a Prometheus label name in a query.
func ValidLabelName(s string) bool { return labelNameRE.MatchString(s) }

// valuesKeys returns the keys a template reads from .LabelValuesByName by a constant name:
// `index .LabelValuesByName "x"` and `.LabelValuesByName.x`.
func valuesKeys(t *template.Template) map[string]bool {
	keys := map[string]bool{}
	isValues := func(n parse.Node) bool {
		switch n := n.(type) {
		case *parse.FieldNode:
			return len(n.Ident) == 1 && n.Ident[0] == "LabelValuesByName"
		case *parse.VariableNode:
			return len(n.Ident) == 2 && n.Ident[0] == "$" && n.Ident[1] == "LabelValuesByName"
		}
		return false
	}
	walkTemplate(t, func(n parse.Node) {
		switch n := n.(type) {
		case *parse.CommandNode:
			if len(n.Args) == 3 {
				if id, ok := n.Args[0].(*parse.IdentifierNode); ok && id.Ident == "index" && isValues(n.Args[1]) {
					if s, ok := n.Args[2].(*parse.StringNode); ok {
						keys[s.Text] = true
					}
				}
			}
		case *parse.FieldNode:
			if len(n.Ident) >= 2 && n.Ident[0] == "LabelValuesByName" {
				keys[n.Ident[1]] = true
			}
		case *parse.VariableNode:
			if len(n.Ident) >= 3 && n.Ident[0] == "$" && n.Ident[1] == "LabelValuesByName" {
				keys[n.Ident[2]] = true
			}
		}
	})
	return keys
}
