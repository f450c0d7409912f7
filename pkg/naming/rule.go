package naming

import (
	"fmt"
	"regexp"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	promlabels "github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/promadapter/promadapter/pkg/config"
)

// Kind says which API a rule serves.
type Kind string

const (
	KindCustom   Kind = "custom"
	KindExternal Kind = "external"
)

// Rule is a compiled DiscoveryRule. It is immutable after Compile and safe for concurrent use.
type Rule struct {
	Kind  Kind
	Index int
	// ID names the rule in logs and metrics, e.g. "custom/2 (config.yaml:14)".
	ID string

	// SeriesQuery is the discovery selector as written.
	SeriesQuery string
	// constraints are the seriesQuery's matchers other than the metric name: they also constrain
	// every query the rule renders (prometheus-adapter applied them to discovery only).
	constraints []Matcher

	filters []seriesFilter
	nameRE  *regexp.Regexp
	nameAs  string

	Resources    *ResourceMapper
	Query        *QueryTemplate
	Namespaced   bool     // external rules: add the request's namespace to the query
	DefaultValue *float64 // external rules: served when nothing matches
}

type seriesFilter struct {
	re   *regexp.Regexp
	keep bool
}

// CompileRules compiles every rule of one kind; an error names the rule and its line.
func CompileRules(kind Kind, rules []config.DiscoveryRule, source string, mapper apimeta.RESTMapper) ([]*Rule, error) {
	out := make([]*Rule, 0, len(rules))
	for i, r := range rules {
		c, err := compileRule(kind, i, r, source, mapper)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func compileRule(kind Kind, i int, r config.DiscoveryRule, source string, mapper apimeta.RESTMapper) (*Rule, error) {
	field := "rules"
	if kind == KindExternal {
		field = "externalRules"
	}
	id := fmt.Sprintf("%s/%d (%s:%d)", kind, i, source, r.Line)
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s[%d]: %s", source, r.Line, field, i, fmt.Sprintf(format, args...))
	}
	rule := &Rule{Kind: kind, Index: i, ID: id, SeriesQuery: r.SeriesQuery,
		Namespaced: config.Bool(r.Resources.Namespaced, true), DefaultValue: r.DefaultValue}

	ms, err := parser.ParseMetricSelector(r.SeriesQuery)
	if err != nil {
		return nil, fail("seriesQuery %q is not a series selector: %v", r.SeriesQuery, err)
	}
	for _, m := range ms {
		if m.Name == promlabels.MetricName {
			continue
		}
		rule.constraints = append(rule.constraints, Matcher{Name: m.Name, Op: MatchOp(m.Type.String()), Value: m.Value})
	}
	for j, f := range r.SeriesFilters {
		pat, keep := f.Is, true
		if f.IsNot != "" {
			pat, keep = f.IsNot, false
		}
		re, err := regexp.Compile(pat)
		if err != nil {
			return nil, fail("seriesFilters[%d]: %v", j, err)
		}
		rule.filters = append(rule.filters, seriesFilter{re, keep})
	}
	matches := r.Name.Matches
	if matches == "" {
		matches = ".*"
	}
	if rule.nameRE, err = regexp.Compile(matches); err != nil {
		return nil, fail("name.matches: %v", err)
	}
	rule.nameAs = r.Name.As
	if rule.nameAs == "" {
		if rule.nameRE.NumSubexp() == 1 {
			rule.nameAs = "$1"
		} else {
			rule.nameAs = "$0"
		}
	}
	if rule.Resources, err = NewResourceMapper(r.Resources, mapper); err != nil {
		return nil, fail("%v", err)
	}
	if rule.Query, err = ParseQueryTemplate(id, r.MetricsQuery); err != nil {
		return nil, fail("metricsQuery: %v", err)
	}
	return rule, nil
}

// MetricName maps a series name to the metric this rule serves for it; false when the
// rule's filters or name pattern exclude the series.
func (r *Rule) MetricName(series string) (string, bool) {
	for _, f := range r.filters {
		if f.re.MatchString(series) != f.keep {
			return "", false
		}
	}
	loc := r.nameRE.FindStringSubmatchIndex(series)
	if loc == nil {
		return "", false
	}
	name := string(r.nameRE.ExpandString(nil, r.nameAs, series, loc))
	if name == "" {
		return "", false
	}
	return name, true
}

// DiscoverySelector returns the selector for one series name within this rule: the name
// plus the rule's constraints, used to learn which labels (resources) the series carry.
func (r *Rule) DiscoverySelector(series string) string {
	ms := append([]Matcher{{Name: promlabels.MetricName, Op: OpEqual, Value: series}}, r.constraints...)
	return "{" + JoinMatchers(ms) + "}"
}

// ObjectQuery asks for a metric of objects of one resource.
type ObjectQuery struct {
	Series   string
	Resource schema.GroupResource
	// Namespace is the objects' namespace; empty for cluster-scoped resources.
	Namespace string
	// Names restricts the query to these objects when the template cannot group by the
	// resource label. When the template groups, the query covers the whole namespace and the
	// caller filters results — so query size never grows with the number of objects.
	Names []string
	// MetricSelector adds matchers on the series' own labels (metricLabelSelector).
	MetricSelector labels.Selector
}

// RenderedQuery is a query and how to read its result.
type RenderedQuery struct {
	PromQL string
	// ResourceLabel is the label of each result sample naming the object.
	ResourceLabel string
	// ByName is true when the query was restricted to ObjectQuery.Names.
	ByName bool
}

// RenderObjectQuery renders the query for q. Every value from the request is escaped.
func (r *Rule) RenderObjectQuery(q ObjectQuery) (RenderedQuery, error) {
	label, ok := r.Resources.LabelForResource(q.Resource)
	if !ok {
		return RenderedQuery{}, fmt.Errorf("rule %s has no label for resource %s", r.ID, q.Resource)
	}
	ms := append([]Matcher(nil), r.constraints...)
	valuesByName := map[string]string{}
	if q.Namespace != "" {
		nsLabel := r.Resources.NamespaceLabel()
		ms = append(ms, Matcher{nsLabel, OpEqual, q.Namespace})
		valuesByName[nsLabel] = AnyOf([]string{q.Namespace})
	}
	byName := !r.Query.Groups()
	if byName {
		if len(q.Names) == 0 {
			return RenderedQuery{}, fmt.Errorf("rule %s: no objects to query", r.ID)
		}
		ms = append(ms, Matcher{label, OpRegex, AnyOf(q.Names)})
	} else {
		ms = append(ms, Matcher{label, OpNotEqual, ""})
	}
	if len(q.Names) > 0 {
		valuesByName[label] = AnyOf(q.Names)
	}
	sel, err := SelectorMatchers(q.MetricSelector)
	if err != nil {
		return RenderedQuery{}, err
	}
	ms = append(ms, sel...)
	promql, err := r.Query.Render(QueryData{
		Series:            q.Series,
		LabelMatchers:     JoinMatchers(ms),
		GroupBy:           label,
		GroupBySlice:      []string{label},
		LabelValuesByName: valuesByName,
	})
	if err != nil {
		return RenderedQuery{}, fmt.Errorf("rule %s: rendering metricsQuery: %w", r.ID, err)
	}
	return RenderedQuery{PromQL: promql, ResourceLabel: label, ByName: byName}, nil
}

// RenderExternalQuery renders an external metric query. The namespace is enforced unless
// the rule is cluster-wide (resources.namespaced: false).
func (r *Rule) RenderExternalQuery(series, namespace string, selector labels.Selector) (string, error) {
	ms := append([]Matcher(nil), r.constraints...)
	var groupBy []string
	valuesByName := map[string]string{}
	if r.Namespaced {
		if namespace == "" {
			return "", fmt.Errorf("rule %s is namespaced but the request has no namespace", r.ID)
		}
		nsLabel := r.Resources.NamespaceLabel()
		ms = append(ms, Matcher{nsLabel, OpEqual, namespace})
		groupBy = append(groupBy, nsLabel)
		valuesByName[nsLabel] = AnyOf([]string{namespace})
	}
	sel, err := SelectorMatchers(selector)
	if err != nil {
		return "", err
	}
	// With no matchers at all (a cluster-wide rule, no selector) LabelMatchers is empty, so
	// `<<.Series>>{<<.LabelMatchers>>}` renders `name{}`, which is valid PromQL; a placeholder
	// __name__ matcher would not be ("metric name must not be set twice").
	ms = append(ms, sel...)
	groupStr := ""
	for i, g := range groupBy {
		if i > 0 {
			groupStr += ","
		}
		groupStr += g
	}
	promql, err := r.Query.Render(QueryData{
		Series:            series,
		LabelMatchers:     JoinMatchers(ms),
		GroupBy:           groupStr,
		GroupBySlice:      groupBy,
		LabelValuesByName: valuesByName,
	})
	if err != nil {
		return "", fmt.Errorf("rule %s: rendering metricsQuery: %w", r.ID, err)
	}
	return promql, nil
}
