package config

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// decoder turns a yaml.Node tree into a Config by hand rather than through yaml's reflection,
// so that every problem carries the position of the node it is about, and decoding goes on
// after a problem to find all of them.
type decoder struct {
	source   string
	problems []Problem
	warnings []Problem
	// defined are the backends of the file, decoded first so rules can be checked against them.
	defined []Backend
}

// report records a problem at n's position (unknown position when n is nil).
func (d *decoder) report(n *yaml.Node, path, format string, args ...any) {
	p := Problem{Source: d.source, Path: path, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	d.problems = append(d.problems, p)
}

// err returns the problems found, sorted by position and without repeats (a mapping merged
// into several places is checked once per place), or nil when there are none.
func (d *decoder) err() error {
	if len(d.problems) == 0 {
		return nil
	}
	sort.SliceStable(d.problems, func(i, j int) bool {
		a, b := d.problems[i], d.problems[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	seen := map[Problem]bool{}
	var unique []Problem
	for _, p := range d.problems {
		if !seen[p] {
			seen[p] = true
			unique = append(unique, p)
		}
	}
	return &Error{Problems: unique}
}

// fieldSet is the fields one kind of mapping may hold.
type fieldSet struct {
	// names are the known fields, in the order messages list them.
	names []string
	// misplaced holds the message for fields that are valid elsewhere but not here.
	misplaced map[string]string
	// ignored holds, for fields prometheus-adapter accepts here but that have no effect,
	// the warning to give; they are decoded (so their type is still checked) and warned about.
	ignored map[string]string
}

var (
	topFields        = fieldSet{names: []string{"backends", "rules", "externalRules", "resourceRules"}}
	customRuleFields = fieldSet{names: []string{"seriesQuery", "seriesFilters", "resources", "name", "metricsQuery", "addSeriesQueryMatchers", "backend", "tenant"},
		misplaced: map[string]string{"defaultValue": `defaultValue applies only to externalRules; remove it, or move this rule to externalRules`}}
	externalRuleFields = fieldSet{names: []string{"seriesQuery", "seriesFilters", "resources", "name", "metricsQuery", "addSeriesQueryMatchers", "defaultValue", "backend", "tenant"}}
	filterFields       = fieldSet{names: []string{"is", "isNot"}}
	nameFields         = fieldSet{names: []string{"matches", "as"}}

	// Resource mappings: namespaced has an effect only in external rules; prometheus-adapter
	// accepts it everywhere, so elsewhere it loads with a warning.
	customResourcesFields = fieldSet{names: []string{"overrides", "template", "namespaced"},
		ignored: map[string]string{"namespaced": `namespaced has no effect in rules (a custom metric is always looked up in its object's namespace; it applies only to externalRules); remove it`}}
	externalResourcesFields     = fieldSet{names: []string{"overrides", "template", "namespaced"}}
	resourceRuleResourcesFields = fieldSet{names: []string{"overrides", "template", "namespaced"},
		ignored: map[string]string{"namespaced": `namespaced has no effect in resourceRules (it applies only to externalRules); remove it`}}
	groupResourceFields = fieldSet{names: []string{"resource", "group"}}

	resourceRulesFields = fieldSet{names: []string{"cpu", "memory", "window", "backend"}}
	resourceRuleFields  = fieldSet{names: []string{"containerQuery", "nodeQuery", "resources", "containerLabel"}}
)

// join appends a field name to a path.
func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// index appends a list index to a path.
func index(path string, i int) string {
	return fmt.Sprintf("%s[%d]", path, i)
}

// resolve follows aliases (*anchor) to the node they stand for.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is an empty value ("field:" with nothing after it, or null).
func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a value for messages: "a list", "the string \"x\"", "the number 5".
func describe(n *yaml.Node) string {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "an empty value"
		case "!!bool":
			return "the boolean " + n.Value
		case "!!int", "!!float":
			return "the number " + n.Value
		}
		v := []rune(n.Value)
		if len(v) > 40 {
			return fmt.Sprintf("the string %q", string(v[:37])+"...")
		}
		return fmt.Sprintf("the string %q", n.Value)
	}
	return "an unexpected YAML node"
}

// expected is the kind of value a field takes, for wrong-type messages.
type expected int

const (
	expectMapping expected = iota
	expectList
	expectString
	expectNumber
	expectBool
)

// wrongType reports that n is not the kind of value the field at path takes.
func (d *decoder) wrongType(n *yaml.Node, path string, want expected) {
	got := describe(n)
	n = resolve(n)
	var what, fix string
	switch want {
	case expectMapping:
		what, fix = "a mapping", `write it as indented "field: value" lines`
		if n.Kind == yaml.SequenceNode {
			fix = `remove the "- " list markers and write the fields as indented "field: value" lines`
		}
	case expectList:
		what, fix = "a list", `write each entry on its own line starting with "- " (or [] for none)`
	case expectString:
		what, fix = "a string", `quote the whole value in single quotes: unquoted, a value that starts with "{" or "[" or contains ": " is read as YAML structure`
	case expectNumber:
		what, fix = "a number", "write a number such as 0 or 1.5, without quotes"
	case expectBool:
		what, fix = "true or false", "write true or false, without quotes"
	}
	d.report(n, path, "got %s where %s is expected; %s", got, what, fix)
}

// entry is one "key: value" pair of a mapping.
type entry struct{ key, value *yaml.Node }

// fields reads the mapping n, reporting duplicate and unknown fields, and returns its known
// fields by name. An empty value reads as an empty mapping. ok is false, after a problem is
// reported, when n is not a mapping at all.
func (d *decoder) fields(n *yaml.Node, path string, set fieldSet) (fields map[string]entry, ok bool) {
	n = resolve(n)
	if isNull(n) {
		return map[string]entry{}, true
	}
	if n.Kind != yaml.MappingNode {
		d.wrongType(n, path, expectMapping)
		return nil, false
	}
	fields = map[string]entry{}
	for _, e := range d.entries(n, path, map[*yaml.Node]bool{}) {
		name := e.key.Value
		if slices.Contains(set.names, name) {
			fields[name] = e
			if message, ok := set.ignored[name]; ok {
				d.warn(e.key, join(path, name), "%s", message)
			}
			continue
		}
		d.unknownField(e.key, path, set)
	}
	return fields, true
}

// unknownField reports a field that set does not hold, suggesting the nearest known one.
func (d *decoder) unknownField(key *yaml.Node, path string, set fieldSet) {
	name := key.Value
	if message, ok := set.misplaced[name]; ok {
		d.report(key, join(path, name), "%s", message)
		return
	}
	known := quotedList(set.names)
	if guess := closest(name, set.names); guess != "" {
		d.report(key, join(path, name), "unknown field %q; did you mean %q? (the known fields here are %s)", name, guess, known)
		return
	}
	d.report(key, join(path, name), "unknown field %q; remove it, or use one of the known fields here: %s", name, known)
}

// entries returns the pairs of mapping n in order, with YAML merge keys ("<<: *anchor")
// expanded: a field written in n wins over a merged one, and an earlier merged mapping over a
// later one. Fields written twice in n are reported. visiting holds the mappings being
// expanded, so that a mapping merged into itself is reported instead of looping.
func (d *decoder) entries(n *yaml.Node, path string, visiting map[*yaml.Node]bool) []entry {
	if visiting[n] {
		d.report(n, path, `this mapping is merged into itself through "<<"; remove that merge key`)
		return nil
	}
	visiting[n] = true
	defer delete(visiting, n)

	var own, merged []entry
	first := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := resolve(n.Content[i]), n.Content[i+1]
		if key.Kind == yaml.ScalarNode && key.ShortTag() == "!!merge" {
			merged = append(merged, d.mergeSources(value, path, visiting)...)
			continue
		}
		if key.Kind != yaml.ScalarNode {
			d.report(key, path, "got %s where a field name is expected; write a plain name before the colon", describe(key))
			continue
		}
		if prev, dup := first[key.Value]; dup {
			d.report(key, join(path, key.Value), "field %q is set twice (first on line %d); remove one of them", key.Value, prev.Line)
			continue
		}
		first[key.Value] = key
		own = append(own, entry{key, value})
	}
	for _, e := range merged {
		if _, dup := first[e.key.Value]; !dup {
			first[e.key.Value] = e.key
			own = append(own, e)
		}
	}
	return own
}

// mergeSources returns the pairs a merge key's value contributes: one mapping or a list of them.
func (d *decoder) mergeSources(value *yaml.Node, path string, visiting map[*yaml.Node]bool) []entry {
	value = resolve(value)
	switch value.Kind {
	case yaml.MappingNode:
		return d.entries(value, path, visiting)
	case yaml.SequenceNode:
		var out []entry
		for _, item := range value.Content {
			item = resolve(item)
			if item.Kind != yaml.MappingNode {
				d.report(item, path, `got %s in the list of a merge key "<<"; list only anchored mappings, e.g. <<: [*defaults]`, describe(item))
				continue
			}
			out = append(out, d.entries(item, path, visiting)...)
		}
		return out
	}
	d.report(value, path, `got %s after the merge key "<<"; point it at an anchored mapping, e.g. <<: *defaults`, describe(value))
	return nil
}

// list returns the items of the list n; an empty value is an empty list. ok is false, after
// a problem is reported, when n is not a list.
func (d *decoder) list(n *yaml.Node, path string) (items []*yaml.Node, ok bool) {
	n = resolve(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		d.wrongType(n, path, expectList)
		return nil, false
	}
	return n.Content, true
}

// str reads a string. Other scalars read as written ("5", "true"), as yaml does when it
// decodes into a string; an empty value reads as "".
func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode {
		d.wrongType(n, path, expectString)
		return "", false
	}
	if n.ShortTag() == "!!null" {
		return "", true
	}
	return n.Value, true
}

