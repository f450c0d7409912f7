package testbed

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// childProcAttr puts a child in its own process group, so Stop can signal the child and everything
// it started, and has the kernel send it SIGKILL when the thread that started it dies, so a crashed
// or timed-out test binary leaves no children behind.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// groupHasLiveMembers reports whether any process other than a zombie is in process group pgid,
// reading /proc/<pid>/stat ("pid (comm) state ppid pgrp …").
func groupHasLiveMembers(pgid int) bool {
	if syscall.Kill(-pgid, 0) != nil {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true // cannot tell; Kill says the group exists
	}
	for _, entry := range entries {
		if _, err := strconv.Atoi(entry.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + entry.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		text := string(stat)
		// comm may hold spaces and parentheses; the fields after the last ')' do not.
		fields := strings.Fields(text[strings.LastIndexByte(text, ')')+1:])
		if len(fields) < 3 || fields[2] != strconv.Itoa(pgid) {
			continue
		}
		if fields[0] != "Z" {
			return true
		}
	}
	return false
}
