package config

import (
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// warn records a warning at n's position: the config loads, but this is likely a mistake.
func (d *decoder) warn(n *yaml.Node, path, format string, args ...any) {
	p := Problem{Source: d.source, Path: path, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	d.warnings = append(d.warnings, p)
}

// sortedWarnings returns the warnings sorted by position, without repeats (a mapping merged
// into several places is checked once per place), or nil when there are none.
func (d *decoder) sortedWarnings() []Problem {
	sort.SliceStable(d.warnings, func(i, j int) bool {
		a, b := d.warnings[i], d.warnings[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	var unique []Problem
	seen := map[Problem]bool{}
	for _, p := range d.warnings {
		if !seen[p] {
			seen[p] = true
			unique = append(unique, p)
		}
	}
	return unique
}

// checkSharedResources warns when several override labels name one resource (say namespace
// and exported_namespace, both namespaces). Every such label still maps series to the
// resource, but a query can restrict and group by only one: the adapter uses the label named
// like the resource's singular, else the lexicographically smallest (package naming's rule).
// Resource names are compared case-insensitively, singular and plural alike, as the
// RESTMapper will resolve them.
func (d *decoder) checkSharedResources(n *yaml.Node, path string, overrides map[string]GroupResource) {
	byResource := map[GroupResource][]string{}
	for label, gr := range overrides {
		key := GroupResource{Group: strings.ToLower(gr.Group), Resource: strings.TrimSuffix(strings.ToLower(gr.Resource), "s")}
		byResource[key] = append(byResource[key], label)
	}
	for gr, labels := range byResource {
		if len(labels) < 2 {
			continue
		}
		sort.Strings(labels)
		used := labels[0]
		for _, l := range labels {
			if l == gr.Resource {
				used = l
			}
		}
		name := gr.Resource + "s"
		if gr.Group != "" {
			name = gr.Group + "/" + name
		}
		d.warn(n, path, "the labels %s all name %s; queries restrict and group by %q only (the label named like the resource, else the first in sort order): map only that one, unless the others are meant for discovery alone",
			quotedList(labels), name, used)
	}
}