// requiredString reads the field name of the mapping parent (whose fields are f), reporting
// it when it is missing or blank with fix as the remedy. It returns the value and its node,
// or a nil node when there is no usable value.
func (d *decoder) requiredString(f map[string]entry, parent *yaml.Node, path, name, fix string) (string, *yaml.Node) {
	p := join(path, name)
	e, ok := f[name]
	if !ok {
		d.report(resolve(parent), p, "required field is missing; %s", fix)
		return "", nil
	}
	s, ok := d.str(e.value, p)
	if !ok {
		return "", nil
	}
	if strings.TrimSpace(s) == "" {
		d.report(resolve(e.value), p, "required field is empty; %s", fix)
		return "", nil
	}
	return s, resolve(e.value)
}

// number reads a finite number written without quotes.
func (d *decoder) number(n *yaml.Node, path string) *float64 {
	n = resolve(n)
	if tag := n.ShortTag(); n.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!float") {
		d.wrongType(n, path, expectNumber)
		return nil
	}
	var f float64
	if err := n.Decode(&f); err != nil {
		d.report(n, path, "%q does not fit in a number (%v); write a number such as 0 or 1.5", n.Value, err)
		return nil
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		d.report(n, path, "%s is not a finite number; write a number such as 0 or 1.5", n.Value)
		return nil
	}
	return &f
}

