// Tests of how listed metrics age out and survive failing rules.

package discovery_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promadapter/promadapter/internal/promtest"
	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/pkg/discovery"
	"github.com/promadapter/promadapter/pkg/naming"
)

func TestAMetricStaysListedUntilItHasBeenAbsentForMaxAge(t *testing.T) {
	custom := promtest.Series("http_requests_total", "namespace", "shop", "pod", "web-1")
	external := promtest.Series("queue_depth", "queue", "orders")
	externalRule := config.DiscoveryRule{SeriesQuery: `{__name__="queue_depth"}`, MetricsQuery: `sum(<<.Series>>{<<.LabelMatchers>>})`}
	steps := []struct {
		name    string
		at      time.Duration // since t0
		present bool          // whether the series exist in Prometheus at this pass
		listed  bool          // whether the metrics are served after the pass
		// start and end are the time bounds every discovery call must carry.
		start, end string
	}{
		{"at first sight the metrics are listed", 0, true, true, "1772365800", "1772366400"},
		{"a minute after the series vanished they are still listed", time.Minute, false, true, "1772365860", "1772366460"},
		{"just under MaxAge after last seen they are still listed", 10*time.Minute - time.Second, false, true, "1772366399", "1772366999"},
		{"MaxAge after last seen they are dropped", 10 * time.Minute, false, false, "1772366400", "1772367000"},
		{"when the series return the metrics are listed again", 12 * time.Minute, true, true, "1772366520", "1772367120"},
		{"last seen is renewed: MaxAge after the first sighting they stay", 20 * time.Minute, false, true, "1772367000", "1772367600"},
		{"MaxAge after the renewed sighting they are dropped", 22 * time.Minute, false, false, "1772367120", "1772367720"},
	}
	f := promtest.New(t)
	clk := &clock{}
	reg := discovery.NewRegistry()
	d := &discovery.Discoverer{
		Backend: client(t, f), Registry: reg, MaxAge: 10 * time.Minute, Now: clk.Now,
		Custom:   compile(t, naming.KindCustom, appCounterRule),
		External: compile(t, naming.KindExternal, externalRule),
	}
	for _, s := range steps {
		clk.Set(t0.Add(s.at))
		if s.present {
			f.SetSeries(custom, external)
		} else {
			f.SetSeries()
		}
		if err := d.RunOnce(context.Background()); err != nil {
			t.Fatalf("%s: RunOnce: %v", s.name, err)
		}
		var wantCustom []provider.CustomMetricInfo
		var wantExternal []provider.ExternalMetricInfo
		if s.listed {
			wantCustom = []provider.CustomMetricInfo{info(namespaces, "http_requests_per_second", false), info(pods, "http_requests_per_second", true)}
			wantExternal = []provider.ExternalMetricInfo{{Metric: "queue_depth"}}
		}
		if got := reg.ListCustom(); !(len(got) == 0 && len(wantCustom) == 0) && !reflect.DeepEqual(got, wantCustom) {
			t.Errorf("%s: ListCustom() = %v, want %v", s.name, got, wantCustom)
		}
		if got := reg.ListExternal(); !(len(got) == 0 && len(wantExternal) == 0) && !reflect.DeepEqual(got, wantExternal) {
			t.Errorf("%s: ListExternal() = %v, want %v", s.name, got, wantExternal)
		}
		if _, ok := reg.Custom("http_requests_per_second", pods); ok != s.listed {
			t.Errorf("%s: Custom(http_requests_per_second, pods) found = %v, want %v", s.name, ok, s.listed)
		}
		calls := f.TakeCalls()
		if len(calls) == 0 {
			t.Fatalf("%s: no discovery call reached Prometheus", s.name)
		}
		for _, c := range calls {
			if c.Start != s.start || c.End != s.end {
				t.Errorf("%s: %s %q asked for [%s, %s], want [%s, %s]", s.name, c.Path, c.Match, c.Start, c.End, s.start, s.end)
			}
		}
	}
}

