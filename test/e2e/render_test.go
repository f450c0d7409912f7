//go:build e2e

package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/promadapter/promadapter/test/testbed"
)

// The two ways to install promadapter, deploy/manifests (kustomize) and deploy/chart/promadapter
// (Helm), must install the same thing for the same choices. These tests render both and compare
// them object by object, make each documented choice both ways and compare again, and apply both
// renderings for real to a kube-apiserver.
//
// Reproduce: go test -count=1 -tags e2e ./test/e2e -run TestRender -v
// (helm comes from test/tools/deps.sh's cache; set HELM=/path/to/helm to use another).

// kubePrometheusURL is the Prometheus both installs preset: kube-prometheus' prometheus-k8s Service.
const kubePrometheusURL = "http://prometheus-k8s.monitoring.svc:9090"

// The release name and namespace the chart is rendered with: those of deploy/manifests.
const (
	releaseName      = "promadapter"
	releaseNamespace = "promadapter"
)

// helmOnlyLabels are the labels only the chart sets: Helm's bookkeeping, the chart's version, and
// the release name, which the chart also puts in selectors so that two releases never select each
// other's pods. None changes what is installed, so the comparison ignores them wherever they appear
// (metadata, selectors, pod templates).
var helmOnlyLabels = []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/version"}

// renderer renders deploy/manifests and the chart with the test bed's kubectl and deps.sh's helm.
type renderer struct {
	bins testbed.Bins
	helm string
	repo string // the repository root
}

