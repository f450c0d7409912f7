package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"gopkg.in/yaml.v3"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

// The backend measurement: the selector request served by one custom rule on a backend named
// underTestBackend, for each kind of backend in turn, in one cluster.
const (
	// underTestBackend is the name of the measured backend in the adapter's backends section,
	// and the backend label of its series on the adapter's /metrics.
	underTestBackend = "under-test"
	// underTestMetric is what the rule on underTestBackend serves http_requests_total as: a name
	// no default rule serves, so every answer comes from underTestBackend.
	underTestMetric = "under_test_http_requests_per_second"
	// underTestQuery is the rule's metricsQuery: the default rule's for application counters,
	// so the rendered PromQL is the selector request's of the other measurements.
	underTestQuery = "sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)"
	// upstreamQueriesMetric counts the planner's queries by backend.
	upstreamQueriesMetric = "promadapter_planner_upstream_queries_total"
)

// Backend kinds -backend-kinds may name, in the order of its default.
const (
	kindPrometheus2     = "prometheus2"
	kindPrometheus3     = "prometheus3"
	kindThanos          = "thanos"
	kindVictoriaMetrics = "victoriametrics"
)

var allBackendKinds = []string{kindPrometheus2, kindPrometheus3, kindThanos, kindVictoriaMetrics}

// thanosReplicas is the number of Prometheus replicas (each with a sidecar) behind the querier.
const thanosReplicas = 2

// victoriaMetricsBin is where Debian's victoria-metrics package puts the single-node server.
const victoriaMetricsBin = "/usr/bin/victoria-metrics"

// BackendsResult is the selector request answered from each kind of backend in turn, in one
// cluster of Pods pods.
type BackendsResult struct {
	Pods            int `json:"pods"`
	PodsPerSelector int `json:"podsPerSelector"`
	// Metric is the custom metric the rule on the measured backend serves.
	Metric string `json:"metric"`
	// CachePeriod is the adapter's --query-cache-period (its default).
	CachePeriod Seconds         `json:"cachePeriod"`
	Kinds       []BackendResult `json:"kinds"`
	// LoadBefore and LoadAfter are the machine's 1-minute load average when the measurement
	// started and ended.
	LoadBefore float64 `json:"loadBefore"`
	LoadAfter  float64 `json:"loadAfter"`
}

// BackendResult is one kind of backend.
type BackendResult struct {
	// Kind is the -backend-kinds name (prometheus2, prometheus3, thanos, victoriametrics);
	// AdapterKind the backend's `kind:` in the adapter's config.
	Kind        string `json:"kind"`
	AdapterKind string `json:"adapterKind"`
	// Version is the backend's release, as its binary or package reports it.
	Version string `json:"version"`
	// Latency is the selector request through kube-apiserver, Latency.N sequential requests
	// each checked against the fixture (Latency.Items pods each).
	Latency Latency `json:"latency"`
	// UpstreamQueries is the increase of promadapter_planner_upstream_queries_total
	// {backend="under-test"} over those requests.
	UpstreamQueries int `json:"upstreamQueries"`
	// LatencyUncached and UpstreamQueriesUncached are the same requests with the adapter's
	// cache off (--query-cache-period=0): the backend's own cost through the adapter.
	LatencyUncached         Latency `json:"latencyUncached"`
	UpstreamQueriesUncached int     `json:"upstreamQueriesUncached"`
}

// QueriesPer100 is the upstream queries per 100 requests, cache on.
func (r BackendResult) QueriesPer100() float64 { return per100(r.UpstreamQueries, r.Latency.N) }

// per100 is queries per 100 of n requests.
func per100(queries, n int) float64 {
	if n == 0 {
		return 0
	}
	return 100 * float64(queries) / float64(n)
}

// parseBackendKinds reads -backend-kinds: comma-separated kinds among allBackendKinds, each
// at most once; an empty string is an empty list (the measurement is skipped).
func parseBackendKinds(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, field := range strings.Split(s, ",") {
		kind := strings.TrimSpace(field)
		if kind == "" {
			continue
		}
		if _, ok := adapterKinds[kind]; !ok {
			return nil, fmt.Errorf("unknown backend kind %q; use some of %s", kind, strings.Join(allBackendKinds, ","))
		}
		if seen[kind] {
			return nil, fmt.Errorf("backend kind %q is named twice", kind)
		}
		seen[kind] = true
		out = append(out, kind)
	}
	return out, nil
}

