//go:build e2e

// TestRenderAppliesToAPIServer and the server-side apply it checks both renderings with.

package e2e

import (
	"context"
	"fmt"
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
