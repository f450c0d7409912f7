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

	"github.com/prometheus/common/model"
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

// String renders the matcher with the value as a PromQL double-quoted string literal, and the
// name as LabelName does (`"k8s.pod.name"=~"a|b"`, `pod="a"`). strconv.Quote emits exactly the
// escapes PromQL's lexer accepts (\" \\ \n \xNN \uNNNN …), so neither a value nor a name can
// close its string early.
func (m Matcher) String() string {
	return LabelName(m.Name) + string(m.Op) + strconv.Quote(m.Value)
}

// LabelName renders a label name for PromQL: a legacy label name as is, any other name as a
// double-quoted string, which Prometheus 3 reads as a UTF-8 label name in matchers
// (`"k8s.pod.name"="x"`) and in by/without lists (`by ("k8s.pod.name")`). Prometheus 2 and
// backends without UTF-8 names refuse the quoted form with a parse error: such a name cannot
// be selected there in any form, so the query fails rather than matching something else.
func LabelName(name string) string {
	if model.LegacyValidation.IsValidLabelName(name) {
		return name
	}
	return strconv.Quote(name)
}

// renderLabelList applies LabelName to a GroupBy list and its slice. Without a name to quote
// it returns both unchanged; else a new slice, and groupBy rebuilt from it when it was the
// slice joined by "," (otherwise groupBy cannot be split safely and is left as given).
func renderLabelList(groupBy string, names []string) (string, []string) {
	if !slices.ContainsFunc(names, func(n string) bool { return LabelName(n) != n }) {
		return groupBy, names
	}
	rendered := make([]string, len(names))
	for i, n := range names {
		rendered[i] = LabelName(n)
	}
	if groupBy == strings.Join(names, ",") {
		groupBy = strings.Join(rendered, ",")
	}
	return groupBy, rendered
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

// ValidLabelName reports whether s is a legacy Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*),
// which every backend reads unquoted. Names a request brings (metric selector keys) must be
// such names; names from the config may be any UTF-8 and are quoted as needed (LabelName).
func ValidLabelName(s string) bool { return model.LegacyValidation.IsValidLabelName(s) }

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

// bindSeries rewrites each action of t that prints the series name alone (<<.Series>> or
// <<$.Series>>) into a call of a function bound to the text around it, and returns those
// functions for t.Funcs. html/template rewrites its templates' pipelines in the same way.
//
// A legacy series name renders exactly as before. Any other name renders by where the action
// stands, decided from the template text right before and after it:
//
//   - after a quote (`__name__="<<.Series>>"`): escaped for that string literal;
//   - as a metric name, followed by `{` (after an optional name suffix such as `_bucket`, and
//     blanks): the action also consumes that text, and `<<.Series>>_bucket{` renders
//     `{__name__="http.server.duration_bucket",`, so the template's own matchers follow inside
//     the same braces (PromQL allows the trailing comma when there are none);
//   - as a metric name, followed by anything else (`rate(<<.Series>>[2m])`, `<<.Series>>)`):
//     `{__name__="http.server.requests"}`, with any name suffix inside the matcher;
//   - right after a name character or `{` or a backquote (`x_<<.Series>>`, `{<<.Series>>`):
//     not rewritten; it prints the name raw, as before, since no rendering fits every such
//     template.
//
// The __name__ matcher, rather than Prometheus 3's `{"name"}`, works on every backend that can
// store the name (VictoriaMetrics has no quoted-name form).
func bindSeries(t *template.Template) template.FuncMap {
	funcs := template.FuncMap{}
	bind := func(tree *parse.Tree, a *parse.ActionNode, f func(series string) string) {
		name := "promadapter_series_" + strconv.Itoa(len(funcs))
		funcs[name] = f
		cmd := a.Pipe.Cmds[0]
		cmd.Args = []parse.Node{parse.NewIdentifier(name).SetTree(tree).SetPos(cmd.Pos), cmd.Args[0]}
	}
	for _, tt := range t.Templates() {
		if tt.Tree == nil {
			continue
		}
		tree := tt.Tree
		walkTree(tree.Root, func(n parse.Node) {
			l, ok := n.(*parse.ListNode)
			if !ok || l == nil {
				return
			}
			for i, n := range l.Nodes {
				a, ok := n.(*parse.ActionNode)
				if !ok || !printsSeries(a.Pipe) {
					continue
				}
				var prev, next *parse.TextNode
				if i > 0 {
					prev, _ = l.Nodes[i-1].(*parse.TextNode)
				}
				if i+1 < len(l.Nodes) {
					next, _ = l.Nodes[i+1].(*parse.TextNode)
				}
				before := byte(' ')
				if prev != nil && len(prev.Text) > 0 {
					before = prev.Text[len(prev.Text)-1]
				}
				switch {
				case before == '"' || before == '\'':
					quote := before
					bind(tree, a, func(series string) string { return stringBody(series, quote) })
				case isMetricNameByte(before) || before == '{' || before == '`':
					// Left as written.
				default:
					var after []byte
					if next != nil {
						after = next.Text
					}
					suffix, consumed, open := selectorTail(after)
					if next != nil {
						next.Text = next.Text[len(consumed):]
					}
					bind(tree, a, func(series string) string { return seriesSelector(series, suffix, consumed, open) })
				}
			}
		})
	}
	return funcs
}

// printsSeries reports whether p is exactly .Series or $.Series, printed.
func printsSeries(p *parse.PipeNode) bool {
	if p == nil || len(p.Decl) > 0 || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return false
	}
	switch n := p.Cmds[0].Args[0].(type) {
	case *parse.FieldNode:
		return slices.Equal(n.Ident, []string{"Series"})
	case *parse.VariableNode:
		return slices.Equal(n.Ident, []string{"$", "Series"})
	}
	return false
}

// isMetricNameByte reports whether c may continue a legacy metric name.
func isMetricNameByte(c byte) bool {
	return c == '_' || c == ':' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

// selectorTail reads the text after a <<.Series>> that stands as a metric name: the name
// characters continuing it (suffix), and whether a `{` follows them, possibly after blanks
// (open). consumed is the text the series function prints in their place: the suffix, and
// through the `{` when open.
func selectorTail(after []byte) (suffix, consumed string, open bool) {
	i := 0
	for i < len(after) && isMetricNameByte(after[i]) {
		i++
	}
	suffix = string(after[:i])
	j := i
	for j < len(after) && (after[j] == ' ' || after[j] == '\t') {
		j++
	}
	if j < len(after) && after[j] == '{' {
		return suffix, string(after[:j+1]), true
	}
	return suffix, suffix, false
}

// seriesSelector renders a series name standing as a metric name: series+consumed when that
// is a legacy name (or series is empty, as in resource rules), else a __name__ matcher on
// series+suffix that opens the braces (open) or is a whole selector.
func seriesSelector(series, suffix, consumed string, open bool) string {
	name := series + suffix
	if series == "" || model.LegacyValidation.IsValidMetricName(name) {
		return series + consumed
	}
	m := Matcher{Name: model.MetricNameLabel, Op: OpEqual, Value: name}.String()
	if open {
		return "{" + m + ","
	}
	return "{" + m + "}"
}

// stringBody escapes s as the body of a PromQL string literal quoted by quote (" or '). A
// legacy name needs no escape and comes back unchanged.
func stringBody(s string, quote byte) string {
	q := strconv.Quote(s)
	body := q[1 : len(q)-1]
	if quote == '\'' {
		body = strings.ReplaceAll(strings.ReplaceAll(body, `\"`, `"`), `'`, `\'`)
	}
	return body
}
