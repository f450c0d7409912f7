//go:build e2e

package e2e

import (
	"archive/tar"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

// imagePlatforms are the architectures `make images` builds, with the ELF machine of each binary
// and the Debian qemu-user-static emulator that runs it on another machine.
var imagePlatforms = []struct {
	arch    string
	machine elf.Machine
	qemu    string
}{
	{"amd64", elf.EM_X86_64, "qemu-x86_64-static"},
	{"arm64", elf.EM_AARCH64, "qemu-aarch64-static"},
	{"riscv64", elf.EM_RISCV, "qemu-riscv64-static"},
}

const reproduceImages = "make images && make build && PROMADAPTER_BIN=$PWD/bin/promadapter go test -tags e2e ./test/e2e -run TestImages -v"

// TestImages checks the OCI layout `make images` writes, read back as a registry client reads it:
// one image per architecture, each carrying a binary for that architecture that runs (under
// qemu-user-static on this machine), and the riscv64 one serves a custom metric through
// kube-apiserver with the fixture's value.
func TestImages(t *testing.T) {
	dir := imageLayoutDir(t)
	images := readImageIndex(t, dir)
	// The binaries outlive their subtests: the last one serves with the riscv64 one.
	binDir := t.TempDir()
	bins := map[string]string{}
	for _, p := range imagePlatforms {
		img := images[p.arch]
		if img == nil {
			t.Errorf("%s: the index has no linux/%s image (run make images)", dir, p.arch)
			continue
		}
		t.Run("linux/"+p.arch, func(t *testing.T) {
			checkImageConfig(t, img, p.arch)
			bin := extractBinary(t, img, filepath.Join(binDir, p.arch, "promadapter"))
			f, err := elf.Open(bin)
			if err != nil {
				t.Fatalf("/promadapter of the linux/%s image: %v", p.arch, err)
			}
			machine := f.Machine
			f.Close()
			if machine != p.machine {
				t.Fatalf("/promadapter of the linux/%s image is built for %s", p.arch, machine)
			}
			bins[p.arch] = bin
			run := emulated(t, p.arch, p.qemu, bin)

			out := runImageBinary(t, run, "--version")
			if !strings.HasPrefix(out, "promadapter v") || !strings.Contains(out, "linux/"+p.arch) {
				t.Errorf("%s --version printed %q; want \"promadapter vX (goX, linux/%s)\"", strings.Join(run, " "), out, p.arch)
			}
			out = runImageBinary(t, run, "check-config")
			if !strings.Contains(out, "<embedded default>: ok: ") {
				t.Errorf("%s check-config printed %q; want its \"<embedded default>: ok: ...\" line", strings.Join(run, " "), out)
			}
		})
	}
	if t.Failed() {
		return
	}

	t.Run("the riscv64 adapter serves a custom metric through kube-apiserver", func(t *testing.T) {
		p := imagePlatforms[len(imagePlatforms)-1]
		if p.arch != "riscv64" {
			t.Fatalf("imagePlatforms should end with riscv64, not %s", p.arch)
		}
		dir := t.TempDir()
		wrapper, pidFile := filepath.Join(dir, "promadapter-"+p.arch), filepath.Join(dir, "pid")
		run := emulated(t, p.arch, p.qemu, bins[p.arch])
		// exec keeps the shell's pid, so the pid file names the emulator running the adapter.
		script := "#!/bin/sh\necho $$ > " + shellWords([]string{pidFile}) + "\nexec " + shellWords(run) + ` "$@"` + "\n"
		if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		serveOneCustomMetric(t, wrapper, func() {
			pid, err := os.ReadFile(pidFile)
			if err != nil {
				t.Fatal(err)
			}
			exe, err := os.Readlink("/proc/" + strings.TrimSpace(string(pid)) + "/exe")
			if err != nil || exe != run[0] {
				t.Errorf("the adapter that answered runs %q (%v); want %s", exe, err, run[0])
			}
		})
	})
}

// imageLayoutDir returns the OCI layout to test: $PROMADAPTER_IMAGE_LAYOUT, else bin/images/promadapter
// of the repository. It skips the test when there is none.
func imageLayoutDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("PROMADAPTER_IMAGE_LAYOUT"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err != nil {
			continue
		}
		dir := filepath.Join(d, "bin", "images", "promadapter")
		if _, err := os.Stat(filepath.Join(dir, "index.json")); errors.Is(err, os.ErrNotExist) {
			t.Skipf("no OCI image layout at %s: run make images first", dir)
		}
		return dir
	}
	t.Fatalf("no go.mod above %s: run the test inside the repository", wd)
	return ""
}

