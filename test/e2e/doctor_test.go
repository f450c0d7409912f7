//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"

	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

// TestDoctor runs the real `promadapter doctor` against deploy/manifests applied to a real
// kube-apiserver, with the real adapter serving a certificate the APIServices verify and acting
// with its ServiceAccount's token: first healthy (every check passes, exit 0), then broken in one
// way at a time, each repaired before the next. For each break doctor must fail the check that
// names it, with the evidence and the fix, and exit non-zero; where the fix is a command, the test
// runs it verbatim and checks that it repairs the break.
//
// Reproduce: make build && PROMADAPTER_BIN=$PWD/bin/promadapter go test -count=1 -tags e2e ./test/e2e/ -run TestDoctor -v
func TestDoctor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	bins, adapterBin := testBinaries(t)
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
	s := &deploySuite{cluster: cluster, bins: bins, repo: repo, dir: dir}
	s.mustKubectl(t, nil, "apply", "-k", s.manifests())
	// The aggregator cannot reach a pod here: an ExternalName Service for localhost replaces it.
	s.mustKubectl(t, nil, "delete", "service", "promadapter", "--namespace=promadapter")

	spec := fixture.Spec{}
	if err := spec.ApplyObjects(ctx, cluster.Client); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var om bytes.Buffer
	if err := spec.WriteOpenMetrics(&om, now.Add(-30*time.Minute), now.Add(time.Hour), 15*time.Second); err != nil {
		t.Fatal(err)
	}
	prom, err := testbed.StartPrometheus(ctx, testbed.PrometheusOptions{Bins: bins, Major: "3", Dir: filepath.Join(dir, "prometheus"), OpenMetrics: om.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	prom.Cleanup(t)
	// A second data set: cAdvisor series named as before Kubernetes 1.16 (pod_name, container_name).
	var pods [][2]string
	for _, p := range spec.PodList() {
		pods = append(pods, [2]string{p.Namespace, p.Name})
	}
	promNoPod, err := testbed.StartPrometheus(ctx, testbed.PrometheusOptions{Bins: bins, Major: "3", Dir: filepath.Join(dir, "prometheus-nopod"),
		OpenMetrics: testbed.CAdvisorPre116Series(pods, now.Add(-30*time.Minute), now.Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	promNoPod.Cleanup(t)

	// The serving certificate for promadapter.promadapter.svc, from a CA the APIServices carry.
	ca, err := testbed.NewServingCA("doctor-test-ca")
	if err != nil {
		t.Fatal(err)
	}
	// doctor's fixes run in dir, which holds ca.crt as the docs name it.
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	doctorWriteFile(t, dir, "ca.crt", string(ca.PEM))
	serve := func(t *testing.T, notBefore, notAfter time.Time) {
		if err := ca.WriteServing(testbed.ServingDNSName, notBefore, notAfter, certFile, keyFile); err != nil {
			t.Fatal(err)
		}
	}
	serve(t, now.Add(-time.Hour), now.Add(90*24*time.Hour))

	// The Deployment says what the adapter process runs with: doctor reads its Prometheus URL there.
	setDeploymentURL := func(t *testing.T, promURL string) {
		s.mustKubectl(t, nil, "-n", "promadapter", "patch", "deployment", "promadapter", "--type=json", "-p", fmt.Sprintf(
			`[{"op":"replace","path":"/spec/template/spec/containers/0/args","value":["--prometheus-url=%s","--secure-port=6443",`+
				`"--tls-cert-file=/etc/promadapter/tls/tls.crt","--tls-private-key-file=/etc/promadapter/tls/tls.key"]}]`, promURL))
	}
	setDeploymentURL(t, prom.URL)

	kubeconfig := s.serviceAccountKubeconfig(t)
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	adapter, err := testbed.StartAdapterProcess(ctx, adapterBin, filepath.Join(dir, "promadapter.log"), port, "--prometheus-url="+prom.URL,
		"--tls-cert-file="+certFile, "--tls-private-key-file="+keyFile,
		"--lister-kubeconfig="+kubeconfig, "--authentication-kubeconfig="+kubeconfig, "--authorization-kubeconfig="+kubeconfig)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("adapter log %s, last lines:\n%s", adapter.LogPath, adapter.LogTail(30))
		}
		adapter.Stop()
	})
	if err != nil {
		t.Fatal(err)
	}
	// A restart drops kube-apiserver's connections: only a new one sees a new certificate.
	restart := func(t *testing.T) {
		if err := adapter.Restart(ctx); err != nil {
			t.Fatal(err)
		}
	}

	const nodesPath = "/apis/metrics.k8s.io/v1beta1/nodes"
	// doctor checks the APIServices in this order, and the certificate of those sharing a Service once.
	apiServices := []string{"v1beta1.metrics.k8s.io", "v1beta1.custom.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io"}
	register := func(t *testing.T) {
		t.Helper()
		if err := cluster.RegisterAdapterVerified(ctx, port, testbed.AllAdapterGroups, ca.PEM); err != nil {
			t.Fatal(err)
		}
		if err := cluster.WaitAPIServicesAvailable(ctx, apiServices...); err != nil {
			t.Fatal(err)
		}
		s.waitRaw(t, nodesPath, "")
	}
	register(t)

	doctor := func(t *testing.T, args ...string) (string, int) {
		t.Helper()
		args = append([]string{"doctor", "--kubeconfig=" + cluster.Kubeconfig}, args...)
		cmd := exec.CommandContext(ctx, adapterBin, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		err := cmd.Run()
		code := 0
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			code = exitErr.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		t.Logf("$ promadapter %s\n%s%s(exit %d after %s)", strings.Join(args, " "), stdout.String(), stderr.String(), code, time.Since(start).Round(time.Millisecond))
		return stdout.String(), code
	}
	// fix runs a command doctor printed, with kubectl on PATH, the cluster's kubeconfig, in dir.
	fix := func(t *testing.T, command string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, "bash", "-c", command)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "KUBECONFIG="+cluster.Kubeconfig, "PATH="+filepath.Dir(bins.Kubectl)+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("running doctor's fix %q: %v\n%s", command, err, out)
		}
		t.Logf("ran doctor's fix: %s\n%s", command, out)
	}
	waitAccess := func(t *testing.T, attrs authorizationv1.ResourceAttributes, allowed bool) {
		s.waitAccess(t, accessCheck{adapterIdentity, attrs}, allowed)
	}
	authReader := authorizationv1.ResourceAttributes{Verb: "get", Resource: "configmaps", Namespace: "kube-system", Name: "extension-apiserver-authentication"}
	listPods := authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods"}
	servingCheck := "serving certificate for " + strings.Join(apiServices, ", ")
	// metrics-server's own objects, as in TestMigrationFromMetricsServer, its Service leading to
	// the same process: what matters is who the APIService names.
	metricsServer := migrationMetricsServerObjects(port, base64.StdEncoding.EncodeToString(ca.PEM))

	t.Run("healthy: every check passes and doctor exits 0", func(t *testing.T) {
		out, code := doctor(t)
		if code != 0 {
			t.Errorf("doctor exited %d on a healthy install", code)
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "✗ ") || strings.HasPrefix(line, "! ") || strings.HasPrefix(line, "- ") {
				t.Errorf("not a pass on a healthy install: %s", line)
			}
		}
		want := append(append([]string(nil), apiServices...), servingCheck, "aggregation layer (ConfigMap kube-system/extension-apiserver-authentication)",
			"ServiceAccount promadapter/promadapter", "the adapter's informers (list and watch)", "delegated authentication and authorization",
			"reading the front-proxy CA (kube-system/extension-apiserver-authentication)", "the HPA controller reads custom and external metrics",
			"reachable, credentials accepted", "clock", "cAdvisor container_cpu_usage_seconds_total", "cAdvisor container_memory_working_set_bytes",
			"scrape freshness", "node usage sources (kubectl top nodes)", "kube-state-metrics",
			"rules of the embedded default (the adapter's Deployment passes no --config)",
			"kubectl top nodes", "kubectl top pods -n ns-0", "custom metric", "external metric")
		for _, name := range want {
			expectDoctorFinding(t, out, "✓", name)
		}
		expectDoctorFinding(t, out, "✓", "kubectl top nodes", fmt.Sprintf("%d nodes with usage", len(spec.NodeList())))
		expectDoctorFinding(t, out, "✓", "node usage sources (kubectl top nodes)", "every one of the 3 nodes", "node-exporter through node_uname_info: node-0, node-1, node-2")
		expectDoctorFinding(t, out, "✓", servingCheck, "verified with the caBundle for promadapter.promadapter.svc", "CN=doctor-test-ca")

		jsonOut, code := doctor(t, "-o", "json")
		var report struct {
			Checks []struct{ Name, Status string }
			Counts struct{ Pass, Fail int }
		}
		if err := json.Unmarshal([]byte(jsonOut), &report); err != nil || code != 0 {
			t.Fatalf("doctor -o json: exit %d, %v", code, err)
		}
		if report.Counts.Fail != 0 || report.Counts.Pass != len(report.Checks) || len(report.Checks) != len(want) {
			t.Errorf("doctor -o json: %d checks, %d passed, %d failed; want the %d checks of the text output, all passed", len(report.Checks), report.Counts.Pass, report.Counts.Fail, len(want))
		}
	})

	// Prometheus behind a proxy that wants a bearer token, and token files, right and wrong.
	token := "doctor-e2e-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	proxy, err := testbed.StartTokenProxy(prom.URL, token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	goodToken, wrongToken := doctorWriteFile(t, dir, "token", token), doctorWriteFile(t, dir, "wrong-token", "not-"+token)

	cases := []struct {
		name    string
		breakIt func(t *testing.T)
		args    []string
		want    []doctorFinding
		repair  func(t *testing.T, out string)
	}{
		{"no APIService for metrics.k8s.io",
			func(t *testing.T) {
				s.mustKubectl(t, nil, "delete", "apiservice", "v1beta1.metrics.k8s.io")
				s.waitRaw(t, nodesPath, "the server could not find the requested resource")
			}, nil,
			[]doctorFinding{{"v1beta1.metrics.k8s.io", []string{"not registered", "kubectl apply -f deploy/manifests/apiservice-metrics.yaml"}},
				{"kubectl top nodes", []string{"does not serve this group", "GET /apis/metrics.k8s.io/v1beta1/nodes: 404"}}},
			func(t *testing.T, _ string) { register(t) }},
		{"an APIService names a Service that does not exist",
			func(t *testing.T) {
				s.mustKubectl(t, nil, "patch", "apiservice", "v1beta1.custom.metrics.k8s.io", "--type=merge", "-p", `{"spec":{"service":{"name":"promadapter-gone"}}}`)
			}, nil,
			[]doctorFinding{{"v1beta1.custom.metrics.k8s.io", []string{"points at Service promadapter/promadapter-gone, which does not exist",
				`kubectl patch apiservice v1beta1.custom.metrics.k8s.io --type=merge -p '{"spec":{"service":{"namespace":"promadapter","name":"promadapter"}}}'`}}},
			func(t *testing.T, out string) {
				fix(t, doctorFixLine(t, out, "v1beta1.custom.metrics.k8s.io", "kubectl patch apiservice"))
				if err := cluster.WaitAPIServicesAvailable(ctx, "v1beta1.custom.metrics.k8s.io"); err != nil {
					t.Fatal(err)
				}
			}},
		{"the caBundle is another CA's",
			func(t *testing.T) {
				other, err := testbed.NewServingCA("another-ca")
				if err != nil {
					t.Fatal(err)
				}
				s.mustKubectl(t, nil, "patch", "apiservice", "v1beta1.metrics.k8s.io", "--type=merge", "-p",
					fmt.Sprintf(`{"spec":{"caBundle":%q}}`, base64.StdEncoding.EncodeToString(other.PEM)))
				s.waitRaw(t, nodesPath, "x509: certificate signed by unknown authority")
			}, nil,
			[]doctorFinding{{"serving certificate for v1beta1.metrics.k8s.io", []string{"not signed by the APIServices' caBundle", "for a in v1beta1.metrics.k8s.io; do kubectl patch apiservice $a"}},
				{"kubectl top nodes", []string{"does not trust the serving certificate", "x509: certificate signed by unknown authority"}}},
			func(t *testing.T, out string) {
				fix(t, doctorFixLine(t, out, "serving certificate for v1beta1.metrics.k8s.io", "for a in"))
				s.waitRaw(t, nodesPath, "")
			}},
		{"the serving certificate has expired",
			func(t *testing.T) {
				serve(t, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
				restart(t)
				s.waitRaw(t, nodesPath, "x509: certificate has expired or is not yet valid")
			}, nil,
			[]doctorFinding{{servingCheck, []string{"the certificate expired 24h", "renew the serving certificate"}},
				{"kubectl top nodes", []string{"serving certificate has expired"}}},
			func(t *testing.T, _ string) {
				serve(t, now.Add(-time.Hour), now.Add(90*24*time.Hour))
				restart(t)
				s.waitRaw(t, nodesPath, "")
			}},
		{"metrics-server still owns metrics.k8s.io",
			func(t *testing.T) {
				s.mustKubectl(t, nil, "delete", "apiservice", "v1beta1.metrics.k8s.io")
				s.mustKubectl(t, []byte(metricsServer), "create", "-f", "-")
				if err := cluster.WaitAPIServicesAvailable(ctx, "v1beta1.metrics.k8s.io"); err != nil {
					t.Fatal(err)
				}
			}, nil,
			[]doctorFinding{{"v1beta1.metrics.k8s.io", []string{"served by metrics-server (Service kube-system/metrics-server), not by promadapter",
				"Deployment kube-system/metrics-server runs registry.k8s.io/metrics-server/metrics-server:v0.7.2",
				"kubectl replace -f deploy/manifests/apiservice-metrics.yaml", "--enable-resource-metrics=false"}},
				{"kubectl top nodes", []string{"APIService v1beta1.metrics.k8s.io sends it to metrics-server (Service kube-system/metrics-server)"}}},
			func(t *testing.T, _ string) {
				s.mustKubectl(t, []byte(metricsServer), "delete", "-f", "-")
				register(t)
			}},
		{"the Deployment's Prometheus URL is wrong",
			func(t *testing.T) {
				closed, err := testbed.FreePort()
				if err != nil {
					t.Fatal(err)
				}
				setDeploymentURL(t, "http://127.0.0.1:"+strconv.Itoa(closed))
			}, nil,
			[]doctorFinding{{"reachable, credentials accepted", []string{"cannot query Prometheus at http://127.0.0.1:", "connection refused",
				"the --prometheus-url of Deployment promadapter/promadapter", "kubectl -n promadapter edit deployment promadapter"}}},
			func(t *testing.T, _ string) { setDeploymentURL(t, prom.URL) }},
		{"Prometheus wants credentials, doctor sends none",
			func(*testing.T) {}, []string{"--prometheus-url=" + proxy.URL},
			[]doctorFinding{{"reachable, credentials accepted", []string{"refused the request with 401: it needs credentials and doctor sent none", "--prometheus-token-file=FILE"}}},
			nil},
		{"Prometheus refuses the token",
			func(*testing.T) {}, []string{"--prometheus-url=" + proxy.URL, "--prometheus-token-file=" + wrongToken},
			[]doctorFinding{{"reachable, credentials accepted", []string{"refused the request with 401: it did not accept a bearer token from --prometheus-token-file=" + wrongToken}}},
			func(t *testing.T, _ string) {
				out, _ := doctor(t, "--prometheus-url="+proxy.URL, "--prometheus-token-file="+goodToken)
				expectDoctorFinding(t, out, "✓", "reachable, credentials accepted", "a bearer token from --prometheus-token-file="+goodToken)
			}},
		{"cAdvisor series without the pod label",
			func(*testing.T) {}, []string{"--prometheus-url=" + promNoPod.URL},
			[]doctorFinding{{"cAdvisor container_cpu_usage_seconds_total", []string{"none with namespace, pod and container labels", "it carries pod_name",
				"- {source_labels: [pod_name], target_label: pod}"}},
				{"cAdvisor container_memory_working_set_bytes", []string{"none with namespace, pod and container labels"}}},
			nil},
		{"a rule that matches nothing",
			func(*testing.T) {}, []string{"--config=" + doctorWriteFile(t, dir, "typo.yaml", doctorTypoRules)},
			[]doctorFinding{{"rules of --config=", []string{"1 of 2 rules match nothing", "rules[1] (line 6, seriesQuery http_requests_totl{namespace!=\"\"})",
				"correct the selector, or remove the rule"}}},
			nil},
		{"the auth-reader RoleBinding is missing",
			func(t *testing.T) {
				s.mustKubectl(t, nil, "delete", "rolebinding", "promadapter-auth-reader", "--namespace=kube-system")
				waitAccess(t, authReader, false)
			}, nil,
			[]doctorFinding{{"reading the front-proxy CA (kube-system/extension-apiserver-authentication)", []string{
				"may not get, list, watch configmaps extension-apiserver-authentication in kube-system",
				"kubectl -n kube-system create rolebinding promadapter-auth-reader --role=extension-apiserver-authentication-reader --serviceaccount=promadapter:promadapter"}}},
			func(t *testing.T, out string) {
				fix(t, doctorFixLine(t, out, "reading the front-proxy CA", "kubectl -n kube-system create rolebinding"))
				waitAccess(t, authReader, true)
			}},
		{"the adapter's ClusterRoleBinding is missing",
			func(t *testing.T) {
				s.mustKubectl(t, nil, "delete", "clusterrolebinding", "promadapter")
				waitAccess(t, listPods, false)
			}, nil,
			[]doctorFinding{{"the adapter's informers (list and watch)", []string{"may not list, watch pods, nodes, namespaces",
				"ClusterRoleBinding promadapter-auth-delegator → ClusterRole system:auth-delegator",
				"kubectl create clusterrolebinding promadapter --clusterrole=promadapter --serviceaccount=promadapter:promadapter"}}},
			func(t *testing.T, out string) {
				fix(t, doctorFixLine(t, out, "the adapter's informers", "kubectl create clusterrolebinding"))
				waitAccess(t, listPods, true)
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.breakIt(t)
			out, code := doctor(t, c.args...)
			if code == 0 {
				t.Errorf("doctor exited 0")
			}
			if strings.Contains(out, token) {
				t.Errorf("doctor printed Prometheus' token")
			}
			for _, f := range c.want {
				expectDoctorFinding(t, out, "✗", f.name, f.wants...)
			}
			if c.repair != nil {
				c.repair(t, out)
			}
		})
	}

}

