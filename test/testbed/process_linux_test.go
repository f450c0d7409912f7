package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProcessStopKillsTheWholeProcessGroup(t *testing.T) {
	tests := []struct {
		name   string
		script string
	}{
		{"a process that exits on SIGTERM, with a grandchild", "sleep 300 & wait"},
		// The leader dies on SIGTERM, its grandchild does not: it is killed once the leader is reaped.
		{"a process that exits on SIGTERM, with a grandchild that ignores it", `(trap "" TERM; sleep 300) & wait`},
		// The shell ignores SIGTERM, so only SIGKILL after the grace period ends it.
		{"a process that ignores SIGTERM, with a grandchild", `trap "" TERM; sleep 300 & while true; do wait; done`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := StartProcess(t.Context(), "sh", filepath.Join(t.TempDir(), "sh.log"), "/bin/sh", "-c", tc.script)
			if err != nil {
				t.Fatal(err)
			}
			p.Cleanup(t)
			waitForGroupSize(t, p.PID(), 2)

			p.Stop()
			if exited, _ := p.Exited(); !exited {
				t.Fatal("Stop returned before the process exited")
			}
			if left := groupMembers(t, p.PID()); len(left) > 0 {
				t.Errorf("processes left in the group after Stop: %v", left)
			}
			p.Stop() // a second Stop returns at once
		})
	}
}

func TestProcessStopsWhenItsContextIsDone(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	p, err := StartProcess(ctx, "sleep", filepath.Join(t.TempDir(), "sleep.log"), "sleep", "300")
	if err != nil {
		t.Fatal(err)
	}
	p.Cleanup(t)
	cancel()
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the process still runs 10s after its context was cancelled")
	}
}

func TestProcessLogHoldsTheCommandLineAndTheOutput(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "logs", "echo.log")
	p, err := StartProcess(t.Context(), "echo", logPath, "/bin/sh", "-c", "echo to stdout; echo to stderr >&2")
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	if _, exitErr := p.Exited(); exitErr != nil {
		t.Fatalf("exit status: %v", exitErr)
	}
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	want := "# testbed: /bin/sh -c 'echo to stdout; echo to stderr >&2'\nto stdout\nto stderr\n"
	if string(data) != want {
		t.Errorf("log = %q, want %q", data, want)
	}
}

func TestReadinessErrorsNameTheComponentTheExpectationAndTheLog(t *testing.T) {
	t.Run("a process that exits before it is ready", func(t *testing.T) {
		logPath := filepath.Join(t.TempDir(), "broken.log")
		p, err := StartProcess(t.Context(), "broken", logPath, "/bin/sh", "-c", "echo cannot bind 127.0.0.1:1; exit 3")
		if err != nil {
			t.Fatal(err)
		}
		err = readiness{component: "broken", expectation: "GET /healthz to answer 200", timeout: time.Minute, process: p}.
			wait(t.Context(), func(context.Context) (bool, string) { return false, "connection refused" })
		wantParts := []string{
			"broken: exited before it was ready (exit status 3)",
			"expected GET /healthz to answer 200",
			"last observed: connection refused",
			"log " + logPath,
			"cannot bind 127.0.0.1:1",
		}
		assertErrorContains(t, err, wantParts)
	})
	t.Run("a component that is never ready", func(t *testing.T) {
		err := readiness{component: "slow", expectation: "the answer ok", timeout: 300 * time.Millisecond}.
			wait(t.Context(), func(context.Context) (bool, string) { return false, "503 not yet" })
		wantParts := []string{
			"slow: not ready in time (context deadline exceeded, limit 300ms)",
			"expected the answer ok",
			"last observed: 503 not yet",
		}
		assertErrorContains(t, err, wantParts)
	})
}

func TestRunCommandErrorsQuoteTheCommandLineAndStandardError(t *testing.T) {
	out, err := runCommand(t.Context(), []byte("from stdin\n"), "/bin/sh", "-c", "cat; echo bad flag >&2; exit 2")
	if out != "from stdin\n" {
		t.Errorf("stdout = %q, want %q", out, "from stdin\n")
	}
	assertErrorContains(t, err, []string{"/bin/sh -c 'cat; echo bad flag >&2; exit 2': exit status 2", "stderr:\nbad flag"})
}

func TestFreePortsAreDistinct(t *testing.T) {
	ports, err := freePorts(20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, port := range ports {
		if port <= 0 || seen[port] {
			t.Fatalf("ports %v are not 20 distinct ports", ports)
		}
		seen[port] = true
	}
}

func assertErrorContains(t *testing.T, err error, wantParts []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", wantParts)
	}
	for _, part := range wantParts {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not contain %q", err, part)
		}
	}
}

// waitForGroupSize waits until the process group pgid has at least n members.
func waitForGroupSize(t *testing.T, pgid, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(groupMembers(t, pgid)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("process group %d did not reach %d members within 10s: %v", pgid, n, groupMembers(t, pgid))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groupMembers lists "pid (comm)" of the live processes in group pgid. Zombies are left out: they
// are dead, and killed orphans stay zombies until init gets round to reaping them.
func groupMembers(t *testing.T, pgid int) []string {
	t.Helper()
	var members []string
	for _, proc := range listProcesses(t) {
		if proc.pgid == pgid && proc.state != "Z" {
			members = append(members, fmt.Sprintf("%d (%s)", proc.pid, proc.comm))
		}
	}
	return members
}
