//go:build e2e

// What TestConfigHotReload reads back: the served values and the adapter's reload state.

package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

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
