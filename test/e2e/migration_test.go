//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
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

// migrationDoubleCPU doubles every sample of the cumulative CPU counters (cAdvisor's and the
// kubelet's node counter) in OpenMetrics text, so their rates double. The fixture's counters
// start at integers and grow by dyadic rates, so the doubled samples are exact.
func migrationDoubleCPU(om []byte) ([]byte, error) {
	var out bytes.Buffer
	for _, line := range strings.SplitAfter(string(om), "\n") {
		if !strings.HasPrefix(line, "container_cpu_usage_seconds_total{") && !strings.HasPrefix(line, "node_cpu_usage_seconds_total{") {
			out.WriteString(line)
			continue
		}
		f := strings.Fields(line) // SERIES VALUE TIMESTAMP: label values hold no spaces in the fixture
		if len(f) != 3 {
			return nil, fmt.Errorf("unexpected sample line %q", line)
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return nil, fmt.Errorf("sample line %q: %w", line, err)
		}
		fmt.Fprintf(&out, "%s %s %s\n", f[0], strconv.FormatFloat(2*v, 'g', -1, 64), f[2])
	}
	return out.Bytes(), nil
}

// migrationServingCert writes a CA and a serving certificate for dnsName signed by it, and
// returns the CA (PEM) and the adapter flags that serve the certificate.
func migrationServingCert(t *testing.T, dir, dnsName string) ([]byte, []string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	newKey := func() *ecdsa.PrivateKey {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
	notBefore := time.Now().Add(-time.Hour)
	caKey := newKey()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "metrics-server-test-ca"},
		NotBefore: notBefore, NotAfter: notBefore.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	serverKey := newKey()
	server := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: dnsName}, DNSNames: []string{dnsName},
		NotBefore: notBefore, NotAfter: notBefore.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	serverDER, err := x509.CreateCertificate(rand.Reader, server, ca, &serverKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(serverKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: serverDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), []string{"--tls-cert-file=" + certFile, "--tls-private-key-file=" + keyFile}
}

