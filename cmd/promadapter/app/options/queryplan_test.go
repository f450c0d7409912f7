package options_test

import (
	"strings"
	"testing"
)

func TestQueryPlanFlag(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		want    string
		wantErr string
	}{
		{name: "without the flag the plan is adaptive", want: "adaptive"},
		{name: "the namespace-wide plan can be forced", args: []string{"--query-plan=namespace"}, want: "namespace"},
		{name: "an unknown plan is reported", args: []string{"--query-plan=by-name"}, want: "by-name", wantErr: `--query-plan="by-name" must be "adaptive" or "namespace"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := parse(t, append([]string{"--prometheus-url=http://127.0.0.1:9090"}, tc.args...)...)
			if o.QueryPlan != tc.want {
				t.Errorf("QueryPlan = %q, want %q", o.QueryPlan, tc.want)
			}
			errs := o.Validate()
			switch {
			case tc.wantErr == "" && len(errs) != 0:
				t.Errorf("Validate() = %v, want no error", errs)
			case tc.wantErr != "" && (len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.wantErr)):
				t.Errorf("Validate() = %v, want one error containing %q", errs, tc.wantErr)
			}
		})
	}
}
