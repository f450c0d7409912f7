package testbed

import (
	"context"
	"strconv"
	"sync"
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
	return waitAdapterReady(ctx, a.Port, a.process)
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
