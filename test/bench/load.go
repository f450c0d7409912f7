package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// LoadResult is the HPA-style selector request sent through kube-apiserver at a fixed rate for a
// fixed time (issue #14: 1,000 requests/s for 60 s with no errors).
//
// The generator is open-loop: request i is due at start + i/rate whether or not earlier ones
// have finished, and its latency counts from when it was due, not from when a worker picked it
// up. A closed loop (each worker waiting for its previous answer) would slow down with the
// adapter and hide exactly the queueing this measures ("coordinated omission").
type LoadResult struct {
	// Rate is the requests per second asked for; Duration how long they were sent.
	Rate     int     `json:"rate"`
	Duration Seconds `json:"duration"`
	// Sent is how many requests were due; Errors how many failed or answered wrong values;
	// FirstError the first failure's text.
	Sent       int    `json:"sent"`
	Errors     int    `json:"errors"`
	FirstError string `json:"firstError,omitempty"`
	// Achieved is the rate of answered requests over the time from the first due to the last
	// answer: below Rate when the answers fell behind.
	Achieved float64 `json:"achieved"`
	// Latency counts from each request's due time to its checked answer.
	Latency Latency `json:"latency"`
	// AdapterCPU is the adapter's CPU time over the run divided by its wall time, in cores.
	AdapterCPU float64 `json:"adapterCPU"`
	// RSSAfter is the adapter's VmRSS at the end of the run.
	RSSAfter int64 `json:"rssAfter"`
}

// loadWorkers bounds the requests in flight: at 1,000/s with answers in a few ms, a few dozen
// suffice; more would only measure the client's goroutine scheduling.
const loadWorkers = 128

// runLoad sends the request of c at rate per second for d and measures the adapter (pid).
func runLoad(ctx context.Context, c call, rate int, d time.Duration, pid int) (LoadResult, error) {
	r := LoadResult{Rate: rate, Duration: secondsOf(d)}
	total := int(d.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	due := make(chan time.Time, total)
	var (
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, total)
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		r.Errors++
		if r.FirstError == "" {
			r.FirstError = err.Error()
		}
	}
	cpuBefore, err := cpuTime(pid)
	if err != nil {
		return r, err
	}
	var wg sync.WaitGroup
	for range loadWorkers {
		wg.Go(func() {
			for at := range due {
				// once, not do: do keeps one answer per call value, shared by all workers.
				if err := c.once(ctx); err != nil {
					fail(err)
					continue
				}
				took := time.Since(at)
				mu.Lock()
				latencies = append(latencies, took)
				mu.Unlock()
			}
		})
	}
	started := time.Now()
	for i := range total {
		at := started.Add(time.Duration(i) * interval)
		if wait := time.Until(at); wait > 0 {
			if err := sleep(ctx, wait); err != nil {
				close(due)
				wg.Wait()
				return r, err
			}
		}
		due <- at
	}
	close(due)
	wg.Wait()
	elapsed := time.Since(started)
	cpuAfter, err := cpuTime(pid)
	if err != nil {
		return r, err
	}
	mem, err := readMemory(pid)
	if err != nil {
		return r, err
	}
	r.Sent = total
	r.Achieved = float64(len(latencies)) / elapsed.Seconds()
	r.Latency = summarize(latencies, 0)
	r.AdapterCPU = (cpuAfter - cpuBefore).Seconds() / elapsed.Seconds()
	r.RSSAfter = mem.RSS
	klog.InfoS("Load run done", "rate", rate, "duration", d, "errors", r.Errors, "p50", r.Latency.P50, "p99", r.Latency.P99, "adapterCores", fmt.Sprintf("%.2f", r.AdapterCPU))
	return r, nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times; 100 on every Linux this
// runs on (glibc's sysconf(_SC_CLK_TCK) answers it from the kernel's auxiliary vector).
const clockTicks = 100

// cpuTime is the user plus system CPU time a process has used, from /proc/<pid>/stat.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("reading the CPU time of pid %d: %w", pid, err)
	}
	return parseStatCPU(string(data))
}

// cpuSeconds is cpuTime in Seconds, the unit of the results.
func cpuSeconds(pid int) (Seconds, error) {
	d, err := cpuTime(pid)
	return secondsOf(d), err
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a /proc/<pid>/stat line. The command
// name (field 2) is in parentheses and may hold spaces, so fields are counted after its ")".
func parseStatCPU(stat string) (time.Duration, error) {
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("unexpected stat line %q", stat)
	}
	fields := strings.Fields(stat[end+1:])
	// fields[0] is field 3 (state), so utime (14) and stime (15) are fields[11] and fields[12].
	if len(fields) < 13 {
		return 0, fmt.Errorf("unexpected stat line %q", stat)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("unexpected stat line %q: %w", stat, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
