//go:build e2e

package testbed

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// thanosAnswer is the part of a querier's /api/v1/query answer the self-test reads.
type thanosAnswer struct {
	status   int
	body     string
	Status   string   `json:"status"`
	Warnings []string `json:"warnings"`
	Data     struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	} `json:"data"`
}

// series lists the result as sorted `{labels} value` lines, labels sorted by name.
func (a thanosAnswer) series() []string {
	var out []string
	for _, r := range a.Data.Result {
		names := make([]string, 0, len(r.Metric))
		for name := range r.Metric {
			names = append(names, name)
		}
		sort.Strings(names)
		pairs := make([]string, len(names))
		for i, name := range names {
			pairs[i] = name + "=" + strconv.Quote(r.Metric[name])
		}
		out = append(out, fmt.Sprintf("{%s} %v", strings.Join(pairs, ","), r.Value[1]))
	}
	sort.Strings(out)
	return out
}

// thanosQuery runs an instant query on the querier with the given extra parameters and headers,
// and returns the answer with a curl command that reproduces it.
func thanosQuery(ctx context.Context, t *testing.T, th *Thanos, query string, at time.Time, params url.Values, header http.Header) (thanosAnswer, string) {
	t.Helper()
	values := url.Values{"query": {query}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
	for k, vs := range params {
		values[k] = vs
	}
	target := th.URL + "/api/v1/query?" + values.Encode()
	curl := "curl -g '" + target + "'"
	for k := range header {
		curl += " -H '" + k + ": " + header.Get(k) + "'"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k := range header {
		req.Header.Set(k, header.Get(k))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%v; reproduce with: %s", err, curl)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	a := thanosAnswer{status: resp.StatusCode, body: string(body)}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &a); err != nil {
			t.Fatalf("decoding %q: %v; reproduce with: %s", body, err, curl)
		}
	}
	return a, curl
}

// thanosKnownValues writes one gauge series per tenant and case, every 15 s from start
// to an hour and a minute later: case "a" is 1000+k at the k-th sample, case "b" 2000+k, plus
// 10000 times the tenant's position. An empty tenant writes no tenant_id label. It returns the
// OpenMetrics, an evaluation time (7 s after the fourth sample) and the value there of each
// "<tenant>/<case>".
func thanosKnownValues(start time.Time, tenants ...string) (om []byte, at time.Time, want map[string]int) {
	const step = 15 * time.Second
	const samples = (time.Minute + time.Hour) / step
	want = map[string]int{}
	var b strings.Builder
	b.WriteString("# HELP testbed_thanos_value A gauge with a known value at every sample.\n")
	b.WriteString("# TYPE testbed_thanos_value gauge\n")
	for j, tenant := range tenants {
		labels := ""
		if tenant != "" {
			labels = fmt.Sprintf(",%s=%q", ThanosTenantLabel, tenant)
		}
		for i, c := range []string{"a", "b"} {
			base := 10000*j + 1000*(i+1)
			for k := range int(samples) {
				fmt.Fprintf(&b, "testbed_thanos_value{case=%q%s} %d %d\n", c, labels, base+k, start.Add(time.Duration(k)*step).Unix())
			}
			want[tenant+"/"+c] = base + 3
		}
	}
	b.WriteString("# EOF\n")
	return []byte(b.String()), start.Add(3*step + 7*time.Second), want
}

// Run with: go test -tags e2e ./test/testbed/ -run TestThanos -v -count=1
// (needs the binaries from test/tools/deps.sh, thanos included).
func TestThanosDeduplicatesReplicasAndReportsAMissingStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	om, at, want := thanosKnownValues(start, "")

	started := time.Now()
	th, err := StartThanos(ctx, ThanosOptions{Dir: t.TempDir(), OpenMetrics: om, ExternalLabels: map[string]string{"cluster": "testbed"}})
	if err != nil {
		t.Fatal(err)
	}
	th.Cleanup(t)
	t.Logf("Thanos querier at %s over %d replicas, ready after %s", th.URL, len(th.Stores), time.Since(started).Round(time.Millisecond))
	const query = "testbed_thanos_value"

	t.Run("with dedup=true each series comes once with the exact backfilled value", func(t *testing.T) {
		a, curl := thanosQuery(ctx, t, th, query, at, url.Values{"dedup": {"true"}}, nil)
		wantSeries := []string{
			fmt.Sprintf(`{__name__="testbed_thanos_value",case="a",cluster="testbed"} %d`, want["/a"]),
			fmt.Sprintf(`{__name__="testbed_thanos_value",case="b",cluster="testbed"} %d`, want["/b"]),
		}
		if got := a.series(); a.status != http.StatusOK || strings.Join(got, "\n") != strings.Join(wantSeries, "\n") || len(a.Warnings) > 0 {
			t.Errorf("got %d %s (warnings %q), want:\n%s\nreproduce with: %s", a.status, strings.Join(got, "\n"), a.Warnings, strings.Join(wantSeries, "\n"), curl)
		}
	})

	t.Run("with dedup=false each series comes once per replica", func(t *testing.T) {
		a, curl := thanosQuery(ctx, t, th, query, at, url.Values{"dedup": {"false"}}, nil)
		var wantSeries []string
		for _, c := range []string{"a", "b"} {
			for _, replica := range []string{"0", "1"} {
				wantSeries = append(wantSeries, fmt.Sprintf(`{__name__="testbed_thanos_value",case=%q,cluster="testbed",replica=%q} %d`, c, replica, want["/"+c]))
			}
		}
		if got := a.series(); a.status != http.StatusOK || strings.Join(got, "\n") != strings.Join(wantSeries, "\n") {
			t.Errorf("got %d %s, want:\n%s\nreproduce with: %s", a.status, strings.Join(got, "\n"), strings.Join(wantSeries, "\n"), curl)
		}
	})

	if err := th.StopStore(0); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped the sidecar of replica 0 (%s)", th.Stores[0].GRPCAddress)

	t.Run("with a sidecar stopped and partial_response=true the answer is 200 with warnings and the other replica's values", func(t *testing.T) {
		a, curl := thanosQuery(ctx, t, th, query, at, url.Values{"partial_response": {"true"}}, nil)
		if a.status != http.StatusOK || a.Status != "success" {
			t.Fatalf("got %d %s, want 200 with status success; reproduce with: %s", a.status, truncate(a.body, 1000), curl)
		}
		if len(a.Warnings) == 0 {
			t.Errorf("got no warnings (answer %s), want at least one saying store %s did not answer; reproduce with: %s", truncate(a.body, 1000), th.Stores[0].GRPCAddress, curl)
		} else {
			t.Logf("warnings: %q", a.Warnings)
		}
		wantSeries := []string{
			fmt.Sprintf(`{__name__="testbed_thanos_value",case="a",cluster="testbed"} %d`, want["/a"]),
			fmt.Sprintf(`{__name__="testbed_thanos_value",case="b",cluster="testbed"} %d`, want["/b"]),
		}
		if got := a.series(); strings.Join(got, "\n") != strings.Join(wantSeries, "\n") {
			t.Errorf("got %s, want the remaining replica's:\n%s\nreproduce with: %s", strings.Join(got, "\n"), strings.Join(wantSeries, "\n"), curl)
		}
	})

	t.Run("with a sidecar stopped and partial_response=false the query fails", func(t *testing.T) {
		a, curl := thanosQuery(ctx, t, th, query, at, url.Values{"partial_response": {"false"}}, nil)
		if a.status == http.StatusOK {
			t.Errorf("got 200 %s, want an error; reproduce with: %s", truncate(a.body, 1000), curl)
		} else {
			t.Logf("as expected: %d %s", a.status, truncate(a.body, 300))
		}
	})
}

