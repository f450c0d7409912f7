// Command genfixture writes the synthetic cluster of package fixture to files: metrics.om (OpenMetrics,
// for `promtool tsdb create-blocks-from openmetrics`) and objects.yaml (for `kubectl create -f`).
//
//	genfixture -pods 30000 -nodes 100 -namespaces 100 -around-now -out-dir /tmp/fx
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/promadapter/promadapter/test/fixture"
)

type options struct {
	spec      fixture.Spec
	outDir    string
	start     string
	end       string
	aroundNow bool
	step      time.Duration
}

func (o *options) addFlags(fs *flag.FlagSet) {
	fs.IntVar(&o.spec.Nodes, "nodes", fixture.DefaultNodes, "number of nodes")
	fs.IntVar(&o.spec.Pods, "pods", fixture.DefaultPods, "number of pods")
	fs.IntVar(&o.spec.Namespaces, "namespaces", fixture.DefaultNamespaces, "number of namespaces")
	fs.IntVar(&o.spec.AppsPerNamespace, "apps-per-namespace", fixture.DefaultAppsPerNamespace, "apps (Deployment + Service) per namespace")
	fs.StringVar(&o.outDir, "out-dir", ".", "directory for metrics.om and objects.yaml (created if missing)")
	fs.StringVar(&o.start, "start", "", "first sample time, RFC 3339 (with -end)")
	fs.StringVar(&o.end, "end", "", "last sample time, RFC 3339 (with -start)")
	fs.BoolVar(&o.aroundNow, "around-now", false, "samples from 30 minutes ago to 3 hours ahead, instead of -start/-end")
	fs.DurationVar(&o.step, "step", fixture.DefaultStep, "interval between samples")
}

// timeRange validates the flags and returns the sample range.
func (o *options) timeRange(now time.Time) (start, end time.Time, err error) {
	if o.aroundNow {
		if o.start != "" || o.end != "" {
			return start, end, errors.New("give either -around-now or -start and -end, not both")
		}
		return now.Add(-30 * time.Minute).Truncate(time.Second), now.Add(3 * time.Hour).Truncate(time.Second), nil
	}
	if o.start == "" || o.end == "" {
		return start, end, errors.New("give -around-now, or both -start and -end (RFC 3339, e.g. 2025-01-01T00:00:00Z)")
	}
	if start, err = time.Parse(time.RFC3339, o.start); err != nil {
		return start, end, fmt.Errorf("-start: %w", err)
	}
	if end, err = time.Parse(time.RFC3339, o.end); err != nil {
		return start, end, fmt.Errorf("-end: %w", err)
	}
	return start, end, nil
}

func (o *options) run() error {
	start, end, err := o.timeRange(time.Now())
	if err != nil {
		return err
	}
	if err := o.spec.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(o.outDir, 0o755); err != nil {
		return err
	}
	metrics := filepath.Join(o.outDir, "metrics.om")
	if err := writeFile(metrics, func(w *bufio.Writer) error { return o.spec.WriteOpenMetrics(w, start, end, o.step) }); err != nil {
		return err
	}
	objects := filepath.Join(o.outDir, "objects.yaml")
	if err := writeFile(objects, func(w *bufio.Writer) error { return o.spec.WriteObjectsYAML(w) }); err != nil {
		return err
	}
	fmt.Printf("%s\n%s\n", metrics, objects)
	return nil
}

func writeFile(path string, write func(*bufio.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := write(w); err != nil {
		_ = f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

func main() {
	var o options
	o.addFlags(flag.CommandLine)
	flag.Parse()
	if err := o.run(); err != nil {
		fmt.Fprintln(os.Stderr, "genfixture:", err)
		os.Exit(1)
	}
}
