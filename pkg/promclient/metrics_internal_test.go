package promclient

import (
	"testing"

	dto "github.com/prometheus/client_model/go"
	"k8s.io/component-base/metrics/legacyregistry"
)

// series finds the series of the family name whose labels include labels, as the legacy
// registry serves them; ok is false when there is none.
func series(t testing.TB, name string, labels map[string]string) (m *dto.Metric, ok bool) {
	t.Helper()
	families, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatalf("gathering the legacy registry: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			return m, true
		}
	}
	return nil, false
}

// seriesValue is the value of a counter or gauge series, or the number of observations of a
// histogram; 0 when the series does not exist.
func seriesValue(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	m, ok := series(t, name, labels)
	switch {
	case !ok:
		return 0
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	t.Fatalf("series %s%v is of an unexpected type", name, labels)
	return 0
}

// seriesExists tells whether the series exists.
func seriesExists(t testing.TB, name string, labels map[string]string) bool {
	t.Helper()
	_, ok := series(t, name, labels)
	return ok
}
