//go:build e2e

package e2e

import (
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

	"github.com/promadapter/promadapter/internal/promtest"
	"github.com/promadapter/promadapter/test/testbed"
)

// TestReadyAdapterAuthenticatesTheAggregatorsFirstRequest is defect 14: right after /readyz
// turned 200, requests through the aggregator were answered 403 as system:anonymous, because
// the request-header CA (from kube-system/extension-apiserver-authentication) had not been
// loaded yet. The adapter is started five times; the moment its /readyz answers 200, a request
// is sent as the aggregator sends it (front-proxy client certificate, X-Remote-User) and one
// through kube-apiserver. Neither may be answered 403.
//
// Reproduce: make build && PROMADAPTER_BIN=$PWD/bin/promadapter go test -tags e2e ./test/e2e -run TestReadyAdapterAuthenticatesTheAggregatorsFirstRequest -v
func TestReadyAdapterAuthenticatesTheAggregatorsFirstRequest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bins, adapterBin := testBinaries(t)
	dir := t.TempDir()
	cluster, err := testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: bins, Dir: filepath.Join(dir, "cluster")})
	if err != nil {
		t.Fatal(err)
	}
	cluster.Cleanup(t)
	prom := promtest.New(t) // discovery and the start-up probe only need answers, not data
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	group := testbed.ExternalMetricsV1beta1
	if err := cluster.RegisterAdapter(ctx, port, []testbed.APIServiceGroup{group}); err != nil {
		t.Fatal(err)
	}
	path := "/apis/" + group.Group + "/" + group.Version

	frontProxy, err := tls.LoadX509KeyPair(cluster.Certs.FrontProxyClientCert, cluster.Certs.FrontProxyClientKey)
	if err != nil {
		t.Fatal(err)
	}
	// As kube-apiserver's proxy: the front-proxy client certificate, the caller in headers.
	asAggregator := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{frontProxy}}, DisableKeepAlives: true,
	}}
	probe := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true,
	}}
	base := "https://127.0.0.1:" + strconv.Itoa(port)

	for start := 1; start <= 5; start++ {
		logPath := filepath.Join(dir, fmt.Sprintf("promadapter-%d.log", start))
		p, err := testbed.StartProcess(context.WithoutCancel(ctx), "promadapter", logPath, adapterBin,
			"--prometheus-url="+prom.URL(),
			"--secure-port="+strconv.Itoa(port), "--bind-address=127.0.0.1", "--cert-dir="+filepath.Join(dir, "certs"),
			"--lister-kubeconfig="+cluster.Kubeconfig,
			"--authentication-kubeconfig="+cluster.Kubeconfig, "--authorization-kubeconfig="+cluster.Kubeconfig,
			"--metrics-relist-interval=5s", "--metrics-max-age=1m", "--v=2")
		if err != nil {
			t.Fatal(err)
		}
		fail := func(format string, args ...any) {
			t.Helper()
			p.Stop()
			t.Fatalf("start %d: %s\nadapter command: %s\nadapter log %s, last lines:\n%s", start, fmt.Sprintf(format, args...),
				p.CommandLine(), logPath, p.LogTail(40))
		}

		readySince := waitReady(ctx, probe, base+"/readyz", p)
		if readySince.IsZero() {
			fail("/readyz never answered 200")
		}
		status, body := getWithHeaders(ctx, asAggregator, base+path, map[string]string{"X-Remote-User": "admin", "X-Remote-Group": "system:masters"})
		after := time.Since(readySince).Round(time.Millisecond)
		if status != http.StatusOK {
			fail("GET %s as the aggregator, %s after /readyz answered 200: %d %s, want 200", path, after, status, body)
		}

		// Through kube-apiserver: the aggregator may still hold the APIService unavailable from
		// the previous stop (503); any 403 is the defect.
		deadline := time.Now().Add(60 * time.Second)
		for {
			raw, err := cluster.Client.Discovery().RESTClient().Get().AbsPath(path).DoRaw(ctx)
			if err == nil {
				break
			}
			if strings.Contains(err.Error(), "forbidden") || strings.Contains(string(raw), "system:anonymous") {
				fail("GET %s through kube-apiserver: %v %s", path, err, raw)
			}
			if time.Now().After(deadline) {
				fail("GET %s through kube-apiserver still fails after 60s: %v %s", path, err, raw)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("start %d: a request as the aggregator %s after /readyz turned 200 was authenticated, and one through kube-apiserver", start, after)
		p.Stop()
	}
}

// waitReady polls url every 5 ms until it answers 200 and returns when that was, or the zero
// time once p has exited or 60 s have passed.
func waitReady(ctx context.Context, c *http.Client, url string, p *testbed.Process) time.Time {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if exited, _ := p.Exited(); exited {
			return time.Time{}
		}
		if status, _ := getWithHeaders(ctx, c, url, nil); status == http.StatusOK {
			return time.Now()
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Time{}
}

// getWithHeaders returns the status and body of GET url with the given headers; status 0 when the request
// did not get an answer.
func getWithHeaders(ctx context.Context, c *http.Client, url string, headers map[string]string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(body))
}
