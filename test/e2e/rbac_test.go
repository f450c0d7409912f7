//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

// rbacManager is the field manager that applies the rendering and each RBAC variant, so that an
// apply without a rule removes it.
const rbacManager = "promadapter-e2e-rbac"

// TestRBACIsLeastPrivilege shows that the install grants no spare right: it applies the kustomize
// rendering (the chart renders the same RBAC: TestRenderDefaultsAgree), then removes each right in
// turn, one (resource, verb) of each rendered rule or one binding at a time, starts the real adapter
// with the rendered flags and a token of the rendered ServiceAccount, and expects something to
// break: /readyz, a kubectl top request, or a custom or external metric request. With every right in
// place everything answers.
//
// kube-apiserver runs with WatchList off, as 1.33 and older do: informers list, then watch. (From
// 1.34 client-go streams the first list over the watch, so there a missing list breaks nothing until
// the stream is unavailable; the install must work on both.)
//
// Reproduce: make build && go test -count=1 -tags e2e ./test/e2e/ -run TestRBACIsLeastPrivilege -v
func TestRBACIsLeastPrivilege(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bins, err := testbed.FindBins()
	if err != nil {
		t.Fatal(err)
	}
	adapterBin, err := testbed.AdapterBin()
	if err != nil {
		t.Fatal(err)
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cluster, err := testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: bins, Dir: filepath.Join(dir, "cluster"),
		ExtraAPIServerArgs: []string{"--feature-gates=WatchList=false"}})
	if err != nil {
		t.Fatal(err)
	}
	cluster.Cleanup(t)
	if err := cluster.StartControllerManager(ctx, []string{"clusterrole-aggregation"}, 0); err != nil {
		t.Fatal(err)
	}
	s := &deploySuite{cluster: cluster, bins: bins, repo: repo, dir: dir}

	rendered, _ := s.mustKubectl(t, nil, "kustomize", s.manifests())
	objects := decodeObjects(t, "kubectl kustomize", []byte(rendered))
	s.mustKubectl(t, []byte(rendered), "apply", "--server-side", "--field-manager="+rbacManager, "-f", "-")
	// The aggregator cannot reach a pod here: the adapter runs on loopback behind an ExternalName
	// Service (testbed.RegisterAdapter), which replaces the rendered one.
	s.mustKubectl(t, nil, "delete", "service", "promadapter", "--namespace=promadapter")
	// The viewer reads metrics cluster-wide through the built-in view role, which gets
	// metrics.k8s.io from the rendered aggregated role.
	s.mustKubectl(t, nil, "create", "clusterrolebinding", "promadapter-e2e-viewer", "--clusterrole=view", "--user="+viewerIdentity)

	spec := fixture.Spec{}
	if err := spec.ApplyObjects(ctx, cluster.Client); err != nil {
		t.Fatal(err)
	}
	s.mustKubectl(t, []byte(objectsOfEveryWatchedKind), "apply", "-f", "-")
	var om bytes.Buffer
	now := time.Now()
	if err := spec.WriteOpenMetrics(&om, now.Add(-30*time.Minute), now.Add(time.Hour), 15*time.Second); err != nil {
		t.Fatal(err)
	}
	data := append(bytes.TrimSuffix(om.Bytes(), []byte("# EOF\n")), everyKindSeries(now.Add(-30*time.Minute), now.Add(time.Hour))...)
	prom, err := testbed.StartPrometheus(ctx, testbed.PrometheusOptions{Bins: bins, Major: "3", Dir: filepath.Join(dir, "prometheus"), OpenMetrics: data})
	if err != nil {
		t.Fatal(err)
	}
	prom.Cleanup(t)

	// The rendered flags, but for what cannot apply on loopback: the Prometheus Service's DNS name,
	// the pod's port and certificate directory, and the in-cluster config (a token file instead).
	kubeconfig := s.serviceAccountKubeconfig(t)
	var apiServices []string
	for _, g := range testbed.AllAdapterGroups {
		apiServices = append(apiServices, g.Name())
	}
	// start runs the adapter as rendered. When it becomes ready, the APIServices are pointed at its
	// port (a new one each time, so that the aggregator checks it at once rather than serving 503
	// until its next periodic check of the previous process's port).
	start := func(t *testing.T) (ready bool, why string) {
		t.Helper()
		port, err := testbed.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		var args []string
		for _, arg := range containerArgs(t, objects) {
			name, _, _ := strings.Cut(arg, "=")
			switch name {
			case "--prometheus-url":
				arg = name + "=" + prom.URL
			case "--secure-port":
				arg = name + "=" + strconv.Itoa(port)
			case "--cert-dir":
				arg = name + "=" + filepath.Join(dir, "serving-cert")
			}
			args = append(args, arg)
		}
		args = append(args, "--bind-address=127.0.0.1",
			"--lister-kubeconfig="+kubeconfig, "--authentication-kubeconfig="+kubeconfig, "--authorization-kubeconfig="+kubeconfig)
		log := filepath.Join(dir, fmt.Sprintf("promadapter-%d.log", port))
		p, err := testbed.StartProcess(ctx, "promadapter", log, adapterBin, args...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Stop)
		if ready, why := waitReadyOrRefused(ctx, p, port); !ready {
			return false, why
		}
		if err := cluster.RegisterAdapter(ctx, port, testbed.AllAdapterGroups); err != nil {
			t.Fatal(err)
		}
		if err := cluster.WaitAPIServicesAvailable(ctx, apiServices...); err != nil {
			t.Fatal(err)
		}
		return true, ""
	}

	if !t.Run("with every rendered right, every request answers", func(t *testing.T) {
		if ready, why := start(t); !ready {
			t.Fatalf("the adapter did not become ready: %s", why)
		}
		if broken := rbacProbes(ctx, t, cluster.RESTConfig, spec); broken != "" {
			t.Fatal(broken)
		}
	}) {
		t.FailNow()
	}

	for _, g := range renderedGrants(t, objects) {
		t.Run("without "+g.String(), func(t *testing.T) {
			if g.rule < 0 {
				args := []string{"delete", strings.ToLower(g.object.GetKind()), g.object.GetName()}
				if ns := g.object.GetNamespace(); ns != "" {
					args = append(args, "--namespace="+ns)
				}
				s.mustKubectl(t, nil, args...)
			} else {
				s.applyRBAC(t, g.without())
			}
			s.waitAccess(t, g.check, false)
			t.Cleanup(func() {
				s.applyRBAC(t, g.object)
				s.waitAccess(t, g.check, true)
			})
			broken := ""
			if ready, why := start(t); !ready {
				broken = "/readyz: " + why
			} else {
				broken = rbacProbes(ctx, t, cluster.RESTConfig, spec)
			}
			if broken == "" {
				t.Fatalf("every request still answers: %s is a spare right, remove it from the rendering", g)
			}
			t.Logf("breaks: %s", broken)
			if !strings.Contains(broken, "forbidden") && !strings.Contains(broken, "refused to let the adapter") &&
				!strings.Contains(broken, "promadapter-cache-access failed") && !strings.Contains(broken, "promadapter-authentication failed") {
				t.Errorf("the failure does not name the missing right: %s", broken)
			}
		})
	}
}

