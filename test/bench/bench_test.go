package main

import (
	"encoding/xml"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100 ms down to 1 ms, unsorted on purpose
	}
	tests := []struct {
		name                      string
		samples                   []time.Duration
		wantP50, wantP99, wantMax Seconds
	}{
		{"one sample is every quantile", ms(7), 0.007, 0.007, 0.007},
		{"p50 of an even count is the lower middle sample", ms(4, 1, 3, 2), 0.002, 0.004, 0.004},
		{"p99 of 100 samples is the 99th smallest", ms(hundred...), 0.050, 0.099, 0.100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := summarize(tc.samples, 3)
			if got.N != len(tc.samples) || got.Items != 3 || !closeTo(got.P50, tc.wantP50) || !closeTo(got.P99, tc.wantP99) || !closeTo(got.Max, tc.wantMax) {
				t.Errorf("summarize = %+v, want n=%d p50=%v p99=%v max=%v items=3", got, len(tc.samples), tc.wantP50, tc.wantP99, tc.wantMax)
			}
		})
	}
	t.Run("no samples summarise to zero", func(t *testing.T) {
		if got := summarize(nil, 0); got != (Latency{}) {
			t.Errorf("summarize(nil) = %+v, want the zero Latency", got)
		}
	})
}

func closeTo(a, b Seconds) bool { return math.Abs(float64(a-b)) < 1e-12 }

func TestFamiliesSumAndCount(t *testing.T) {
	text := `# TYPE apiserver_request_total counter
apiserver_request_total{code="200",resource="pods",verb="LIST"} 3
apiserver_request_total{code="500",resource="pods",verb="LIST"} 1
apiserver_request_total{code="200",resource="pods",verb="GET"} 40
apiserver_request_total{code="200",resource="nodes",verb="LIST"} 7
# TYPE promadapter_planner_longest_query_bytes gauge
promadapter_planner_longest_query_bytes 266
# TYPE promadapter_discovery_duration_seconds histogram
promadapter_discovery_duration_seconds_bucket{le="0.01"} 1
promadapter_discovery_duration_seconds_bucket{le="+Inf"} 2
promadapter_discovery_duration_seconds_sum 0.25
promadapter_discovery_duration_seconds_count 2
`
	families, err := parseFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	sums := []struct {
		name   string
		family string
		labels map[string]string
		want   float64
	}{
		{"a counter sums over every series that has the labels asked for", "apiserver_request_total", map[string]string{"verb": "LIST", "resource": "pods"}, 4},
		{"no labels asked for sums every series", "apiserver_request_total", nil, 51},
		{"a gauge without labels is its value", "promadapter_planner_longest_query_bytes", nil, 266},
		{"a histogram sums its observations", "promadapter_discovery_duration_seconds", nil, 0.25},
		{"an absent family sums to zero", "prometheus_http_requests_total", map[string]string{"handler": "/api/v1/query"}, 0},
	}
	for _, tc := range sums {
		t.Run(tc.name, func(t *testing.T) {
			if got := families.Sum(tc.family, tc.labels); got != tc.want {
				t.Errorf("Sum(%s, %v) = %v, want %v", tc.family, tc.labels, got, tc.want)
			}
		})
	}
	t.Run("a histogram counts its observations", func(t *testing.T) {
		if got := families.Count("promadapter_discovery_duration_seconds", nil); got != 2 {
			t.Errorf("Count = %d, want 2", got)
		}
	})
}

func TestParseStatusMemory(t *testing.T) {
	status := "Name:\tpromadapter\nVmPeak:\t 1300000 kB\nVmHWM:\t   120000 kB\nVmRSS:\t   100000 kB\nRssAnon:\t   40000 kB\nRssFile:\t   60000 kB\nRssShmem:\t       0 kB\nThreads:\t12\n"
	got, err := parseStatusMemory(strings.NewReader(status))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Memory{RSS: 100000 << 10, HWM: 120000 << 10, Anon: 40000 << 10, File: 60000 << 10}); got != want {
		t.Errorf("parseStatusMemory = %+v, want %+v", got, want)
	}
	t.Run("a status without VmHWM is an error", func(t *testing.T) {
		if got, err := parseStatusMemory(strings.NewReader("VmRSS:\t 1 kB\n")); err == nil {
			t.Errorf("got %+v and no error", got)
		}
	})
}

