package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// findChildPID returns the pid of the child of this process whose command line contains the
// argument arg exactly, e.g. "--secure-port=43121". The test bed's Adapter does not expose its
// process, and the port it listens on names it uniquely.
func findChildPID(arg string) (int, error) {
	self := os.Getpid()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("finding the process with argument %s: %w", arg, err)
	}
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		if ppid, err := parentPID(pid); err != nil || ppid != self {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + entry.Name() + "/cmdline")
		if err != nil {
			continue // exited meanwhile
		}
		for _, a := range bytes.Split(cmdline, []byte{0}) {
			if string(a) == arg {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("no child of pid %d has the argument %s", self, arg)
}

// parentPID reads the parent pid from /proc/<pid>/stat ("pid (comm) state ppid …"; comm may hold
// spaces and parentheses, so the fields are read after the last ')').
func parentPID(pid int) (int, error) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	text := string(stat)
	fields := strings.Fields(text[strings.LastIndexByte(text, ')')+1:])
	if len(fields) < 2 {
		return 0, fmt.Errorf("cannot parse /proc/%d/stat: %q", pid, text)
	}
	return strconv.Atoi(fields[1])
}

// Memory is a process's resident set in bytes: now (VmRSS) and its high-water mark (VmHWM),
// and the two parts of VmRSS that matter here: anonymous memory (RssAnon: heap, stacks) and
// file-backed pages (RssFile: the binary's code and read-only data).
type Memory struct {
	RSS, HWM   int64
	Anon, File int64
}

// readMemory reads VmRSS, VmHWM, RssAnon and RssFile from /proc/<pid>/status.
func readMemory(pid int) (Memory, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return Memory{}, fmt.Errorf("reading the memory of pid %d: %w", pid, err)
	}
	defer f.Close()
	return parseStatusMemory(f)
}

// parseStatusMemory reads the VmRSS, VmHWM, RssAnon and RssFile lines ("VmRSS:	   12345
// kB") of a /proc/<pid>/status file; VmRSS and VmHWM must be present.
func parseStatusMemory(r io.Reader) (Memory, error) {
	var m Memory
	var seen int
	scanner := bufio.NewScanner(r)
	for scanner.Scan() {
		key, value, ok := strings.Cut(scanner.Text(), ":")
		field := map[string]*int64{"VmRSS": &m.RSS, "VmHWM": &m.HWM, "RssAnon": &m.Anon, "RssFile": &m.File}[key]
		if !ok || field == nil {
			continue
		}
		fields := strings.Fields(value)
		if len(fields) != 2 || fields[1] != "kB" {
			return Memory{}, fmt.Errorf("unexpected %s line %q", key, scanner.Text())
		}
		kib, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("unexpected %s line %q: %w", key, scanner.Text(), err)
		}
		*field = kib << 10
		if key == "VmRSS" || key == "VmHWM" {
			seen++
		}
	}
	if err := scanner.Err(); err != nil {
		return Memory{}, err
	}
	if seen != 2 {
		return Memory{}, fmt.Errorf("the status file lacks VmRSS or VmHWM")
	}
	return m, nil
}

// dropFromPageCache asks the kernel to forget the cached pages of a file, so the next
// process that runs it reads it from disk, as a node starting a container does.
//
// Without it the adapter's resident set depends on how the binary got into the page cache:
// right after the Go linker wrote it, the same binary maps about 8 MiB more of its own pages
// (RssFile) than when it was read from disk or written by cp (measured on the test bed:
// 65 against 57 MiB at start-up). Pages that a running process maps stay cached; the adapter
// of the previous measurement has stopped before the next one starts.
func dropFromPageCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("dropping %s from the page cache: %w", path, err)
	}
	return nil
}

// loadAverage is the machine's 1-minute load average (from /proc/loadavg), or -1 when unknown.
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return -1
	}
	load, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return -1
	}
	return load
}
