//go:build e2e

// TestRenderChoicesAgree and the edits of deploy/manifests that make each choice.

package e2e

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// fileEdit is one edit of a file in a copy of deploy/manifests: old, which must occur exactly once,
// becomes new.
type fileEdit struct {
	file, old, new string
}

// editedManifests copies deploy/manifests and deploy/components to DIR/deploy, writes files (paths
// relative to DIR, e.g. the certificate files of deploy/components/tls-secret) and applies the edits to
// the copy of deploy/manifests, the way the comments in deploy/ tell a user to make a choice. It
// returns the copy of deploy/manifests. An edit whose text is no longer there fails the test: the
// documented way has drifted from the files.
func (r *renderer) editedManifests(t *testing.T, edits []fileEdit, files map[string][]byte) string {
	t.Helper()
	root := t.TempDir()
	if err := os.CopyFS(filepath.Join(root, "deploy"), os.DirFS(filepath.Join(r.repo, "deploy"))); err != nil {
		t.Fatalf("copying deploy/: %v", err)
	}
	dir := filepath.Join(root, "deploy", "manifests")
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := os.WriteFile(filepath.Join(root, name), files[name], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, edit := range edits {
		path := filepath.Join(dir, edit.file)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		if n := strings.Count(text, edit.old); n != 1 {
			t.Fatalf("deploy/manifests/%s holds %q %d times, want once: the documented way to make this choice no longer matches the file", edit.file, edit.old, n)
		}
		if err := os.WriteFile(path, []byte(strings.Replace(text, edit.old, edit.new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// removeResource is an edit that removes the line of kustomization.yaml that lists file.
func removeResource(t *testing.T, r *renderer, file string) fileEdit {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(r.manifests(), "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "- "+file) {
			return fileEdit{file: "kustomization.yaml", old: line, new: ""}
		}
	}
	t.Fatalf("deploy/manifests/kustomization.yaml lists no %s", file)
	return fileEdit{}
}

// uncomment is an edit that turns the commented-out argument "# - arg" of deployment.yaml on.
func uncomment(arg string) fileEdit {
	return fileEdit{file: "deployment.yaml", old: "# - " + arg + "\n", new: "- " + arg + "\n"}
}

// allAPIServices are the APIServices of an install that serves every group.
var allAPIServices = []string{"v1beta1.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io", "v1beta1.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"}

// renderChoice is one choice made both ways: chart values, and edits of a copy of deploy/.
type renderChoice struct {
	name   string
	values string
	edits  []fileEdit
	// files are written into the copy of deploy/ first (paths relative to its parent).
	files map[string][]byte
	// flag must be among the adapter's args in both renderings.
	flag string
	// apiServices are the APIServices both register.
	apiServices []string
	// onlyKustomize are objects kustomize keeps and the chart leaves out, besides the Namespace.
	onlyKustomize []string
	// check, when set, checks each rendering further; source names it.
	check func(t *testing.T, source string, objects []*unstructured.Unstructured)
}

// TestRenderChoicesAgree: each choice the chart offers as a value, made the way deploy/manifests
// documents it (kustomization.yaml and the comments in its files), installs the same objects. In
// particular every API group can be switched off in both, and the TLS and KEDA forwarding choices
// (tlsAndForwardChoices, in tls_render_test.go) render the same objects in both.
func TestRenderChoicesAgree(t *testing.T) {
	r := newRenderer(t)
	const rules = `rules:
  - seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
    resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
    name: {matches: "^(.*)_total$", as: "${1}_per_second"}
    metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
`
	indented := "    " + strings.ReplaceAll(strings.TrimSuffix(rules, "\n"), "\n", "\n    ") + "\n"
	choices := []renderChoice{
		{
			name:        "metrics.k8s.io switched off (metrics-server stays)",
			values:      "apis: {metrics: false}\n",
			edits:       []fileEdit{removeResource(t, r, "apiservice-metrics.yaml"), uncomment("--enable-resource-metrics=false")},
			flag:        "--enable-resource-metrics=false",
			apiServices: []string{"v1beta1.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"},
			// The chart also drops the role that adds `kubectl top` to view/edit/admin. In
			// deploy/manifests it shares rbac-metrics-readers.yaml with the HPA's role, and keeping
			// it is harmless: metrics-server's own install grants the same (kustomization.yaml says so).
			onlyKustomize: []string{"ClusterRole promadapter-aggregated-metrics-reader"},
		},
		{
			name:        "custom.metrics.k8s.io switched off (another adapter stays)",
			values:      "apis: {custom: false}\n",
			edits:       []fileEdit{removeResource(t, r, "apiservice-custom.yaml"), uncomment("--enable-custom-metrics=false")},
			flag:        "--enable-custom-metrics=false",
			apiServices: []string{"v1beta1.external.metrics.k8s.io", "v1beta1.metrics.k8s.io"},
		},
		{
			name:        "external.metrics.k8s.io switched off (KEDA stays)",
			values:      "apis: {external: false}\n",
			edits:       []fileEdit{removeResource(t, r, "apiservice-external.yaml"), uncomment("--enable-external-metrics=false")},
			flag:        "--enable-external-metrics=false",
			apiServices: []string{"v1beta1.custom.metrics.k8s.io", "v1beta1.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"},
		},
		{
			name:   "own rules from the ConfigMap instead of the embedded default",
			values: "config: |\n" + strings.ReplaceAll("  "+strings.TrimSuffix(rules, "\n"), "\n", "\n  ") + "\n",
			edits: []fileEdit{
				{file: "configmap.yaml", old: "    app.kubernetes.io/name: promadapter\n", new: "    app.kubernetes.io/name: promadapter\ndata:\n  config.yaml: |\n" + indented},
				uncomment("--config=/etc/promadapter/config/config.yaml"),
			},
			flag:        "--config=/etc/promadapter/config/config.yaml",
			apiServices: allAPIServices,
		},
	}
	for _, c := range append(choices, tlsAndForwardChoices(t, r)...) {
		t.Run(c.name, func(t *testing.T) {
			dir := r.editedManifests(t, c.edits, c.files)
			kustomized := decodeObjects(t, "kubectl kustomize", r.kustomize(t, dir))
			charted := decodeObjects(t, "helm template", r.chart(t, c.values))
			var edits []string
			for _, name := range slices.Sorted(maps.Keys(c.files)) {
				edits = append(edits, "write "+name)
			}
			for _, e := range c.edits {
				edits = append(edits, fmt.Sprintf("in %s, %q becomes %q", e.file, e.old, e.new))
			}
			reproduce := fmt.Sprintf("copy %s to DIR/deploy and edit it: %s; then\n"+
				"diff <(kubectl kustomize DIR/deploy/manifests) <(%s template %s %s --namespace %s --values - <<'EOF'\n%sEOF\n)",
				filepath.Join(r.repo, "deploy"), strings.Join(edits, "; "), r.helm, releaseName, r.chartDir(), releaseNamespace, c.values)

			for source, objects := range map[string][]*unstructured.Unstructured{"kustomize": kustomized, "the chart": charted} {
				var got []string
				for _, o := range objects {
					if o.GetKind() == "APIService" {
						got = append(got, o.GetName())
					}
				}
				sort.Strings(got)
				if !slices.Equal(got, c.apiServices) {
					t.Errorf("%s registers APIServices %v, want %v", source, got, c.apiServices)
				}
				if args := containerArgs(t, objects); !slices.Contains(args, c.flag) {
					t.Errorf("%s runs the adapter with %v, want %s among them", source, args, c.flag)
				}
				if c.check != nil {
					c.check(t, source, objects)
				}
			}
			compareInstalls(t, kustomized, charted, append([]string{"Namespace " + releaseNamespace}, c.onlyKustomize...), reproduce)
		})
	}
}
