//go:build e2e

// Package e2e runs promadapter against real parts: etcd + kube-apiserver (+ kube-controller-manager),
// Prometheus 2.x and 3.x loaded with the known-value fixture, and kubectl.
//
// Reproduce a failure with: make build && PROMADAPTER_BIN=$PWD/bin/promadapter go test -tags e2e ./test/e2e -run NAME -v
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

// env is one cluster + Prometheus + adapter, torn down with the test.
type env struct {
	t       *testing.T
	cluster *testbed.Cluster
	prom    *testbed.Prometheus
	adapter *testbed.Adapter
	spec    fixture.Spec
}

// testExternalRules are the external rules the tests add to the embedded default config.
var testExternalRules = []config.DiscoveryRule{
	{
		SeriesQuery:  `queue_messages_ready{namespace!=""}`,
		Name:         config.NameMapping{As: "queue_depth"},
		MetricsQuery: `sum(<<.Series>>{<<.LabelMatchers>>}) by (queue)`,
	},
	{
		SeriesQuery:  `slo_error_budget_burn_rate`,
		Resources:    config.ResourceMapping{Namespaced: boolPtr(false)},
		MetricsQuery: `max(<<.Series>>{<<.LabelMatchers>>}) by (slo)`,
	},
}

func boolPtr(b bool) *bool { return &b }

// writeTestConfig writes the embedded default config plus extra external rules to dir.
func writeTestConfig(t *testing.T, dir string, extra []config.DiscoveryRule) string {
	t.Helper()
	cfg := config.Default()
	cfg.ExternalRules = append(append([]config.DiscoveryRule(nil), cfg.ExternalRules...), extra...)
	return writeConfig(t, filepath.Join(dir, "config.yaml"), cfg)
}

// writeConfig writes cfg to path and checks that it loads as the adapter would load it.
func writeConfig(t *testing.T, path string, cfg *config.Config) string {
	t.Helper()
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(path); err != nil {
		t.Fatalf("the test config %s does not load: %v", path, err)
	}
	return path
}

// startEnv brings up everything for one Prometheus major version with the fixture backfilled
// over [now-30m, now+3h], so instant queries during the run see exactly the formula values.
func startEnv(t *testing.T, major string, configFile string) *env {
	t.Helper()
	return startEnvWith(t, envOptions{Major: major, ConfigFile: configFile})
}

// envOptions vary an environment.
type envOptions struct {
	Major      string
	ConfigFile string
	// ScrapeTargets are live exporters Prometheus scrapes every second (in addition to the fixture).
	ScrapeTargets []string
	// NoFixture starts Prometheus without backfilled data and creates no fixture objects
	// (backfilled blocks that reach into the future would make Prometheus reject live samples).
	NoFixture bool
	// AdapterArgs are extra promadapter flags.
	AdapterArgs []string
}

// testBinaries returns the test binaries test/tools/deps.sh built and the adapter under test
// ($PROMADAPTER_BIN), or fails the test saying what is missing.
func testBinaries(t *testing.T) (testbed.Bins, string) {
	t.Helper()
	bins, err := testbed.FindBins()
	if err != nil {
		t.Fatal(err)
	}
	adapterBin, err := testbed.AdapterBin()
	if err != nil {
		t.Fatal(err)
	}
	return bins, adapterBin
}

func startEnvWith(t *testing.T, o envOptions) *env {
	t.Helper()
	major, configFile := o.Major, o.ConfigFile
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bins, adapterBin := testBinaries(t)
	var err error
	dir := t.TempDir()
	e := &env{t: t, spec: fixture.Spec{}}
	e.cluster, err = testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: bins, Dir: filepath.Join(dir, "cluster")})
	if err != nil {
		t.Fatal(err)
	}
	e.cluster.Cleanup(t)
	var om bytes.Buffer
	if !o.NoFixture {
		if err := e.spec.ApplyObjects(ctx, e.cluster.Client); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if err := e.spec.WriteOpenMetrics(&om, now.Add(-30*time.Minute), now.Add(3*time.Hour), 15*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	e.prom, err = testbed.StartPrometheus(ctx, testbed.PrometheusOptions{Bins: bins, Major: major, Dir: filepath.Join(dir, "prometheus"),
		OpenMetrics: om.Bytes(), ScrapeTargets: o.ScrapeTargets})
	if err != nil {
		t.Fatal(err)
	}
	e.prom.Cleanup(t)
	e.adapter, err = e.cluster.StartAdapter(ctx, testbed.AdapterOptions{Bin: adapterBin, PrometheusURL: e.prom.URL, ConfigFile: configFile, ExtraArgs: o.AdapterArgs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if log, err := os.ReadFile(e.adapter.LogPath); err == nil {
				t.Logf("adapter log (%s), last lines:\n%s", e.adapter.LogPath, tail(string(log), 40))
			}
		}
		e.adapter.Stop()
	})
	return e
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// kubectl runs kubectl against the test cluster and fails the test on error.
func (e *env) kubectl(args ...string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := e.cluster.Kubectl(ctx, args...)
	if err != nil {
		e.t.Fatalf("%v", err)
	}
	return out
}

// raw GETs path through the aggregator with `kubectl get --raw` and decodes the JSON into v.
func (e *env) raw(path string, v any) {
	e.t.Helper()
	out := e.kubectl("get", "--raw", path)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		e.t.Fatalf("kubectl get --raw %s: decoding %q: %v", path, out, err)
	}
}

// rawErr GETs path and returns kubectl's error (nil if it succeeded).
func (e *env) rawErr(path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := e.cluster.Kubectl(ctx, "get", "--raw", path)
	return err
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
