package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Bins are the paths of the binaries the test bed runs.
type Bins struct {
	Etcd                  string
	KubeAPIServer         string
	KubeControllerManager string
	Kubectl               string
	// Prometheus holds one installation per major version, keyed "2" and "3".
	Prometheus map[string]PromBins
	// Thanos is the thanos binary (sidecar and querier) deps.sh builds. FindBins sets the path
	// without requiring the file: only StartThanos needs it, and it reports its absence.
	Thanos string
	// Helm is the helm binary deps.sh builds, located like Thanos: set without being required, so
	// only the tests that render the chart need it.
	Helm string
}

// PromBins is one Prometheus installation.
type PromBins struct {
	Prometheus string
	Promtool   string
	// Version is the release, e.g. "2.42.0+ds" or "3.9.1".
	Version string
}

// Versions of the binaries test/tools/deps.sh builds. The script reads the same environment
// variables with the same defaults; keep the two in step.
var (
	kubeVersion   = envOr("KUBE_VERSION", "v1.34.2")
	etcdVersion   = envOr("ETCD_VERSION", "v3.6.5")
	prom3Version  = envOr("PROM3_VERSION", "v0.309.1") // the Go module version of Prometheus 3.9.1
	thanosVersion = envOr("THANOS_VERSION", "v0.42.4")
	helmVersion   = envOr("HELM_VERSION", "v3.22.0")
)

// Prometheus 2.x and kubectl come from the machine's packages.
const (
	prom2Binary      = "/usr/bin/prometheus"
	prom2Promtool    = "/usr/bin/promtool"
	systemKubectlBin = "/usr/bin/kubectl"
)

// FindBins locates every binary the test bed needs: it asks test/tools/deps.sh for its cache
// directory (without building anything) and checks each binary is there. kubectl is the machine's
// /usr/bin/kubectl when present, else the one deps.sh built. The error lists what is missing and
// says to run test/tools/deps.sh. The thanos and helm binaries are located but not required here
// (see Bins.Thanos and Bins.Helm), so tests that do not use them work without them.
func FindBins() (Bins, error) {
	script, err := depsScript()
	if err != nil {
		return Bins{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := runCommand(ctx, nil, "bash", script, "--print")
	if err != nil {
		return Bins{}, fmt.Errorf("asking test/tools/deps.sh for its binary cache: %w", err)
	}
	dir := strings.TrimSpace(out)

	kubectl := systemKubectlBin
	if !isExecutable(kubectl) {
		kubectl = filepath.Join(dir, "kubectl-"+kubeVersion)
	}
	bins := Bins{
		Etcd:                  filepath.Join(dir, "etcd-"+etcdVersion),
		KubeAPIServer:         filepath.Join(dir, "kube-apiserver-"+kubeVersion),
		KubeControllerManager: filepath.Join(dir, "kube-controller-manager-"+kubeVersion),
		Kubectl:               kubectl,
		Prometheus: map[string]PromBins{
			"2": {Prometheus: prom2Binary, Promtool: prom2Promtool},
			"3": {
				Prometheus: filepath.Join(dir, "prometheus-"+prom3Version),
				Promtool:   filepath.Join(dir, "promtool-"+prom3Version),
			},
		},
		Thanos: filepath.Join(dir, "thanos-"+thanosVersion+"-slicelabels"), // deps.sh: built with Thanos' release tags
		Helm:   filepath.Join(dir, "helm-"+helmVersion),
	}

	var missing []string
	for _, path := range []string{bins.Etcd, bins.KubeAPIServer, bins.KubeControllerManager, bins.Kubectl,
		bins.Prometheus["2"].Prometheus, bins.Prometheus["2"].Promtool,
		bins.Prometheus["3"].Prometheus, bins.Prometheus["3"].Promtool} {
		if !isExecutable(path) {
			missing = append(missing, path)
		}
	}
	if len(missing) > 0 {
		return Bins{}, fmt.Errorf("test binaries missing: %s; run `test/tools/deps.sh` from the repository root "+
			"to build them (about 20 minutes on a new machine, then cached in %s)", strings.Join(missing, ", "), dir)
	}

	for major, prom := range bins.Prometheus {
		prom.Version, err = prometheusVersion(ctx, prom.Prometheus)
		if err != nil {
			return Bins{}, err
		}
		if prom.Version == "" && major == "3" {
			// Built from its Go module without version stamping: derive the release from the module
			// version, v0.MMM.P being release (MMM/100).(MMM%100).P.
			prom.Version = releaseFromModuleVersion(prom3Version)
		}
		bins.Prometheus[major] = prom
	}
	return bins, nil
}

// depsScript finds test/tools/deps.sh: next to this source file when the sources are on disk,
// else in the first directory upwards from the working directory that holds it.
func depsScript() (string, error) {
	const rel = "test/tools/deps.sh"
	if _, file, _, ok := runtime.Caller(0); ok {
		candidate := filepath.Join(filepath.Dir(file), "..", "tools", "deps.sh")
		if _, err := os.Stat(candidate); err == nil {
			return candidate, nil
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding %s: %w", rel, err)
	}
	for {
		candidate := filepath.Join(dir, rel)
		if _, err := os.Stat(candidate); err == nil {
			return candidate, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find " + rel + " in the working directory or above; run the tests from inside the promadapter repository")
		}
		dir = parent
	}
}

// prometheusVersion returns the release a Prometheus binary reports with --version, or "" when it
// reports none.
func prometheusVersion(ctx context.Context, bin string) (string, error) {
	out, err := runCommand(ctx, nil, bin, "--version")
	if err != nil {
		return "", fmt.Errorf("asking %s for its version: %w", bin, err)
	}
	version, err := parsePrometheusVersion(out)
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", bin, err)
	}
	return version, nil
}

// parsePrometheusVersion reads the release from the output of `prometheus --version`, whose first
// line is "prometheus, version 2.42.0+ds (branch: …)". A binary built without version stamping
// prints "prometheus, version  (branch: , …)", for which it returns "".
func parsePrometheusVersion(output string) (string, error) {
	firstLine, _, _ := strings.Cut(output, "\n")
	_, rest, found := strings.Cut(firstLine, ", version ")
	if !found {
		return "", fmt.Errorf("the output %q has no version", firstLine)
	}
	version, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
	if strings.HasPrefix(version, "(") {
		return "", nil
	}
	return version, nil
}

// releaseFromModuleVersion turns a Prometheus Go module version into its release: "v0.309.1" is
// "3.9.1". A version of another shape is returned unchanged.
func releaseFromModuleVersion(moduleVersion string) string {
	parts := strings.Split(strings.TrimPrefix(moduleVersion, "v"), ".")
	if len(parts) != 3 || parts[0] != "0" {
		return moduleVersion
	}
	minor, err := strconv.Atoi(parts[1])
	if err != nil || minor < 100 {
		return moduleVersion
	}
	return fmt.Sprintf("%d.%d.%s", minor/100, minor%100, parts[2])
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir() && info.Mode()&0o111 != 0
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}
