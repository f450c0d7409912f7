//go:build e2e

package testbed

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Run with: go test -tags e2e ./test/testbed/ -run . -v -count=1
// (needs the binaries from test/tools/deps.sh).
func TestTestbedStartsRealComponentsAndLeavesNoProcessBehind(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	bins, err := FindBins()
	if err != nil {
		t.Fatal(err)
	}

	started := time.Now()
	cluster, err := StartCluster(ctx, ClusterOptions{Bins: bins, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cluster.Cleanup(t)
	t.Logf("kube-apiserver ready at %s after %s; reproduce by hand with: kubectl --kubeconfig=%s ...",
		cluster.URL, time.Since(started).Round(time.Millisecond), cluster.Kubeconfig)

	var prometheusProcesses []*Process

	t.Run("kubectl get --raw /readyz answers ok", func(t *testing.T) {
		out, err := cluster.Kubectl(ctx, "get", "--raw", "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(out); got != "ok" {
			t.Errorf("kubectl get --raw /readyz = %q, want %q", got, "ok")
		}
	})

	t.Run("kube-controller-manager is healthy and creates the default ServiceAccount", func(t *testing.T) {
		// StartControllerManager returns only once its /healthz answered ok with the admin cert.
		err := cluster.StartControllerManager(ctx, []string{"serviceaccount", "serviceaccount-token"}, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			_, err := cluster.Client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("ServiceAccount default/default not created by kube-controller-manager within 60s: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("the aggregator proxies an APIService to a server on localhost with the front-proxy identity", func(t *testing.T) {
		testAggregatorRouting(ctx, t, cluster)
	})

	for _, major := range []string{"2", "3"} {
		t.Run("Prometheus "+major+" answers an instant query with the backfilled value", func(t *testing.T) {
			prom := testBackfilledPrometheus(ctx, t, bins, major)
			prometheusProcesses = append(prometheusProcesses, prom.Process())
		})
		t.Run("Prometheus "+major+" scrapes a live target every second", func(t *testing.T) {
			prom := testLivePrometheus(ctx, t, bins, major)
			prometheusProcesses = append(prometheusProcesses, prom.Process())
		})
	}

	t.Run("no child process is left after Stop", func(t *testing.T) {
		processes := append(cluster.Processes(), prometheusProcesses...)
		want := "etcd, kube-apiserver, kube-controller-manager, prometheus2, prometheus2, prometheus3, prometheus3"
		if got := processNames(processes); got != want {
			t.Errorf("started processes %s, want %s", got, want)
		}
		cluster.Stop()
		for _, p := range prometheusProcesses {
			p.Stop()
		}
		for _, p := range processes {
			if exited, _ := p.Exited(); !exited {
				t.Errorf("%s (pid %d) has not exited after Stop", p.Name, p.PID())
			}
		}
		groups := map[int]string{}
		for _, p := range processes {
			groups[p.PID()] = p.Name
		}
		for _, proc := range listProcesses(t) {
			if name, ok := groups[proc.pgid]; ok && proc.state != "Z" {
				t.Errorf("process %d (%s) is still running in the process group of %s", proc.pid, proc.comm, name)
			}
			if proc.ppid == os.Getpid() {
				t.Errorf("process %d (%s) is still a child of the test binary", proc.pid, proc.comm)
			}
		}
	})
}

// testAggregatorRouting registers a stand-in adapter (an HTTPS server in this process) for
// custom.metrics.k8s.io/v1beta1 and checks that availability is reported both ways and that a
// request through kube-apiserver arrives with the front-proxy client certificate and the user.
func testAggregatorRouting(ctx context.Context, t *testing.T, cluster *Cluster) {
	group := CustomMetricsV1beta1

	// Nothing listens on this port yet: the APIService must be reported unavailable, with reason.
	closedPort, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if err := cluster.RegisterAdapter(ctx, closedPort, []APIServiceGroup{group}); err != nil {
		t.Fatal(err)
	}
	shortCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = cluster.WaitAPIServicesAvailable(shortCtx, group.Name())
	cancel()
	wantInError := group.Name() + ": Available=False (FailedDiscoveryCheck: "
	if err == nil || !strings.Contains(err.Error(), wantInError) {
		t.Errorf("WaitAPIServicesAvailable with nothing listening returned %v, want an error containing %q", err, wantInError)
	} else {
		t.Logf("with nothing listening, as expected: %v", err)
	}

	frontProxyCA, err := os.ReadFile(cluster.Certs.FrontProxyCACert)
	if err != nil {
		t.Fatal(err)
	}
	frontProxyPool := x509.NewCertPool()
	frontProxyPool.AppendCertsFromPEM(frontProxyCA)
	var mu sync.Mutex
	var seen []string // "<client cert CN> as <X-Remote-User>" per request for the resource list
	adapter := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/apis/"+group.Group+"/"+group.Version {
			http.NotFound(w, r)
			return
		}
		if len(r.TLS.VerifiedChains) == 0 {
			http.Error(w, "no client certificate signed by the front-proxy CA", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		seen = append(seen, r.TLS.PeerCertificates[0].Subject.CommonName+" as "+r.Header.Get("X-Remote-User"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"%s/%s","resources":[]}`, group.Group, group.Version)
	}))
	adapter.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: frontProxyPool}
	adapter.StartTLS()
	defer adapter.Close()
	adapterPort := adapter.Listener.Addr().(*net.TCPAddr).Port

	if err := cluster.RegisterAdapter(ctx, adapterPort, []APIServiceGroup{group}); err != nil {
		t.Fatal(err)
	}
	if err := cluster.WaitAPIServicesAvailable(ctx, group.Name()); err != nil {
		t.Fatal(err)
	}
	out, err := cluster.Kubectl(ctx, "get", "--raw", "/apis/"+group.Group+"/"+group.Version)
	if err != nil {
		t.Fatal(err)
	}
	wantBody := `{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"custom.metrics.k8s.io/v1beta1","resources":[]}`
	if got := strings.TrimSpace(out); got != wantBody {
		t.Errorf("kubectl get --raw through the aggregator = %s, want %s", got, wantBody)
	}
	mu.Lock()
	defer mu.Unlock()
	wantRequest := "front-proxy-client as admin"
	found := false
	for _, s := range seen {
		found = found || s == wantRequest
	}
	if !found {
		t.Errorf("the stand-in adapter saw requests from %q, want one from %q", seen, wantRequest)
	}
}

// testBackfilledPrometheus backfills a gauge sampled every 15 s from one minute ago to an hour
// ahead, with value 1000+i for the i-th sample, and checks instant queries between samples.
func testBackfilledPrometheus(ctx context.Context, t *testing.T, bins Bins, major string) *Prometheus {
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	const step = 15 * time.Second
	const samples = (time.Minute + time.Hour) / step
	var om strings.Builder
	om.WriteString("# HELP testbed_known_value A gauge with a known value at every sample.\n")
	om.WriteString("# TYPE testbed_known_value gauge\n")
	for i := range int(samples) {
		ts := start.Add(time.Duration(i) * step)
		fmt.Fprintf(&om, "testbed_known_value{case=\"backfill\"} %d %d\n", 1000+i, ts.Unix())
	}
	om.WriteString("# EOF\n")

	prom, err := StartPrometheus(ctx, PrometheusOptions{
		Bins:        bins,
		Major:       major,
		Dir:         t.TempDir(),
		OpenMetrics: []byte(om.String()),
	})
	if err != nil {
		t.Fatal(err)
	}
	prom.Cleanup(t)
	if !strings.HasPrefix(prom.Version, major+".") {
		t.Errorf("Prometheus version %q does not start with %q", prom.Version, major+".")
	}
	t.Logf("Prometheus %s at %s; data in %s", prom.Version, prom.URL, prom.DataDir)

	client, err := promapi.NewClient(promapi.Config{Address: prom.URL})
	if err != nil {
		t.Fatal(err)
	}
	api := promv1.NewAPI(client)
	tests := []struct {
		name      string
		evalTime  time.Time
		wantValue model.SampleValue
	}{
		{"seven seconds after the first sample gives the first sample", start.Add(7 * time.Second), 1000},
		{"seven seconds after the fourth sample (near now) gives the fourth sample", start.Add(3*step + 7*time.Second), 1003},
		{"half an hour ahead gives the sample taken then", start.Add(30*time.Minute + time.Minute), 1124},
	}
	for _, tc := range tests {
		value, warnings, _, err := api.Query(ctx, "testbed_known_value", tc.evalTime)
		if err != nil {
			t.Fatalf("%s: query at %s: %v; reproduce with: curl '%s/api/v1/query?query=testbed_known_value&time=%d'",
				tc.name, tc.evalTime, err, prom.URL, tc.evalTime.Unix())
		}
		vector, ok := value.(model.Vector)
		if !ok || len(vector) != 1 {
			t.Errorf("%s: got %v (warnings %v), want one sample; reproduce with: curl '%s/api/v1/query?query=testbed_known_value&time=%d'",
				tc.name, value, warnings, prom.URL, tc.evalTime.Unix())
			continue
		}
		got := vector[0]
		if got.Value != tc.wantValue || got.Metric["case"] != "backfill" {
			t.Errorf("%s: got %s = %v, want testbed_known_value{case=\"backfill\"} = %v", tc.name, got.Metric, got.Value, tc.wantValue)
		}
	}
	return prom
}

// testLivePrometheus starts Prometheus scraping a stand-in exporter in this process and waits
// until the exporter's value is queryable with job="live".
func testLivePrometheus(ctx context.Context, t *testing.T, bins Bins, major string) *Prometheus {
	exporter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprint(w, "# TYPE testbed_live_value gauge\ntestbed_live_value 7\n")
	}))
	t.Cleanup(exporter.Close) // after Prometheus stops: cleanups run last-registered first
	target := strings.TrimPrefix(exporter.URL, "http://")

	prom, err := StartPrometheus(ctx, PrometheusOptions{Bins: bins, Major: major, Dir: t.TempDir(), ScrapeTargets: []string{target}})
	if err != nil {
		t.Fatal(err)
	}
	prom.Cleanup(t)
	client, err := promapi.NewClient(promapi.Config{Address: prom.URL})
	if err != nil {
		t.Fatal(err)
	}
	api := promv1.NewAPI(client)
	query := `testbed_live_value{job="` + LiveJob + `",instance="` + target + `"}`
	deadline := time.Now().Add(30 * time.Second)
	for {
		value, _, _, err := api.Query(ctx, query, time.Now())
		if vector, ok := value.(model.Vector); err == nil && ok && len(vector) == 1 && vector[0].Value == 7 {
			return prom
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not return 7 within 30s (last answer %v, error %v); reproduce with: curl '%s/api/v1/query?query=%s'",
				query, value, err, prom.URL, query)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func processNames(processes []*Process) string {
	names := make([]string, len(processes))
	for i, p := range processes {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
}
