package testbed

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// PrometheusRetention is the --storage.tsdb.retention.time Prometheus runs with: long enough that
// backfilled blocks, however old, are never deleted during a test.
const PrometheusRetention = "10y"

// LiveJob is the job label of the targets in PrometheusOptions.ScrapeTargets.
const LiveJob = "live"

// PrometheusOptions configure StartPrometheus.
type PrometheusOptions struct {
	// Bins are the binaries to pick from; when Bins.Prometheus is nil, FindBins is called.
	Bins Bins
	// Major is the Prometheus major version to run, "2" or "3".
	Major string
	// Dir holds the configuration, the data (Dir/data) and the log (Dir/prometheus.log). When empty
	// a temporary directory is created, and Stop removes it.
	Dir string
	// OpenMetrics, when set, is written to Dir/backfill.om and turned into blocks in the data
	// directory with `promtool tsdb create-blocks-from openmetrics` before Prometheus starts.
	// Timestamps are in seconds (fractions allowed), the series of one metric family must be
	// contiguous, and the text must end with "# EOF".
	//
	// Prometheus rejects scraped samples older than the newest backfilled one, so when combining
	// OpenMetrics with ScrapeTargets, end the backfilled data before the time of the test.
	OpenMetrics []byte
	// ScrapeTargets are host:port addresses scraped over HTTP at /metrics every ScrapeInterval,
	// with job label LiveJob.
	ScrapeTargets []string
	// ScrapeInterval is the scrape and evaluation interval; 1 s when zero.
	ScrapeInterval time.Duration
	// ExternalLabels are written to global.external_labels: Prometheus attaches them to what it
	// sends out, and a Thanos sidecar serves them as the labels of every series (it refuses a
	// Prometheus without any).
	ExternalLabels map[string]string
	// ExtraArgs are appended to Prometheus' command line.
	ExtraArgs []string
	// StartTimeout bounds the wait for /-/ready; 90 s when zero. The context can only shorten it.
	StartTimeout time.Duration
}

// Prometheus is a running Prometheus server on 127.0.0.1.
type Prometheus struct {
	// URL is the server's base address, http://127.0.0.1:<port>.
	URL string
	// Major is "2" or "3"; Version is the release, e.g. "2.42.0+ds" or "3.9.1".
	Major   string
	Version string
	// Dir holds ConfigFile, the data directory DataDir and the log.
	Dir        string
	ConfigFile string
	DataDir    string

	process *Process
	ownsDir bool
}

// StartPrometheus writes a configuration, backfills opts.OpenMetrics if given, starts Prometheus on
// a free 127.0.0.1 port and returns once /-/ready answers 200. Errors quote the tail of
// Prometheus' (or promtool's) output.
//
// ctx bounds the start-up only: the server runs until Stop, whatever happens to ctx.
func StartPrometheus(ctx context.Context, opts PrometheusOptions) (*Prometheus, error) {
	bins := opts.Bins
	if bins.Prometheus == nil {
		var err error
		if bins, err = FindBins(); err != nil {
			return nil, err
		}
	}
	prom, ok := bins.Prometheus[opts.Major]
	if !ok {
		return nil, fmt.Errorf("no Prometheus with major version %q; use \"2\" or \"3\"", opts.Major)
	}
	p := &Prometheus{Major: opts.Major, Version: prom.Version, Dir: opts.Dir}
	if p.Dir == "" {
		dir, err := os.MkdirTemp("", "testbed-prometheus"+opts.Major+"-")
		if err != nil {
			return nil, fmt.Errorf("creating Prometheus' directory: %w", err)
		}
		p.Dir, p.ownsDir = dir, true
	}
	if err := p.start(ctx, prom, opts); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

func (p *Prometheus) start(ctx context.Context, prom PromBins, opts PrometheusOptions) error {
	component := "Prometheus " + cmp.Or(p.Version, p.Major+".x")
	p.ConfigFile = filepath.Join(p.Dir, "prometheus.yml")
	p.DataDir = filepath.Join(p.Dir, "data")
	if err := os.MkdirAll(p.DataDir, 0o755); err != nil {
		return fmt.Errorf("%s: creating the data directory: %w", component, err)
	}
	interval := opts.ScrapeInterval
	if interval <= 0 {
		interval = time.Second
	}
	config, err := prometheusConfigWithLabels(interval, opts.ScrapeTargets, opts.ExternalLabels)
	if err != nil {
		return fmt.Errorf("%s: %w", component, err)
	}
	if err := os.WriteFile(p.ConfigFile, config, 0o644); err != nil {
		return fmt.Errorf("%s: writing its configuration: %w", component, err)
	}

	if opts.OpenMetrics != nil {
		input := filepath.Join(p.Dir, "backfill.om")
		if err := os.WriteFile(input, opts.OpenMetrics, 0o644); err != nil {
			return fmt.Errorf("%s: writing the OpenMetrics to backfill: %w", component, err)
		}
		backfillCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		if _, err := runCommand(backfillCtx, nil, prom.Promtool, "tsdb", "create-blocks-from", "openmetrics", input, p.DataDir); err != nil {
			return fmt.Errorf("%s: backfilling %s: %w", component, input, err)
		}
	}

	port, err := FreePort()
	if err != nil {
		return err
	}
	p.URL = "http://127.0.0.1:" + strconv.Itoa(port)
	args := append([]string{
		"--config.file=" + p.ConfigFile,
		"--storage.tsdb.path=" + p.DataDir,
		"--storage.tsdb.retention.time=" + PrometheusRetention,
		"--web.listen-address=127.0.0.1:" + strconv.Itoa(port),
	}, opts.ExtraArgs...)
	p.process, err = StartProcess(context.WithoutCancel(ctx), "prometheus"+p.Major, filepath.Join(p.Dir, "prometheus.log"), prom.Prometheus, args...)
	if err != nil {
		return err
	}
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = defaultStartTimeout
	}
	return readiness{
		component:   component,
		expectation: "GET " + p.URL + "/-/ready to answer 200",
		timeout:     timeout,
		process:     p.process,
	}.wait(ctx, httpCheck(newHTTPClient(nil), p.URL+"/-/ready", func(string) bool { return true }))
}

