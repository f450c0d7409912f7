// This file holds the binding of <<.Series>> actions, so non-legacy series names render valid PromQL.

package naming

import (
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/prometheus/common/model"
)

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
