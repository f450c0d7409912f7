//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

// forwardReproduce is the command a person runs to reproduce TestForwardExternalMetrics.
const forwardReproduce = "go build -o /tmp/promadapter ./cmd/promadapter && " +
	"PROMADAPTER_BIN=/tmp/promadapter go test -tags e2e -count=1 ./test/e2e -run TestForward -v"

// The metrics only the second adapter (the forward backend, standing in for KEDA) serves.
const (
	backlogMetric = "keda_queue_backlog" // namespaced: queue_messages_ready by queue
	burnMetric    = "keda_slo_burn_rate" // cluster-wide: slo_error_budget_burn_rate by slo
	forwardNS     = "ns-1"
)

// The identity the first adapter forwards with: a ServiceAccount allowed to get external
// metrics, as promadapter's own ServiceAccount would be in a cluster.
const (
	forwarderNamespace = "monitoring"
	forwarderAccount   = "promadapter"
	forwarderRole      = "promadapter-external-metrics-forward"
)

// backendExternalRules are the second adapter's rules: other names over the same fixture.
var backendExternalRules = []config.DiscoveryRule{
	{
		SeriesQuery:  `queue_messages_ready{namespace!=""}`,
		Name:         config.NameMapping{As: backlogMetric},
		MetricsQuery: `max(<<.Series>>{<<.LabelMatchers>>}) by (queue)`,
	},
	{
		SeriesQuery:  `slo_error_budget_burn_rate`,
		Name:         config.NameMapping{As: burnMetric},
		Resources:    config.ResourceMapping{Namespaced: boolPtr(false)},
		MetricsQuery: `max(<<.Series>>{<<.LabelMatchers>>}) by (slo)`,
	},
}