// prometheusConfig renders a configuration scraping targets (if any) every interval, without
// external labels.
func prometheusConfig(interval time.Duration, targets []string) ([]byte, error) {
	return prometheusConfigWithLabels(interval, targets, nil)
}

// prometheusConfigWithLabels is prometheusConfig with global.external_labels (omitted when
// empty; yaml writes the keys sorted).
func prometheusConfigWithLabels(interval time.Duration, targets []string, externalLabels map[string]string) ([]byte, error) {
	type staticConfig struct {
		Targets []string `yaml:"targets"`
	}
	type scrapeConfig struct {
		JobName       string         `yaml:"job_name"`
		StaticConfigs []staticConfig `yaml:"static_configs"`
	}
	type globalConfig struct {
		ScrapeInterval     string            `yaml:"scrape_interval"`
		ScrapeTimeout      string            `yaml:"scrape_timeout"`
		EvaluationInterval string            `yaml:"evaluation_interval"`
		ExternalLabels     map[string]string `yaml:"external_labels,omitempty"`
	}
	config := struct {
		Global        globalConfig   `yaml:"global"`
		ScrapeConfigs []scrapeConfig `yaml:"scrape_configs,omitempty"`
	}{
		Global: globalConfig{
			ScrapeInterval:     promDuration(interval),
			ScrapeTimeout:      promDuration(interval),
			EvaluationInterval: promDuration(interval),
			ExternalLabels:     externalLabels,
		},
	}
	if len(targets) > 0 {
		config.ScrapeConfigs = []scrapeConfig{{JobName: LiveJob, StaticConfigs: []staticConfig{{Targets: targets}}}}
	}
	out, err := yaml.Marshal(config)
	if err != nil {
		return nil, fmt.Errorf("rendering the configuration: %w", err)
	}
	return out, nil
}

// promDuration writes d in Prometheus' duration syntax, in whole milliseconds ("1500ms").
func promDuration(d time.Duration) string {
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// Process is the Prometheus server process.
func (p *Prometheus) Process() *Process { return p.process }

// Stop stops the server and removes Dir if StartPrometheus created it. It is safe to call more
// than once.
func (p *Prometheus) Stop() { p.stop(false) }

func (p *Prometheus) stop(keepDir bool) {
	if p.process != nil {
		p.process.Stop()
	}
	if p.ownsDir && !keepDir {
		_ = os.RemoveAll(p.Dir)
	}
}

// Cleanup registers Stop with t. When the test has failed by then, it first logs the last lines of
// Prometheus' log, and keeps Dir if StartPrometheus created it.
func (p *Prometheus) Cleanup(t testing.TB) {
	t.Helper()
	t.Cleanup(func() {
		failed := t.Failed()
		if failed {
			if p.process != nil {
				t.Logf("%s log %s, last lines:\n%s", p.process.Name, p.process.LogPath, p.process.LogTail(logTailLines))
			}
			if p.ownsDir {
				t.Logf("keeping Prometheus' directory %s for inspection", p.Dir)
			}
		}
		p.stop(failed)
	})
}