// adapterKinds is the adapter's backend `kind:` for each measured kind.
var adapterKinds = map[string]string{
	kindPrometheus2:     "prometheus",
	kindPrometheus3:     "prometheus",
	kindThanos:          "thanos",
	kindVictoriaMetrics: "victoriametrics",
}

// backendTitles name the kinds for people, in the report.
var backendTitles = map[string]string{
	kindPrometheus2:     "Prometheus 2",
	kindPrometheus3:     "Prometheus 3",
	kindThanos:          fmt.Sprintf("Thanos (querier, %d Prometheus 3 replicas with sidecars)", thanosReplicas),
	kindVictoriaMetrics: "VictoriaMetrics (single node)",
}

// checkBackendBins fails before any measuring when a binary a kind of -backend-kinds needs is
// missing (Prometheus 3 is checked by newBench).
func (b *bench) checkBackendBins() error {
	for _, kind := range b.opts.backendKinds {
		switch kind {
		case kindPrometheus2:
			if _, err := os.Stat(b.bins.Prometheus["2"].Prometheus); err != nil {
				return fmt.Errorf("-backend-kinds %s: %w; install Debian's prometheus package", kind, err)
			}
		case kindThanos:
			if _, err := os.Stat(b.bins.Thanos); err != nil {
				return fmt.Errorf("-backend-kinds %s: %w; run test/tools/deps.sh to build it", kind, err)
			}
		case kindVictoriaMetrics:
			if _, err := os.Stat(victoriaMetricsBin); err != nil {
				return fmt.Errorf("-backend-kinds %s: %w; as root, run `apt-get install --no-install-recommends victoria-metrics`", kind, err)
			}
		}
	}
	return nil
}

// measureBackends runs the backend measurement when -backend-kinds names any, stores it in
// results and adds its time to results.Duration.
func (b *bench) measureBackends(ctx context.Context, results *Results) error {
	if len(b.opts.backendKinds) == 0 {
		return nil
	}
	started := time.Now()
	r, err := b.runBackends(ctx, b.opts.backendKinds, b.opts.backendPods)
	results.Backends = r
	results.Duration += secondsOf(time.Since(started))
	if err != nil {
		return fmt.Errorf("measuring backends: %w", err)
	}
	klog.InfoS("Backends measured", "elapsed", time.Since(started).Round(time.Second))
	return nil
}

// runBackends creates one cluster of pods pods and measures each kind of backend in it in
// turn: a fresh backend loaded with the fixture's series, and a fresh adapter.
func (b *bench) runBackends(ctx context.Context, kinds []string, pods int) (*BackendsResult, error) {
	spec := b.layoutFor(pods)
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	r := &BackendsResult{Pods: pods, Metric: underTestMetric, CachePeriod: secondsOf(defaultCachePeriod), LoadBefore: loadAverage()}
	e := &sizeEnv{bench: b, dir: filepath.Join(b.workDir, "backends-"+strconv.Itoa(pods)), spec: spec, namespace: "ns-0", app: "app-3"}
	klog.InfoS("Starting a cluster for the backend measurement", "pods", pods, "kinds", kinds)
	var err error
	e.cluster, err = testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: b.bins, Dir: filepath.Join(e.dir, "cluster")})
	if err != nil {
		return r, err
	}
	defer e.cluster.Stop()
	if e.client, err = fastClient(e.cluster); err != nil {
		return r, err
	}
	if err := spec.ApplyObjects(ctx, e.client); err != nil {
		return r, fmt.Errorf("creating the fixture's objects: %w", err)
	}
	e.expected, e.wholeNamespace = map[string]float64{}, map[string]float64{}
	for _, p := range spec.PodList() {
		if p.Namespace != e.namespace {
			continue
		}
		e.wholeNamespace[p.Name] = p.RequestRate
		if p.App == e.app {
			e.expected[p.Name] = p.RequestRate
		}
	}
	r.PodsPerSelector = len(e.expected)
	// The rule on the measured backend has the default rule's metricsQuery, so this is the
	// PromQL each backend answers.
	if e.selectorQuery, err = e.renderSelectorQuery(); err != nil {
		return r, err
	}
	for _, kind := range kinds {
		started := time.Now()
		klog.InfoS("Measuring a backend", "kind", kind, "pods", pods)
		k, err := e.measureBackend(ctx, kind)
		if err != nil {
			return r, fmt.Errorf("%s: %w", kind, err)
		}
		r.Kinds = append(r.Kinds, k)
		klog.InfoS("Backend measured", "kind", kind, "version", k.Version, "p50", k.Latency.P50, "p99", k.Latency.P99,
			"queriesPer100", k.QueriesPer100(), "elapsed", time.Since(started).Round(time.Second))
	}
	r.LoadAfter = loadAverage()
	return r, nil
}

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

