//go:build e2e

package e2e

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/promadapter/promadapter/pkg/config"
)

// reloadReproduce is the command a person runs to reproduce TestConfigHotReload.
const reloadReproduce = "go build -o /tmp/promadapter ./cmd/promadapter && " +
	"PROMADAPTER_BIN=/tmp/promadapter go test -tags e2e -count=1 ./test/e2e -run TestConfigHotReload -v"

// The metrics the test's own rules serve, both on pods of the fixture.
const (
	// reloadRateMetric is rule A's: the per-pod request rate, in the initial config and
	// rewritten (another rate window) by every edit of the load phase.
	reloadRateMetric = "reload_requests_per_second"
	// reloadMemoryMetric is rule B's: the pod's working set, added by the first edit.
	reloadMemoryMetric = "reload_memory_working_set_bytes"
)

// The requests the test checks, all through kube-apiserver, each with a label selector.
var (
	reloadRatePath = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-0/pods/*/" + reloadRateMetric +
		"?labelSelector=" + url.QueryEscape("app=app-0")
	reloadMemoryPath = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-0/pods/*/" + reloadMemoryMetric +
		"?labelSelector=" + url.QueryEscape("app=app-1")
)

// Load phase parameters: 20 edits of the file, one every reloadEditEvery, and a SIGHUP after
// the edits numbered in reloadSIGHUPAfter, while requests go out at reloadLoadRate per second
// ($PROMADAPTER_RELOAD_RATE overrides it, for a machine that cannot sustain it).
const (
	reloadEdits       = 20
	reloadEditEvery   = 750 * time.Millisecond
	reloadLoadRate    = 1000
	reloadLoadWorkers = 128
	// reloadServeLimit is how soon after an edit a rule it adds must be served.
	reloadServeLimit = 5 * time.Second
)

var reloadSIGHUPAfter = []int{7, 14}

// TestConfigHotReload edits the adapter's --config the way the kubelet updates a mounted
// ConfigMap (a new timestamped directory, then the ..data symlink renamed over) against a
// real kube-apiserver and Prometheus 3 holding the fixture, and checks through kube-apiserver:
//
//  1. a rule the edit adds is served with its exact values within 5 s, and the rules already
//     served still are;
//  2. an edit with a seriesQuery that does not parse is refused: the adapter's log names the
//     file:line, promadapter_config_last_reload_successful is 0, and every metric of the
//     previous config (custom, external, metrics.k8s.io, kubectl top) keeps its exact values;
//     reverting the edit sets the gauge back to 1;
//  3. at 1,000 requests/s (or what the machine sustains) on custom metrics with a label
//     selector, 20 reloads alternating two configs that both serve them, plus SIGHUPs, cost
//     not one error nor one wrong value.
//
// Reproduce: go build -o /tmp/promadapter ./cmd/promadapter &&
// PROMADAPTER_BIN=/tmp/promadapter go test -tags e2e -count=1 ./test/e2e -run TestConfigHotReload -v
func TestConfigHotReload(t *testing.T) {
	t.Logf("reproduce: %s", reloadReproduce)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("reproduce: %s", reloadReproduce)
		}
	})
	mount := newConfigMapMount(t)
	mount.write(t, reloadConfig(t, rateRule("2m")))
	e := startFaultEnv(t, "3", "--config="+mount.file())
	r := &reloadSuite{faultEnv: e, mount: mount}
	// The aggregator may answer 404 for a moment after the APIServices turn Available.
	e.poll(t, time.Minute, "every API serves its known values, and rule A its metric", r.checkServed(false))

	for _, step := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"a rule added by an edit is served within 5 s and the old ones still are", r.testAddRule},
		{"a broken edit is refused with file:line and the previous config keeps serving", r.testBrokenEdit},
		{"20 reloads and SIGHUPs under load cost no error", r.testReloadsUnderLoad},
	} {
		if !t.Run(step.name, step.run) {
			t.FailNow() // each step starts from the config the previous one left
		}
	}
}

// reloadSuite is the environment of TestConfigHotReload.
type reloadSuite struct {
	*faultEnv
	mount *configMapMount
}