func TestThanosEnforcesTenancyByHeader(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	om, at, want := thanosKnownValues(start, "team-a", "team-b")
	th, err := StartThanos(ctx, ThanosOptions{Dir: t.TempDir(), OpenMetrics: om, Tenancy: true})
	if err != nil {
		t.Fatal(err)
	}
	th.Cleanup(t)
	t.Logf("Thanos querier with tenancy enforced at %s", th.URL)

	for _, tc := range []struct {
		name   string
		tenant string
		want   []string
	}{
		{"a query with X-Scope-OrgID: team-a sees only team-a's series", "team-a", []string{
			fmt.Sprintf(`{__name__="testbed_thanos_value",case="a",tenant_id="team-a"} %d`, want["team-a/a"]),
			fmt.Sprintf(`{__name__="testbed_thanos_value",case="b",tenant_id="team-a"} %d`, want["team-a/b"]),
		}},
		{"a query with X-Scope-OrgID: team-b sees only team-b's series", "team-b", []string{
			fmt.Sprintf(`{__name__="testbed_thanos_value",case="a",tenant_id="team-b"} %d`, want["team-b/a"]),
			fmt.Sprintf(`{__name__="testbed_thanos_value",case="b",tenant_id="team-b"} %d`, want["team-b/b"]),
		}},
		{"a query without the header sees no series", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			header := http.Header{}
			if tc.tenant != "" {
				header.Set(ThanosTenantHeader, tc.tenant)
			}
			a, curl := thanosQuery(ctx, t, th, "testbed_thanos_value", at, nil, header)
			if got := a.series(); a.status != http.StatusOK || strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got %d %s, want:\n%s\nreproduce with: %s", a.status, strings.Join(got, "\n"), strings.Join(tc.want, "\n"), curl)
			}
		})
	}
}
