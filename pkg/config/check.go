package config

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"
)

// The fields each kind of template is executed with. The renderers (package naming) own the
// data types; these lists must name the same fields, so that a misspelt field is caught when
// the config loads instead of when a request renders the template.
var (
	// queryTemplateFields are metricsQuery's.
	queryTemplateFields = []string{"Series", "LabelMatchers", "GroupBy", "GroupBySlice", "LabelValuesByName"}
	// resourceQueryTemplateFields are containerQuery's and nodeQuery's: the query fields and
	// the resource rules' window.
	resourceQueryTemplateFields = append(slices.Clip(queryTemplateFields), "Window")
	// resourceTemplateFields are resources.template's.
	resourceTemplateFields = []string{"Group", "Resource"}
)

// checkSelector reports a seriesQuery that Prometheus would refuse as a series selector.
func (d *decoder) checkSelector(n *yaml.Node, path, query string) {
	matchers, err := parser.ParseMetricSelector(query)
	if err != nil {
		d.report(n, path, `not a valid PromQL series selector: %v; write a selector such as 'http_requests_total{namespace!=""}' or '{__name__=~"^http_.*",namespace!=""}'`, err)
		return
	}
	for _, m := range matchers {
		if !m.Matches("") {
			return
		}
	}
	d.report(n, path, `every matcher in the selector also matches an empty value, so Prometheus refuses it; add a metric name or a matcher that needs a value, such as namespace!=""`)
}

// checkRegexp compiles pattern (Go RE2 syntax), reporting it when it does not compile.
func (d *decoder) checkRegexp(n *yaml.Node, path, pattern string) *regexp.Regexp {
	re, err := regexp.Compile(pattern)
	if err != nil {
		d.report(n, path, "invalid regular expression: %v; fix the pattern (Go RE2 syntax, which has no lookarounds or backreferences)", err)
		return nil
	}
	return re
}

// checkTemplate parses text as a Go template with << >> delimiters, without executing it, and
// reports it when it does not parse or names a field outside fields.
func (d *decoder) checkTemplate(n *yaml.Node, path, text string, fields []string) {
	name := path[strings.LastIndexByte(path, '.')+1:]
	t, err := template.New(name).Delims("<<", ">>").Parse(text)
	if err != nil {
		d.report(n, path, "the template does not parse: %s; fix the << >> actions (Go text/template syntax, with << and >> as delimiters)", templateError(err, name, text))
		return
	}
	if t.Tree == nil {
		return
	}
	available := make([]string, len(fields))
	for i, f := range fields {
		available[i] = "." + f
	}
	var reported []string
	for _, field := range dataFields(t.Tree.Root) {
		if slices.Contains(fields, field) || slices.Contains(reported, field) {
			continue
		}
		reported = append(reported, field)
		if guess := closest(field, fields); guess != "" {
			d.report(n, path, "the template uses .%s, which its data does not have; did you mean .%s? (available: %s)", field, guess, andList(available))
			continue
		}
		d.report(n, path, "the template uses .%s, which its data does not have; use one of %s", field, andList(available))
	}
}

// templateError shortens a text/template parse error ("template: NAME:LINE: message") to the
// message, keeping the line only when the template has more than one.
// text/template prints its own actions with the default delimiters ("unexpected {{end}}"); they
// are shown as << >>, the delimiters the user wrote.
func templateError(err error, name, text string) string {
	msg := strings.TrimPrefix(err.Error(), "template: "+name+":")
	msg = strings.NewReplacer("{{", "<<", "}}", ">>").Replace(msg)
	line, rest, ok := strings.Cut(msg, ": ")
	if !ok {
		return msg
	}
	if _, err := strconv.Atoi(line); err != nil {
		return msg
	}
	if !strings.Contains(strings.TrimRight(text, "\n"), "\n") {
		return rest
	}
	return "line " + line + " of the template: " + rest
}

