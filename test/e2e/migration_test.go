//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

// The commands of docs/migration.md, "From metrics-server", exactly as printed there: the test
// fails when the doc does not hold one of them, and runs each with bash from a directory laid
// out like the repository root, with kubectl on PATH and KUBECONFIG set to the test cluster.
//
// Two things differ on the test bed, and only these: the adapter listens on a free port rather
// than the port-forward's 18443 (migrationDirectCmd), and deploy/manifests/apiservice-metrics.yaml
// names that port instead of the Service's 443, because the APIService points at an ExternalName
// Service for localhost (test/testbed: Endpoints may not hold loopback addresses).
const (
	// Step 1: keep metrics-server's APIService spec, as the rollback patch.
	migrationSaveCmd = `printf '[{"op":"replace","path":"/spec","value":%s}]\n' "$(kubectl get apiservice v1beta1.metrics.k8s.io -o jsonpath='{.spec}')" > metrics-server-rollback.json`
	// Step 3: ask promadapter directly, through a port-forward, while kubectl top still goes to metrics-server.
	migrationDirectCmd = `kubectl --server=https://127.0.0.1:18443 --insecure-skip-tls-verify=true get --raw /apis/metrics.k8s.io/v1beta1/nodes`
	// What not to do: apply on top of an APIService that carries a caBundle.
	migrationApplyCmd = `kubectl apply -f deploy/manifests/apiservice-metrics.yaml`
	// Step 4: the switch.
	migrationSwitchCmd = `kubectl replace -f deploy/manifests/apiservice-metrics.yaml`
	migrationCheckCmd  = `kubectl get apiservice v1beta1.metrics.k8s.io`
	// The rollback, one command.
	migrationRollbackCmd = `kubectl patch apiservice v1beta1.metrics.k8s.io --type=json --patch-file=metrics-server-rollback.json`
	// Step 6: remove metrics-server, leaving the APIService (now promadapter's) alone.
	migrationRemoveCmd        = `kubectl -n kube-system delete deployment/metrics-server service/metrics-server serviceaccount/metrics-server rolebinding/metrics-server-auth-reader`
	migrationRemoveClusterCmd = `kubectl delete clusterrolebinding/metrics-server:system:auth-delegator clusterrolebinding/system:metrics-server clusterrole/system:metrics-server clusterrole/system:aggregated-metrics-reader`
)

// migrationDirectPort is the local port of the doc's port-forward.
const migrationDirectPort = "18443"