// boolean reads true or false written without quotes.
func (d *decoder) boolean(n *yaml.Node, path string) *bool {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		d.wrongType(n, path, expectBool)
		return nil
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		d.wrongType(n, path, expectBool)
		return nil
	}
	return &b
}

// config decodes the document's root.
func (d *decoder) config(root *yaml.Node) *Config {
	c := &Config{Source: d.source}
	root = resolve(root)
	if isNull(root) {
		return c
	}
	if root.Kind != yaml.MappingNode {
		d.report(root, "", `got %s where the config's fields are expected; the file must be a mapping with any of the fields "rules", "externalRules" and "resourceRules"`, describe(root))
		return c
	}
	if kind := manifestKind(root); kind != "" {
		d.report(root, "", `this is a Kubernetes manifest (kind: %s), not an adapter config; pass the config file it holds instead, e.g. kubectl get configmap NAME -o jsonpath='{.data.config\.yaml}' > config.yaml`, kind)
		return c
	}
	f, _ := d.fields(root, "", topFields)
	if e, ok := f["backends"]; ok {
		c.Backends = d.backends(e.value, "backends")
	}
	d.defined = c.Backends
	if e, ok := f["rules"]; ok {
		c.Rules = d.rules(e.value, "rules", false)
	}
	if e, ok := f["externalRules"]; ok {
		c.ExternalRules = d.rules(e.value, "externalRules", true)
	}
	if e, ok := f["resourceRules"]; ok {
		c.ResourceRules = d.resourceRules(e.value, "resourceRules")
	}
	return c
}