// readImageIndex reads the layout's one image index and returns its images by architecture,
// failing on anything but exactly the linux images of imagePlatforms.
func readImageIndex(t *testing.T, dir string) map[string]v1.Image {
	t.Helper()
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatalf("reading the OCI layout %s: %v", dir, err)
	}
	root, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	rm, err := root.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(rm.Manifests) != 1 {
		t.Fatalf("%s/index.json lists %d entries; want one image index", dir, len(rm.Manifests))
	}
	idx, err := root.ImageIndex(rm.Manifests[0].Digest)
	if err != nil {
		t.Fatalf("%s: the entry of index.json is not an image index: %v", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]v1.Image{}
	var platforms []string
	for _, d := range im.Manifests {
		if d.Platform == nil {
			t.Fatalf("image %s has no platform in the index", d.Digest)
		}
		platforms = append(platforms, d.Platform.OS+"/"+d.Platform.Architecture)
		if d.Platform.OS != "linux" {
			continue
		}
		if images[d.Platform.Architecture], err = idx.Image(d.Digest); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"linux/amd64", "linux/arm64", "linux/riscv64"}
	if !reflect.DeepEqual(platforms, want) {
		t.Errorf("the index lists %v; want %v", platforms, want)
	}
	t.Logf("%s: index %s, %s", dir, rm.Manifests[0].Digest, strings.Join(platforms, ", "))
	return images
}

// checkImageConfig checks what the Dockerfile also promises: user, entrypoint and port.
func checkImageConfig(t *testing.T, img v1.Image, arch string) {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Config
	if cfg.OS != "linux" || cfg.Architecture != arch || c.User != "65532:65532" ||
		!reflect.DeepEqual(c.Entrypoint, []string{"/promadapter"}) ||
		!reflect.DeepEqual(c.ExposedPorts, map[string]struct{}{"6443/tcp": {}}) ||
		c.Labels["org.opencontainers.image.version"] == "" {
		t.Errorf("linux/%s config: os/arch %s/%s, user %q, entrypoint %q, ports %v, labels %v; want linux/%s, "+
			"65532:65532, [/promadapter], 6443/tcp and a version label", arch, cfg.OS, cfg.Architecture, c.User,
			c.Entrypoint, c.ExposedPorts, c.Labels, arch)
	}
}

// extractBinary writes the image's /promadapter to path.
func extractBinary(t *testing.T, img v1.Image, path string) string {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			t.Fatal("the image has no /promadapter")
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(h.Name, "/") != "promadapter" {
			continue
		}
		if h.Typeflag != tar.TypeReg || h.Mode&0o111 == 0 {
			t.Fatalf("/promadapter in the image is not an executable file (type %q, mode %o)", h.Typeflag, h.Mode)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, tr); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		return path
	}
}

// emulated returns the command line that runs bin: bin itself on its own architecture, else
// through qemu-user-static (which test/tools/deps.sh installs).
func emulated(t *testing.T, arch, qemu, bin string) []string {
	t.Helper()
	if arch == runtime.GOARCH {
		return []string{bin}
	}
	q, err := exec.LookPath(qemu)
	if err != nil {
		t.Fatalf("%s not found: run test/tools/deps.sh (it installs Debian's qemu-user-static)", qemu)
	}
	return []string{q, bin}
}

