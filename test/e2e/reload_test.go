//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
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

// podValues is what a pod metric request must answer: pod name -> value.
type podValues map[string]float64

// rateValues are rule A's values for reloadRatePath.
func (r *reloadSuite) rateValues() podValues {
	want := podValues{}
	for _, p := range r.spec.PodList() {
		if p.Namespace == "ns-0" && p.App == "app-0" {
			want[p.Name], _ = r.spec.PodRequestRate(p.Namespace, p.Name)
		}
	}
	return want
}

// memoryValues are rule B's values for reloadMemoryPath; its pods include the fixture's
// incomplete one, whose proxy container has no series.
func (r *reloadSuite) memoryValues() podValues {
	want := podValues{}
	for _, p := range r.spec.PodList() {
		if p.Namespace == "ns-0" && p.App == "app-1" {
			want[p.Name], _ = r.spec.PodMemoryBytes(p.Namespace, p.Name)
		}
	}
	return want
}

// checkPodAnswer checks a 200 answer lists exactly the pods of want with their values.
func checkPodAnswer(path string, a answer, want podValues) error {
	if a.Status != http.StatusOK {
		return fmt.Errorf("GET %s: %v", path, a)
	}
	var list metricValueList
	if err := json.Unmarshal([]byte(a.Body), &list); err != nil {
		return fmt.Errorf("%w: GET %s: decoding %q: %v", errWrong, path, truncateText(a.Body, 300), err)
	}
	var problems []string
	seen := map[string]bool{}
	for _, it := range list.Items {
		name := it.DescribedObject.Name
		w, ok := want[name]
		switch {
		case !ok || it.DescribedObject.Namespace != "ns-0":
			problems = append(problems, fmt.Sprintf("unexpected item %s/%s=%s", it.DescribedObject.Namespace, name, it.Value.String()))
		case seen[name]:
			problems = append(problems, fmt.Sprintf("%s listed twice", name))
		case !near(it.Value, w):
			problems = append(problems, fmt.Sprintf("%s is %s, want %v", name, it.Value.String(), w))
		}
		seen[name] = true
	}
	for name, w := range want {
		if !seen[name] {
			problems = append(problems, fmt.Sprintf("%s is missing (want %v)", name, w))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("%w: GET %s: %s", errWrong, path, strings.Join(problems, "; "))
	}
	return nil
}

func (r *reloadSuite) checkRate() error {
	return checkPodAnswer(reloadRatePath, r.get(reloadRatePath, ""), r.rateValues())
}

func (r *reloadSuite) checkMemory() error {
	return checkPodAnswer(reloadMemoryPath, r.get(reloadMemoryPath, ""), r.memoryValues())
}

// checkServed checks every API's known values (the default config's custom, external and
// metrics.k8s.io metrics, and kubectl top), rule A's metric and, with memory, rule B's.
func (r *reloadSuite) checkServed(memory bool) func() error {
	return func() error {
		errs := []error{r.checkAll(), r.checkRate()}
		if memory {
			errs = append(errs, r.checkMemory())
		}
		return errors.Join(errs...)
	}
}

// adapterMetrics reads the adapter's own /metrics from its secure port, as the admin (through
// the front-proxy identity, as the aggregator would pass it), keyed by series: the name and
// label text as exposed, e.g. `promadapter_config_reloads_total{result="success"}`.
func (r *reloadSuite) adapterMetrics() (map[string]float64, error) {
	a, err := r.directAnswer("/metrics", "admin")
	if err != nil {
		return nil, fmt.Errorf("reading the adapter's /metrics: %w", err)
	}
	if a.Status != http.StatusOK {
		return nil, fmt.Errorf("reading the adapter's /metrics: %v", a)
	}
	series := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(a.Body))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "promadapter_config_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("adapter /metrics: %q: %v", line, err)
		}
		series[line[:i]] = v
	}
	return series, nil
}

// reloadState is the adapter's config reload metrics.
type reloadState struct {
	successful       float64 // promadapter_config_last_reload_successful
	successTimestamp float64 // promadapter_config_last_reload_success_timestamp_seconds
	successes        float64 // promadapter_config_reloads_total{result="success"}
	failures         float64 // promadapter_config_reloads_total{result="failure"}
}

func (r *reloadSuite) reloadState() (reloadState, error) {
	m, err := r.adapterMetrics()
	if err != nil {
		return reloadState{}, err
	}
	for _, name := range []string{"promadapter_config_last_reload_successful", "promadapter_config_last_reload_success_timestamp_seconds"} {
		if _, ok := m[name]; !ok {
			return reloadState{}, fmt.Errorf("the adapter's /metrics has no %s", name)
		}
	}
	return reloadState{
		successful:       m["promadapter_config_last_reload_successful"],
		successTimestamp: m["promadapter_config_last_reload_success_timestamp_seconds"],
		// A counter with no increment yet is not exposed: 0.
		successes: m[`promadapter_config_reloads_total{result="success"}`],
		failures:  m[`promadapter_config_reloads_total{result="failure"}`],
	}, nil
}

