package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stopGracePeriod is how long Stop waits after SIGTERM before it sends SIGKILL.
const stopGracePeriod = 5 * time.Second

// logTailLines is how many lines of a component's log a start-up error quotes.
const logTailLines = 30

// Process is a child process started by StartProcess, with its output in a log file.
//
// The process leads its own process group; Stop signals the whole group, and when the process exits
// anything still left in its group is killed, so no grandchild outlives it.
type Process struct {
	// Name says what the process is in errors and logs, e.g. "kube-apiserver".
	Name string
	// LogPath is the file that receives the process's standard output and standard error.
	LogPath string
	// Args is the full command line, binary first.
	Args []string

	cmd      *exec.Cmd
	done     chan struct{} // closed once the process has exited and been reaped
	waitErr  error         // the exit status; written before done is closed
	stopOnce sync.Once
}

// StartProcess starts bin with args, appending its standard output and standard error to logPath
// (created with its directory if needed; the first line written is the command line).
//
// The process runs until Stop is called or ctx is done, whichever comes first; pass
// context.WithoutCancel(ctx) for a process that should outlive ctx. The caller owns the Process and
// must call Stop (Cleanup registers it with a test).
func StartProcess(ctx context.Context, name, logPath string, bin string, args ...string) (*Process, error) {
	return StartProcessEnv(ctx, name, logPath, nil, bin, args...)
}

// StartProcessEnv is StartProcess with env ("KEY=value") added to the process's environment.
func StartProcessEnv(ctx context.Context, name, logPath string, env []string, bin string, args ...string) (*Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, fmt.Errorf("starting %s: creating the directory for its log: %w", name, err)
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("starting %s: opening its log: %w", name, err)
	}
	// The child holds its own copy of the descriptor; ours is not needed once it has started.
	defer logFile.Close()

	cmd := exec.Command(bin, args...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = childProcAttr()
	p := &Process{
		Name:    name,
		LogPath: logPath,
		Args:    append([]string{bin}, args...),
		cmd:     cmd,
		done:    make(chan struct{}),
	}
	fmt.Fprintf(logFile, "# testbed: %s\n", p.CommandLine())
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s (%s): %w", name, p.CommandLine(), err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		killGroupRemains(cmd.Process.Pid)
		close(p.done)
	}()
	go func() {
		select {
		case <-ctx.Done():
			p.Stop()
		case <-p.done:
		}
	}()
	return p, nil
}

// killGroupRemains kills what a reaped group leader left in its process group and waits (at most
// stopGracePeriod) until none of those processes is alive any more. The group id cannot be reused
// while any member exists, so the signal cannot reach another group; ESRCH means the group is empty.
// Killed orphans may linger briefly as zombies until init reaps them; they run no code.
func killGroupRemains(pgid int) {
	if syscall.Kill(-pgid, syscall.SIGKILL) != nil {
		return
	}
	deadline := time.Now().Add(stopGracePeriod)
	for groupHasLiveMembers(pgid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// PID is the process id, which is also the id of its process group.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited and been reaped, and nothing in its process group is
// alive any more.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and if so its exit status (nil for status 0).
func (p *Process) Exited() (exited bool, exitErr error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// CommandLine is the command line, quoted so a person can paste it into a shell.
func (p *Process) CommandLine() string { return shellQuote(p.Args) }

// Stop sends SIGTERM to the process group, then SIGKILL if the process has not exited within 5 s,
// and returns once the process is reaped and nothing in its group is alive any more. It is safe to call more than once and from several
// goroutines.
func (p *Process) Stop() {
	p.stopOnce.Do(func() {
		pgid := p.cmd.Process.Pid
		if exited, _ := p.Exited(); !exited {
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(stopGracePeriod):
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
			}
		}
	})
	<-p.done
}

// Cleanup registers Stop with t, and on failure logs the tail of the process's log.
func (p *Process) Cleanup(t testing.TB) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log %s, last lines:\n%s", p.Name, p.LogPath, p.LogTail(logTailLines))
		}
		p.Stop()
	})
}

// LogTail returns the last n lines of the process's log, or a note saying why it cannot be read.
func (p *Process) LogTail(n int) string { return fileTail(p.LogPath, n) }

// describeLog is appended to errors about the process: where its log is and how it ends.
func (p *Process) describeLog() string {
	return fmt.Sprintf("log %s, last lines:\n%s", p.LogPath, p.LogTail(logTailLines))
}

// fileTail returns the last n lines of the file at path.
func fileTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// runCommand runs a short-lived command to completion in its own process group and returns its
// standard output. The error names the full command line and quotes its standard error. When ctx
// is done the group is killed.
func runCommand(ctx context.Context, stdin []byte, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = childProcAttr()
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = stopGracePeriod
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w (%w)", err, ctxErr)
		}
		return stdout.String(), fmt.Errorf("%s: %w\nstderr:\n%s", shellQuote(append([]string{bin}, args...)), err,
			strings.TrimRight(stderr.String(), "\n"))
	}
	return stdout.String(), nil
}

// shellQuote joins args into one line a POSIX shell reads back as the same words.
func shellQuote(args []string) string {
	quoted := make([]string, len(args))
	for i, arg := range args {
		if arg != "" && strings.IndexFunc(arg, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,@+%", r))
		}) < 0 {
			quoted[i] = arg
			continue
		}
		quoted[i] = "'" + strings.ReplaceAll(arg, "'", `'\''`) + "'"
	}
	return strings.Join(quoted, " ")
}