// rateRule is rule A: the pods' request rate over window, under reloadRateMetric.
func rateRule(window string) config.DiscoveryRule {
	return config.DiscoveryRule{
		SeriesQuery: `http_requests_total{namespace!="",pod!=""}`,
		Resources: config.ResourceMapping{Overrides: map[string]config.GroupResource{
			"namespace": {Resource: "namespace"}, "pod": {Resource: "pod"},
		}},
		Name:         config.NameMapping{Matches: "^http_requests_total$", As: reloadRateMetric},
		MetricsQuery: "sum(rate(<<.Series>>{<<.LabelMatchers>>}[" + window + "])) by (<<.GroupBy>>)",
	}
}

// memoryRule is rule B: the pods' working set (their containers' sum), under
// reloadMemoryMetric, discovered with seriesQuery.
func memoryRule(seriesQuery string) config.DiscoveryRule {
	return config.DiscoveryRule{
		SeriesQuery: seriesQuery,
		Resources: config.ResourceMapping{Overrides: map[string]config.GroupResource{
			"namespace": {Resource: "namespace"}, "pod": {Resource: "pod"},
		}},
		Name:         config.NameMapping{As: reloadMemoryMetric},
		MetricsQuery: `sum(<<.Series>>{<<.LabelMatchers>>,container!="",container!="POD"}) by (<<.GroupBy>>)`,
	}
}

const (
	memorySeriesQuery = `container_memory_working_set_bytes{container!="",container!="POD",namespace!="",pod!=""}`
	// brokenSeriesQuery lacks its closing brace.
	brokenSeriesQuery = `container_memory_working_set_bytes{container!="",container!="POD",namespace!="",pod!=""`
)

// reloadConfig is the embedded default config with extra custom rules appended, as YAML. It
// fails the test unless the result loads, so a valid config is known valid before it is used.
func reloadConfig(t *testing.T, extra ...config.DiscoveryRule) []byte {
	t.Helper()
	data := marshalReloadConfig(t, extra...)
	if _, err := config.Parse(data, "test config"); err != nil {
		t.Fatalf("the test's config does not load: %v\n%s", err, data)
	}
	return data
}

func marshalReloadConfig(t *testing.T, extra ...config.DiscoveryRule) []byte {
	t.Helper()
	cfg := config.Default()
	cfg.Rules = append(slices.Clip(cfg.Rules), extra...)
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// configMapMount is a directory laid out as the kubelet mounts a ConfigMap with the key
// config.yaml:
//
//	..2026_05_04_10_00_00.123456789/config.yaml   the data, one directory per version
//	..data -> ..2026_05_04_10_00_00.123456789     the current version
//	config.yaml -> ..data/config.yaml             what the pod reads
//
// write updates it as the kubelet's AtomicWriter does: the new version in a new timestamped
// directory, a ..data_tmp symlink to it renamed over ..data (the one atomic step), then the
// old version's directory removed.
type configMapMount struct {
	dir string
}

func newConfigMapMount(t *testing.T) *configMapMount {
	return &configMapMount{dir: t.TempDir()}
}

// file is the path the adapter is given: the user-visible symlink.
func (m *configMapMount) file() string { return filepath.Join(m.dir, "config.yaml") }

// write publishes data as the new version and returns when the switch happened.
func (m *configMapMount) write(t *testing.T, data []byte) time.Time {
	t.Helper()
	version, err := os.MkdirTemp(m.dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(version, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(version, "config.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	dataLink := filepath.Join(m.dir, "..data")
	previous, err := os.Readlink(dataLink)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	tmpLink := filepath.Join(m.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(version), tmpLink); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmpLink, dataLink); err != nil {
		t.Fatal(err)
	}
	switched := time.Now()
	if previous == "" {
		if err := os.Symlink(filepath.Join("..data", "config.yaml"), m.file()); err != nil {
			t.Fatal(err)
		}
	} else if err := os.RemoveAll(filepath.Join(m.dir, previous)); err != nil {
		t.Fatal(err)
	}
	return switched
}
