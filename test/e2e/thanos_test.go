//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	"k8s.io/client-go/rest"

	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

// thanosReproduce is the command that runs the Thanos tests.
const thanosReproduce = "go build -o /tmp/promadapter ./cmd/promadapter && " +
	"PROMADAPTER_BIN=/tmp/promadapter go test -tags e2e -count=1 ./test/e2e -run 'TestThanos' -v"

// thanosNamespace is where TestThanos asks for values: a namespace of the default fixture.
const thanosNamespace = "ns-0"

// thanosAdapterArgs turn the adapter's query cache off, so every request after StopStore
// reaches the querier.
var thanosAdapterArgs = []string{"--query-cache-period=0"}

// thanosEnv is a cluster, a Thanos querier over two Prometheus replicas holding identical
// data, and the adapter under test, whose rules all name the backend "thanos".
type thanosEnv struct {
	cluster    *testbed.Cluster
	thanos     *testbed.Thanos
	adapterBin string
	api        *http.Client // to kube-apiserver as admin
	spec       fixture.Spec
	dir        string
}

// startThanosEnv starts a cluster and a Thanos query path with om backfilled into each replica.
func startThanosEnv(t *testing.T, ctx context.Context, om []byte, tenancy bool) *thanosEnv {
	t.Helper()
	bins, adapterBin := testBinaries(t)
	e := &thanosEnv{adapterBin: adapterBin, dir: t.TempDir()}
	var err error
	e.cluster, err = testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: bins, Dir: filepath.Join(e.dir, "cluster")})
	if err != nil {
		t.Fatal(err)
	}
	e.cluster.Cleanup(t)
	if e.api, err = rest.HTTPClientFor(e.cluster.RESTConfig); err != nil {
		t.Fatal(err)
	}
	e.api.Timeout = time.Minute
	started := time.Now()
	e.thanos, err = testbed.StartThanos(ctx, testbed.ThanosOptions{Bins: bins, Dir: filepath.Join(e.dir, "thanos"), OpenMetrics: om, Tenancy: tenancy})
	if err != nil {
		t.Fatal(err)
	}
	e.thanos.Cleanup(t)
	t.Logf("Thanos querier at %s over %d Prometheus replicas (sidecars %s, %s), ready after %s",
		e.thanos.URL, len(e.thanos.Stores), e.thanos.Stores[0].GRPCAddress, e.thanos.Stores[1].GRPCAddress, time.Since(started).Round(time.Millisecond))
	return e
}

// startAdapter starts the adapter with configFile and defaultURL as --prometheus-url (the
// backend "default", which no rule under test names), registers it for every API, and stops
// it with the test, printing its log's end if the test failed.
func (e *thanosEnv) startAdapter(t *testing.T, ctx context.Context, configFile, defaultURL string) *testbed.Adapter {
	t.Helper()
	adapter, err := e.cluster.StartAdapter(ctx, testbed.AdapterOptions{Bin: e.adapterBin, PrometheusURL: defaultURL, ConfigFile: configFile,
		Dir: filepath.Join(e.dir, "promadapter-"+filepath.Base(filepath.Dir(configFile))), ExtraArgs: thanosAdapterArgs})
	if err != nil {
		t.Fatalf("starting the adapter with %s: %v", configFile, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if log, err := os.ReadFile(adapter.LogPath); err == nil {
				t.Logf("adapter log (%s), last lines:\n%s", adapter.LogPath, tail(string(log), 40))
			}
		}
		adapter.Stop()
	})
	t.Logf("adapter on port %d with %s (log %s)", adapter.Port, configFile, adapter.LogPath)
	return adapter
}

// get GETs path (already escaped) through kube-apiserver as admin.
func (e *thanosEnv) get(path string) answer {
	resp, err := e.api.Get(e.cluster.URL + path)
	if err != nil {
		return answer{Message: "no answer from kube-apiserver: " + err.Error()}
	}
	a, err := readAnswer(resp)
	if err != nil {
		return answer{Status: a.Status, Message: "reading the answer: " + err.Error()}
	}
	return a
}

