// Measuring one kind of backend: loading it, checking its answers, timing the adapter in front of it.

package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"github.com/promadapter/promadapter/test/testbed"
)

// measureBackend starts kind with the fixture's series, checks it answers the selector
// request's PromQL with the fixture's values, starts an adapter whose rule serves
// underTestMetric from it, and times bench.opts.requests sequential selector requests through
// kube-apiserver, counting the adapter's queries to the backend meanwhile.
func (e *sizeEnv) measureBackend(ctx context.Context, kind string) (BackendResult, error) {
	r := BackendResult{Kind: kind, AdapterKind: adapterKinds[kind]}
	dir := filepath.Join(e.dir, kind)
	// Each backend gets the same series, its samples placed around its own start, so that the
	// rate windows at query time are covered whatever the earlier kinds took.
	var openMetrics bytes.Buffer
	now := time.Now()
	if err := e.spec.WriteOpenMetrics(&openMetrics, now.Add(-dataLookback), now.Add(dataHorizon(e.spec.Pods)), sampleStep); err != nil {
		return r, err
	}
	url, version, stop, err := e.bench.startBackend(ctx, kind, dir, openMetrics.Bytes())
	if err != nil {
		return r, err
	}
	defer stop()
	r.Version = version

	// The backend answers the fixture's values before the adapter is involved: a wrong figure
	// below is then the adapter's, not the data's.
	promClient, err := promapi.NewClient(promapi.Config{Address: url})
	if err != nil {
		return r, err
	}
	raw := *e
	raw.promQL = promv1.NewAPI(promClient)
	if err := retryUntil(ctx, 2*time.Minute, raw.rawCall(e.selectorQuery, e.wholeNamespace).once); err != nil {
		return r, fmt.Errorf("the backend does not answer the fixture's values for %s: %w", e.selectorQuery, err)
	}

	configFile := filepath.Join(dir, "promadapter.yaml")
	if err := writeBackendConfig(configFile, url, r.AdapterKind); err != nil {
		return r, err
	}
	if r.Latency, r.UpstreamQueries, err = e.backendBatch(ctx, url, configFile, filepath.Join(dir, "adapter"), adapterArgs); err != nil {
		return r, err
	}
	// The same requests with the cache off: every request is one query, so the latency is the
	// backend's own cost through the adapter, which the cached figures hide.
	uncached := append(slices.Clip(adapterArgs), "--query-cache-period=0")
	if r.LatencyUncached, r.UpstreamQueriesUncached, err = e.backendBatch(ctx, url, configFile, filepath.Join(dir, "adapter-uncached"), uncached); err != nil {
		return r, fmt.Errorf("cache off: %w", err)
	}
	return r, nil
}

// backendBatch starts an adapter with args on configFile, then times the bench's number of
// sequential selector requests through kube-apiserver, each checked against the fixture, and
// counts the queries they sent to the backend under test.
func (e *sizeEnv) backendBatch(ctx context.Context, url, configFile, dir string, args []string) (Latency, int, error) {
	adapter, err := e.cluster.StartAdapter(ctx, testbed.AdapterOptions{
		Bin: e.bench.adapterBin,
		// The rules of the default config query the same server as "default".
		PrometheusURL: url,
		ConfigFile:    configFile,
		Dir:           dir,
		ExtraArgs:     args,
	})
	if err != nil {
		return Latency{}, 0, err
	}
	defer adapter.Stop()
	direct, err := directClient(e.cluster.RESTConfig, adapter.Port)
	if err != nil {
		return Latency{}, 0, err
	}
	path := "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + e.namespace + "/pods/*/" + underTestMetric
	request := metricCall(e.client, path, labelSelector(e.app), e.expected)
	if err := retryUntil(ctx, 30*time.Second, request.once); err != nil {
		return Latency{}, 0, fmt.Errorf("the first selector request through kube-apiserver (adapter log %s): %w", adapter.LogPath, err)
	}
	if _, err := timeCalls(ctx, 5, request.do, request.check); err != nil {
		return Latency{}, 0, fmt.Errorf("warming up: %w", err)
	}
	// Start with the warm-up's answers expired, so the requests pay for their own queries.
	if err := sleep(ctx, defaultCachePeriod+time.Second); err != nil {
		return Latency{}, 0, err
	}
	before, err := scrapeREST(ctx, direct)
	if err != nil {
		return Latency{}, 0, fmt.Errorf("reading the adapter's metrics: %w", err)
	}
	n := e.bench.opts.requests
	latency, err := timeCalls(ctx, n, request.do, request.check)
	if err != nil {
		return Latency{}, 0, fmt.Errorf("%d selector requests: %w", n, err)
	}
	after, err := scrapeREST(ctx, direct)
	if err != nil {
		return Latency{}, 0, fmt.Errorf("reading the adapter's metrics: %w", err)
	}
	onBackend := map[string]string{"backend": underTestBackend}
	queries := int(after.Sum(upstreamQueriesMetric, onBackend) - before.Sum(upstreamQueriesMetric, onBackend))
	if queries < 1 {
		// The first request found the cache cold: it must have queried the backend.
		return Latency{}, 0, fmt.Errorf("%s{backend=%q} did not increase over %d requests that began with a cold cache: the answers did not come from the backend under test (adapter log %s)",
			upstreamQueriesMetric, underTestBackend, n, adapter.LogPath)
	}
	return latency, queries, nil
}
