package testbed

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// pollInterval is how often start-up waits look again.
const pollInterval = 200 * time.Millisecond

// readiness describes one wait for a component to reach a state.
type readiness struct {
	// component names what is being waited for, e.g. "kube-apiserver".
	component string
	// expectation says what counts as ready, e.g. "GET https://127.0.0.1:6443/readyz to answer 200 ok".
	expectation string
	// timeout bounds the wait in addition to the context's deadline; defaultStartTimeout when zero.
	timeout time.Duration
	// process, when set, ends the wait early if it exits, and its log is quoted in errors.
	process *Process
}

// wait calls check every pollInterval until it reports ready, and fails when ctx is done, the
// timeout passes or the process exits. check returns whether the component is ready and, if not, a
// short description of what it saw instead; the last description is quoted in the error.
func (r readiness) wait(ctx context.Context, check func(ctx context.Context) (ready bool, observed string)) error {
	if r.timeout <= 0 {
		r.timeout = defaultStartTimeout
	}
	limit := r.timeout
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < limit {
		limit = time.Until(deadline).Round(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	var processDone <-chan struct{}
	if r.process != nil {
		processDone = r.process.Done()
	}
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	const nothingChecked = "nothing checked yet"
	observed := nothingChecked
	for {
		ready, seen := check(ctx)
		if ready {
			return nil
		}
		// A check cut short by the deadline only saw the deadline; keep what the one before saw.
		// (The deadline can pass a moment before ctx reports it.)
		if time.Now().Before(deadline) || observed == nothingChecked {
			observed = seen
		}
		select {
		case <-ticker.C:
		case <-processDone:
			_, exitErr := r.process.Exited()
			return fmt.Errorf("%s: exited before it was ready (%v): expected %s; last observed: %s; %s",
				r.component, exitStatus(exitErr), r.expectation, observed, r.process.describeLog())
		case <-ctx.Done():
			err := fmt.Errorf("%s: not ready in time (%v, limit %s): expected %s; last observed: %s",
				r.component, ctx.Err(), limit, r.expectation, observed)
			if r.process != nil {
				err = fmt.Errorf("%w; %s", err, r.process.describeLog())
			}
			return err
		}
	}
}

// exitStatus describes a process's exit error, which is nil for exit status 0.
func exitStatus(exitErr error) string {
	if exitErr == nil {
		return "exit status 0"
	}
	return exitErr.Error()
}

// httpCheck returns a check that GETs url with client and is ready when the answer is 200 and
// accept returns true for its body, trimmed of white space.
func httpCheck(client *http.Client, url string, accept func(body string) bool) func(ctx context.Context) (bool, string) {
	return func(ctx context.Context) (bool, string) {
		reqCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, url, nil)
		if err != nil {
			return false, err.Error()
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		text := strings.TrimSpace(string(body))
		if resp.StatusCode == http.StatusOK && accept(text) {
			return true, ""
		}
		return false, fmt.Sprintf("%s: %q", resp.Status, truncate(text, 1000))
	}
}

// bodyIs accepts exactly want.
func bodyIs(want string) func(string) bool {
	return func(body string) bool { return body == want }
}

// bodyContains accepts any body containing want.
func bodyContains(want string) func(string) bool {
	return func(body string) bool { return strings.Contains(body, want) }
}

// newHTTPClient returns a client that does not reuse connections (a restarted component must not
// see stale ones) and uses tlsConfig for https URLs.
func newHTTPClient(tlsConfig *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig, DisableKeepAlives: true}}
}

// truncate shortens s to at most n bytes, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