// runImageBinary runs the command with args and returns its output; it fails the test unless
// the command exits 0.
func runImageBinary(t *testing.T, run []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	argv := append(append([]string(nil), run...), args...)
	start := time.Now()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s\nReproduce: %s", shellWords(argv), err, out, reproduceImages)
	}
	t.Logf("%s (%s): %s", shellWords(argv), time.Since(start).Round(time.Millisecond), strings.TrimSpace(string(out)))
	return string(out)
}

// serveOneCustomMetric starts a cluster, Prometheus 3 with the fixture and the adapter bin on
// its embedded default config, and checks one pod's http_requests_per_second through
// kube-apiserver against the fixture's value; then, with the adapter still running, it calls
// whileServing.
func serveOneCustomMetric(t *testing.T, bin string, whileServing func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bins, err := testbed.FindBins()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	spec := fixture.Spec{}
	cluster, err := testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: bins, Dir: filepath.Join(dir, "cluster")})
	if err != nil {
		t.Fatal(err)
	}
	cluster.Cleanup(t)
	if err := spec.ApplyObjects(ctx, cluster.Client); err != nil {
		t.Fatal(err)
	}
	var om strings.Builder
	now := time.Now()
	if err := spec.WriteOpenMetrics(&om, now.Add(-30*time.Minute), now.Add(3*time.Hour), 15*time.Second); err != nil {
		t.Fatal(err)
	}
	prom, err := testbed.StartPrometheus(ctx, testbed.PrometheusOptions{Bins: bins, Major: "3", Dir: filepath.Join(dir, "prometheus"),
		OpenMetrics: []byte(om.String())})
	if err != nil {
		t.Fatal(err)
	}
	prom.Cleanup(t)
	start := time.Now()
	adapter, err := cluster.StartAdapter(ctx, testbed.AdapterOptions{Bin: bin, PrometheusURL: prom.URL})
	if err != nil {
		t.Fatalf("starting the emulated adapter: %v\nReproduce: %s", err, reproduceImages)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if log, err := os.ReadFile(adapter.LogPath); err == nil {
				t.Logf("adapter log (%s), last lines:\n%s", adapter.LogPath, tail(string(log), 40))
			}
		}
		adapter.Stop()
	})
	t.Logf("the emulated adapter was ready and its APIServices available after %s", time.Since(start).Round(time.Millisecond))

	pod := spec.PodList()[0]
	want, ok := spec.PodRequestRate(pod.Namespace, pod.Name)
	if !ok {
		t.Fatalf("the fixture has no request rate for pod %s/%s", pod.Namespace, pod.Name)
	}
	path := fmt.Sprintf("/apis/custom.metrics.k8s.io/v1beta2/namespaces/%s/pods/%s/http_requests_per_second", pod.Namespace, pod.Name)
	// The aggregator may answer 503 (or 404) for a moment after the APIService turned Available.
	var out string
	waitFor(t, ctx, 30*time.Second, "a 200 for GET "+path, func() (bool, string) {
		var err error
		out, err = cluster.Kubectl(ctx, "get", "--raw", path)
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	var list metricValueList
	if err := jsonUnmarshal([]byte(out), &list); err != nil {
		t.Fatalf("kubectl get --raw %s: decoding %q: %v", path, out, err)
	}
	if len(list.Items) != 1 || list.Items[0].DescribedObject.Name != pod.Name || !near(list.Items[0].Value, want) {
		t.Fatalf("GET %s answered %s; want one item for %s with value %v", path, out, pod.Name, want)
	}
	t.Logf("GET %s through kube-apiserver: %s (fixture: %v)", path, list.Items[0].Value.String(), want)
	whileServing()
}

// shellWords joins argv for a shell, quoting each word.
func shellWords(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