func newRenderer(t *testing.T) *renderer {
	t.Helper()
	bins, err := testbed.FindBins()
	if err != nil {
		t.Fatal(err)
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	helm := os.Getenv("HELM")
	if helm == "" {
		helm = bins.Helm
	}
	if info, err := os.Stat(helm); err != nil || info.Mode()&0o111 == 0 {
		t.Fatalf("helm is not at %s: run `test/tools/deps.sh` from the repository root (it builds helm into its cache, about 2 minutes), or set HELM=/path/to/helm", helm)
	}
	return &renderer{bins: bins, helm: helm, repo: repo}
}

func (r *renderer) manifests() string { return filepath.Join(r.repo, "deploy", "manifests") }
func (r *renderer) chartDir() string  { return filepath.Join(r.repo, "deploy", "chart", "promadapter") }

// run runs a command and returns its standard output; a failure names the command line.
func (r *renderer) run(t *testing.T, stdin string, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// kustomize renders a kustomization directory (deploy/manifests or an edited copy).
func (r *renderer) kustomize(t *testing.T, dir string) []byte {
	t.Helper()
	return r.run(t, "", r.bins.Kubectl, "kustomize", dir)
}

// chart renders the chart as `helm template promadapter deploy/chart/promadapter --namespace
// promadapter` does, with values (YAML, given on standard input: helm splits --values at commas)
// and further flags.
func (r *renderer) chart(t *testing.T, values string, flags ...string) []byte {
	t.Helper()
	args := append([]string{"template", releaseName, r.chartDir(), "--namespace", releaseNamespace, "--values", "-"}, flags...)
	return r.run(t, values, r.helm, args...)
}

// byID indexes objects by objectID, failing on duplicates.
func byID(t *testing.T, source string, objects []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	t.Helper()
	index := map[string]*unstructured.Unstructured{}
	for _, o := range objects {
		id := objectID(o)
		if _, dup := index[id]; dup {
			t.Fatalf("%s renders %s twice", source, id)
		}
		index[id] = o
	}
	return index
}

// sortedIDs returns the keys of an index, sorted.
func sortedIDs(index map[string]*unstructured.Unstructured) []string {
	ids := make([]string, 0, len(index))
	for id := range index {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// withoutHelmBookkeeping returns a copy of o without helmOnlyLabels and without checksum/*
// annotations (which only make `helm upgrade` roll the pods when the rules change), dropping label
// and annotation maps left empty.
func withoutHelmBookkeeping(o *unstructured.Unstructured) *unstructured.Unstructured {
	c := o.DeepCopy()
	var strip func(v any)
	strip = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for key, child := range v {
				if slices.Contains(helmOnlyLabels, key) || strings.HasPrefix(key, "checksum/") {
					delete(v, key)
					continue
				}
				strip(child)
				if m, ok := child.(map[string]any); ok && len(m) == 0 && (key == "annotations" || key == "labels") {
					delete(v, key)
				}
			}
		case []any:
			for _, item := range v {
				strip(item)
			}
		}
	}
	strip(c.Object)
	return c
}

// fieldDiffs lists where two decoded objects differ, one line per field, as "path: a ≠ b". Lists
// are compared in order: both installs write them in the same order, and a reordering is a change
// a reviewer should see.
func fieldDiffs(path string, a, b any) []string {
	if reflect.DeepEqual(a, b) {
		return nil
	}
	show := func(v any) string {
		if v == nil {
			return "(absent)"
		}
		data, _ := json.Marshal(v)
		return string(data)
	}
	switch a := a.(type) {
	case map[string]any:
		if b, ok := b.(map[string]any); ok {
			keys := map[string]bool{}
			for k := range a {
				keys[k] = true
			}
			for k := range b {
				keys[k] = true
			}
			var diffs []string
			for _, k := range slices.Sorted(maps.Keys(keys)) {
				diffs = append(diffs, fieldDiffs(path+"."+k, a[k], b[k])...)
			}
			return diffs
		}
	case []any:
		if b, ok := b.([]any); ok && len(a) == len(b) {
			var diffs []string
			for i := range a {
				diffs = append(diffs, fieldDiffs(fmt.Sprintf("%s[%d]", path, i), a[i], b[i])...)
			}
			return diffs
		}
	}
	return []string{fmt.Sprintf("%s: %s ≠ %s", strings.TrimPrefix(path, "."), show(a), show(b))}
}

// canonicalCABundle rewrites an APIService's spec.caBundle in the form the server returns it: the
// base64 of its bytes on one line. kustomize wraps the base64 of long Secret data (which
// deploy/components/tls-secret copies into caBundle) at 70 columns; the server decodes both to the
// same bytes. A caBundle that is not base64 is left as it is, so the comparison shows it.
func canonicalCABundle(o *unstructured.Unstructured) *unstructured.Unstructured {
	if o.GetKind() != "APIService" {
		return o
	}
	if text, ok, _ := unstructured.NestedString(o.Object, "spec", "caBundle"); ok {
		if data, err := base64.StdEncoding.DecodeString(text); err == nil { // newlines are skipped
			_ = unstructured.SetNestedField(o.Object, base64.StdEncoding.EncodeToString(data), "spec", "caBundle")
		}
	}
	return o
}

// compareInstalls checks that the kustomize and the chart renderings hold the same objects with the
// same content once Helm's bookkeeping is set aside. Objects in onlyKustomize are expected in the
// kustomize rendering alone; each is a documented difference.
func compareInstalls(t *testing.T, kustomized, charted []*unstructured.Unstructured, onlyKustomize []string, reproduce string) {
	t.Helper()
	k, h := byID(t, "kustomize", kustomized), byID(t, "helm template", charted)
	var gotOnlyK, onlyH []string
	for _, id := range sortedIDs(k) {
		if _, ok := h[id]; !ok {
			gotOnlyK = append(gotOnlyK, id)
		}
	}
	for _, id := range sortedIDs(h) {
		if _, ok := k[id]; !ok {
			onlyH = append(onlyH, id)
		}
	}
	sort.Strings(onlyKustomize)
	if !slices.Equal(gotOnlyK, onlyKustomize) || len(onlyH) > 0 {
		t.Errorf("the renderings hold different objects:\n  only in kustomize: %v (want %v)\n  only in the chart: %v\nreproduce: %s",
			gotOnlyK, onlyKustomize, onlyH, reproduce)
	}
	for _, id := range sortedIDs(k) {
		if _, ok := h[id]; !ok {
			continue
		}
		if diffs := fieldDiffs("", canonicalCABundle(withoutHelmBookkeeping(k[id])).Object, canonicalCABundle(withoutHelmBookkeeping(h[id])).Object); len(diffs) > 0 {
			t.Errorf("%s differs (kustomize ≠ chart):\n  %s\nreproduce: %s", id, strings.Join(diffs, "\n  "), reproduce)
		}
	}
}

// containerArgs returns the args of the only container of the rendering's only Deployment.
func containerArgs(t *testing.T, objects []*unstructured.Unstructured) []string {
	t.Helper()
	for _, o := range objects {
		if o.GetKind() != "Deployment" {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		if len(containers) != 1 {
			t.Fatalf("%s has %d containers, want 1", objectID(o), len(containers))
		}
		args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
		return args
	}
	t.Fatal("the rendering holds no Deployment")
	return nil
}

// TestRenderDefaultsAgree: `kubectl kustomize deploy/manifests` and `helm template` with the
// chart's default values install the same objects, apart from the Namespace (Helm installs into a
// namespace that exists or that `helm install --create-namespace` creates).
func TestRenderDefaultsAgree(t *testing.T) {
	r := newRenderer(t)
	kustomized := decodeObjects(t, "kubectl kustomize", r.kustomize(t, r.manifests()))
	charted := decodeObjects(t, "helm template", r.chart(t, ""))
	reproduce := fmt.Sprintf("diff <(kubectl kustomize %s) <(%s template %s %s --namespace %s)", r.manifests(), r.helm, releaseName, r.chartDir(), releaseNamespace)

	t.Run("both preset kube-prometheus' Prometheus URL", func(t *testing.T) {
		for source, objects := range map[string][]*unstructured.Unstructured{"kustomize": kustomized, "the chart": charted} {
			if args := containerArgs(t, objects); !slices.Contains(args, "--prometheus-url="+kubePrometheusURL) {
				t.Errorf("%s runs the adapter with %v, want --prometheus-url=%s among them", source, args, kubePrometheusURL)
			}
		}
	})
	t.Run("only kustomize creates the namespace, which enforces the restricted Pod Security Standard", func(t *testing.T) {
		ns := byID(t, "kustomize", kustomized)["Namespace "+releaseNamespace]
		if ns == nil {
			t.Fatalf("kubectl kustomize %s renders no Namespace %s", r.manifests(), releaseNamespace)
		}
		if got := ns.GetLabels()["pod-security.kubernetes.io/enforce"]; got != "restricted" {
			t.Errorf("Namespace %s has pod-security.kubernetes.io/enforce=%q, want restricted", releaseNamespace, got)
		}
		for _, o := range charted {
			if o.GetKind() == "Namespace" {
				t.Errorf("the chart renders %s; Helm charts leave the release namespace to `helm install --create-namespace`", objectID(o))
			}
		}
	})
	t.Run("every other object is the same in both, apart from Helm's labels and checksum annotations", func(t *testing.T) {
		compareInstalls(t, kustomized, charted, []string{"Namespace " + releaseNamespace}, reproduce)
	})
}
