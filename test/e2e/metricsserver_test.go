//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// rawSamples returns the raw (timestamp, value) samples of one series over the last window,
// straight from Prometheus (a range-vector selector in an instant query returns them unprocessed).
func (e *env) rawSamples(t *testing.T, selector string) [][2]float64 {
	t.Helper()
	resp, err := http.Get(e.prom.URL + "/api/v1/query?query=" + url.QueryEscape(selector))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Data struct {
			Result []struct {
				Values [][2]any `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil || len(r.Data.Result) != 1 {
		t.Fatalf("query %s: %v %s", selector, err, body)
	}
	var out [][2]float64
	for _, v := range r.Data.Result[0].Values {
		ts := v[0].(float64)
		val, _ := strconv.ParseFloat(v[1].(string), 64)
		out = append(out, [2]float64{ts, val})
	}
	return out
}

// testMetricsServerFormula: metrics-server computes a container's CPU as the difference of two
// consecutive cumulative-counter samples divided by the time between them, and its memory as the
// last working-set sample. Computing that from the raw counters in Prometheus must give exactly
// what `kubectl top pods --containers` shows from the adapter.
func (e *env) testMetricsServerFormula(t *testing.T) {
	out := e.kubectl("top", "pods", "-n", "ns-1", "--containers", "--no-headers")
	shown := map[string][2]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line) // POD NAME CPU MEMORY
		if len(f) == 4 {
			shown[f[0]+"/"+f[1]] = [2]string{f[2], f[3]}
		}
	}
	checked := 0
	for _, p := range e.podsOf("ns-1", "") {
		for _, c := range p.Containers {
			if !c.HasSeries {
				continue
			}
			sel := fmt.Sprintf(`{namespace="ns-1",pod=%q,container=%q}`, p.Name, c.Name)
			cpu := e.rawSamples(t, "container_cpu_usage_seconds_total"+sel+"[1m]")
			mem := e.rawSamples(t, "container_memory_working_set_bytes"+sel+"[1m]")
			if len(cpu) < 2 || len(mem) < 1 {
				t.Fatalf("%s/%s: too few raw samples (%d cpu, %d memory)", p.Name, c.Name, len(cpu), len(mem))
			}
			a, b := cpu[len(cpu)-2], cpu[len(cpu)-1]
			msCPU := (b[1] - a[1]) / (b[0] - a[0])
			msMem := mem[len(mem)-1][1]
			want := [2]string{topCPU(msCPU), topMem(msMem)}
			if got := shown[p.Name+"/"+c.Name]; got != want {
				t.Errorf("%s/%s: kubectl top shows %v; metrics-server's formula on the same counters gives %v", p.Name, c.Name, got, want)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no container checked")
	}
}

// testTopFlags: -n, -l and --sort-by work as with metrics-server.
func (e *env) testTopFlags(t *testing.T) {
	out := e.kubectl("top", "pods", "-n", "ns-2", "-l", "app=app-0", "--sort-by=cpu", "--no-headers")
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		names = append(names, strings.Fields(line)[0])
	}
	pods := e.podsOf("ns-2", "app-0")
	if len(names) != len(pods) {
		t.Fatalf("kubectl top pods -n ns-2 -l app=app-0 listed %v; want the %d pods of app-0", names, len(pods))
	}
	prev := -1.0
	for i := len(names) - 1; i >= 0; i-- { // sorted by CPU, descending
		c, _ := e.spec.PodCPUCores("ns-2", names[i])
		if c < prev {
			t.Fatalf("not sorted by cpu: %v", names)
		}
		prev = c
	}
	out = e.kubectl("top", "pods", "-A", "--sort-by=memory", "--no-headers")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) == 0 {
		t.Fatal("kubectl top pods -A --sort-by=memory listed nothing")
	}
}
