package naming

import (
	"strings"
	"testing"

	"github.com/promadapter/promadapter/pkg/config"
)

// A template whose rendered query cannot parse is refused at load, naming the rule.
func TestCheckRender(t *testing.T) {
	cases := []struct {
		name, query, want string
	}{
		{"the usual shape renders and parses", `sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)`, ""},
		{"LabelValuesByName renders and parses", `sum(<<.Series>>{pod=~"<<index .LabelValuesByName "pod">>"}) by (pod)`, ""},
		{"an unbalanced parenthesis outside the actions", `sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m]) by (<<.GroupBy>>)`, "renders to a query Prometheus would refuse"},
		{"matchers outside braces", `sum(<<.Series>> <<.LabelMatchers>>)`, "renders to a query Prometheus would refuse"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rules, err := CompileRules(KindCustom, []config.DiscoveryRule{{SeriesQuery: "x", MetricsQuery: tc.query,
				Resources: config.ResourceMapping{Template: "<<.Resource>>"}, Line: 7}}, "rules.yaml", nil)
			if err != nil {
				t.Fatal(err)
			}
			err = rules[0].CheckRender()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "rules.yaml:7")):
				t.Fatalf("got %v, want an error naming rules.yaml:7 and containing %q", err, tc.want)
			}
		})
	}
	for _, r := range mustDefaultRules(t) {
		if err := r.CheckRender(); err != nil {
			t.Errorf("the default config's rule fails the check: %v", err)
		}
	}
}

func mustDefaultRules(t *testing.T) []*Rule {
	t.Helper()
	cfg := config.Default()
	custom, err := CompileRules(KindCustom, cfg.Rules, cfg.Source, nil)
	if err != nil {
		t.Fatal(err)
	}
	external, err := CompileRules(KindExternal, cfg.ExternalRules, cfg.Source, nil)
	if err != nil {
		t.Fatal(err)
	}
	return append(custom, external...)
}
