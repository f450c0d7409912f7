//go:build e2e

// migrationKubectl, which runs kubectl and the doc's shell commands for
// TestMigrationFromMetricsServer, and helpers around the APIService.

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promadapter/promadapter/test/testbed"
)

// migrationKubectl runs kubectl against the test cluster, and the doc's shell commands from dir,
// a directory laid out like the repository root.
type migrationKubectl struct {
	t       *testing.T
	cluster *testbed.Cluster
	bin     string
	dir     string
	once    sync.Once
}

func (k *migrationKubectl) setup() {
	k.once.Do(func() {
		if err := os.MkdirAll(filepath.Join(k.dir, "bin"), 0o755); err != nil {
			k.t.Fatal(err)
		}
		if err := os.Symlink(k.bin, filepath.Join(k.dir, "bin", "kubectl")); err != nil {
			k.t.Fatal(err)
		}
	})
}

// run runs kubectl with args and fails the test on error.
func (k *migrationKubectl) run(args ...string) string {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := k.cluster.Kubectl(ctx, args...)
	if err != nil {
		k.t.Fatal(err)
	}
	return out
}

// create runs `kubectl create -f -` with manifests: no last-applied annotation, as Helm creates objects.
func (k *migrationKubectl) create(manifests string) {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := k.cluster.KubectlWithInput(ctx, []byte(manifests), "create", "-f", "-"); err != nil {
		k.t.Fatal(err)
	}
}

// trySh runs a shell command line as a person would from the repository root, and returns its
// standard output and error together.
func (k *migrationKubectl) trySh(line string) (string, error) {
	k.t.Helper()
	k.setup()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", line)
	cmd.Dir = k.dir
	cmd.Env = append(os.Environ(), "KUBECONFIG="+k.cluster.Kubeconfig, "PATH="+filepath.Join(k.dir, "bin")+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// sh is trySh failing the test on error; the failure prints what to run to reproduce it.
func (k *migrationKubectl) sh(line string) string {
	k.t.Helper()
	out, err := k.trySh(line)
	if err != nil {
		k.t.Fatalf("(cd %s && KUBECONFIG=%s bash -c %q): %v\n%s", k.dir, k.cluster.Kubeconfig, line, err, out)
	}
	return out
}

func (k *migrationKubectl) writeFile(name string, data []byte) {
	k.t.Helper()
	path := filepath.Join(k.dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		k.t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		k.t.Fatal(err)
	}
}

func (k *migrationKubectl) readFile(name string) []byte {
	k.t.Helper()
	data, err := os.ReadFile(filepath.Join(k.dir, name))
	if err != nil {
		k.t.Fatal(err)
	}
	return data
}

// log prints a command's output for the test's -v log (docs/migration.md quotes it).
func (k *migrationKubectl) log(what, out string) {
	k.t.Helper()
	k.t.Logf("$ %s\n%s", what, strings.TrimRight(out, "\n"))
}

// migrationAPIServiceSpec is the spec of v1beta1.metrics.k8s.io as JSON decodes it.
func migrationAPIServiceSpec(t *testing.T, k *migrationKubectl) map[string]any {
	t.Helper()
	var spec map[string]any
	out := k.run("get", "apiservice", "v1beta1.metrics.k8s.io", "-o", "jsonpath={.spec}")
	if err := json.Unmarshal([]byte(out), &spec); err != nil {
		t.Fatalf("APIService spec %q: %v", out, err)
	}
	return spec
}

func migrationWaitAvailable(ctx context.Context, t *testing.T, cluster *testbed.Cluster) {
	t.Helper()
	if err := cluster.WaitAPIServicesAvailable(ctx, "v1beta1.metrics.k8s.io"); err != nil {
		t.Fatal(err)
	}
}

func migrationShortenCABundle(s string) string {
	const key = `"caBundle":"`
	i := strings.Index(s, key)
	if i < 0 {
		return s
	}
	start := i + len(key)
	end := strings.IndexByte(s[start:], '"')
	if end < 12 {
		return s
	}
	return s[:start+8] + "…" + s[start+end:]
}
