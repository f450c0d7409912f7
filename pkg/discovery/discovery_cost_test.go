// Tests of the calls discovery makes to Prometheus and how many run at once.

package discovery_test

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promadapter/promadapter/internal/promtest"
	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/pkg/discovery"
	"github.com/promadapter/promadapter/pkg/naming"
)

func TestDiscoveryCostsOneCallPerRuleAndPerSeriesName(t *testing.T) {
	httpRule := config.DiscoveryRule{
		SeriesQuery:  `{__name__=~"^http_.*_total$",namespace!=""}`,
		Resources:    config.ResourceMapping{Template: "<<.Resource>>"},
		Name:         config.NameMapping{Matches: "^(.*)_total$", As: "${1}_per_second"},
		MetricsQuery: `sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)`,
	}
	queueRule := config.DiscoveryRule{
		SeriesQuery:   `{__name__=~"^queue_.*",namespace!=""}`,
		SeriesFilters: []config.RegexFilter{{IsNot: "_created$"}},
		Resources:     config.ResourceMapping{Template: "<<.Resource>>"},
		MetricsQuery:  `sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)`,
	}
	// 3 http names × 200 pods and 2 queue names (one filtered out) × 200 pods: 1,000 series.
	var all []map[string]string
	for i := range 200 {
		pod := fmt.Sprintf("web-%d", i)
		for _, name := range []string{"http_requests_total", "http_errors_total", "http_bytes_total", "queue_depth", "queue_depth_created"} {
			all = append(all, promtest.Series(name, "namespace", "shop", "pod", pod, "code", "200", "instance", pod+":8080"))
		}
	}
	f := promtest.New(t, all...)
	clk := &clock{t: t0}
	reg := discovery.NewRegistry()
	d := &discovery.Discoverer{Backend: client(t, f), Registry: reg, MaxAge: 10 * time.Minute, Now: clk.Now,
		Custom: compile(t, naming.KindCustom, httpRule, queueRule)}
	if err := d.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	type call struct{ path, match string }
	var got []call
	for _, c := range f.TakeCalls() {
		got = append(got, call{c.Path, strings.Join(c.Match, " ")})
	}
	sort.Slice(got, func(i, j int) bool { return got[i].path+got[i].match < got[j].path+got[j].match })
	want := []call{
		{"/api/v1/label/__name__/values", `{__name__=~"^http_.*_total$",namespace!=""}`},
		{"/api/v1/label/__name__/values", `{__name__=~"^queue_.*",namespace!=""}`},
		{"/api/v1/labels", `{__name__="http_bytes_total",namespace!=""}`},
		{"/api/v1/labels", `{__name__="http_errors_total",namespace!=""}`},
		{"/api/v1/labels", `{__name__="http_requests_total",namespace!=""}`},
		{"/api/v1/labels", `{__name__="queue_depth",namespace!=""}`},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("calls =\n%q\nwant\n%q", got, want)
	}
	wantMetrics := []provider.CustomMetricInfo{
		info(namespaces, "http_bytes_per_second", false),
		info(namespaces, "http_errors_per_second", false),
		info(namespaces, "http_requests_per_second", false),
		info(namespaces, "queue_depth", false),
		info(pods, "http_bytes_per_second", true),
		info(pods, "http_errors_per_second", true),
		info(pods, "http_requests_per_second", true),
		info(pods, "queue_depth", true),
	}
	if got := reg.ListCustom(); !reflect.DeepEqual(got, wantMetrics) {
		t.Errorf("ListCustom() =\n%v\nwant\n%v", got, wantMetrics)
	}
}

func TestParallelBoundsConcurrentLabelNameCalls(t *testing.T) {
	var all []map[string]string
	for _, name := range []string{"a_total", "b_total", "c_total", "d_total", "e_total", "f_total"} {
		all = append(all, promtest.Series(name, "namespace", "shop", "pod", "web-1"))
	}
	for _, parallel := range []int{1, 2, 3} {
		f := promtest.New(t, all...)
		hold := make(chan struct{})
		f.Hold(hold)
		// Release the held calls once `parallel` of them are in flight, after a pause long
		// enough for any call beyond the bound to arrive too.
		go func() {
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				if f.InFlight() >= parallel {
					break
				}
				time.Sleep(time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			close(hold)
		}()
		reg := discovery.NewRegistry()
		d := &discovery.Discoverer{Backend: client(t, f), Registry: reg, MaxAge: time.Minute, Parallel: parallel,
			Custom: compile(t, naming.KindCustom, appCounterRule)}
		if err := d.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := f.MaxInFlight()
		if got != parallel {
			t.Errorf("Parallel=%d: at most %d calls were in flight, want exactly %d", parallel, got, parallel)
		}
		if n := len(reg.ListCustom()); n != 12 {
			t.Errorf("Parallel=%d: %d metrics listed, want 12 (6 names × pods, namespaces)", parallel, n)
		}
	}
}
