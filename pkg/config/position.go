package config

import "gopkg.in/yaml.v3"

// FieldLine returns the 1-based line of the field at path in a config file's data, each
// element of path a mapping key (FieldLine(data, "resourceRules", "cpu")), or 0 when the data
// does not parse as YAML or has no such field. It is for tools that point at parts of a
// config that carry no Line of their own (resourceRules.cpu, resourceRules.memory); a rule's
// own position is DiscoveryRule.Line. Aliases and merge keys are not followed.
func FieldLine(data []byte, path ...string) int {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		return 0
	}
	n, line := doc.Content[0], 0
	for _, key := range path {
		if n.Kind != yaml.MappingNode {
			return 0
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next, line = n.Content[i+1], n.Content[i].Line
			}
		}
		if next == nil {
			return 0
		}
		n = next
	}
	return line
}
