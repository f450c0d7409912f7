//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/promadapter/promadapter/internal/promtest"
	"github.com/promadapter/promadapter/test/testbed"
)

// TestGoMemoryLimitFollowsTheContainerLimit runs the real adapter inside a memory cgroup, as a
// container runtime does for a container with resources.limits.memory, and checks that the Go
// runtime's soft limit (go_gc_gomemlimit_bytes on the adapter's /metrics, the runtime's own
// figure) is --memory-limit-ratio × the cgroup's limit, that --memory-limit-ratio=0 leaves it
// unlimited, and that GOMEMLIMIT wins over the cgroup.
//
// Reproduce: make build && PROMADAPTER_BIN=$PWD/bin/promadapter go test -tags e2e ./test/e2e -run TestGoMemoryLimitFollowsTheContainerLimit -v
func TestGoMemoryLimitFollowsTheContainerLimit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bins, adapterBin := testBinaries(t)
	group := newMemoryCgroup(t, 512<<20)
	dir := t.TempDir()
	cluster, err := testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: bins, Dir: filepath.Join(dir, "cluster")})
	if err != nil {
		t.Fatal(err)
	}
	cluster.Cleanup(t)
	prom := promtest.New(t)

	cases := []struct {
		name string
		env  string
		args []string
		want float64
	}{
		{name: "default ratio 0.9", want: math.Floor(512 << 20 * 0.9)},
		{name: "ratio 0.5", args: []string{"--memory-limit-ratio=0.5"}, want: 256 << 20},
		// math.MaxInt64: the runtime's "no limit".
		{name: "ratio 0 leaves the runtime alone", args: []string{"--memory-limit-ratio=0"}, want: math.MaxInt64},
		{name: "GOMEMLIMIT wins", env: "GOMEMLIMIT=100MiB", want: 100 << 20},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wrapper := group.wrap(t, adapterBin, tc.env, i)
			adapter, err := cluster.StartAdapter(ctx, testbed.AdapterOptions{Bin: wrapper, PrometheusURL: prom.URL(), ExtraArgs: tc.args})
			if err != nil {
				t.Fatal(err)
			}
			defer adapter.Stop()
			metrics := adapterMetricsAt(t, cluster, adapter.Port)
			text := metricValue(metrics, "go_gc_gomemlimit_bytes")
			// The exposition prints floats with 8 significant digits or more.
			if got, err := strconv.ParseFloat(text, 64); err != nil || math.Abs(got-tc.want) > tc.want*1e-7 {
				t.Errorf("go_gc_gomemlimit_bytes = %q, want %.0f (adapter log:\n%s)", text, tc.want, fileTail(adapter.LogPath, 20))
			}
			if pids := group.pids(t); len(pids) == 0 {
				t.Errorf("the adapter did not run in the cgroup %s", group.dir)
			}
		})
	}
}

// memoryCgroup is a memory cgroup made for one test: v1's memory controller when the machine
// mounts it, else v2's when its memory controller is enabled.
type memoryCgroup struct {
	dir   string
	procs string
}

func newMemoryCgroup(t *testing.T, limit int64) *memoryCgroup {
	t.Helper()
	name := fmt.Sprintf("promadapter-e2e-%d", os.Getpid())
	if parent, ok := ownGroup("memory", "/sys/fs/cgroup/memory"); ok {
		g := &memoryCgroup{dir: filepath.Join(parent, name)}
		g.create(t, "memory.limit_in_bytes", limit)
		return g
	}
	for _, mount := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		controllers, err := os.ReadFile(filepath.Join(mount, "cgroup.controllers"))
		if err != nil || !strings.Contains(string(controllers), "memory") {
			continue
		}
		if parent, ok := ownGroup("", mount); ok {
			g := &memoryCgroup{dir: filepath.Join(parent, name)}
			g.create(t, "memory.max", limit)
			return g
		}
	}
	t.Skip("no memory cgroup hierarchy this process may create groups in (neither /sys/fs/cgroup/memory nor a cgroup2 mount with the memory controller): the test needs one to put the adapter in a container-like memory limit")
	return nil
}

// ownGroup is the directory of this process' group of controller ("" for v2) under mount.
func ownGroup(controller, mount string) (string, bool) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", false
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		parts := strings.SplitN(scanner.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				dir := filepath.Join(mount, parts[2])
				if st, err := os.Stat(dir); err == nil && st.IsDir() {
					return dir, true
				}
			}
		}
	}
	return "", false
}

func (g *memoryCgroup) create(t *testing.T, limitFile string, limit int64) {
	t.Helper()
	if err := os.Mkdir(g.dir, 0o755); err != nil {
		t.Skipf("cannot create a memory cgroup (%v): the test needs one to put the adapter in a container-like memory limit", err)
	}
	t.Cleanup(func() {
		// The adapters have stopped (their own cleanups ran first); a group is removed empty.
		for range 50 {
			if err := os.Remove(g.dir); err == nil || os.IsNotExist(err) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("could not remove the test's cgroup %s", g.dir)
	})
	g.procs = filepath.Join(g.dir, "cgroup.procs")
	if err := os.WriteFile(filepath.Join(g.dir, limitFile), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil {
		t.Fatalf("setting %s: %v", limitFile, err)
	}
}

// wrap writes a script that moves itself into the group and execs bin with its arguments, so
// the adapter starts inside the group as a container's process does.
func (g *memoryCgroup) wrap(t *testing.T, bin, env string, i int) string {
	t.Helper()
	script := filepath.Join(t.TempDir(), fmt.Sprintf("promadapter-in-cgroup-%d", i))
	exports := ""
	if env != "" {
		exports = "export " + env + "\n"
	} else {
		exports = "unset GOMEMLIMIT\n"
	}
	body := fmt.Sprintf("#!/bin/sh\necho $$ > %s || exit 1\n%sexec %s \"$@\"\n", g.procs, exports, bin)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}

func (g *memoryCgroup) pids(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(g.procs)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(data))
}

// metricValue is the value of the first sample of name in a Prometheus text exposition.
func metricValue(exposition, name string) string {
	for _, line := range strings.Split(exposition, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimSpace(rest)
		}
	}
	return ""
}