// waitReadyOrRefused waits up to 10 s for the adapter's /readyz (it takes about 1 s); it gives up at
// once when /readyz reports that the kube-apiserver refused the adapter's caches, which no wait fixes.
func waitReadyOrRefused(ctx context.Context, p *testbed.Process, port int) (bool, string) {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	url := fmt.Sprintf("https://127.0.0.1:%d/readyz?verbose", port)
	last := "no answer"
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if exited, err := p.Exited(); exited {
			return false, fmt.Sprintf("the adapter exited (%v); its log ends:\n%s", err, p.LogTail(3))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			last = err.Error()
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return true, ""
		}
		last = failedChecks(string(body))
		// /readyz withholds the reasons (they are in the adapter's log), but this check fails only
		// for refusals.
		if strings.Contains(last, "promadapter-cache-access failed") {
			break
		}
	}
	return false, last
}

// failedChecks keeps the failing lines of a verbose /readyz answer.
func failedChecks(body string) string {
	var failed []string
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "[-]") {
			failed = append(failed, line)
		}
	}
	if len(failed) == 0 {
		return body
	}
	return strings.Join(failed, "; ")
}

// rbacProbes asks everything the install must answer, three times over 1.5 s (a refused watch shows
// only after the first list), and returns the first failure, or "" when all answered.
func rbacProbes(ctx context.Context, t *testing.T, admin *rest.Config, spec fixture.Spec) string {
	t.Helper()
	asViewer := rest.CopyConfig(admin)
	asViewer.Impersonate = rest.ImpersonationConfig{UserName: viewerIdentity, Groups: []string{"system:authenticated"}}
	pod, node := spec.PodList()[0], spec.NodeList()[0]
	type probe struct {
		as         *rest.Config
		path, want string
	}
	probes := []probe{
		{admin, "/apis/metrics.k8s.io/v1beta1/namespaces/" + pod.Namespace + "/pods", `"` + pod.Name + `"`},
		{admin, "/apis/metrics.k8s.io/v1beta1/nodes", `"` + node.Name + `"`},
		{asViewer, "/apis/metrics.k8s.io/v1beta1/namespaces/" + pod.Namespace + "/pods", `"` + pod.Name + `"`},
		{asViewer, "/apis/metrics.k8s.io/v1beta1/namespaces/" + pod.Namespace + "/pods/" + pod.Name, `"` + pod.Name + `"`},
		{asViewer, "/apis/metrics.k8s.io/v1beta1/nodes", `"` + node.Name + `"`},
		{asViewer, "/apis/metrics.k8s.io/v1beta1/nodes/" + node.Name, `"` + node.Name + `"`},
		{admin, "/apis/custom.metrics.k8s.io/v1beta2/namespaces/*/metrics/lp_requests_per_second", `"lp"`},
		{admin, "/apis/external.metrics.k8s.io/v1beta1/namespaces/" + pod.Namespace + "/kube_deployment_spec_replicas", `"kube_deployment_spec_replicas"`},
	}
	for _, k := range everyWatchedKind {
		probes = append(probes, probe{admin, "/apis/custom.metrics.k8s.io/v1beta2/namespaces/lp/" + k.resource + "/*/lp_requests_per_second", `"lp-` + k.label + `"`})
	}
	clients := map[*rest.Config]rest.Interface{}
	for _, c := range []*rest.Config{admin, asViewer} {
		cs, err := kubernetes.NewForConfig(c)
		if err != nil {
			t.Fatal(err)
		}
		clients[c] = cs.Discovery().RESTClient()
	}
	for round, pause := range []time.Duration{0, 500 * time.Millisecond, time.Second} {
		time.Sleep(pause)
		for _, p := range probes {
			who := "admin"
			if p.as == asViewer {
				who = viewerIdentity
			}
			var body []byte
			var err error
			// kube-apiserver's aggregator may answer its own 503 "service unavailable" for a moment
			// after an APIService turned Available (its proxy learns of the service asynchronously);
			// that is no missing right, so it is asked again for up to 5 s.
			for attempt := 0; ; attempt++ {
				ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				body, err = clients[p.as].Get().AbsPath(p.path).DoRaw(ctx)
				cancel()
				if err == nil || !apierrors.IsServiceUnavailable(err) || !bytes.Contains(body, []byte("service unavailable")) || attempt == 10 {
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
			if err != nil {
				// The error alone says only "the server is currently unable to handle the request".
				return fmt.Sprintf("GET %s as %s (round %d): %v: %s", p.path, who, round+1, err, bytes.TrimSpace(body))
			}
			if !bytes.Contains(body, []byte(p.want)) {
				return fmt.Sprintf("GET %s as %s (round %d) answered without %s: %s", p.path, who, round+1, p.want, body)
			}
		}
	}
	return ""
}