// kubectlGetRaw is the command a person runs to see what get saw.
func (e *thanosEnv) kubectlGetRaw(path string) string {
	return fmt.Sprintf("kubectl --kubeconfig=%s get --raw '%s'", e.cluster.Kubeconfig, path)
}

// curlMetrics is the command that shows adapter's own metrics.
func (e *thanosEnv) curlMetrics(adapter *testbed.Adapter) string {
	return fmt.Sprintf("curl -sk --cert %s --key %s https://127.0.0.1:%d/metrics | grep promadapter_backend_",
		e.cluster.Certs.AdminCert, e.cluster.Certs.AdminKey, adapter.Port)
}

// pollValues calls check until it returns nil, at most timeout. An error wrapping errWrong (a
// 200 with wrong values, or an answer that must never be given) fails the test at once: the
// adapter gave it, and waiting would only hide it.
func pollValues(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if errors.Is(err, errWrong) {
			t.Fatalf("%s: %v", what, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, still not true that %s: %v", timeout, what, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// notOK describes an answer other than 200. A 500 wraps errWrong: it comes from the adapter
// (a rule or the configuration is wrong, or the duplicate guard fired) and never goes away
// by itself, whereas the aggregator's 404 and 503 do in the first moments.
func notOK(path string, a answer) error {
	if a.Status == http.StatusInternalServerError {
		return fmt.Errorf("%w: GET %s: %v", errWrong, path, a)
	}
	return fmt.Errorf("GET %s: %v", path, a)
}

// writeThanosConfig writes cfg plus a backends section holding backend, and checks that it
// loads as the adapter would load it.
func writeThanosConfig(t *testing.T, dir string, cfg *config.Config, backend map[string]any) string {
	t.Helper()
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	doc["backends"] = []any{backend}
	if data, err = yaml.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(path); err != nil {
		t.Fatalf("the test config %s does not load: %v\nits backends section: %v", path, err, backend)
	}
	return path
}

// thanosRules is the embedded default configuration plus the external test rules, every
// rule and the resource rules on backend.
func thanosRules(backend string) *config.Config {
	cfg := config.Default()
	cfg.ExternalRules = append(append([]config.DiscoveryRule(nil), cfg.ExternalRules...), testExternalRules...)
	for i := range cfg.Rules {
		cfg.Rules[i].Backend = backend
	}
	for i := range cfg.ExternalRules {
		cfg.ExternalRules[i].Backend = backend
	}
	cfg.ResourceRules.Backend = backend
	return cfg
}

// TestThanos runs the adapter against a Thanos querier over two Prometheus replicas that hold
// the same fixture (so each series exists twice, once per replica label), through a real
// kube-apiserver, with every rule on a backend of kind thanos:
//   - custom, external and resource metrics answer the fixture's exact values: deduplicated,
//     not doubled, and no duplicate-series error from the resource rules' guard;
//   - with one replica's sidecar stopped the querier's answers carry a warning, which the
//     adapter refuses (503, cause partial) by default, and serves, with the remaining replica's
//     exact values, when the backend says allowPartialAnswers: true.
//
// The backend "default" (--prometheus-url), which no rule names, is the same querier with
// dedup=false: an adapter that ignored `backend: thanos` would serve doubled values.
//
// Reproduce with: go build -o /tmp/promadapter ./cmd/promadapter &&
// PROMADAPTER_BIN=/tmp/promadapter go test -tags e2e -count=1 ./test/e2e -run 'TestThanos' -v
func TestThanos(t *testing.T) {
	t.Logf("reproduce with: %s", thanosReproduce)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	spec := fixture.Spec{}
	var om bytes.Buffer
	now := time.Now()
	if err := spec.WriteOpenMetrics(&om, now.Add(-30*time.Minute), now.Add(3*time.Hour), fixture.DefaultStep); err != nil {
		t.Fatal(err)
	}
	e := startThanosEnv(t, ctx, om.Bytes(), false)
	e.spec = spec
	if err := spec.ApplyObjects(ctx, e.cluster.Client); err != nil {
		t.Fatal(err)
	}
	undeduplicated := e.thanos.URL + "?dedup=false"
	backend := map[string]any{"name": "thanos", "kind": "thanos", "url": e.thanos.URL}
	strictConfig := writeThanosConfig(t, filepath.Join(e.dir, "strict"), thanosRules("thanos"), backend)
	strict := e.startAdapter(t, ctx, strictConfig, undeduplicated)
	metrics := &env{t: t, cluster: e.cluster, adapter: strict}

	checks := []struct {
		name  string
		path  string
		check func() error
	}{
		{"a custom metric of pods", thanosCustomPath, e.checkCustom},
		{"an external metric", thanosExternalPath, e.checkExternal},
		{"metrics.k8s.io pods (kubectl top pods --containers)", thanosResourcePath, e.checkResource},
	}
	for _, c := range checks {
		t.Run(c.name+" answers the fixture's exact values once although both replicas hold them", func(t *testing.T) {
			// The aggregator may answer 404 or 503 for a moment after the APIServices turn Available.
			pollValues(t, time.Minute, c.name+" serves its known values; see `"+e.kubectlGetRaw(c.path)+"`", c.check)
		})
	}
	if t.Failed() {
		return
	}

	if err := e.thanos.StopStore(0); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped the sidecar of replica 0 (%s); the querier's answers now carry a warning, e.g. curl -g '%s/api/v1/query?query=queue_messages_ready'",
		e.thanos.Stores[0].GRPCAddress, e.thanos.URL)

	for _, c := range checks {
		t.Run("with replica 0's store down, "+c.name+" answers 503 naming the partial answer", func(t *testing.T) {
			pollValues(t, time.Minute, c.name+" refuses the partial answer; see `"+e.kubectlGetRaw(c.path)+"`", e.refusesPartial(c.path))
			t.Logf("%s: %v", c.path, e.get(c.path))
		})
	}
	t.Run("the failures are counted on backend thanos with cause partial", func(t *testing.T) {
		if n := sumCounter(metrics.adapterMetrics(t), "promadapter_backend_errors_total", `backend="thanos"`, `cause="partial"`); n < 1 {
			t.Errorf("promadapter_backend_errors_total{backend=\"thanos\",cause=\"partial\"} = %v, want at least 1 (one per refused answer); "+
				"see the adapter's metrics: %s", n, e.curlMetrics(strict))
		}
	})

	strict.Stop()
	backend["allowPartialAnswers"] = true
	partialConfig := writeThanosConfig(t, filepath.Join(e.dir, "allow-partial"), thanosRules("thanos"), backend)
	lenient := e.startAdapter(t, ctx, partialConfig, undeduplicated)
	for _, c := range checks {
		t.Run("with allowPartialAnswers: true, "+c.name+" answers the remaining replica's exact values", func(t *testing.T) {
			pollValues(t, time.Minute, c.name+" serves the remaining replica's values; see `"+e.kubectlGetRaw(c.path)+"`", c.check)
		})
	}
	t.Run("the answers served were partial ones, counted on backend thanos", func(t *testing.T) {
		metrics := &env{t: t, cluster: e.cluster, adapter: lenient}
		if n := sumCounter(metrics.adapterMetrics(t), "promadapter_backend_partial_answers_served_total", `backend="thanos"`); n < 1 {
			t.Errorf("promadapter_backend_partial_answers_served_total{backend=\"thanos\"} = %v, want at least 1: the querier's answers carry a warning while replica 0's store is down; "+
				"see the adapter's metrics: %s", n, e.curlMetrics(lenient))
		}
	})
}
