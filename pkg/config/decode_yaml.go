// This file holds the decoder's YAML node helpers: paths, type checks, mappings with merge keys, and scalar readers.

package config

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
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
