// A single-node VictoriaMetrics for the backend measurement, and loading the fixture into it.

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

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