// startBackend starts kind on 127.0.0.1 loaded with openMetrics (the fixture's series), with
// its files in dir, and returns its Prometheus API base URL, its version and how to stop it.
func (b *bench) startBackend(ctx context.Context, kind, dir string, openMetrics []byte) (url, version string, stop func(), err error) {
	switch kind {
	case kindPrometheus2, kindPrometheus3:
		major := strings.TrimPrefix(kind, "prometheus")
		prom, err := testbed.StartPrometheus(ctx, testbed.PrometheusOptions{
			Bins: b.bins, Major: major, Dir: dir, OpenMetrics: openMetrics, StartTimeout: 5 * time.Minute,
		})
		if err != nil {
			return "", "", nil, err
		}
		return prom.URL, prom.Version, prom.Stop, nil
	case kindThanos:
		th, err := testbed.StartThanos(ctx, testbed.ThanosOptions{
			Bins: b.bins, Major: "3", Replicas: thanosReplicas, Dir: dir, OpenMetrics: openMetrics, StartTimeout: 5 * time.Minute,
		})
		if err != nil {
			return "", "", nil, err
		}
		version = b.thanosVersion(ctx)
		if replica := th.Stores[0].Prometheus.Version; replica != "" {
			version += fmt.Sprintf(" (replicas: Prometheus %s)", replica)
		}
		return th.URL, version, th.Stop, nil
	case kindVictoriaMetrics:
		vm, err := startVictoriaMetrics(ctx, dir)
		if err != nil {
			return "", "", nil, err
		}
		if err := vm.importOpenMetrics(ctx, openMetrics); err != nil {
			vm.process.Stop()
			return "", "", nil, err
		}
		return vm.url, victoriaMetricsVersion(ctx), vm.process.Stop, nil
	}
	return "", "", nil, fmt.Errorf("unknown backend kind %q", kind)
}

// writeBackendConfig writes the adapter's config for the measured backend: the embedded
// default, a backends section with underTestBackend at url of the adapter kind kind, and one
// more custom rule on that backend serving underTestMetric. The file is loaded back with the
// adapter's own loader, so a mistake shows here with its line rather than as an adapter that
// does not start.
func writeBackendConfig(path, url, kind string) error {
	data, err := backendConfig(url, kind)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("writing the adapter's config: %w", err)
	}
	if _, err := config.Load(path); err != nil {
		return fmt.Errorf("the adapter's config %s does not load: %w", path, err)
	}
	return nil
}

// backendConfig renders the config writeBackendConfig writes.
func backendConfig(url, kind string) ([]byte, error) {
	cfg := config.Default()
	cfg.Rules = append(cfg.Rules, config.DiscoveryRule{
		SeriesQuery: `http_requests_total{namespace!="",pod!=""}`,
		Resources: config.ResourceMapping{Overrides: map[string]config.GroupResource{
			"namespace": {Resource: "namespace"},
			"pod":       {Resource: "pod"},
		}},
		Name:         config.NameMapping{Matches: "^http_requests_total$", As: underTestMetric},
		MetricsQuery: underTestQuery,
		Backend:      underTestBackend,
	})
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	// config.Backend has no YAML form of its own: add the section as the file format spells it.
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	doc["backends"] = []map[string]string{{"name": underTestBackend, "url": url, "kind": kind}}
	return yaml.Marshal(doc)
}

