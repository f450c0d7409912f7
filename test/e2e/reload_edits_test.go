//go:build e2e

// TestConfigHotReload's steps that edit the config file: adding a rule and a broken edit.

package e2e

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/promadapter/promadapter/pkg/config"
)

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
