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
	"sigs.k8s.io/yaml"

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

// TestRenderAppliesToAPIServer applies both renderings, one after the other, to a real
// kube-apiserver with server-side apply (no dry run): every object is accepted under strict field
// validation without warnings (deprecations, Pod Security), the server stores every field as
// rendered, and applying again changes nothing. Only etcd and kube-apiserver run: no controller,
// so nothing starts pods.
func TestRenderAppliesToAPIServer(t *testing.T) {
	r := newRenderer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	cluster, err := testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: r.bins, Dir: filepath.Join(dir, "cluster")})
	if err != nil {
		t.Fatal(err)
	}
	cluster.Cleanup(t)
	s := &deploySuite{cluster: cluster, bins: r.bins, repo: r.repo, dir: dir}
	version, err := cluster.Client.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}

	kustomized := r.kustomize(t, r.manifests())
	if !t.Run("the kustomize rendering", func(t *testing.T) { s.serverSideApply(t, "promadapter-e2e-kustomize", kustomized) }) {
		t.FailNow()
	}

	// The same cluster-scoped names (ClusterRoles, APIServices) come next from the chart: delete
	// everything but the Namespace, which the chart does not create and installs into.
	var rest []string
	for _, o := range decodeObjects(t, "kubectl kustomize", kustomized) {
		if o.GetKind() == "Namespace" {
			continue
		}
		data, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		rest = append(rest, string(data))
	}
	s.mustKubectl(t, []byte(strings.Join(rest, "---\n")), "delete", "--wait", "-f", "-")

	charted := r.chart(t, "", "--kube-version="+version.GitVersion)
	t.Run("the chart rendering with default values", func(t *testing.T) { s.serverSideApply(t, "promadapter-e2e-helm", charted) })
}

// serverSideApply applies a rendering with server-side apply as manager and checks the result.
func (s *deploySuite) serverSideApply(t *testing.T, manager string, rendered []byte) {
	t.Helper()
	apply := []string{"apply", "--server-side", "--field-manager=" + manager, "--validate=strict", "-f", "-"}
	command := "kubectl " + strings.Join(apply, " ")
	stdout, stderr := s.mustKubectl(t, rendered, apply...)
	noWarnings(t, command, stderr)
	objects := decodeObjects(t, "the rendering", rendered)
	if lines := strings.Split(strings.TrimSpace(stdout), "\n"); len(lines) != len(objects) {
		t.Errorf("%s reported %d objects, want %d:\n%s", command, len(lines), len(objects), stdout)
	}

	// live reads every object of the rendering back from the server, by objectID.
	live := func(t *testing.T) map[string]*unstructured.Unstructured {
		t.Helper()
		out, _ := s.mustKubectl(t, rendered, "get", "-f", "-", "-o", "json", "--show-managed-fields")
		var list unstructured.UnstructuredList
		if err := list.UnmarshalJSON([]byte(out)); err != nil {
			t.Fatalf("kubectl get -f - -o json: %v", err)
		}
		index := map[string]*unstructured.Unstructured{}
		for i := range list.Items {
			index[objectID(&list.Items[i])] = &list.Items[i]
		}
		return index
	}
	stored := live(t)
	for _, o := range objects {
		id := objectID(o)
		got, ok := stored[id]
		if !ok {
			t.Errorf("%s is not on the server after %s", id, command)
			continue
		}
		var managers []string
		for _, f := range got.GetManagedFields() {
			if f.Subresource == "" { // not the status the aggregator writes to APIServices
				managers = append(managers, fmt.Sprintf("%s/%s", f.Manager, f.Operation))
			}
		}
		if !slices.Equal(managers, []string{manager + "/Apply"}) {
			t.Errorf("%s is managed by %v, want only %s/Apply: it was not created by this apply alone", id, managers, manager)
		}
		if missing := notStored("", o.Object, got.Object); len(missing) > 0 {
			t.Errorf("%s: the server did not store these fields as rendered:\n  %s", id, strings.Join(missing, "\n  "))
		}
	}

	s.mustKubectl(t, rendered, apply...)
	for id, after := range live(t) {
		if before := stored[id]; before != nil && before.GetResourceVersion() != after.GetResourceVersion() {
			t.Errorf("applying the same rendering again changed %s (resourceVersion %s → %s)", id, before.GetResourceVersion(), after.GetResourceVersion())
		}
	}
}

// notStored lists the fields of rendered whose value the server's object lacks or holds otherwise.
// The server may add fields (defaults, status, metadata); it must not drop or rewrite ours.
func notStored(path string, rendered, stored any) []string {
	switch r := rendered.(type) {
	case map[string]any:
		s, ok := stored.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: rendered an object, stored %v", strings.TrimPrefix(path, "."), stored)}
		}
		var missing []string
		for k, v := range r {
			missing = append(missing, notStored(path+"."+k, v, s[k])...)
		}
		sort.Strings(missing)
		return missing
	case []any:
		s, ok := stored.([]any)
		if !ok || len(s) != len(r) {
			return []string{fmt.Sprintf("%s: rendered %v, stored %v", strings.TrimPrefix(path, "."), rendered, stored)}
		}
		var missing []string
		for i := range r {
			missing = append(missing, notStored(fmt.Sprintf("%s[%d]", path, i), r[i], s[i])...)
		}
		return missing
	}
	if !reflect.DeepEqual(rendered, stored) {
		return []string{fmt.Sprintf("%s: rendered %v, stored %v", strings.TrimPrefix(path, "."), rendered, stored)}
	}
	return nil
}