// TestForwardExternalMetrics runs two adapters on one cluster and one Prometheus holding the
// fixture. The second stands in for KEDA's metrics server: it serves other external metrics
// from its own config, on its secure port only (no APIService). The first owns the
// APIService v1beta1.external.metrics.k8s.io and forwards what it does not serve to the
// second over TLS, verified with the second's self-generated serving certificate
// (<cert-dir>/apiserver.crt holds the certificate and the CA that signed it).
//
// Identity: the second adapter delegates authentication and authorization to kube-apiserver,
// as KEDA's does. The first presents the token of ServiceAccount monitoring/promadapter
// (--external-metrics-forward-token-file, from the TokenRequest API), which the second
// authenticates with a TokenReview; a ClusterRole lets that ServiceAccount get
// external.metrics.k8s.io, checked with a SubjectAccessReview. The admin client certificate
// would work too, but would prove nothing about what the backend must be granted.
//
// Through kube-apiserver it checks: the first adapter's own external metrics and the
// forwarded ones answer the fixture's exact values, the selector reaches the second; the
// group's discovery lists both sets; a metric neither serves is a 404 naming both; a caller
// allowed only in one namespace reads forwarded metrics there and nowhere else; withdrawing
// the ServiceAccount's grant makes the forwarded metrics fail naming the identity, not the
// caller; the token is in no log; with the second adapter stopped, forwarded metrics answer
// 503 naming it while the first adapter's own keep their values.
//
// Reproduce: see forwardReproduce.
func TestForwardExternalMetrics(t *testing.T) {
	t.Logf("reproduce: %s", forwardReproduce)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("reproduce: %s", forwardReproduce)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bins, adapterBin := testBinaries(t)
	dir := t.TempDir()
	fe := &faultEnv{t: t}
	var err error
	if fe.cluster, err = testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: bins, Dir: filepath.Join(dir, "cluster")}); err != nil {
		t.Fatal(err)
	}
	fe.cluster.Cleanup(t)
	if err := fe.spec.ApplyObjects(ctx, fe.cluster.Client); err != nil {
		t.Fatal(err)
	}
	if fe.api, err = rest.HTTPClientFor(fe.cluster.RESTConfig); err != nil {
		t.Fatal(err)
	}
	fe.api.Timeout = time.Minute
	// The forward backend's /readyz, asked without a certificate (anonymous), as fault_env does.
	fe.anon = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	now := time.Now()
	var om bytes.Buffer
	if err := fe.spec.WriteOpenMetrics(&om, now.Add(-30*time.Minute), now.Add(3*time.Hour), fixture.DefaultStep); err != nil {
		t.Fatal(err)
	}
	prom, err := testbed.StartPrometheus(ctx, testbed.PrometheusOptions{Bins: bins, Major: "3", Dir: filepath.Join(dir, "prometheus"), OpenMetrics: om.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	prom.Cleanup(t)

	tokenFile, token := grantForwarder(t, ctx, fe.cluster, dir)

	// The second adapter: its own rules, external metrics only, no APIService.
	backendDir := filepath.Join(dir, "backend")
	if err := os.MkdirAll(backendDir, 0o755); err != nil {
		t.Fatal(err)
	}
	backendConfig := writeConfig(t, filepath.Join(backendDir, "config.yaml"), &config.Config{ExternalRules: backendExternalRules})
	backendPort, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	backend, err := testbed.StartProcess(context.WithoutCancel(ctx), "promadapter-backend", filepath.Join(backendDir, "promadapter.log"), adapterBin,
		"--prometheus-url="+prom.URL, "--config="+backendConfig,
		"--secure-port="+strconv.Itoa(backendPort), "--bind-address=127.0.0.1", "--cert-dir="+backendDir,
		"--lister-kubeconfig="+fe.cluster.Kubeconfig,
		"--authentication-kubeconfig="+fe.cluster.Kubeconfig, "--authorization-kubeconfig="+fe.cluster.Kubeconfig,
		"--enable-custom-metrics=false", "--enable-resource-metrics=false",
		"--metrics-relist-interval=5s", "--metrics-max-age=1m", "--v=2")
	if err != nil {
		t.Fatal(err)
	}
	backend.Cleanup(t)
	t.Logf("forward backend (second adapter, pid %d) on port %d: %s", backend.PID(), backendPort, backend.CommandLine())
	fe.port = backendPort
	fe.poll(t, time.Minute, "the forward backend's /readyz answers 200", func() error {
		if exited, exitErr := backend.Exited(); exited {
			t.Fatalf("the forward backend exited during start-up (%v); log %s:\n%s", exitErr, backend.LogPath, backend.LogTail(30))
		}
		status, body, err := fe.directGet("/readyz", "")
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("%d %s", status, body)
		}
		return err
	})

	// The first adapter: the tests' usual rules, the APIServices, forwarding to the second.
	backendCA := filepath.Join(backendDir, "apiserver.crt")
	backendURL := "https://127.0.0.1:" + strconv.Itoa(backendPort)
	adapter, err := fe.cluster.StartAdapter(ctx, testbed.AdapterOptions{Bin: adapterBin, PrometheusURL: prom.URL,
		ConfigFile: writeTestConfig(t, dir, testExternalRules),
		ExtraArgs: []string{"--external-metrics-forward-url=" + backendURL, "--external-metrics-forward-ca-file=" + backendCA,
			"--external-metrics-forward-token-file=" + tokenFile, "--external-metrics-forward-timeout=5s"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if log, err := os.ReadFile(adapter.LogPath); err == nil {
				t.Logf("adapter log (%s), last lines:\n%s", adapter.LogPath, tail(string(log), 40))
			}
			t.Logf("forward backend log (%s), last lines:\n%s", backend.LogPath, backend.LogTail(40))
		}
		adapter.Stop()
	})
	t.Logf("adapter on port %d forwarding to %s (CA %s, log %s)", adapter.Port, backendURL, backendCA, adapter.LogPath)

	ownPath := "/apis/external.metrics.k8s.io/v1beta1/namespaces/" + forwardNS + "/queue_depth"
	forwardedPath := "/apis/external.metrics.k8s.io/v1beta1/namespaces/" + forwardNS + "/" + backlogMetric
	selectedPath := forwardedPath + "?labelSelector=" + url.QueryEscape("queue="+fixture.QueueOrders)
	burnPath := "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/" + burnMetric + "?labelSelector=" + url.QueryEscape("slo="+fixture.SLOCheckout)
	kubectl := func(path string) string {
		return fmt.Sprintf("kubectl --kubeconfig=%s get --raw '%s'", fe.cluster.Kubeconfig, path)
	}
	checkOwn := func() error { return checkQueueAnswer(fe.spec, forwardNS, ownPath, fe.get(ownPath, "")) }
	checkForwarded := func() error { return checkQueueAnswer(fe.spec, forwardNS, forwardedPath, fe.get(forwardedPath, "")) }
	// The aggregator may answer 404 or 503 for a moment after the APIServices turn Available.
	pollValues(t, time.Minute, "the adapter's own external metric is served; see `"+kubectl(ownPath)+"`", checkOwn)

	t.Run("the adapter's own external metric answers the fixture's exact values", func(t *testing.T) {
		pollValues(t, 10*time.Second, "see `"+kubectl(ownPath)+"`", checkOwn)
	})
	t.Run("the second adapter's metric, forwarded, answers the fixture's exact values", func(t *testing.T) {
		pollValues(t, 30*time.Second, "see `"+kubectl(forwardedPath)+"`", checkForwarded)
	})
	t.Run("the metric selector reaches the forward backend", func(t *testing.T) {
		want, _ := fe.spec.QueueDepth(forwardNS, fixture.QueueOrders)
		pollValues(t, 10*time.Second, "see `"+kubectl(selectedPath)+"`", func() error {
			return checkOneValue(fe.get(selectedPath, ""), selectedPath, "queue", fixture.QueueOrders, want)
		})
	})
	t.Run("a forwarded cluster-wide metric answers from any namespace", func(t *testing.T) {
		want, _ := fe.spec.SLOBurnRate(fixture.SLOCheckout)
		pollValues(t, 10*time.Second, "see `"+kubectl(burnPath)+"`", func() error {
			return checkOneValue(fe.get(burnPath, ""), burnPath, "slo", fixture.SLOCheckout, want)
		})
	})
	t.Run("the group's discovery lists both sets", func(t *testing.T) {
		const path = "/apis/external.metrics.k8s.io/v1beta1"
		want := []string{"queue_depth", "slo_error_budget_burn_rate", "kube_deployment_spec_replicas", backlogMetric, burnMetric}
		// The forward backend's list is fetched in the background after the first listing.
		fe.poll(t, 30*time.Second, "`"+kubectl(path)+"` lists "+strings.Join(want, ", "), func() error {
			var list resourceList
			a := fe.get(path, "")
			if a.Status != http.StatusOK {
				return notOK(path, a)
			}
			if err := jsonUnmarshal([]byte(a.Body), &list); err != nil {
				return err
			}
			listed := map[string]int{}
			for _, r := range list.Resources {
				listed[r.Name]++
			}
			var problems []string
			for _, name := range want {
				if listed[name] != 1 {
					problems = append(problems, fmt.Sprintf("%s listed %d times", name, listed[name]))
				}
			}
			if len(problems) > 0 {
				return fmt.Errorf("%s (listed: %v)", strings.Join(problems, "; "), listed)
			}
			return nil
		})
	})
	t.Run("a metric neither serves is a 404 naming both", func(t *testing.T) {
		path := "/apis/external.metrics.k8s.io/v1beta1/namespaces/" + forwardNS + "/no_such_metric"
		a := fe.get(path, "")
		want := fmt.Sprintf("served by neither promadapter nor the forward backend 127.0.0.1:%d", backendPort)
		if a.Status != http.StatusNotFound || !strings.Contains(a.Message, want) {
			t.Errorf("GET %s = %v, want 404 saying %q; see `%s`", path, a, want, kubectl(path))
		}
	})
	t.Run("a caller allowed in one namespace reads forwarded metrics there only", func(t *testing.T) {
		const user = "alice"
		allowExternalMetrics(t, ctx, fe.cluster, forwardNS, user)
		pollValues(t, 30*time.Second, "alice reads "+forwardedPath+"; see `"+kubectl(forwardedPath)+" --as=alice`", func() error {
			return checkQueueAnswer(fe.spec, forwardNS, forwardedPath, fe.get(forwardedPath, user))
		})
		other := strings.Replace(forwardedPath, "/namespaces/"+forwardNS+"/", "/namespaces/ns-2/", 1)
		if a := fe.get(other, user); a.Status != http.StatusForbidden {
			t.Errorf("GET %s as alice = %v, want 403 from kube-apiserver; see `%s --as=alice`", other, a, kubectl(other))
		}
	})
	t.Run("the forward backend authorizes the adapter's identity, not the caller's", func(t *testing.T) {
		err := fe.cluster.Client.RbacV1().ClusterRoleBindings().Delete(ctx, forwarderRole, metav1.DeleteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// The backend's delegated authorizer caches an allowed decision for 10 s.
		pollValues(t, 45*time.Second, "an admin's forwarded request fails naming promadapter's identity; see `"+kubectl(forwardedPath)+"`", func() error {
			a := fe.get(forwardedPath, "")
			if a.Status == http.StatusInternalServerError && strings.Contains(a.Message, "refused promadapter's identity (403") {
				return nil
			}
			return fmt.Errorf("GET %s = %v, want 500 saying the backend refused promadapter's identity", forwardedPath, a)
		})
		if err := checkOwn(); err != nil {
			t.Errorf("the adapter's own metric: %v", err)
		}
		bindForwarder(t, ctx, fe.cluster)
		// The backend's delegated authorizer caches the denial for 10 s too.
		fe.poll(t, 45*time.Second, "forwarding works again once the grant is back", checkForwarded)
	})
	t.Run("the forward token is in no log", func(t *testing.T) {
		for _, p := range []string{adapter.LogPath, backend.LogPath} {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(data), token) {
				t.Errorf("%s holds the forward token", p)
			}
		}
	})
	if t.Failed() {
		return
	}

	backend.Stop()
	t.Logf("stopped the forward backend")
	t.Run("with the forward backend stopped, forwarded metrics answer 503 naming it and the adapter's own keep their values", func(t *testing.T) {
		want := fmt.Sprintf("the forward backend 127.0.0.1:%d cannot be reached", backendPort)
		pollValues(t, 10*time.Second, "see `"+kubectl(forwardedPath)+"`", func() error {
			a := fe.get(forwardedPath, "")
			if a.Status != http.StatusServiceUnavailable || !strings.Contains(a.Message, want) {
				return fmt.Errorf("GET %s = %v, want 503 saying %q", forwardedPath, a, want)
			}
			return nil
		})
		if err := checkOwn(); err != nil {
			t.Error(err)
		}
	})
}