func TestReplaceGeneratedSectionKeepsTheHandWrittenParts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "benchmarks.md")
	before := "# Benchmarks\n\nHand-written intro.\n\n"
	after := "\n\nHand-written footer.\n"
	if err := os.WriteFile(path, []byte(before+beginMarker+"\nold figures\n"+endMarker+after), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := replaceGeneratedSection(path, "new figures"); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := before + beginMarker + "\n\nnew figures\n\n" + endMarker + after
	if string(got) != want {
		t.Errorf("the report reads:\n%s\nwant:\n%s", got, want)
	}
	t.Run("a report without markers is refused", func(t *testing.T) {
		bare := filepath.Join(t.TempDir(), "bare.md")
		if err := os.WriteFile(bare, []byte("# Benchmarks\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := replaceGeneratedSection(bare, "figures"); err == nil || !strings.Contains(err.Error(), "no generated section") {
			t.Errorf("got error %v, want one saying the report has no generated section", err)
		}
	})
}

func TestFormatting(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"thousands get separators", count(30000), "30,000"},
		{"a million gets two", count(1000000), "1,000,000"},
		{"small counts stay as they are", count(999), "999"},
		{"milliseconds below 100 keep one decimal", millis(0.0042), "4.2 ms"},
		{"milliseconds from 100 on keep none", millis(0.4219), "422 ms"},
		{"MiB keep one decimal", mib(96 << 20), "96.0 MiB"},
		{"minutes and seconds", durationText(185), "3 min 05 s"},
		{"a met target says so with the figure", verdict(true, "4.2 ms"), "**met**: 4.2 ms"},
		{"a missed target says so with the figure", verdict(false, "12 ms"), "**not met**: 12 ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

func TestNiceCeil(t *testing.T) {
	for _, tc := range []struct{ in, want float64 }{{0, 1}, {0.7, 1}, {1, 1}, {1.3, 2}, {3, 5}, {7, 10}, {96, 100}, {101, 200}, {430, 500}} {
		if got := niceCeil(tc.in); got != tc.want {
			t.Errorf("niceCeil(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestRenderPlotIsWellFormedSVGWithOnePointPerSizeAndLine(t *testing.T) {
	size := func(pods int, p99 Seconds, rss int64) SizeResult {
		mode := ModeResult{ViaAPIServer: Latency{P50: p99 / 2, P99: p99}, RawPromQL: Latency{P50: p99 / 3}, RSS: RSS{AfterStart: rss, AfterRequests: rss, Peak: rss},
			TopPods: Latency{P50: p99 * 30}, TopPodsReplayed: Latency{P50: p99 * 25}, CPUPerRequest: p99 / 4, CPUPerPodMetricsList: p99 * 10}
		return SizeResult{Pods: pods, CacheOn: mode, CacheOff: mode}
	}
	r := &Results{Started: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Machine: Machine{CPUs: 2},
		Sizes: []SizeResult{size(1000, 0.004, 90<<20), size(10000, 0.006, 180<<20), size(30000, 0.009, 400<<20)}}
	svg := renderPlot(r)
	decoder := xml.NewDecoder(strings.NewReader(svg))
	circles, polylines := 0, 0
	for {
		token, err := decoder.Token()
		if err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("the SVG is not well-formed XML: %v\n%s", err, svg)
		}
		if start, ok := token.(xml.StartElement); ok {
			switch start.Name.Local {
			case "circle":
				circles++
			case "polyline":
				polylines++
			}
		}
	}
	// 5 latency, 3 kubectl top, 3 memory and 3 CPU lines, each with a point per size, and
	// prometheus-adapter's published points at 1,000 and 10,000 pods in the kubectl top and
	// memory panels.
	if want := 5 + 3 + 3 + 3 + 2; polylines != want || circles != (want-2)*3+2*2 {
		t.Errorf("the plot has %d lines and %d points, want %d lines and %d points", polylines, circles, want, (want-2)*3+2*2)
	}
	for _, label := range []string{"30,000", "target p99 10 ms", "target 256 MiB at 150k pods", "prometheus-adapter"} {
		if !strings.Contains(svg, label) {
			t.Errorf("the plot lacks the text %q", label)
		}
	}
}

func TestNarrowToPods(t *testing.T) {
	got, err := narrowToPods(`sum(rate(http_requests_total{namespace="ns-0",pod!=""}[2m])) by (pod)`, map[string]float64{"app-3-13": 1, "app-3-3": 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := `sum(rate(http_requests_total{namespace="ns-0",pod=~"app-3-13|app-3-3"}[2m])) by (pod)`; got != want {
		t.Errorf("narrowToPods = %s, want %s", got, want)
	}
	t.Run("a query without the pod matcher is refused", func(t *testing.T) {
		if got, err := narrowToPods(`sum(rate(x{namespace="ns-0"}[2m])) by (pod)`, map[string]float64{"a": 1}); err == nil {
			t.Errorf("got %s and no error", got)
		}
	})
}

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name string
		stat string
		want time.Duration
	}{
		{"user and system ticks add up", "1234 (promadapter) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0", 3 * time.Second},
		{"a command name with spaces and parentheses is skipped whole", "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0", 30 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU(tt.stat)
			if err != nil || got != tt.want {
				t.Errorf("parseStatCPU = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	if _, err := parseStatCPU("no parenthesis"); err == nil {
		t.Error("a line without the command's parentheses was accepted")
	}
}
