package main

import (
	"context"
	"fmt"
	"io"
	"net/http"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families is one scrape of a /metrics endpoint, keyed by metric family name.
type Families map[string]*dto.MetricFamily

// parseFamilies reads the Prometheus text exposition format.
func parseFamilies(r io.Reader) (Families, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parsing metrics text: %w", err)
	}
	return families, nil
}

// Sum adds the values of every series of family name whose labels include all of want: a
// counter's or gauge's value, a histogram's or summary's sum of observations. A family that is
// absent sums to 0 (a counter nobody has incremented yet is not exposed).
func (f Families) Sum(name string, want map[string]string) float64 {
	var total float64
	for _, m := range f.matching(name, want) {
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Untyped != nil:
			total += m.Untyped.GetValue()
		case m.Histogram != nil:
			total += m.Histogram.GetSampleSum()
		case m.Summary != nil:
			total += m.Summary.GetSampleSum()
		}
	}
	return total
}

// Count adds the observation counts of the histogram or summary series of family name whose
// labels include all of want.
func (f Families) Count(name string, want map[string]string) uint64 {
	var total uint64
	for _, m := range f.matching(name, want) {
		switch {
		case m.Histogram != nil:
			total += m.Histogram.GetSampleCount()
		case m.Summary != nil:
			total += m.Summary.GetSampleCount()
		}
	}
	return total
}

func (f Families) matching(name string, want map[string]string) []*dto.Metric {
	family, ok := f[name]
	if !ok {
		return nil
	}
	var out []*dto.Metric
	for _, m := range family.GetMetric() {
		have := make(map[string]string, len(m.GetLabel()))
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		matches := true
		for k, v := range want {
			if have[k] != v {
				matches = false
				break
			}
		}
		if matches {
			out = append(out, m)
		}
	}
	return out
}

// scrapeHTTP GETs url with client and parses the answer.
func scrapeHTTP(ctx context.Context, client *http.Client, url string) (Families, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("scraping %s: %s: %s", url, resp.Status, body)
	}
	families, err := parseFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	return families, nil
}