// doctorFinding is a check doctor must report, by name, and what its block must say.
type doctorFinding struct {
	name  string
	wants []string
}

// expectDoctorFinding fails the test unless doctor reported the check with mark and every text of wants.
func expectDoctorFinding(t *testing.T, out, mark, name string, wants ...string) {
	t.Helper()
	b, ok := testbed.DoctorFinding(out, mark, name)
	if !ok {
		t.Errorf("doctor reported no %q line for %q", mark, name)
	}
	for _, w := range wants {
		if ok && !strings.Contains(b, w) {
			t.Errorf("doctor's finding\n%s\nlacks %q", b, w)
		}
	}
}

// doctorFixLine is the command in the fix of a failed check that starts with prefix.
func doctorFixLine(t *testing.T, out, name, prefix string) string {
	t.Helper()
	b, _ := testbed.DoctorFinding(out, "✗", name)
	command, ok := testbed.DoctorFixCommand(b, prefix)
	if !ok {
		t.Fatalf("the fix of %q holds no command starting %q:\n%s", name, prefix, b)
	}
	return command
}

// doctorTypoRules is a rule file whose second rule misspells its series (line 6).
const doctorTypoRules = `rules:
- seriesQuery: 'http_requests_total{namespace!=""}'
  resources: {template: '<<.Resource>>'}
  name: {matches: '^(.*)_total$', as: '${1}_per_second'}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
- seriesQuery: 'http_requests_totl{namespace!=""}'
  resources: {template: '<<.Resource>>'}
  name: {matches: '^(.*)_totl$', as: '${1}_per_second'}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
`

func doctorWriteFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