// thanosVersion is the release of the thanos binary: what `thanos --version` prints, or, for a
// build without version stamping (deps.sh builds it from source), the release in the binary's
// file name (thanos-v0.42.4-slicelabels).
func (b *bench) thanosVersion(ctx context.Context) string {
	out, _ := commandOutput(ctx, b.bins.Thanos, "--version")
	if v := versionFromOutput(out); v != "" {
		return v
	}
	name := strings.TrimPrefix(filepath.Base(b.bins.Thanos), "thanos-")
	release, _, _ := strings.Cut(name, "-")
	return strings.TrimPrefix(release, "v")
}

// victoriaMetricsVersion is what `victoria-metrics -version` prints or, for Debian's build
// (which prints nothing), the version of the Debian package.
func victoriaMetricsVersion(ctx context.Context) string {
	out, _ := commandOutput(ctx, victoriaMetricsBin, "-version")
	if v := strings.TrimSpace(out); v != "" {
		return v
	}
	out, err := commandOutput(ctx, "dpkg-query", "-W", "-f=${Version}", "victoria-metrics")
	if v := strings.TrimSpace(out); err == nil && v != "" {
		return v + " (Debian package)"
	}
	return "unknown"
}

// versionFromOutput reads the release from a Prometheus-style `--version` output, whose first
// line is "<name>, version 0.42.4 (branch: …)"; "" when it names none.
func versionFromOutput(out string) string {
	firstLine, _, _ := strings.Cut(out, "\n")
	_, rest, found := strings.Cut(firstLine, ", version ")
	if !found {
		return ""
	}
	version, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
	if strings.HasPrefix(version, "(") {
		return ""
	}
	return version
}

// metricCall is the custom metric at path (a list of pods) through client, with labelSelector
// (empty selects every pod of the namespace), checked against want (pod name → value).
func metricCall(client kubernetes.Interface, path, selector string, want map[string]float64) call {
	get := func(ctx context.Context) ([]byte, error) {
		req := client.CoreV1().RESTClient().Get().AbsPath(path)
		if selector != "" {
			req = req.Param("labelSelector", selector)
		}
		return req.DoRaw(ctx)
	}
	var body []byte
	return call{
		do: func(ctx context.Context) error {
			var err error
			body, err = get(ctx)
			return err
		},
		check: func() (int, error) { return checkMetricValues(body, want) },
		once: func(ctx context.Context) error {
			b, err := get(ctx)
			if err != nil {
				return err
			}
			_, err = checkMetricValues(b, want)
			return err
		},
	}
}

// victoriaMetrics is a single-node VictoriaMetrics on 127.0.0.1.
type victoriaMetrics struct {
	url     string
	process *testbed.Process
}

// startVictoriaMetrics starts VictoriaMetrics with its data in dir and waits for /health, with
// the arguments of the e2e test (test/e2e/victoriametrics_test.go).
func startVictoriaMetrics(ctx context.Context, dir string) (*victoriaMetrics, error) {
	port, err := testbed.FreePort()
	if err != nil {
		return nil, err
	}
	vm := &victoriaMetrics{url: "http://127.0.0.1:" + strconv.Itoa(port)}
	vm.process, err = testbed.StartProcess(context.WithoutCancel(ctx), "victoria-metrics", filepath.Join(dir, "victoria-metrics.log"), victoriaMetricsBin,
		"-storageDataPath="+filepath.Join(dir, "data"),
		"-httpListenAddr=127.0.0.1:"+strconv.Itoa(port),
		"-retentionPeriod=1",
		// Answers must come from the imported data, never from a result cached during import.
		"-search.disableCache",
		"-loggerLevel=WARN",
	)
	if err != nil {
		return nil, err
	}
	err = retryUntil(ctx, time.Minute, func(ctx context.Context) error {
		if exited, exitErr := vm.process.Exited(); exited {
			return fmt.Errorf("victoria-metrics exited (%v); log %s:\n%s", exitErr, vm.process.LogPath, vm.process.LogTail(20))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, vm.url+"/health", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "OK" {
			return fmt.Errorf("GET %s/health: %s %q", vm.url, resp.Status, body)
		}
		return nil
	})
	if err != nil {
		vm.process.Stop()
		return nil, fmt.Errorf("waiting for VictoriaMetrics to answer /health (log %s): %w", vm.process.LogPath, err)
	}
	return vm, nil
}

// importOpenMetrics streams OpenMetrics text into VictoriaMetrics through its Prometheus text
// import endpoint, converted on the way (see openMetricsToPromText).
func (vm *victoriaMetrics) importOpenMetrics(ctx context.Context, openMetrics []byte) error {
	body, writer := io.Pipe()
	go func() { writer.CloseWithError(openMetricsToPromText(writer, bytes.NewReader(openMetrics))) }()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, vm.url+"/api/v1/import/prometheus", body)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("importing the fixture into VictoriaMetrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("importing the fixture into VictoriaMetrics: %s: %s", resp.Status, msg)
	}
	return nil
}