func TestAFailingRuleKeepsItsMetricsAndDoesNotAffectOthers(t *testing.T) {
	httpRule := config.DiscoveryRule{
		SeriesQuery:  `{__name__=~"^http_.*_total$",namespace!=""}`,
		Resources:    config.ResourceMapping{Template: "<<.Resource>>"},
		Name:         config.NameMapping{Matches: "^(.*)_total$", As: "${1}_per_second"},
		MetricsQuery: `sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)`,
	}
	queueRule := config.DiscoveryRule{
		SeriesQuery:  `{__name__=~"^queue_.*",namespace!=""}`,
		Resources:    config.ResourceMapping{Template: "<<.Resource>>"},
		MetricsQuery: `sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)`,
	}
	httpSeries := promtest.Series("http_requests_total", "namespace", "shop", "pod", "web-1")
	queueSeries := promtest.Series("queue_depth", "namespace", "shop", "service", "orders")
	newQueueSeries := promtest.Series("queue_lag", "namespace", "shop", "service", "orders")

	cases := []struct {
		name string
		// fail decides which calls fail once the http rule breaks.
		fail func(path string, match []string) int
		// wantErr is part of the rule's failure text.
		wantErr string
	}{
		{
			name: "when listing the rule's series names fails",
			fail: func(path string, match []string) int {
				if strings.HasSuffix(path, "/values") && reflect.DeepEqual(match, []string{httpRule.SeriesQuery}) {
					return 500
				}
				return 0
			},
			wantErr: "rule custom/0 (test.yaml:0): listing series names: Prometheus at URL failed (label values): internal: injected failure for [{__name__=~\"^http_.*_total$\",namespace!=\"\"}]",
		},
		{
			name: "when listing the labels of one of the rule's series fails",
			fail: func(path string, match []string) int {
				if path == "/api/v1/labels" && reflect.DeepEqual(match, []string{`{__name__="http_requests_total",namespace!=""}`}) {
					return 500
				}
				return 0
			},
			wantErr: "rule custom/0 (test.yaml:0): listing labels of http_requests_total: Prometheus at URL failed (label names): internal: injected failure for [{__name__=\"http_requests_total\",namespace!=\"\"}]",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := promtest.New(t, httpSeries, queueSeries)
			wantErr := strings.ReplaceAll(tc.wantErr, "URL", f.URL())
			clk := &clock{t: t0}
			reg := discovery.NewRegistry()
			d := &discovery.Discoverer{Backend: client(t, f), Registry: reg, MaxAge: 10 * time.Minute, Now: clk.Now,
				Custom: compile(t, naming.KindCustom, httpRule, queueRule)}

			type want struct {
				custom  []provider.CustomMetricInfo
				failing []string
			}
			check := func(step string, err error, w want) {
				t.Helper()
				if len(w.failing) == 0 && err != nil {
					t.Errorf("%s: RunOnce = %v, want success", step, err)
				}
				if len(w.failing) > 0 && (err == nil || !strings.Contains(err.Error(), wantErr)) {
					t.Errorf("%s: RunOnce = %v, want an error containing %q", step, err, wantErr)
				}
				if got := reg.ListCustom(); !reflect.DeepEqual(got, w.custom) {
					t.Errorf("%s: ListCustom() =\n%v\nwant\n%v", step, got, w.custom)
				}
				if got := reg.Failing(); !reflect.DeepEqual(got, w.failing) && !(len(got) == 0 && len(w.failing) == 0) {
					t.Errorf("%s: Failing() = %q, want %q", step, got, w.failing)
				}
			}

			err := d.RunOnce(context.Background())
			check("both rules work", err, want{custom: []provider.CustomMetricInfo{
				info(namespaces, "http_requests_per_second", false),
				info(namespaces, "queue_depth", false),
				info(pods, "http_requests_per_second", true),
				info(services, "queue_depth", true),
			}})

			f.SetFail(tc.fail)
			f.SetSeries(httpSeries, queueSeries, newQueueSeries)
			clk.Set(t0.Add(time.Minute))
			err = d.RunOnce(context.Background())
			afterBreak := want{
				custom: []provider.CustomMetricInfo{
					info(namespaces, "http_requests_per_second", false),
					info(namespaces, "queue_depth", false),
					info(namespaces, "queue_lag", false),
					info(pods, "http_requests_per_second", true),
					info(services, "queue_depth", true),
					info(services, "queue_lag", true),
				},
				failing: []string{wantErr},
			}
			check("the http rule breaks: its metrics stay, the queue rule finds a new metric", err, afterBreak)

			clk.Set(t0.Add(2 * time.Minute))
			err = d.RunOnce(context.Background())
			check("still broken: the failure is reported once, not once per pass", err, afterBreak)

			clk.Set(t0.Add(10 * time.Minute))
			err = d.RunOnce(context.Background())
			check("broken for MaxAge since the last success: its metrics are dropped", err, want{
				custom: []provider.CustomMetricInfo{
					info(namespaces, "queue_depth", false),
					info(namespaces, "queue_lag", false),
					info(services, "queue_depth", true),
					info(services, "queue_lag", true),
				},
				failing: []string{wantErr},
			})

			f.SetFail(nil)
			clk.Set(t0.Add(11 * time.Minute))
			err = d.RunOnce(context.Background())
			check("recovered: its metrics are back and nothing is failing", err, want{custom: []provider.CustomMetricInfo{
				info(namespaces, "http_requests_per_second", false),
				info(namespaces, "queue_depth", false),
				info(namespaces, "queue_lag", false),
				info(pods, "http_requests_per_second", true),
				info(services, "queue_depth", true),
				info(services, "queue_lag", true),
			}})
		})
	}
}