// dataFields returns the names of the template data's fields a template uses: the first name
// of each field chain evaluated where dot is the data (".Series", ".LabelValuesByName.pod"),
// and every "$.Name". Inside range and with, dot is something else, so only "$." counts there.
func dataFields(root *parse.ListNode) []string {
	var names []string
	var walk func(n parse.Node, dotIsData bool)
	walk = func(n parse.Node, dotIsData bool) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				walk(c, dotIsData)
			}
		case *parse.ActionNode:
			walk(n.Pipe, dotIsData)
		case *parse.TemplateNode:
			walk(n.Pipe, dotIsData)
		case *parse.PipeNode:
			if n == nil {
				return
			}
			for _, c := range n.Cmds {
				walk(c, dotIsData)
			}
		case *parse.CommandNode:
			for _, a := range n.Args {
				walk(a, dotIsData)
			}
		case *parse.ChainNode:
			walk(n.Node, dotIsData)
		case *parse.FieldNode:
			if dotIsData {
				names = append(names, n.Ident[0])
			}
		case *parse.VariableNode:
			if n.Ident[0] == "$" && len(n.Ident) > 1 {
				names = append(names, n.Ident[1])
			}
		case *parse.IfNode:
			walk(n.Pipe, dotIsData)
			walk(n.List, dotIsData)
			walk(n.ElseList, dotIsData)
		case *parse.RangeNode:
			walk(n.Pipe, dotIsData)
			walk(n.List, false)
			walk(n.ElseList, dotIsData)
		case *parse.WithNode:
			walk(n.Pipe, dotIsData)
			walk(n.List, false)
			walk(n.ElseList, dotIsData)
		}
	}
	walk(root, true)
	return names
}

// checkReplacement reports references in a regexp replacement (name.as) to capture groups
// that re does not have. Such a reference expands to nothing, so the metric would be named
// wrongly without any error. The classic slip is "$1_per_second": Go reads the longest name
// after "$", i.e. the group named "1_per_second"; "${1}_per_second" is meant.
func (d *decoder) checkReplacement(n *yaml.Node, path, replacement string, re *regexp.Regexp) {
	for _, ref := range replacementRefs(replacement) {
		if num, err := strconv.Atoi(ref.name); err == nil {
			if num > re.NumSubexp() {
				d.report(n, path, "%s refers to capture group %d, but name.matches has %s; use $0 for the whole match or a group that exists",
					ref.text, num, groupCount(re.NumSubexp()))
			}
			continue
		}
		if re.SubexpIndex(ref.name) >= 0 {
			continue
		}
		if i := strings.IndexFunc(ref.name, func(r rune) bool { return !unicode.IsDigit(r) }); i > 0 {
			d.report(n, path, "%s is read as a reference to a capture group named %q, which name.matches does not have (Go takes the longest name after \"$\"); write ${%s}%s",
				ref.text, ref.name, ref.name[:i], ref.name[i:])
			continue
		}
		d.report(n, path, "%s refers to a capture group named %q, which name.matches does not have; name a group (?P<%s>...) or refer to one by number, such as ${1}",
			ref.text, ref.name, ref.name)
	}
}

// replacementRef is one $name or ${name} in a replacement, as regexp.Expand reads it.
type replacementRef struct {
	text string // as written, e.g. "${1}"
	name string // e.g. "1"
}

// replacementRefs finds the group references in a replacement the way regexp.Expand does:
// "$$" is a literal dollar; a name is a run of letters, digits and underscores, as long as
// possible, or enclosed in braces; a "$" not followed by a valid name is literal.
func replacementRefs(s string) []replacementRef {
	var refs []replacementRef
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			i++
			continue
		}
		rest := s[i+1:]
		braced := strings.HasPrefix(rest, "{")
		if braced {
			rest = rest[1:]
		}
		end := 0
		for end < len(rest) {
			r, size := utf8.DecodeRuneInString(rest[end:])
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' {
				break
			}
			end += size
		}
		if end == 0 || (braced && (end >= len(rest) || rest[end] != '}')) {
			continue
		}
		length := 1 + end
		if braced {
			length += 2
		}
		refs = append(refs, replacementRef{text: s[i : i+length], name: rest[:end]})
		i += length - 1
	}
	return refs
}