// openMetricsToPromText turns OpenMetrics text, as fixture.WriteOpenMetrics writes it, into the
// Prometheus text format VictoriaMetrics imports: comment lines (# TYPE, # HELP, # EOF) are
// dropped and each sample's timestamp, in seconds with up to three decimals, becomes whole
// milliseconds. Label values may hold spaces, so the timestamp is the text after the last space.
func openMetricsToPromText(dst io.Writer, src io.Reader) error {
	w := bufio.NewWriterSize(dst, 1<<20)
	scanner := bufio.NewScanner(src)
	scanner.Buffer(make([]byte, 64<<10), 1<<20)
	for scanner.Scan() {
		line := scanner.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cut := strings.LastIndexByte(line, ' ')
		if cut < 0 {
			return fmt.Errorf("openmetrics sample line without timestamp: %q", line)
		}
		ms, err := fixture.SecondsToMillis(line[cut+1:])
		if err != nil {
			return fmt.Errorf("openmetrics sample line %q: %w", line, err)
		}
		if _, err := fmt.Fprintf(w, "%s %d\n", line[:cut], ms); err != nil {
			return err
		}
	}
	if err := scanner.Err(); err != nil {
		return err
	}
	return w.Flush()
}

// renderBackends renders the backend table.
func renderBackends(p printer, r *BackendsResult) {
	if r == nil || len(r.Kinds) == 0 {
		return
	}
	n := r.Kinds[0].Latency.N
	p("### Backends\n\n")
	p("The selector request answered from each kind of backend in turn, in one cluster of %s pods (namespaces of %s pods; the request selects the %d pods of one app). "+
		"For each kind a fresh backend on 127.0.0.1 holds the same fixture series, and a fresh adapter runs the embedded default config plus "+
		"`backends: [{name: %s, url: <the backend>, kind: <its kind>}]` and one custom rule on `backend: %s` that serves `http_requests_total` as `%s` "+
		"with the default rule's query (`%s`). %s sequential requests `GET .../namespaces/ns-0/pods/*/%s?labelSelector=app=app-3` through kube-apiserver, "+
		"with the default cache (%s), starting once the warm-up's answers have expired, then again from a second adapter with the cache off (`--query-cache-period=0`): "+
		"the cached figures are the adapter's, the uncached ones add the backend's own evaluation. Every answer is checked against the fixture. "+
		"Queries per 100 requests is 100 × the increase of `%s{backend=\"%s\"}` on the adapter's `/metrics` over those requests ÷ their number. "+
		"The machine's 1-minute load average was %.1f when this measurement started and %.1f when it ended.\n\n",
		count(r.Pods), count(podsPerNamespace), r.PodsPerSelector,
		underTestBackend, underTestBackend, r.Metric, underTestQuery, count(n), r.Metric,
		durationText(r.CachePeriod), upstreamQueriesMetric, underTestBackend, r.LoadBefore, r.LoadAfter)
	p("| Kind | Version | p50 / p99, cache on | queries per 100 requests, cache on | p50 / p99, cache off | queries per 100 requests, cache off | Answers checked |\n|---|---|---:|---:|---:|---:|---:|\n")
	for _, k := range r.Kinds {
		title := backendTitles[k.Kind]
		if title == "" {
			title = k.Kind
		}
		p("| %s, `kind: %s` | %s | %s / %s | %s (%d in %s) | %s / %s | %s | %s × %d pods (each setting) |\n",
			title, k.AdapterKind, k.Version, millis(k.Latency.P50), millis(k.Latency.P99),
			trimFloat(k.QueriesPer100()), k.UpstreamQueries, count(k.Latency.N),
			millis(k.LatencyUncached.P50), millis(k.LatencyUncached.P99), trimFloat(per100(k.UpstreamQueriesUncached, k.LatencyUncached.N)),
			count(k.Latency.N), k.Latency.Items)
	}
	p("\n")
}
