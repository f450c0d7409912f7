//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/promadapter/promadapter/test/testbed"
)

// The identities the install is about.
const (
	adapterIdentity = "system:serviceaccount:promadapter:promadapter"
	hpaIdentity     = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"
	// probeIdentity is a user bound to nothing but the ClusterRole that deploy/ binds to the HPA
	// controller, so that its answers show what that role alone grants (the HPA controller's
	// bootstrap role already grants custom and external metrics on current Kubernetes).
	probeIdentity = "promadapter-e2e-probe"
	// viewerIdentity holds the built-in "view" role in namespace default.
	viewerIdentity = "promadapter-e2e-viewer"
)

// deploySuite is a test cluster with deploy/ applied to it, and the helpers TestDeploy's steps share.
type deploySuite struct {
	cluster *testbed.Cluster
	bins    testbed.Bins
	repo    string // the repository root
	// dir is a scratch directory. Subtests' own t.TempDir() would carry commas from their names,
	// and helm splits --values at commas.
	dir string
}

// TestDeploy checks the install manifests (deploy/manifests) and the Helm chart (deploy/chart) against
// a real kube-apiserver: the server accepts every object (dry run, strict field validation, the
// "restricted" Pod Security Standard), the objects are wired to each other, the RBAC grants the
// adapter exactly what it needs, and the real promadapter binary serves all three API groups while
// holding nothing but the ServiceAccount's rights.
//
// Reproduce: make build && go test -count=1 -tags e2e ./test/e2e/ -run TestDeploy -v
// (set HELM=/path/to/helm to include the chart when helm is not on PATH).
func TestDeploy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bins, err := testbed.FindBins()
	if err != nil {
		t.Fatal(err)
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cluster, err := testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: bins, Dir: filepath.Join(dir, "cluster")})
	if err != nil {
		t.Fatal(err)
	}
	cluster.Cleanup(t)
	// Only the controller that folds labelled ClusterRoles into view/edit/admin: no deployment or
	// endpoints controller, so the Deployment creates no pods and the Service gets no endpoints.
	if err := cluster.StartControllerManager(ctx, []string{"clusterrole-aggregation"}, 0); err != nil {
		t.Fatal(err)
	}
	s := &deploySuite{cluster: cluster, bins: bins, repo: repo, dir: dir}

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"kustomize renders exactly the expected objects, one APIService file per group", s.testKustomizeObjects},
		{"the rendered objects are wired to each other", func(t *testing.T) { checkWiring(t, s.kustomizeObjects(t)) }},
		{"before the install nobody holds the rights it grants", s.testNoRightsBeforeInstall},
		{"a server-side dry run accepts every manifest without warnings", s.testServerDryRun},
		{"kubectl apply creates every object, and applying again changes nothing", s.testApply},
		{"the pod template passes the restricted Pod Security Standard, which is enforced", s.testPodSecurity},
		{"the adapter's ServiceAccount may do what the adapter needs and no more", s.testAdapterRights},
		{"the HPA controller may read custom and external metrics (bootstrap role), and so may the optional role alone", s.testHPARights},
		{"holders of the view role may read metrics.k8s.io", s.testViewerRights},
		{"APIServices without a ready pod report Available=False", s.testAPIServicesWithoutEndpoints},
		{"the Helm chart renders, is wired, and a server-side dry run accepts it", s.testHelmChart},
		{"the adapter serves every API group with only the ServiceAccount's rights", s.testAdapterRunsAsServiceAccount},
	}
	for _, step := range steps {
		if !t.Run(step.name, step.run) {
			// Later steps build on earlier ones; their failures would only repeat this one.
			t.Fatalf("stopping at the failed step %q", step.name)
		}
	}
}

// manifests is the directory of the plain manifests.
func (s *deploySuite) manifests() string { return filepath.Join(s.repo, "deploy", "manifests") }

// kubectl runs kubectl as the cluster's admin and returns its standard output and standard error.
// Its error names the command line and quotes standard error. When ctx has no deadline, kubectl gets
// one minute.
func (s *deploySuite) kubectl(ctx context.Context, stdin []byte, args ...string) (stdout, stderr string, err error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	args = append([]string{"--kubeconfig=" + s.cluster.Kubeconfig}, args...)
	cmd := exec.CommandContext(ctx, s.bins.Kubectl, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), errOut.String(), fmt.Errorf("kubectl %s: %w\nstderr:\n%s", strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), errOut.String(), nil
}

// mustKubectl is kubectl that fails the test on error.
func (s *deploySuite) mustKubectl(t *testing.T, stdin []byte, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, err := s.kubectl(context.Background(), stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return stdout, stderr
}

// noWarnings fails the test for every "Warning:" line kubectl printed (deprecated APIs, Pod Security
// violations in "warn" mode, unknown fields the server dropped).
func noWarnings(t *testing.T, what, stderr string) {
	t.Helper()
	for _, line := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "Warning:") {
			t.Errorf("%s: the server warned: %s", what, strings.TrimSpace(line))
		}
	}
}

// kustomizeObjects renders deploy/manifests with kubectl's built-in kustomize.
func (s *deploySuite) kustomizeObjects(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	out, _ := s.mustKubectl(t, nil, "kustomize", s.manifests())
	return decodeObjects(t, "kubectl kustomize "+s.manifests(), []byte(out))
}

// decodeObjects splits a multi-document YAML stream into objects, skipping empty documents. Numbers
// become int64 where they are whole, as in objects read from the server.
func decodeObjects(t *testing.T, source string, data []byte) []*unstructured.Unstructured {
	t.Helper()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objects []*unstructured.Unstructured
	for {
		document, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: splitting the YAML documents: %v", source, err)
		}
		asJSON, err := yaml.YAMLToJSON(document)
		if err != nil {
			t.Fatalf("%s: %v in the document\n%s", source, err, document)
		}
		if trimmed := bytes.TrimSpace(asJSON); bytes.Equal(trimmed, []byte("null")) || bytes.Equal(trimmed, []byte("{}")) {
			continue
		}
		object := &unstructured.Unstructured{}
		if err := object.UnmarshalJSON(asJSON); err != nil {
			t.Fatalf("%s: %v in the document\n%s", source, err, document)
		}
		objects = append(objects, object)
	}
	return objects
}

// objectID is "Kind namespace/name", or "Kind name" for cluster-scoped objects.
func objectID(o *unstructured.Unstructured) string {
	if ns := o.GetNamespace(); ns != "" {
		return o.GetKind() + " " + ns + "/" + o.GetName()
	}
	return o.GetKind() + " " + o.GetName()
}
