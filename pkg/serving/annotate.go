package serving

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/pkg/explain"
	"github.com/promadapter/promadapter/pkg/promclient"
)

// backendCheckTimeout bounds the check of the backends an explanation may make.
const backendCheckTimeout = 5 * time.Second

// Annotate completes an explanation with what the parts know beyond the request: where in the
// config the resource rules its queries came from are (file:line), and, when no rule served
// the metric while discovery is failing, whether each backend answers at all.
func (p *Parts) Annotate(ctx context.Context, t *explain.Trace) {
	cfg := p.Holder.Load().Config
	var data []byte
	var read sync.Once
	for i, q := range t.Queries {
		if !strings.HasPrefix(q.Rule, "resourceRules.") || strings.Contains(q.Rule, " ") {
			continue
		}
		read.Do(func() { data = configText(cfg.Source) })
		if line := yamlLine(data, strings.Split(q.Rule, ".")); line > 0 {
			t.Queries[i].Rule = fmt.Sprintf("%s (%s:%d)", q.Rule, cfg.Source, line)
		}
	}
	if t.NoRule != nil && len(t.NoRule.DiscoveryFailing) > 0 {
		t.Backends = p.checkBackends(ctx)
	}
}

// configText is the text of the config loaded from source; nil when it cannot be read.
func configText(source string) []byte {
	if source == config.DefaultSource {
		return config.DefaultYAML()
	}
	data, err := os.ReadFile(source)
	if err != nil {
		return nil
	}
	return data
}

// yamlLine is the line of the field at path (mapping keys) in the YAML document data, as
// config.FieldLine finds it; 0 when it is not there.
func yamlLine(data []byte, path []string) int { return config.FieldLine(data, path...) }

// checkBackends asks every backend of the current snapshot for vector(1), as serve's probe at
// load does, and reports each one's state (by its redacted URL).
func (p *Parts) checkBackends(ctx context.Context) []explain.Backend {
	s := p.Holder.Load()
	ctx, cancel := context.WithTimeout(ctx, backendCheckTimeout)
	defer cancel()
	names := s.Backends.Names()
	out := make([]explain.Backend, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		out[i].Name = name
		b, _ := s.Backends.Get(name)
		wg.Go(func() {
			c, err := b.Lister()
			if err == nil {
				out[i].URL = c.URL()
				_, err = c.Query(ctx, "vector(1)", time.Time{})
			}
			if err != nil {
				out[i].Error, out[i].Cause = err.Error(), string(promclient.CauseOf(err))
			}
		})
	}
	wg.Wait()
	return out
}