// manifestKind returns the kind of a Kubernetes object (a mapping with apiVersion and kind),
// or "" when root does not look like one.
func manifestKind(root *yaml.Node) string {
	var kind string
	var hasAPIVersion bool
	for i := 0; i+1 < len(root.Content); i += 2 {
		switch root.Content[i].Value {
		case "kind":
			kind = resolve(root.Content[i+1]).Value
		case "apiVersion":
			hasAPIVersion = true
		}
	}
	if !hasAPIVersion {
		return ""
	}
	return kind
}

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

// resources decodes a resource mapping; set says whether namespaced is allowed.
func (d *decoder) resources(n *yaml.Node, path string, set fieldSet) ResourceMapping {
	var m ResourceMapping
	f, ok := d.fields(n, path, set)
	if !ok {
		return m
	}
	if e, ok := f["template"]; ok {
		p := join(path, "template")
		if m.Template, ok = d.str(e.value, p); ok && m.Template != "" {
			d.checkTemplate(resolve(e.value), p, m.Template, resourceTemplateFields)
		}
	}
	if e, ok := f["overrides"]; ok {
		m.Overrides = d.overrides(e.value, join(path, "overrides"))
		d.checkSharedResources(resolve(e.value), join(path, "overrides"), m.Overrides)
	}
	if e, ok := f["namespaced"]; ok {
		m.Namespaced = d.boolean(e.value, join(path, "namespaced"))
	}
	return m
}

// overrides decodes resources.overrides: label name -> {group, resource}.
func (d *decoder) overrides(n *yaml.Node, path string) map[string]GroupResource {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.wrongType(n, path, expectMapping)
		return nil
	}
	out := map[string]GroupResource{}
	for _, e := range d.entries(n, path, map[*yaml.Node]bool{}) {
		label := e.key.Value
		p := join(path, label)
		if label == "" {
			d.report(e.key, p, "the label name is empty; write the Prometheus label that holds the resource's name, e.g. pod: {resource: pod}")
			continue
		}
		value := resolve(e.value)
		if value.Kind == yaml.ScalarNode && !isNull(value) {
			d.report(value, p, "got %s where a mapping is expected; write %s: {resource: %s}", describe(value), label, value.Value)
			continue
		}
		f, ok := d.fields(value, p, groupResourceFields)
		if !ok {
			continue
		}
		var gr GroupResource
		if g, ok := f["group"]; ok {
			gr.Group, _ = d.str(g.value, join(p, "group"))
		}
		gr.Resource, _ = d.requiredString(f, value, p, "resource",
			fmt.Sprintf("name the Kubernetes resource whose names the label %q holds, e.g. resource: pod", label))
		out[label] = gr
	}
	return out
}

// resourceRules decodes resourceRules; an empty value disables metrics.k8s.io (nil).
func (d *decoder) resourceRules(n *yaml.Node, path string) *ResourceRules {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	f, ok := d.fields(n, path, resourceRulesFields)
	if !ok {
		return nil
	}
	rr := &ResourceRules{}
	for _, r := range []struct {
		name string
		rule *ResourceRule
	}{{"cpu", &rr.CPU}, {"memory", &rr.Memory}} {
		if e, ok := f[r.name]; ok {
			*r.rule = d.resourceRule(e.value, join(path, r.name))
			continue
		}
		d.report(n, join(path, r.name), "required field is missing; add the %s queries (containerQuery, nodeQuery, resources and containerLabel)", r.name)
	}
	rr.Backend = d.backendRef(f, path)
	e, ok := f["window"]
	if !ok {
		d.report(n, join(path, "window"), "required field is missing; add the rate window, e.g. window: 5m")
		return rr
	}
	rr.Window = d.window(e.value, join(path, "window"))
	return rr
}