// checkOneValue checks an answer holds exactly one value, with label key=value and the
// fixture's value.
func checkOneValue(a answer, path, key, value string, want float64) error {
	if a.Status != http.StatusOK {
		return notOK(path, a)
	}
	var list metricValueList
	if err := jsonUnmarshal([]byte(a.Body), &list); err != nil {
		return fmt.Errorf("%w: GET %s: decoding %q: %v", errWrong, path, truncateText(a.Body, 300), err)
	}
	if len(list.Items) != 1 || list.Items[0].MetricLabels[key] != value || !near(list.Items[0].Value, want) {
		return fmt.Errorf("%w: GET %s = %+v, want one value %v with %s=%s", errWrong, path, list.Items, want, key, value)
	}
	return nil
}

// grantForwarder creates the ServiceAccount the first adapter forwards as, lets it get
// external metrics in every namespace, and writes a one-hour token of it to a file.
func grantForwarder(t *testing.T, ctx context.Context, cluster *testbed.Cluster, dir string) (path, token string) {
	t.Helper()
	c := cluster.Client
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: forwarderNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().ServiceAccounts(forwarderNamespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: forwarderAccount}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: forwarderRole},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"external.metrics.k8s.io"}, Resources: []string{"*"}, Verbs: []string{"get", "list"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bindForwarder(t, ctx, cluster)
	expiry := int64(3600)
	tr, err := c.CoreV1().ServiceAccounts(forwarderNamespace).CreateToken(ctx, forwarderAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "forward-token")
	if err := os.WriteFile(path, []byte(tr.Status.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, tr.Status.Token
}

// bindForwarder binds the forwarding ClusterRole to the ServiceAccount.
func bindForwarder(t *testing.T, ctx context.Context, cluster *testbed.Cluster) {
	t.Helper()
	if _, err := cluster.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: forwarderRole},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: forwarderRole},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: forwarderAccount, Namespace: forwarderNamespace}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// allowExternalMetrics lets user get external metrics in namespace only.
func allowExternalMetrics(t *testing.T, ctx context.Context, cluster *testbed.Cluster, namespace, user string) {
	t.Helper()
	c := cluster.Client.RbacV1()
	name := "external-metrics-reader-" + user
	if _, err := c.Roles(namespace).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"external.metrics.k8s.io"}, Resources: []string{"*"}, Verbs: []string{"get", "list"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RoleBindings(namespace).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: user}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
