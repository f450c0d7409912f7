// Package memlimit sets the Go runtime's soft memory limit from the container's memory limit.
//
// Without a limit the garbage collector lets the heap grow to twice what is live before it
// collects (GOGC=100). A large answer — `kubectl top pods -A` in a cluster of 100,000 pods
// builds one PodMetrics per pod — then doubles the adapter's peak for no reason but timing, and
// a container whose limit sits between the live heap and twice it is killed by the kernel even
// though the memory it needs fits. With the runtime told the limit (a fraction of it, leaving
// room for the memory the runtime does not manage: stacks, binary pages), it collects harder as
// the heap nears it. Go does not read the cgroup's memory limit by itself (only its CPU quota).
package memlimit

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
)

// unlimited is the value at or above which a cgroup v1 limit means "no limit" (the kernel
// reports a page-rounded LONG_MAX).
const unlimited = 1 << 62

// Limit is a container memory limit found in the process' cgroup.
type Limit struct {
	Bytes int64
	// File is the cgroup file it was read from.
	File string
}

// Find reads the memory limit of the process' cgroup from fsys (the root file system: "/"
// in production, a test tree in tests). cgroup v2 (memory.max of the unified hierarchy) is
// tried first, then v1 (memory.limit_in_bytes of the memory controller). ok is false when the
// process has no memory limit or runs outside any cgroup hierarchy it can read.
func Find(fsys fs.FS) (limit Limit, ok bool, err error) {
	groups, err := readProcCgroup(fsys)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Limit{}, false, nil
		}
		return Limit{}, false, err
	}
	type candidate struct {
		mounts      []string
		group, file string
	}
	var candidates []candidate
	if g, ok := groups[""]; ok {
		candidates = append(candidates, candidate{[]string{"sys/fs/cgroup", "sys/fs/cgroup/unified"}, g, "memory.max"})
	}
	if g, ok := groups["memory"]; ok {
		candidates = append(candidates, candidate{[]string{"sys/fs/cgroup/memory"}, g, "memory.limit_in_bytes"})
	}
	for _, c := range candidates {
		for _, mount := range c.mounts {
			// Inside a container with its own cgroup namespace the group path is "/" and the
			// mount is the container's own group; outside, the group is under the mount.
			for _, dir := range []string{path.Join(mount, c.group), mount} {
				name := path.Join(dir, c.file)
				data, err := fs.ReadFile(fsys, name)
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				if err != nil {
					return Limit{}, false, fmt.Errorf("reading %s: %w", "/"+name, err)
				}
				bytes, limited, err := parseLimit(strings.TrimSpace(string(data)))
				if err != nil {
					return Limit{}, false, fmt.Errorf("reading %s: %w", "/"+name, err)
				}
				if !limited {
					return Limit{}, false, nil
				}
				return Limit{Bytes: bytes, File: "/" + name}, true, nil
			}
		}
	}
	return Limit{}, false, nil
}

// readProcCgroup maps each controller of /proc/self/cgroup ("" for the v2 unified line,
// "0::/path") to the process' group path, without its leading slash.
func readProcCgroup(fsys fs.FS) (map[string]string, error) {
	f, err := fsys.Open("proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	groups := map[string]string{}
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(scanner.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		group := strings.TrimPrefix(parts[2], "/")
		for _, controller := range strings.Split(parts[1], ",") {
			groups[controller] = group
		}
	}
	return groups, scanner.Err()
}

// parseLimit reads memory.max ("max" or bytes) or memory.limit_in_bytes (bytes).
func parseLimit(s string) (int64, bool, error) {
	if s == "max" {
		return 0, false, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, false, fmt.Errorf("%q is not a memory limit in bytes", s)
	}
	return v, v < unlimited, nil
}

// Applied describes what Apply did, for the log.
type Applied struct {
	// Set is whether Apply set the runtime's limit.
	Set bool
	// Bytes is the runtime's soft limit Apply set, Container the limit it was derived from.
	Bytes     int64
	Container Limit
	// Reason says why nothing was set, when Set is false.
	Reason string
}

// Apply sets the runtime's soft memory limit to ratio × the container's memory limit found in
// fsys. It leaves the runtime alone when GOMEMLIMIT is set (the operator's explicit choice
// wins), when ratio is 0 (disabled), or when there is no container limit.
func Apply(fsys fs.FS, ratio float64) (Applied, error) {
	switch {
	case ratio == 0:
		return Applied{Reason: "disabled (--memory-limit-ratio=0)"}, nil
	case ratio < 0 || ratio > 1:
		return Applied{}, fmt.Errorf("--memory-limit-ratio=%g must be between 0 (off) and 1", ratio)
	}
	if v, ok := os.LookupEnv("GOMEMLIMIT"); ok && v != "" {
		return Applied{Reason: "GOMEMLIMIT=" + v + " is set and wins"}, nil
	}
	limit, ok, err := Find(fsys)
	if err != nil {
		return Applied{}, err
	}
	if !ok {
		return Applied{Reason: "the container has no memory limit"}, nil
	}
	bytes := int64(math.Floor(float64(limit.Bytes) * ratio))
	debug.SetMemoryLimit(bytes)
	return Applied{Set: true, Bytes: bytes, Container: limit}, nil
}
