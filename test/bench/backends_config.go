// The adapter's config for the backend measurement.

package main

import (
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/promadapter/promadapter/pkg/config"
)

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