// window reads a positive Prometheus duration such as 5m.
func (d *decoder) window(n *yaml.Node, path string) model.Duration {
	s, ok := d.str(n, path)
	if !ok {
		return 0
	}
	n = resolve(n)
	if s == "" {
		d.report(n, path, "required field is empty; add the rate window, e.g. window: 5m")
		return 0
	}
	w, err := model.ParseDuration(s)
	if err != nil {
		d.report(n, path, "%q is not a Prometheus duration; write a whole number with a unit, such as 30s, 5m or 1h", s)
		return 0
	}
	if w <= 0 {
		d.report(n, path, "the window must be longer than zero; write a duration such as 5m")
	}
	return w
}

// resourceRule decodes resourceRules.cpu or resourceRules.memory.
func (d *decoder) resourceRule(n *yaml.Node, path string) ResourceRule {
	n = resolve(n)
	var r ResourceRule
	f, ok := d.fields(n, path, resourceRuleFields)
	if !ok {
		return r
	}
	var node *yaml.Node
	if r.ContainerQuery, node = d.requiredString(f, n, path, "containerQuery",
		"add the query template for per-container usage, e.g. containerQuery: 'sum by (<<.GroupBy>>) (rate(container_cpu_usage_seconds_total{<<.LabelMatchers>>}[<<.Window>>]))'"); node != nil {
		d.checkTemplate(node, join(path, "containerQuery"), r.ContainerQuery, resourceQueryTemplateFields)
	}
	if r.NodeQuery, node = d.requiredString(f, n, path, "nodeQuery",
		"add the query template for per-node usage, e.g. nodeQuery: 'sum by (<<.GroupBy>>) (rate(node_cpu_usage_seconds_total{<<.LabelMatchers>>}[<<.Window>>]))'"); node != nil {
		d.checkTemplate(node, join(path, "nodeQuery"), r.NodeQuery, resourceQueryTemplateFields)
	}
	if e, ok := f["resources"]; ok {
		p := join(path, "resources")
		r.Resources = d.resources(e.value, p, resourceRuleResourcesFields)
		d.checkResourceCoverage(resolve(e.value), p, r.Resources)
	} else {
		d.report(n, join(path, "resources"), "required field is missing; %s", resourceCoverageFix)
	}
	r.ContainerLabel, _ = d.requiredString(f, n, path, "containerLabel", "name the label that holds the container name, e.g. containerLabel: container")
	return r
}

const resourceCoverageFix = "map the labels that name nodes, namespaces and pods, e.g. resources: {overrides: {node: {resource: node}, namespace: {resource: namespace}, pod: {resource: pod}}}"

// checkResourceCoverage reports resource-rule mappings that leave out nodes, namespaces or
// pods: without them node usage or pod usage cannot be attributed, and kubectl top shows
// nothing. A template is taken to cover all three.
func (d *decoder) checkResourceCoverage(n *yaml.Node, path string, m ResourceMapping) {
	if m.Template != "" {
		return
	}
	if len(m.Overrides) == 0 {
		d.report(n, path, "no label is mapped to a resource; %s", resourceCoverageFix)
		return
	}
	covered := map[string]bool{}
	for _, gr := range m.Overrides {
		covered[strings.TrimSuffix(strings.ToLower(gr.Resource), "s")] = true
	}
	var missing, examples []string
	for _, r := range []string{"node", "namespace", "pod"} {
		if !covered[r] {
			missing = append(missing, r+"s")
			examples = append(examples, fmt.Sprintf("%s: {resource: %s}", r, r))
		}
	}
	if len(missing) > 0 {
		d.report(fieldValue(n, "overrides"), join(path, "overrides"), "no label is mapped to %s, so their usage cannot be attributed; add an override for each, e.g. %s",
			strings.Join(missing, " or "), strings.Join(examples, " and "))
	}
}

// fieldValue returns the value of the field name written in mapping n, or n itself when the
// field is not written there (it may come from a merge key), for positions in messages.
func fieldValue(n *yaml.Node, name string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == name {
			return resolve(n.Content[i+1])
		}
	}
	return n
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