// TestMigrationFromMetricsServer proves the metrics-server → promadapter switch of
// docs/migration.md and its one-command rollback, with the doc's commands verbatim.
//
// Two adapter processes run. "metrics-server" is a stand-in (no kubelet runs here, so the real one
// cannot): an adapter behind metrics-server's own objects in kube-system (Service, APIService with
// a caBundle, as metrics-server's Helm chart or cert-manager set it, created without kubectl's
// last-applied annotation, as Helm creates it), reading a Prometheus whose CPU counters grow twice
// as fast. The other is promadapter on the unchanged fixture. So every answer says who gave it:
// CPU equal to the fixture's is promadapter, twice the fixture's is the stand-in. Throughout, a
// poller reads pod metrics through kube-apiserver every 25 ms; no request may fail.
func TestMigrationFromMetricsServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bins, adapterBin := testBinaries(t)
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
	var om bytes.Buffer
	now := time.Now()
	if err := spec.WriteOpenMetrics(&om, now.Add(-30*time.Minute), now.Add(3*time.Hour), 15*time.Second); err != nil {
		t.Fatal(err)
	}
	doubled, err := migrationDoubleCPU(om.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	promPA, err := testbed.StartPrometheus(ctx, testbed.PrometheusOptions{Bins: bins, Major: "3", Dir: filepath.Join(dir, "prometheus-promadapter"), OpenMetrics: om.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	promPA.Cleanup(t)
	promMS, err := testbed.StartPrometheus(ctx, testbed.PrometheusOptions{Bins: bins, Major: "2", Dir: filepath.Join(dir, "prometheus-metrics-server"), OpenMetrics: doubled})
	if err != nil {
		t.Fatal(err)
	}
	promMS.Cleanup(t)

	// promadapter, on its embedded default config. StartAdapter registers all its APIServices.
	pa := migrationStartAdapter(ctx, t, cluster, adapterBin, promPA.URL, filepath.Join(dir, "promadapter"))
	// The stand-in serves a certificate for metrics-server.kube-system.svc, signed by a CA the
	// APIService will carry. StartAdapter re-points every APIService at it: custom and external
	// metrics go back to promadapter below, metrics.k8s.io goes to metrics-server's objects.
	caPEM, tlsArgs := migrationServingCert(t, filepath.Join(dir, "metrics-server-tls"), "metrics-server.kube-system.svc")
	ms := migrationStartAdapter(ctx, t, cluster, adapterBin, promMS.URL, filepath.Join(dir, "metrics-server"), tlsArgs...)
	if err := cluster.RegisterAdapter(ctx, pa.Port, []testbed.APIServiceGroup{testbed.CustomMetricsV1beta1, testbed.CustomMetricsV1beta2, testbed.ExternalMetricsV1beta1}); err != nil {
		t.Fatal(err)
	}
	k := &migrationKubectl{t: t, cluster: cluster, bin: bins.Kubectl, dir: filepath.Join(dir, "work")}
	k.run("delete", "apiservice", "v1beta1.metrics.k8s.io")
	k.create(migrationMetricsServerObjects(ms.Port, base64.StdEncoding.EncodeToString(caPEM)))
	if err := cluster.WaitAPIServicesAvailable(ctx, "v1beta1.metrics.k8s.io"); err != nil {
		t.Fatal(err)
	}

	// The repository's manifest, with the test bed's port (see the comment on the commands).
	manifest, err := os.ReadFile(filepath.Join("..", "..", "deploy", "manifests", "apiservice-metrics.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(manifest, []byte("port: 443\n")) {
		t.Fatalf("deploy/manifests/apiservice-metrics.yaml has no \"port: 443\" line to point at the test bed's adapter port:\n%s", manifest)
	}
	k.writeFile("deploy/manifests/apiservice-metrics.yaml", bytes.Replace(manifest, []byte("port: 443\n"), []byte("port: "+strconv.Itoa(pa.Port)+"\n"), 1))
	migrationDocHasCommands(t)

	probe := migrationProbeFor(t, spec)
	poller := startMigrationPoller(ctx, cluster, probe)
	defer poller.stop()
	waitAnswer := func(want string) time.Duration {
		t.Helper()
		start := time.Now()
		deadline := start.Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if got, err := probe.read(ctx, cluster); err == nil && got == want {
				return time.Since(start)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("kube-apiserver's metrics.k8s.io was not answered by %s within 30s; last answers: %s", want, poller.summary())
		return 0
	}
	waitAnswer(migrationByMetricsServer)
	k.log("kubectl top pods -n ns-1 (metrics-server stand-in: twice the fixture's CPU)", k.run("top", "pods", "-n", "ns-1"))

	// Step 1: keep metrics-server's APIService for the rollback.
	k.sh(migrationSaveCmd)
	saved := k.readFile("metrics-server-rollback.json")
	var patch []struct {
		Op, Path string
		Value    map[string]any
	}
	if err := json.Unmarshal(saved, &patch); err != nil || len(patch) != 1 {
		t.Fatalf("%s wrote %q, not a one-operation JSON patch: %v", migrationSaveCmd, saved, err)
	}
	msSpec := migrationAPIServiceSpec(t, k)
	if !reflect.DeepEqual(patch[0].Value, msSpec) {
		t.Fatalf("the saved spec %v differs from metrics-server's APIService spec %v", patch[0].Value, msSpec)
	}
	k.log("metrics-server-rollback.json (caBundle shortened)", migrationShortenCABundle(string(saved)))

	// Step 3: promadapter answers directly while kubectl top still goes to metrics-server.
	direct := strings.Replace(migrationDirectCmd, migrationDirectPort, strconv.Itoa(pa.Port), 1)
	out := k.sh(direct)
	var nodes metricsv1beta1.NodeMetricsList
	if err := json.Unmarshal([]byte(out), &nodes); err != nil {
		t.Fatalf("%s: %v\n%s", direct, err, out)
	}
	migrationCheckNodes(t, spec, nodes, 1)
	k.log("direct answer (promadapter)", out)
	if got, err := probe.read(ctx, cluster); err != nil || got != migrationByMetricsServer {
		t.Fatalf("before the switch, kubectl top must still reach metrics-server; got %q, %v", got, err)
	}

	// What goes wrong with kubectl apply: the caBundle metrics-server's APIService carries (and
	// kubectl apply has no record of) stays, and cannot go with insecureSkipTLSVerify.
	refused, err := k.trySh(migrationApplyCmd)
	if err == nil || !strings.Contains(refused, "may not be true if caBundle is present") {
		t.Fatalf("%s on an APIService holding a caBundle: want the API's refusal (\"may not be true if caBundle is present\"), got %v:\n%s", migrationApplyCmd, err, refused)
	}
	k.log(migrationApplyCmd+" (refused)", refused)
	if got, err := probe.read(ctx, cluster); err != nil || got != migrationByMetricsServer {
		t.Fatalf("after the refused apply, kubectl top must still reach metrics-server; got %q, %v", got, err)
	}

	// Step 4: the switch.
	start := time.Now()
	k.log(migrationSwitchCmd, k.sh(migrationSwitchCmd))
	switched := waitAnswer(migrationByPromadapter)
	t.Logf("promadapter answered %v after %q returned (%v after it started)", switched, migrationSwitchCmd, time.Since(start).Round(time.Millisecond))
	migrationWaitAvailable(ctx, t, cluster)
	k.log(migrationCheckCmd, k.sh(migrationCheckCmd))
	got := migrationAPIServiceSpec(t, k)
	if _, ok := got["caBundle"]; ok || got["insecureSkipTLSVerify"] != true || !reflect.DeepEqual(got["service"], map[string]any{"name": "promadapter", "namespace": "promadapter", "port": float64(pa.Port)}) {
		t.Fatalf("after %s the spec is %v; want promadapter's manifest: service promadapter/promadapter, insecureSkipTLSVerify, no caBundle", migrationSwitchCmd, got)
	}
	migrationSideBySide(t, k, &env{t: t, cluster: cluster, prom: promPA, spec: spec})

	// The rollback, and back again.
	start = time.Now()
	k.log(migrationRollbackCmd, k.sh(migrationRollbackCmd))
	back := waitAnswer(migrationByMetricsServer)
	t.Logf("metrics-server answered %v after %q returned (%v after it started)", back, migrationRollbackCmd, time.Since(start).Round(time.Millisecond))
	migrationWaitAvailable(ctx, t, cluster)
	k.log(migrationCheckCmd, k.sh(migrationCheckCmd))
	if got := migrationAPIServiceSpec(t, k); !reflect.DeepEqual(got, msSpec) {
		t.Fatalf("after the rollback the spec is %v; want metrics-server's, as saved: %v", got, msSpec)
	}
	k.sh(migrationSwitchCmd)
	waitAnswer(migrationByPromadapter)
	migrationWaitAvailable(ctx, t, cluster)

	// Step 6: metrics-server goes; its APIService, now promadapter's, stays.
	k.log(migrationRemoveCmd, k.sh(migrationRemoveCmd))
	k.log(migrationRemoveClusterCmd, k.sh(migrationRemoveClusterCmd))
	ms.Stop()
	time.Sleep(2 * time.Second) // let the poller see a few answers with the stand-in gone
	migrationWaitAvailable(ctx, t, cluster)
	if got, err := probe.read(ctx, cluster); err != nil || got != migrationByPromadapter {
		t.Fatalf("after metrics-server's removal kubectl top must reach promadapter; got %q, %v", got, err)
	}
	k.log("kubectl get apiservice v1beta1.metrics.k8s.io (metrics-server removed)", k.run("get", "apiservice", "v1beta1.metrics.k8s.io"))

	poller.stop()
	n, failures, answers := poller.result()
	t.Logf("poller: %d reads of /apis/metrics.k8s.io/v1beta1/namespaces/ns-1/pods through kube-apiserver during the migration, %d failed; in order: %s",
		n, len(failures), answers)
	if len(failures) > 0 {
		t.Errorf("kubectl top broke during the migration: %d of %d reads failed; first: %s", len(failures), n, failures[0])
	}
}

// migrationStartAdapter starts an adapter on its embedded default config and stops it with the test.
func migrationStartAdapter(ctx context.Context, t *testing.T, cluster *testbed.Cluster, bin, promURL, dir string, extraArgs ...string) *testbed.Adapter {
	t.Helper()
	a, err := cluster.StartAdapter(ctx, testbed.AdapterOptions{Bin: bin, PrometheusURL: promURL, Dir: dir, ExtraArgs: extraArgs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if log, err := os.ReadFile(a.LogPath); err == nil {
				t.Logf("adapter log (%s), last lines:\n%s", a.LogPath, tail(string(log), 30))
			}
		}
		a.Stop()
	})
	return a
}

// migrationDocHasCommands fails unless docs/migration.md prints every command the test runs.
func migrationDocHasCommands(t *testing.T) {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "migration.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{migrationSaveCmd, migrationDirectCmd, migrationApplyCmd, migrationSwitchCmd, migrationCheckCmd, migrationRollbackCmd, migrationRemoveCmd, migrationRemoveClusterCmd} {
		if !bytes.Contains(doc, []byte(cmd)) {
			t.Errorf("docs/migration.md does not print the command the test runs:\n%s", cmd)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}
