//go:build unix && !linux

package testbed

import "syscall"

// childProcAttr puts a child in its own process group, so Stop can signal the child and everything
// it started. Only Linux can also tie the child's life to the test binary's (Pdeathsig).
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// groupHasLiveMembers reports whether process group pgid still exists. Without /proc, zombies
// waiting for init count as members.
func groupHasLiveMembers(pgid int) bool {
	return syscall.Kill(-pgid, 0) == nil
}
