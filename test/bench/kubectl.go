// Timing kubectl top against the cluster, live or from a replayed answer.

package main

import (
	"context"
	"fmt"
	"strings"
)

// timeKubectl runs kubectl topRuns times against the cluster and checks each output has
// wantLines lines.
func (e *sizeEnv) timeKubectl(ctx context.Context, wantLines int, args ...string) (Latency, error) {
	return e.timeKubectlWith(ctx, e.cluster.Kubectl, wantLines, args...)
}

// timeKubectlWith is timeKubectl with run running kubectl.
func (e *sizeEnv) timeKubectlWith(ctx context.Context, run func(context.Context, ...string) (string, error), wantLines int, args ...string) (Latency, error) {
	var out string
	lat, err := timeCalls(ctx, e.bench.opts.topRuns, func(ctx context.Context) error {
		var err error
		out, err = run(ctx, args...)
		return err
	}, func() (int, error) {
		lines := strings.Count(strings.TrimSpace(out), "\n") + 1
		if lines != wantLines {
			return lines, fmt.Errorf("kubectl %s printed %d lines, want %d", strings.Join(args, " "), lines, wantLines)
		}
		return lines, nil
	})
	if err != nil {
		return lat, fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), err)
	}
	return lat, nil
}

// timeKubectlReplayed times kubectl through a replayProxy that answers the PodMetrics list
// of all namespaces from a recording (made by one untimed run first): kubectl's own time.
func (e *sizeEnv) timeKubectlReplayed(ctx context.Context, wantLines int, args ...string) (Latency, error) {
	proxy, err := startReplayProxy(e.cluster.RESTConfig, "/apis/metrics.k8s.io/v1beta1/pods")
	if err != nil {
		return Latency{}, err
	}
	defer proxy.close()
	kubeconfig, err := proxy.writeKubeconfig(e.dir)
	if err != nil {
		return Latency{}, err
	}
	run := func(ctx context.Context, args ...string) (string, error) {
		return commandOutput(ctx, e.bench.bins.Kubectl, append([]string{"--kubeconfig=" + kubeconfig}, args...)...)
	}
	if _, err := run(ctx, args...); err != nil {
		return Latency{}, fmt.Errorf("recording kubectl's answer: %w", err)
	}
	if !proxy.replayed() {
		return Latency{}, fmt.Errorf("kubectl %s did not ask for %s: nothing to replay", strings.Join(args, " "), proxy.path)
	}
	return e.timeKubectlWith(ctx, run, wantLines, args...)
}
