package config

import "testing"

func TestFieldLine(t *testing.T) {
	data := []byte("rules: []\nresourceRules:\n  window: 2m\n  cpu:\n    containerQuery: x\n  memory:\n    containerQuery: y\n")
	cases := []struct {
		path []string
		want int
	}{
		{[]string{"resourceRules", "cpu"}, 4},
		{[]string{"resourceRules", "memory", "containerQuery"}, 7},
		{[]string{"rules"}, 1},
		{[]string{"resourceRules", "nodes"}, 0},
		{[]string{"rules", "cpu"}, 0}, // rules is a list, not a mapping
	}
	for _, c := range cases {
		if got := FieldLine(data, c.path...); got != c.want {
			t.Errorf("FieldLine(%v) = %d, want %d", c.path, got, c.want)
		}
	}
	if got := FieldLine([]byte("a: [\n"), "a"); got != 0 {
		t.Errorf("FieldLine of broken YAML = %d, want 0", got)
	}
}
