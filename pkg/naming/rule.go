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
	// constraints are the seriesQuery's matchers other than the metric name. Discovery always
	// uses them; queries get them in .LabelMatchers only when strict is set (the rule's
	// addSeriesQueryMatchers), since prometheus-adapter applied them to discovery only and
	// templates over recording rules often lack those labels.
	constraints []Matcher
	strict      bool

	filters []seriesFilter
	nameRE  *regexp.Regexp
	nameAs  string

	Resources    *ResourceMapper
	Query        *QueryTemplate
	Namespaced   bool     // external rules: add the request's namespace to the query
	DefaultValue *float64 // external rules: served when nothing matches

	// Backend names the backend the rule queries ("" is "default"); Tenant is the rule's own
	// tenant id, "" for the backend's.
	Backend string
	Tenant  string
	// Spec is the config the rule was compiled from; a reload compares specs to keep the
	// discovered metrics of rules that did not change.
	Spec config.DiscoveryRule
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
		Namespaced: config.Bool(r.Resources.Namespaced, true), DefaultValue: r.DefaultValue,
		strict: r.AddSeriesQueryMatchers, Backend: r.Backend, Tenant: r.Tenant, Spec: r}

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
	// resource label, or when ByName is set. Otherwise the query covers the whole namespace
	// and the caller filters results — so query size never grows with the number of objects.
	Names []string
	// ByName asks for the by-name plan even when the template groups: the resource matcher
	// is the escaped names (`pod="a"`, `pod=~"a|b"`) instead of `pod!=""`. The caller
	// (the adaptive planner) bounds the query's length.
	ByName bool
	// MetricSelector adds matchers on the series' own labels (metricLabelSelector).
	MetricSelector labels.Selector
}

// RenderedQuery is a query and how to read its result.
type RenderedQuery struct {
	PromQL string
	// ResourceLabel is the label of each result sample naming the object ("" for external
	// queries).
	ResourceLabel string
	// ByName is true when the query was restricted to ObjectQuery.Names.
	ByName bool
	// NamespaceLabel is the rule's label holding the namespace, which result samples carry
	// when the template keeps it (e.g. groups by it); "" when the query is for no namespace
	// (cluster-scoped resources, cluster-wide external rules).
	NamespaceLabel string
	// NamespaceInQuery is true when the rendered query itself restricts the namespace: the
	// template uses .LabelMatchers, or reads the namespace label's .LabelValuesByName entry.
	// When false (and NamespaceLabel is set), the answer may hold other namespaces' series
	// and must be filtered by NamespaceLabel before it is served.
	NamespaceInQuery bool
}

// baseMatchers starts a query's matchers the way prometheus-adapter does: the metric
// selector's, after the seriesQuery's own when the rule asks for them (addSeriesQueryMatchers).
// It also returns .LabelValuesByName filled from the selector.
func (r *Rule) baseMatchers(selector labels.Selector) ([]Matcher, map[string]string, error) {
	var ms []Matcher
	if r.strict {
		ms = append(ms, r.constraints...)
	}
	sel, values, err := selectorParts(selector)
	if err != nil {
		return nil, nil, err
	}
	return append(ms, sel...), values, nil
}

// RenderObjectQuery renders the query for q. Every value from the request is escaped.
//
// As in prometheus-adapter, .LabelMatchers holds the metric selector's matchers, then the
// namespace's, then the resource label's; .LabelValuesByName holds the selector's values, then
// the namespace, then the object names (later entries win, so a selector cannot replace the
// namespace); .GroupBy is the resource label. One difference keeps queries small: when the
// template groups by .GroupBy, the resource matcher is `label!=""` rather than the names, and
// the caller filters the answer.
func (r *Rule) RenderObjectQuery(q ObjectQuery) (RenderedQuery, error) {
	label, ok := r.Resources.LabelForResource(q.Resource)
	if !ok {
		return RenderedQuery{}, fmt.Errorf("rule %s has no label for resource %s", r.ID, q.Resource)
	}
	ms, valuesByName, err := r.baseMatchers(q.MetricSelector)
	if err != nil {
		return RenderedQuery{}, err
	}
	rq := RenderedQuery{ResourceLabel: label, ByName: q.ByName || !r.Query.Groups()}
	if q.Namespace != "" {
		rq.NamespaceLabel = r.Resources.NamespaceLabel()
		rq.NamespaceInQuery = r.Query.Restricts(rq.NamespaceLabel)
		ms = append(ms, Matcher{rq.NamespaceLabel, OpEqual, q.Namespace})
		valuesByName[rq.NamespaceLabel] = LabelValues([]string{q.Namespace})
	}
	switch {
	case !rq.ByName:
		ms = append(ms, Matcher{label, OpNotEqual, ""})
	case len(q.Names) == 0:
		return RenderedQuery{}, fmt.Errorf("rule %s: no objects to query", r.ID)
	case len(q.Names) == 1:
		ms = append(ms, Matcher{label, OpEqual, q.Names[0]})
	default:
		ms = append(ms, Matcher{label, OpRegex, AnyOf(q.Names)})
	}
	if len(q.Names) > 0 {
		valuesByName[label] = LabelValues(q.Names)
	}
	rq.PromQL, err = r.Query.Render(QueryData{
		Series:            q.Series,
		LabelMatchers:     JoinMatchers(ms),
		GroupBy:           label,
		GroupBySlice:      []string{label},
		LabelValuesByName: valuesByName,
	})
	if err != nil {
		return RenderedQuery{}, fmt.Errorf("rule %s: rendering metricsQuery: %w", r.ID, err)
	}
	return rq, nil
}

// RenderExternalQuery renders an external metric query: RenderExternal's PromQL.
func (r *Rule) RenderExternalQuery(series, namespace string, selector labels.Selector) (string, error) {
	rq, err := r.RenderExternal(series, namespace, selector)
	return rq.PromQL, err
}

// RenderExternal renders an external metric query. The namespace is enforced unless the rule
// is cluster-wide (resources.namespaced: false). As in prometheus-adapter, .LabelMatchers
// holds the metric selector's matchers, then the namespace's; .LabelValuesByName the
// selector's values, then the namespace; .GroupBy and .GroupBySlice are empty.
func (r *Rule) RenderExternal(series, namespace string, selector labels.Selector) (RenderedQuery, error) {
	ms, valuesByName, err := r.baseMatchers(selector)
	if err != nil {
		return RenderedQuery{}, err
	}
	var rq RenderedQuery
	if r.Namespaced {
		if namespace == "" {
			return RenderedQuery{}, fmt.Errorf("rule %s is namespaced but the request has no namespace", r.ID)
		}
		rq.NamespaceLabel = r.Resources.NamespaceLabel()
		rq.NamespaceInQuery = r.Query.Restricts(rq.NamespaceLabel)
		ms = append(ms, Matcher{rq.NamespaceLabel, OpEqual, namespace})
		valuesByName[rq.NamespaceLabel] = LabelValues([]string{namespace})
	}
	// With no matchers at all (a cluster-wide rule, no selector) LabelMatchers is empty, so
	// `<<.Series>>{<<.LabelMatchers>>}` renders `name{}`, which is valid PromQL; a placeholder
	// __name__ matcher would not be ("metric name must not be set twice").
	rq.PromQL, err = r.Query.Render(QueryData{
		Series:            series,
		LabelMatchers:     JoinMatchers(ms),
		GroupBySlice:      []string{},
		LabelValuesByName: valuesByName,
	})
	if err != nil {
		return RenderedQuery{}, fmt.Errorf("rule %s: rendering metricsQuery: %w", r.ID, err)
	}
	return rq, nil
}