func (r *reloadSuite) mustReloadState(t *testing.T) reloadState {
	t.Helper()
	s, err := r.reloadState()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitReloadState polls the reload metrics until ok holds, failing after timeout.
func (r *reloadSuite) waitReloadState(t *testing.T, timeout time.Duration, what string, ok func(reloadState) bool) reloadState {
	t.Helper()
	var last reloadState
	r.poll(t, timeout, what, func() error {
		s, err := r.reloadState()
		if err != nil {
			return err
		}
		last = s
		if !ok(s) {
			return fmt.Errorf("reload metrics: %+v", s)
		}
		return nil
	})
	return last
}

func (r *reloadSuite) testAddRule(t *testing.T) {
	if a := r.get(reloadMemoryPath, ""); a.Status != http.StatusNotFound {
		t.Fatalf("before the edit, GET %s: %v; want 404 (rule B is not in the config yet)", reloadMemoryPath, a)
	}
	edited := r.mount.write(t, reloadConfig(t, rateRule("2m"), memoryRule(memorySeriesQuery)))
	// Poll past the limit, so a late answer is measured rather than only said to be late.
	var err error
	for {
		if err = r.checkMemory(); err == nil {
			break
		}
		if time.Since(edited) > 6*reloadServeLimit {
			t.Fatalf("%v after the edit, the added rule's metric is still not served: %v", time.Since(edited).Round(time.Millisecond), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(edited)
	t.Logf("the added rule's metric %s was served with its exact values %v after the edit (limit %v)", reloadMemoryMetric, took.Round(time.Millisecond), reloadServeLimit)
	if took > reloadServeLimit {
		t.Errorf("the added rule's metric took %v to be served after the edit; want at most %v", took.Round(time.Millisecond), reloadServeLimit)
	}
	if err := r.checkServed(true)(); err != nil {
		t.Errorf("after the edit: %v", err)
	}
	s := r.mustReloadState(t)
	if s.successful != 1 || s.successTimestamp < float64(edited.Unix()) || s.successes < 1 {
		t.Errorf("after the edit, the reload metrics are %+v; want successful 1, a success timestamp of at least %d (the edit) and a counted success", s, edited.Unix())
	}
}

// seriesQueryLine is the 1-based line of rules[rule].seriesQuery's value in data.
func seriesQueryLine(t *testing.T, data []byte, rule int) int {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "rules" {
			continue
		}
		m := root.Content[i+1].Content[rule]
		for j := 0; j+1 < len(m.Content); j += 2 {
			if m.Content[j].Value == "seriesQuery" {
				return m.Content[j+1].Line
			}
		}
	}
	t.Fatalf("the test config has no rules[%d].seriesQuery", rule)
	return 0
}

func (r *reloadSuite) testBrokenEdit(t *testing.T) {
	before := r.mustReloadState(t)
	logStart := fileSize(t, r.adapter.LogPath)
	broken := marshalReloadConfig(t, rateRule("2m"), memoryRule(brokenSeriesQuery))
	if _, err := config.Parse(broken, "test config"); err == nil {
		t.Fatal("the broken config loads; the test needs one that is refused")
	}
	rule := len(config.Default().Rules) + 1 // rule B
	wantWhere := fmt.Sprintf("%s:%d:", r.mount.file(), seriesQueryLine(t, broken, rule))
	wantPath := fmt.Sprintf("rules[%d].seriesQuery", rule)
	r.mount.write(t, broken)

	r.waitReloadState(t, 10*time.Second, "promadapter_config_last_reload_successful is 0 after the broken edit",
		func(s reloadState) bool { return s.successful == 0 && s.failures > before.failures })
	var refusal string
	r.poll(t, 10*time.Second, "the adapter's log names the broken file:line", func() error {
		for _, line := range strings.Split(readFrom(t, r.adapter.LogPath, logStart), "\n") {
			if strings.Contains(line, wantWhere) && strings.Contains(line, wantPath) {
				refusal = line
				return nil
			}
		}
		return fmt.Errorf("no log line with %q and %q since the edit:\n%s", wantWhere, wantPath, tail(readFrom(t, r.adapter.LogPath, logStart), 20))
	})
	t.Logf("the adapter refused the edit: %s", refusal)

	// Checked at once and again a little later: the previous config serves, unchanged.
	for round := 1; round <= 2; round++ {
		if err := r.checkServed(true)(); err != nil {
			t.Errorf("while the broken edit is refused (check %d): %v", round, err)
		}
	}
	if s := r.mustReloadState(t); s.successful != 0 || s.successes != before.successes {
		t.Errorf("after the broken edit, the reload metrics are %+v (before: %+v); want successful 0 and no success counted", s, before)
	}

	// The fix: the file goes back to the config that serves.
	r.mount.write(t, reloadConfig(t, rateRule("2m"), memoryRule(memorySeriesQuery)))
	r.waitReloadState(t, 10*time.Second, "promadapter_config_last_reload_successful is 1 again after the fix",
		func(s reloadState) bool { return s.successful == 1 })
	if err := r.checkServed(true)(); err != nil {
		t.Errorf("after the fix: %v", err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// readFrom returns the file at path from byte offset on.
func readFrom(t *testing.T, path string, offset int64) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if offset > int64(len(data)) {
		offset = 0
	}
	return string(data[offset:])
}
