package testbed

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// procEntry is a process as /proc describes it.
type procEntry struct {
	pid, ppid, pgid int
	comm            string
	state           string // "R", "S", … or "Z" for a zombie (dead, not yet reaped)
}

// listProcesses reads every process's state, parent and process group from /proc/<pid>/stat.
func listProcesses(t *testing.T) []procEntry {
	t.Helper()
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var entries []procEntry
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		// "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after
		// the last ')'.
		text := string(stat)
		closing := strings.LastIndexByte(text, ')')
		opening := strings.IndexByte(text, '(')
		fields := strings.Fields(text[closing+1:])
		if opening < 0 || closing < opening || len(fields) < 3 {
			t.Fatalf("cannot parse /proc/%d/stat: %q", pid, text)
		}
		ppid, _ := strconv.Atoi(fields[1])
		pgid, _ := strconv.Atoi(fields[2])
		entries = append(entries, procEntry{pid: pid, ppid: ppid, pgid: pgid, comm: text[opening+1 : closing], state: fields[0]})
	}
	return entries
}
