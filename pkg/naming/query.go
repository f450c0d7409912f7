// Package naming holds the rule engine: which series a rule covers, the metric names it
// serves, which labels name which Kubernetes resources, and the PromQL its templates render.
//
// Everything a request contributes to a query (namespace, object names, selector values) is
// escaped here, so a request can never widen a query beyond what it asked for.
package naming

import (
	"bytes"
	"slices"
	"text/template"
	"text/template/parse"
)

// QueryData is what a query template sees. Field names are prometheus-adapter's (plus Window).
//
// Names are given raw; what a template prints is valid PromQL for Prometheus 3, whose metric
// and label names may be any UTF-8 (OpenTelemetry's http.server.request.duration, k8s.pod.name).
// Legacy names ([a-zA-Z_:][a-zA-Z0-9_:]* for metrics, the same without colons for labels)
// print as they are, so queries over them are byte for byte what they were before UTF-8.
type QueryData struct {
	// Series is the series (metric) name. A template prints a legacy name as is. It prints any
	// other name as a __name__ matcher, which PromQL has no bare form for (see
	// ParseQueryTemplate): `<<.Series>>{<<.LabelMatchers>>}` becomes
	// `{__name__="http.server.requests",namespace="shop"}` and `rate(<<.Series>>[2m])` becomes
	// `rate({__name__="http.server.requests"}[2m])`.
	Series string
	// LabelMatchers is a comma-separated list of escaped PromQL matchers (see Matcher.String).
	// It is never empty for custom and resource queries; for a cluster-wide external rule
	// without a selector it is.
	LabelMatchers string
	// GroupBy is a comma-separated list of label names to aggregate by; may be empty. Callers
	// fill it raw, as GroupBySlice joined by ","; Render quotes each name that is not a legacy
	// label name (see LabelName), so `by (<<.GroupBy>>)` renders `by ("k8s.pod.name")`.
	GroupBy string
	// GroupBySlice is GroupBy as a slice, each name rendered the same way.
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
//
// It binds each <<.Series>> action to where it stands (see bindSeries), so that a series name
// that is not a legacy metric name still renders valid PromQL: a template reads the name as
// a bare identifier, which such a name cannot be.
func ParseQueryTemplate(name, src string) (*QueryTemplate, error) {
	t, err := template.New(name).Delims("<<", ">>").Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, err
	}
	t.Funcs(bindSeries(t))
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

// Render executes the template. It quotes the label names of d.GroupBy and d.GroupBySlice
// that are not legacy label names (d.GroupBy only when it is d.GroupBySlice joined by ",",
// as every caller fills it).
func (q *QueryTemplate) Render(d QueryData) (string, error) {
	d.GroupBy, d.GroupBySlice = renderLabelList(d.GroupBy, d.GroupBySlice)
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
	for _, tt := range t.Templates() {
		if tt.Tree != nil {
			walkTree(tt.Tree.Root, visit)
		}
	}
}

// walkTree calls visit for root and every node under it, parents before children.
func walkTree(root parse.Node, visit func(parse.Node)) {
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
	walk(root)
}

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
