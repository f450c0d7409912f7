package testbed

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// AdapterProcess is a promadapter process on a port of the test's choosing, which the test can
// restart: a restart drops the connections kube-apiserver keeps to it, so the next request opens
// a new one (and sees, say, a new serving certificate). Unlike StartAdapter it registers nothing.
type AdapterProcess struct {
	Port    int
	LogPath string
	bin     string
	args    []string

	mu      sync.Mutex
	process *Process
}

// StartAdapterProcess starts bin with args plus --secure-port=port and --bind-address=127.0.0.1,
// logging to logPath, and waits up to 60 s for its /readyz.
func StartAdapterProcess(ctx context.Context, bin, logPath string, port int, args ...string) (*AdapterProcess, error) {
	a := &AdapterProcess{Port: port, LogPath: logPath, bin: bin,
		args: append(append([]string(nil), args...), "--secure-port="+strconv.Itoa(port), "--bind-address=127.0.0.1")}
	return a, a.Restart(ctx)
}

// Restart stops the process, if it runs, and starts it again with the same arguments.
func (a *AdapterProcess) Restart(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.process != nil {
		a.process.Stop()
	}
	var err error
	a.process, err = StartProcess(context.WithoutCancel(ctx), "promadapter", a.LogPath, a.bin, a.args...)
	if err != nil {
		return err
	}
	url := fmt.Sprintf("https://127.0.0.1:%d/readyz", a.Port)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // readiness only
	return readiness{component: "promadapter", expectation: "GET " + url + " to answer 200", timeout: 60 * time.Second, process: a.process}.
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

// LogTail returns the last n lines of the log.
func (a *AdapterProcess) LogTail(n int) string { return fileTail(a.LogPath, n) }

// Stop ends the process.
func (a *AdapterProcess) Stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.process != nil {
		a.process.Stop()
	}
}
