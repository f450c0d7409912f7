// This file holds the decoding of rules and externalRules: filters, names and their checks.

package config

import (
	"regexp"
	"slices"
	"strconv"

	"gopkg.in/yaml.v3"
)

// helmValuesKeys are the fields under "rules" in prometheus-adapter's Helm chart values.
var helmValuesKeys = []string{"default", "custom", "external", "resource", "existing"}

// rules decodes rules or externalRules; an empty list decodes as nil.
func (d *decoder) rules(n *yaml.Node, path string, external bool) []DiscoveryRule {
	if r := resolve(n); r.Kind == yaml.MappingNode && !external {
		for i := 0; i < len(r.Content); i += 2 {
			if slices.Contains(helmValuesKeys, r.Content[i].Value) {
				d.report(r, path, "got a mapping where a list is expected; this looks like the prometheus-adapter Helm chart's values, not the config it renders: put the list under rules.custom in rules, the one under rules.external in externalRules and the mapping under rules.resource in resourceRules")
				return nil
			}
		}
	}
	items, ok := d.list(n, path)
	if !ok || len(items) == 0 {
		return nil
	}
	out := make([]DiscoveryRule, 0, len(items))
	for i, item := range items {
		out = append(out, d.rule(item, index(path, i), external))
	}
	return out
}

// Remedies for missing fields, shared by several messages.
const (
	seriesQueryFix  = `add the selector that finds this rule's series, e.g. seriesQuery: '{__name__=~"^http_requests_.*",namespace!="",pod!=""}'`
	metricsQueryFix = `add the query template that computes the metric, e.g. metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'`
)

// rule decodes one entry of rules (external false) or externalRules (external true).
func (d *decoder) rule(n *yaml.Node, path string, external bool) DiscoveryRule {
	n = resolve(n)
	r := DiscoveryRule{Line: n.Line}
	set, resourcesSet := customRuleFields, customResourcesFields
	if external {
		set, resourcesSet = externalRuleFields, externalResourcesFields
	}
	f, ok := d.fields(n, path, set)
	if !ok {
		return r
	}
	var node *yaml.Node
	if r.SeriesQuery, node = d.requiredString(f, n, path, "seriesQuery", seriesQueryFix); node != nil {
		d.checkSelector(node, join(path, "seriesQuery"), r.SeriesQuery)
	}
	if e, ok := f["seriesFilters"]; ok {
		r.SeriesFilters = d.filters(e.value, join(path, "seriesFilters"))
	}
	if e, ok := f["resources"]; ok {
		r.Resources = d.resources(e.value, join(path, "resources"), resourcesSet)
	}
	if e, ok := f["name"]; ok {
		r.Name = d.name(e.value, join(path, "name"))
	}
	if r.MetricsQuery, node = d.requiredString(f, n, path, "metricsQuery", metricsQueryFix); node != nil {
		d.checkTemplate(node, join(path, "metricsQuery"), r.MetricsQuery, queryTemplateFields)
	}
	if e, ok := f["defaultValue"]; ok {
		r.DefaultValue = d.number(e.value, join(path, "defaultValue"))
	}
	if e, ok := f["addSeriesQueryMatchers"]; ok {
		r.AddSeriesQueryMatchers = Bool(d.boolean(e.value, join(path, "addSeriesQueryMatchers")), false)
	}
	r.Backend = d.backendRef(f, path)
	if e, ok := f["tenant"]; ok {
		r.Tenant, _ = d.str(e.value, join(path, "tenant"))
	}
	return r
}

// filters decodes seriesFilters (an empty list as nil): each entry has exactly one of is and
// isNot.
func (d *decoder) filters(n *yaml.Node, path string) []RegexFilter {
	items, ok := d.list(n, path)
	if !ok || len(items) == 0 {
		return nil
	}
	out := make([]RegexFilter, 0, len(items))
	for i, item := range items {
		p := index(path, i)
		item = resolve(item)
		if item.Kind == yaml.ScalarNode && !isNull(item) {
			d.report(item, p, "got %s where a filter is expected; write - is: '%s' to keep only the series whose names match, or - isNot: '%s' to drop them",
				describe(item), item.Value, item.Value)
			continue
		}
		f, ok := d.fields(item, p, filterFields)
		if !ok {
			continue
		}
		var filter RegexFilter
		is, hasIs := f["is"]
		isNot, hasIsNot := f["isNot"]
		switch {
		case hasIs && hasIsNot:
			d.report(item, p, `both "is" and "isNot" are set; an entry takes exactly one, so split it into two entries`)
		case !hasIs && !hasIsNot:
			d.report(item, p, `neither "is" nor "isNot" is set; add one, e.g. - isNot: '^container_.*_total$'`)
		}
		if hasIs {
			filter.Is = d.pattern(is.value, join(p, "is"))
		}
		if hasIsNot {
			filter.IsNot = d.pattern(isNot.value, join(p, "isNot"))
		}
		out = append(out, filter)
	}
	return out
}

// pattern reads a non-empty regular expression and checks that it compiles.
func (d *decoder) pattern(n *yaml.Node, path string) string {
	s, ok := d.str(n, path)
	if !ok {
		return ""
	}
	if s == "" {
		d.report(resolve(n), path, "the regular expression is empty; write the pattern series names are tested against, or remove the entry")
		return ""
	}
	d.checkRegexp(resolve(n), path, s)
	return s
}

// name decodes a rule's name mapping and checks that "as" only refers to groups "matches" has.
func (d *decoder) name(n *yaml.Node, path string) NameMapping {
	n = resolve(n)
	var m NameMapping
	f, ok := d.fields(n, path, nameFields)
	if !ok {
		return m
	}
	var re *regexp.Regexp
	if e, ok := f["matches"]; ok {
		if m.Matches, ok = d.str(e.value, join(path, "matches")); ok && m.Matches != "" {
			re = d.checkRegexp(resolve(e.value), join(path, "matches"), m.Matches)
		}
	}
	var asNode *yaml.Node
	if e, ok := f["as"]; ok {
		if m.As, ok = d.str(e.value, join(path, "as")); ok {
			asNode = resolve(e.value)
		}
	}
	if re == nil {
		return m
	}
	switch {
	case m.As == "" && re.NumSubexp() > 1:
		d.report(n, join(path, "as"), "required field is missing: name.matches has %s, so which one names the metric is ambiguous; add as, e.g. as: '${1}'", groupCount(re.NumSubexp()))
	case m.As != "":
		d.checkReplacement(asNode, join(path, "as"), m.As, re)
	}
	return m
}

// groupCount says how many capture groups a regexp has, for messages.
func groupCount(n int) string {
	switch n {
	case 0:
		return "no capture groups"
	case 1:
		return "1 capture group"
	}
	return strconv.Itoa(n) + " capture groups"
}
