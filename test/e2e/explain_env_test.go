//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/pkg/explain"
	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

// The environment and helpers of TestExplain (explain_test.go).

// gpuRule serves a cAdvisor-like gauge whose series name the namespace and the container but
// not the pod: discovery finds it for namespaces only.
var gpuRule = config.DiscoveryRule{
	SeriesQuery: `container_accelerator_duty_cycle{namespace!=""}`,
	Resources: config.ResourceMapping{Overrides: map[string]config.GroupResource{
		"namespace": {Resource: "namespace"}, "pod": {Resource: "pod"}}},
	MetricsQuery: `sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)`,
}

// gpuSeries is gpuRule's series over [start, end], without a pod label, in OpenMetrics.
func gpuSeries(start, end time.Time) []byte {
	var b bytes.Buffer
	b.WriteString("# TYPE container_accelerator_duty_cycle gauge\n")
	for ts := start; !ts.After(end); ts = ts.Add(15 * time.Second) {
		fmt.Fprintf(&b, "container_accelerator_duty_cycle{namespace=\"ns-0\",container=\"app\",node=\"node-0\"} 37.5 %d\n", ts.Unix())
	}
	b.WriteString("# EOF\n")
	return b.Bytes()
}

// startExplainEnv is startEnv with gpuRule and its series, and two Running pods in ns-0
// (app=ghost) that no series names.
func startExplainEnv(t *testing.T, configFile string) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bins, adapterBin := testBinaries(t)
	dir := t.TempDir()
	e := &env{t: t, spec: fixture.Spec{}}
	var err error
	if e.cluster, err = testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: bins, Dir: filepath.Join(dir, "cluster")}); err != nil {
		t.Fatal(err)
	}
	e.cluster.Cleanup(t)
	if err := e.spec.ApplyObjects(ctx, e.cluster.Client); err != nil {
		t.Fatal(err)
	}
	noToken := false
	for _, name := range []string{"ghost-0", "ghost-1"} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns-0", Name: name, Labels: map[string]string{"app": "ghost"}},
			Spec: corev1.PodSpec{AutomountServiceAccountToken: &noToken, Containers: []corev1.Container{{Name: "app", Image: "ghost:1"}}}}
		created, err := e.cluster.Client.CoreV1().Pods("ns-0").Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		created.Status.Phase = corev1.PodRunning
		if _, err := e.cluster.Client.CoreV1().Pods("ns-0").UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var om bytes.Buffer
	now := time.Now()
	start, end := now.Add(-30*time.Minute), now.Add(3*time.Hour)
	if err := e.spec.WriteOpenMetrics(&om, start, end, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	data := append(bytes.TrimSuffix(om.Bytes(), []byte("# EOF\n")), gpuSeries(start, end)...)
	if e.prom, err = testbed.StartPrometheus(ctx, testbed.PrometheusOptions{Bins: bins, Major: "3", Dir: filepath.Join(dir, "prometheus"), OpenMetrics: data}); err != nil {
		t.Fatal(err)
	}
	e.prom.Cleanup(t)
	if e.adapter, err = e.cluster.StartAdapter(ctx, testbed.AdapterOptions{Bin: adapterBin, PrometheusURL: e.prom.URL, ConfigFile: configFile}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if log, err := os.ReadFile(e.adapter.LogPath); err == nil && t.Failed() {
			t.Logf("adapter log (%s), last lines:\n%s", e.adapter.LogPath, tail(string(log), 40))
		}
		e.adapter.Stop()
	})
	return e
}

// explainRun runs `promadapter explain` and returns its stdout, stderr and exit code.
func explainRun(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	_, bin := testBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"explain"}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code <= 0 {
		t.Fatalf("running %s: %v", cmd, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("reproduce: %s %s\nstdout:\n%s\nstderr:\n%s", bin, quoteArgs(append([]string{"explain"}, args...)), out.String(), errOut.String())
		}
	})
	return out.String(), errOut.String(), code
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = strconv.Quote(a)
	}
	return strings.Join(q, " ")
}

// explainJSON runs explain with -o json, expects exit code wantCode and decodes the traces.
func explainJSON(t *testing.T, wantCode int, args ...string) []explain.Trace {
	t.Helper()
	out, errOut, code := explainRun(t, append([]string{"-o", "json"}, args...)...)
	if code != wantCode {
		t.Fatalf("exit code %d, want %d; stderr: %s", code, wantCode, errOut)
	}
	var traces []explain.Trace
	if err := json.Unmarshal([]byte(out), &traces); err != nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
	return traces
}

// lineOf is the 1-based line of the first line of file with every one of parts, in order of
// the nesting keys before it (each part must be found on a later line than the previous one).
func lineOf(t *testing.T, file string, parts ...string) int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	next := 0
	for i, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, parts[next]) {
			if next++; next == len(parts) {
				return i + 1
			}
		}
	}
	t.Fatalf("%s has no lines with %q in order", file, parts)
	return 0
}

// nearText compares a served value or a sample (as text) with a fixture value.
func nearText(t *testing.T, what, got string, want float64) {
	t.Helper()
	q, err := resource.ParseQuantity(got)
	if err != nil {
		f, ferr := strconv.ParseFloat(got, 64)
		if ferr != nil {
			t.Errorf("%s: %q is no number", what, got)
			return
		}
		q = *resource.NewMilliQuantity(int64(math.Round(f*1000)), resource.DecimalSI)
	}
	if !near(q, want) {
		t.Errorf("%s = %s, want %v", what, got, want)
	}
}

// closedLoopbackURL is the URL of a loopback port nobody listens on.
func closedLoopbackURL(t *testing.T) string {
	t.Helper()
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return "http://127.0.0.1:" + strconv.Itoa(port)
}