// migrationMetricsServerObjects are metrics-server's objects (kubernetes-sigs/metrics-server,
// manifests/base: rbac.yaml, service.yaml, apiservice.yaml, deployment.yaml) as its Helm chart
// with a verified certificate installs them, but for the test bed: the Service is an
// ExternalName for localhost and the APIService names the stand-in's port. No kubelet runs, so
// the Deployment stays an object; the stand-in adapter process is what answers.
func migrationMetricsServerObjects(port int, caBundle string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata: {name: metrics-server, namespace: kube-system, labels: {k8s-app: metrics-server}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:aggregated-metrics-reader
  labels:
    k8s-app: metrics-server
    rbac.authorization.k8s.io/aggregate-to-view: "true"
    rbac.authorization.k8s.io/aggregate-to-edit: "true"
    rbac.authorization.k8s.io/aggregate-to-admin: "true"
rules:
- {apiGroups: [metrics.k8s.io], resources: [pods, nodes], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:metrics-server", labels: {k8s-app: metrics-server}}
rules:
- {apiGroups: [""], resources: [nodes/metrics], verbs: [get]}
- {apiGroups: [""], resources: [pods, nodes], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: metrics-server-auth-reader, namespace: kube-system, labels: {k8s-app: metrics-server}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: extension-apiserver-authentication-reader}
subjects: [{kind: ServiceAccount, name: metrics-server, namespace: kube-system}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "metrics-server:system:auth-delegator", labels: {k8s-app: metrics-server}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:auth-delegator"}
subjects: [{kind: ServiceAccount, name: metrics-server, namespace: kube-system}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:metrics-server", labels: {k8s-app: metrics-server}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:metrics-server"}
subjects: [{kind: ServiceAccount, name: metrics-server, namespace: kube-system}]
---
apiVersion: v1
kind: Service
metadata: {name: metrics-server, namespace: kube-system, labels: {k8s-app: metrics-server}}
spec:
  type: ExternalName
  externalName: localhost
  ports: [{name: https, port: %[1]d}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: metrics-server, namespace: kube-system, labels: {k8s-app: metrics-server}}
spec:
  selector: {matchLabels: {k8s-app: metrics-server}}
  template:
    metadata: {labels: {k8s-app: metrics-server}}
    spec:
      serviceAccountName: metrics-server
      containers:
      - name: metrics-server
        image: registry.k8s.io/metrics-server/metrics-server:v0.7.2
        args: [--cert-dir=/tmp, --secure-port=10250, --kubelet-preferred-address-types=InternalIP]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io, labels: {k8s-app: metrics-server}}
spec:
  service: {name: metrics-server, namespace: kube-system, port: %[1]d}
  group: metrics.k8s.io
  version: v1beta1
  caBundle: %[2]s
  groupPriorityMinimum: 100
  versionPriority: 100
`, port, caBundle)
}

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

// Who answered a read of pod metrics.
const (
	migrationByPromadapter   = "promadapter"
	migrationByMetricsServer = "metrics-server (stand-in)"
)

// migrationProbe reads one container's CPU through kube-apiserver and tells who answered.
type migrationProbe struct {
	pod, container string
	cores          float64 // the fixture's rate: promadapter's answer; the stand-in answers twice it
}

func migrationProbeFor(t *testing.T, spec fixture.Spec) migrationProbe {
	t.Helper()
	for _, p := range spec.PodList() {
		if p.Namespace == "ns-1" && p.Complete() {
			return migrationProbe{pod: p.Name, container: p.Containers[0].Name, cores: p.Containers[0].CPUCores}
		}
	}
	t.Fatal("the fixture has no complete pod in ns-1")
	return migrationProbe{}
}

const migrationProbePath = "/apis/metrics.k8s.io/v1beta1/namespaces/ns-1/pods"

func (p migrationProbe) read(ctx context.Context, cluster *testbed.Cluster) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	body, err := cluster.Client.Discovery().RESTClient().Get().AbsPath(migrationProbePath).DoRaw(ctx)
	if err != nil {
		return "", err
	}
	var list metricsv1beta1.PodMetricsList
	if err := json.Unmarshal(body, &list); err != nil {
		return "", fmt.Errorf("decoding %s: %w", migrationProbePath, err)
	}
	for _, pm := range list.Items {
		if pm.Name != p.pod {
			continue
		}
		for _, c := range pm.Containers {
			if c.Name != p.container {
				continue
			}
			q := c.Usage["cpu"]
			switch {
			case near(q, p.cores):
				return migrationByPromadapter, nil
			case near(q, 2*p.cores):
				return migrationByMetricsServer, nil
			}
			return "", fmt.Errorf("pod %s container %s has cpu %s: neither the fixture's %v nor the stand-in's %v", p.pod, p.container, q.String(), p.cores, 2*p.cores)
		}
	}
	return "", fmt.Errorf("%s lists no container %s of pod %s", migrationProbePath, p.container, p.pod)
}

// migrationPoller reads pod metrics every 25 ms until stopped and records who answered.
type migrationPoller struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	n        int
	failures []string
	runs     []string // "who ×count" in order
	last     string
	count    int
}

func startMigrationPoller(ctx context.Context, cluster *testbed.Cluster, probe migrationProbe) *migrationPoller {
	ctx, cancel := context.WithCancel(ctx)
	p := &migrationPoller{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for {
			who, err := probe.read(ctx, cluster)
			if ctx.Err() != nil {
				return
			}
			p.record(who, err)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

func (p *migrationPoller) record(who string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if err != nil {
		p.failures = append(p.failures, fmt.Sprintf("%s: %v", time.Now().Format("15:04:05.000"), err))
		who = "error"
	}
	if who != p.last && p.count > 0 {
		p.runs = append(p.runs, fmt.Sprintf("%s ×%d", p.last, p.count))
		p.count = 0
	}
	p.last = who
	p.count++
}

func (p *migrationPoller) stop() {
	p.cancel()
	<-p.done
}

func (p *migrationPoller) result() (int, []string, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	runs := p.runs
	if p.count > 0 {
		runs = append(runs, fmt.Sprintf("%s ×%d", p.last, p.count))
	}
	return p.n, append([]string(nil), p.failures...), strings.Join(runs, ", ")
}

func (p *migrationPoller) summary() string {
	_, failures, runs := p.result()
	if len(failures) > 0 {
		return runs + "; last failure: " + failures[len(failures)-1]
	}
	return runs
}

// migrationCheckNodes checks a NodeMetricsList against the fixture, whose CPU is scaled by factor.
func migrationCheckNodes(t *testing.T, spec fixture.Spec, list metricsv1beta1.NodeMetricsList, factor float64) {
	t.Helper()
	if len(list.Items) != len(spec.NodeList()) {
		t.Fatalf("%d nodes listed, want the fixture's %d", len(list.Items), len(spec.NodeList()))
	}
	for _, nm := range list.Items {
		cpu, okC := spec.NodeCPUCores(nm.Name)
		mem, okM := spec.NodeMemoryBytes(nm.Name)
		if !okC || !okM || !near(nm.Usage["cpu"], factor*cpu) || !near(nm.Usage["memory"], mem) {
			t.Errorf("node %s: cpu %s memory %s; want %v cores and %v bytes", nm.Name, nm.Usage.Cpu(), nm.Usage.Memory(), factor*cpu, mem)
		}
	}
}

// migrationSideBySide prints promadapter's kubectl top beside what metrics-server's formula
// gives from the same raw samples in Prometheus, and checks they agree: a container's or node's
// CPU is the increase of its cumulative counter between its last two samples divided by the time
// between them, its memory the last working-set sample. Nodes come from the kubelet's node
// counters (/metrics/resource); the fixture's last node has none (node-exporter only), so the
// formula has nothing to compute for it.
func migrationSideBySide(t *testing.T, k *migrationKubectl, e *env) {
	t.Helper()
	formula := func(cpuSel, memSel string) (string, string) {
		cpu := e.rawSamples(t, cpuSel+"[1m]")
		mem := e.rawSamples(t, memSel+"[1m]")
		if len(cpu) < 2 || len(mem) < 1 {
			t.Fatalf("too few raw samples of %s (%d) or %s (%d)", cpuSel, len(cpu), memSel, len(mem))
		}
		a, b := cpu[len(cpu)-2], cpu[len(cpu)-1]
		return topCPU((b[1] - a[1]) / (b[0] - a[0])), topMem(mem[len(mem)-1][1])
	}

	pods := k.run("top", "pods", "-n", "ns-1", "--containers")
	k.log("kubectl top pods -n ns-1 --containers", pods)
	var table strings.Builder
	fmt.Fprintf(&table, "%-10s %-6s %-18s %-18s\n", "POD", "NAME", "promadapter", "formula on raw samples")
	shown := map[string][2]string{}
	for _, line := range strings.Split(strings.TrimSpace(pods), "\n")[1:] {
		if f := strings.Fields(line); len(f) == 4 {
			shown[f[0]+"/"+f[1]] = [2]string{f[2], f[3]}
		}
	}
	for _, p := range e.spec.PodList() {
		if p.Namespace != "ns-1" {
			continue
		}
		for _, c := range p.Containers {
			if !c.HasSeries {
				continue
			}
			sel := fmt.Sprintf(`{namespace="ns-1",pod=%q,container=%q}`, p.Name, c.Name)
			cpu, mem := formula("container_cpu_usage_seconds_total"+sel, "container_memory_working_set_bytes"+sel)
			got := shown[p.Name+"/"+c.Name]
			fmt.Fprintf(&table, "%-10s %-6s %-18s %-18s\n", p.Name, c.Name, got[0]+" "+got[1], cpu+" "+mem)
			if got != [2]string{cpu, mem} {
				t.Errorf("%s/%s: kubectl top shows %v; metrics-server's formula gives %s %s", p.Name, c.Name, got, cpu, mem)
			}
		}
	}
	k.log("kubectl top pods beside metrics-server's formula on Prometheus' raw samples", table.String())

	nodes := k.run("top", "nodes")
	k.log("kubectl top nodes", nodes)
	table.Reset()
	fmt.Fprintf(&table, "%-8s %-18s %-18s\n", "NAME", "promadapter", "formula on raw samples")
	for _, line := range strings.Split(strings.TrimSpace(nodes), "\n")[1:] {
		f := strings.Fields(line) // NAME CPU CPU% MEMORY MEMORY%
		if len(f) != 5 {
			continue
		}
		sel := fmt.Sprintf(`{node=%q,metrics_path="/metrics/resource"}`, f[0])
		if migrationSeriesCount(t, e.prom.URL, "node_cpu_usage_seconds_total"+sel) == 0 {
			fmt.Fprintf(&table, "%-8s %-18s %-18s\n", f[0], f[1]+" "+f[3], "(no kubelet series)")
			continue
		}
		cpu, mem := formula("node_cpu_usage_seconds_total"+sel, "node_memory_working_set_bytes"+sel)
		fmt.Fprintf(&table, "%-8s %-18s %-18s\n", f[0], f[1]+" "+f[3], cpu+" "+mem)
		if f[1] != cpu || f[3] != mem {
			t.Errorf("node %s: kubectl top shows %s %s; metrics-server's formula gives %s %s", f[0], f[1], f[3], cpu, mem)
		}
	}
	k.log("kubectl top nodes beside metrics-server's formula on Prometheus' raw samples", table.String())
}

// migrationSeriesCount counts the series a query returns from Prometheus at promURL (0 or more).
func migrationSeriesCount(t *testing.T, promURL, query string) int {
	t.Helper()
	resp, err := http.Get(promURL + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Data struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("query %s: %v %s", query, err, body)
	}
	return len(r.Data.Result)
}
