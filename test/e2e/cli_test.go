//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/promadapter/promadapter/test/testbed"
)

// TestStartupErrorsAreOneClearLine: a broken config or a bad flag ends the process with one
// line that names the cause and the fix — never a stack trace.
func TestStartupErrorsAreOneClearLine(t *testing.T) {
	bin, err := testbed.AdapterBin()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(broken, []byte("rules:\n- seriesQuery: 'up'\n  metricQuery: 'x'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"a misspelled config key names file, line, column and the right key", []string{"--prometheus-url=http://127.0.0.1:9", "--config=" + broken},
			[]string{"broken.yaml:3:3", `"metricQuery"`, "metricsQuery"}},
		{"a URL that is not a URL names the flag and an example", []string{"--prometheus-url=prometheus:9090"},
			[]string{"--prometheus-url", "is not an http(s) URL"}},
		{"a missing URL says it is required", nil, []string{"--prometheus-url is required"}},
		{"check-config reports the same config error", []string{"check-config", "--config=" + broken}, []string{"broken.yaml:3:3"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, c.args...).CombinedOutput()
			if err == nil {
				t.Fatalf("promadapter %v succeeded; want a failure. Output:\n%s", c.args, out)
			}
			text := string(out)
			for _, w := range c.want {
				if !strings.Contains(text, w) {
					t.Errorf("output lacks %q:\n%s", w, text)
				}
			}
			if strings.Contains(text, "goroutine ") || strings.Contains(text, "panic") {
				t.Errorf("output has a stack trace:\n%s", text)
			}
			if !strings.HasPrefix(text, "promadapter: ") {
				t.Errorf("output should start with a plain \"promadapter: \" line, not log decoration:\n%s", text)
			}
			// One line per problem: the broken config has two (a missing and a misspelled key).
			if n := len(strings.Split(strings.TrimSpace(text), "\n")); n > 2 {
				t.Errorf("%d lines of output; want one line per problem:\n%s", n, text)
			}
		})
	}
}

// TestUnreachablePrometheus: the adapter still starts (Prometheus may come later), logs one
// clear line naming the URL, and answers API requests with the cause instead of an empty success.
func TestUnreachablePrometheus(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := testbed.AdapterBin()
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := testbed.StartCluster(ctx, testbed.ClusterOptions{Dir: filepath.Join(t.TempDir(), "cluster")})
	if err != nil {
		t.Fatal(err)
	}
	cluster.Cleanup(t)
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	adapter, err := cluster.StartAdapter(ctx, testbed.AdapterOptions{Bin: bin, PrometheusURL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(adapter.Stop)

	_, err = cluster.Kubectl(ctx, "get", "--raw", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/*/http_requests_per_second")
	if err == nil || !strings.Contains(err.Error(), "cannot reach Prometheus at "+url) {
		t.Errorf("a custom metric request should explain that Prometheus is unreachable; got %v", err)
	}
	_, err = cluster.Kubectl(ctx, "top", "nodes")
	if err == nil {
		t.Errorf("kubectl top nodes succeeded with Prometheus down")
	}
	log, _ := os.ReadFile(adapter.LogPath)
	text := string(log)
	if n := strings.Count(text, "cannot reach Prometheus at "+url); n < 1 {
		t.Errorf("the adapter log never says it cannot reach %s:\n%s", url, tail(text, 30))
	}
	if strings.Contains(text, "goroutine ") {
		t.Errorf("the adapter log has a stack trace:\n%s", tail(text, 30))
	}
	// Discovery retries every 5 s in tests; a persisting failure is logged once per rule, not per pass.
	time.Sleep(11 * time.Second)
	log, _ = os.ReadFile(adapter.LogPath)
	lines := 0
	for _, l := range strings.Split(string(log), "\n") {
		if strings.Contains(l, "discovery failed for a rule") {
			lines++
		}
	}
	if rules := 5 + 1; lines > rules {
		t.Errorf("%d discovery failure lines for %d rules after several passes; want one per rule", lines, rules)
	}
}
