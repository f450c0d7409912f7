// Starting each kind of backend and reading its version.

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/promadapter/promadapter/test/testbed"
)

// startBackend starts kind on 127.0.0.1 loaded with openMetrics (the fixture's series), with
// its files in dir, and returns its Prometheus API base URL, its version and how to stop it.
func (b *bench) startBackend(ctx context.Context, kind, dir string, openMetrics []byte) (url, version string, stop func(), err error) {
	switch kind {
	case kindPrometheus2, kindPrometheus3:
		major := strings.TrimPrefix(kind, "prometheus")
		prom, err := testbed.StartPrometheus(ctx, testbed.PrometheusOptions{
			Bins: b.bins, Major: major, Dir: dir, OpenMetrics: openMetrics, StartTimeout: 5 * time.Minute,
		})
		if err != nil {
			return "", "", nil, err
		}
		return prom.URL, prom.Version, prom.Stop, nil
	case kindThanos:
		th, err := testbed.StartThanos(ctx, testbed.ThanosOptions{
			Bins: b.bins, Major: "3", Replicas: thanosReplicas, Dir: dir, OpenMetrics: openMetrics, StartTimeout: 5 * time.Minute,
		})
		if err != nil {
			return "", "", nil, err
		}
		version = b.thanosVersion(ctx)
		if replica := th.Stores[0].Prometheus.Version; replica != "" {
			version += fmt.Sprintf(" (replicas: Prometheus %s)", replica)
		}
		return th.URL, version, th.Stop, nil
	case kindVictoriaMetrics:
		vm, err := startVictoriaMetrics(ctx, dir)
		if err != nil {
			return "", "", nil, err
		}
		if err := vm.importOpenMetrics(ctx, openMetrics); err != nil {
			vm.process.Stop()
			return "", "", nil, err
		}
		return vm.url, victoriaMetricsVersion(ctx), vm.process.Stop, nil
	}
	return "", "", nil, fmt.Errorf("unknown backend kind %q", kind)
}

// thanosVersion is the release of the thanos binary: what `thanos --version` prints, or, for a
// build without version stamping (deps.sh builds it from source), the release in the binary's
// file name (thanos-v0.42.4-slicelabels).
func (b *bench) thanosVersion(ctx context.Context) string {
	out, _ := commandOutput(ctx, b.bins.Thanos, "--version")
	if v := versionFromOutput(out); v != "" {
		return v
	}
	name := strings.TrimPrefix(filepath.Base(b.bins.Thanos), "thanos-")
	release, _, _ := strings.Cut(name, "-")
	return strings.TrimPrefix(release, "v")
}

// versionFromOutput reads the release from a Prometheus-style `--version` output, whose first
// line is "<name>, version 0.42.4 (branch: …)"; "" when it names none.
func versionFromOutput(out string) string {
	firstLine, _, _ := strings.Cut(out, "\n")
	_, rest, found := strings.Cut(firstLine, ", version ")
	if !found {
		return ""
	}
	version, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
	if strings.HasPrefix(version, "(") {
		return ""
	}
	return version
}
