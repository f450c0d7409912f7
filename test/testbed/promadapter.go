package testbed

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// AllAdapterGroups are the four APIServices promadapter serves.
var AllAdapterGroups = []APIServiceGroup{MetricsV1beta1, CustomMetricsV1beta1, CustomMetricsV1beta2, ExternalMetricsV1beta1}

// AdapterOptions start a promadapter process against a test cluster.
type AdapterOptions struct {
	// Bin is the promadapter binary (the e2e tests get it from $PROMADAPTER_BIN).
	Bin string
	// PrometheusURL is the backend.
	PrometheusURL string
	// ConfigFile is the rule file; empty uses the embedded default.
	ConfigFile string
	// Dir holds the adapter's certificates and log; empty means a directory under the cluster's.
	Dir string
	// ExtraArgs are appended to the command line.
	ExtraArgs []string
	// Env is added to the adapter's environment ("KEY=value"), e.g. GOMEMLIMIT as a
	// container's memory limit would set it.
	Env []string
}

// Adapter is a running promadapter.
type Adapter struct {
	Port    int
	LogPath string
	process *Process
}

// AdapterBin returns the promadapter binary to test: $PROMADAPTER_BIN, else bin/promadapter
// found by walking up from the working directory.
func AdapterBin() (string, error) {
	if b := os.Getenv("PROMADAPTER_BIN"); b != "" {
		return b, nil
	}
	dir, _ := os.Getwd()
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if p := filepath.Join(d, "bin", "promadapter"); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("no promadapter binary: run `make build` (or set PROMADAPTER_BIN)")
}

// StartAdapter starts promadapter on a free loopback port with the cluster's admin kubeconfig,
// waits for its /readyz (which includes the first metric discovery) and registers its
// APIServices. The caller must Stop it (or use Cleanup).
func (c *Cluster) StartAdapter(ctx context.Context, o AdapterOptions) (*Adapter, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	dir := o.Dir
	if dir == "" {
		dir = filepath.Join(c.Dir, "promadapter-"+strconv.Itoa(port))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	args := []string{
		"--prometheus-url=" + o.PrometheusURL,
		"--secure-port=" + strconv.Itoa(port), "--bind-address=127.0.0.1", "--cert-dir=" + dir,
		"--lister-kubeconfig=" + c.Kubeconfig,
		"--authentication-kubeconfig=" + c.Kubeconfig, "--authorization-kubeconfig=" + c.Kubeconfig,
		"--metrics-relist-interval=5s", "--metrics-max-age=1m", "--v=2",
	}
	if o.ConfigFile != "" {
		args = append(args, "--config="+o.ConfigFile)
	}
	args = append(args, o.ExtraArgs...)
	a := &Adapter{Port: port, LogPath: filepath.Join(dir, "promadapter.log")}
	a.process, err = StartProcessEnv(context.WithoutCancel(ctx), "promadapter", a.LogPath, o.Env, o.Bin, args...)
	if err != nil {
		return nil, err
	}
	if err := waitAdapterReady(ctx, port, a.process); err != nil {
		a.Stop()
		return nil, err
	}
	if err := c.RegisterAdapter(ctx, port, AllAdapterGroups); err != nil {
		a.Stop()
		return nil, err
	}
	names := make([]string, len(AllAdapterGroups))
	for i, g := range AllAdapterGroups {
		names[i] = g.Name()
	}
	if err := c.WaitAPIServicesAvailable(ctx, names...); err != nil {
		a.Stop()
		return nil, fmt.Errorf("%w (adapter log: %s)", err, a.LogPath)
	}
	return a, nil
}

// waitAdapterReady waits up to 60 s for the promadapter process serving HTTPS on
// 127.0.0.1:port to answer GET /readyz with 200 (its certificate is not verified), and fails
// early if the process exits.
func waitAdapterReady(ctx context.Context, port int, process *Process) error {
	url := fmt.Sprintf("https://127.0.0.1:%d/readyz", port)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // readiness only
	return readiness{component: "promadapter", expectation: "GET " + url + " to answer 200", timeout: 60 * time.Second, process: process}.
		wait(ctx, func(ctx context.Context) (bool, string) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			resp, err := client.Do(req)
			if err != nil {
				return false, err.Error()
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK, resp.Status
		})
}

// Stop ends the adapter.
func (a *Adapter) Stop() {
	if a != nil && a.process != nil {
		a.process.Stop()
	}
}
