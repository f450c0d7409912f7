// This file holds PromQL label matchers and the escaping of label names and values.

package naming

import (
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
)

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
