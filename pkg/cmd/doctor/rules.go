package doctor

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backends "github.com/promadapter/promadapter/pkg/backend"
	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/pkg/naming"
	"github.com/promadapter/promadapter/pkg/promclient"
)

// ruleConfig is the rule file doctor checks and where it came from.
type ruleConfig struct {
	cfg    *config.Config
	source string
	// explicit is false for the embedded default, whose generic rules may match nothing
	// without anything being wrong.
	explicit bool
}

// loadConfig finds the rules the adapter runs with: --config, else the file the Deployment's
// --config names in its mounted ConfigMap, else the embedded default. With a nil config, the
// check says why the rules cannot be checked.
func (d *doctor) loadConfig(ctx context.Context, in *install) (*ruleConfig, *Check) {
	fail := func(summary, fix string) (*ruleConfig, *Check) {
		return nil, &Check{Section: sectionRules, Name: "rule file", Status: Fail, Summary: summary, Fix: fix}
	}
	if d.opts.ConfigFile != "" {
		cfg, err := config.Load(d.opts.ConfigFile)
		if err != nil {
			return fail(fmt.Sprintf("--config=%s does not load: %v", d.opts.ConfigFile, err), "fix the file at the lines named (promadapter check-config --config=FILE)")
		}
		return &ruleConfig{cfg, "--config=" + d.opts.ConfigFile, true}, nil
	}
	file, set := in.adapter.flag("config")
	dep := in.adapter.deployment
	if !set || file == "" || dep == nil {
		return &ruleConfig{config.Default(), "the embedded default (the adapter's Deployment passes no --config)", false}, nil
	}
	for _, m := range in.adapter.container.VolumeMounts {
		dir := strings.TrimSuffix(m.MountPath, "/")
		key, ok := strings.CutPrefix(file, dir+"/")
		if m.SubPath != "" && file == m.MountPath {
			key, ok = m.SubPath, true
		}
		if !ok {
			continue
		}
		for _, v := range dep.Spec.Template.Spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			if v.ConfigMap == nil {
				return nil, &Check{Section: sectionRules, Name: "rule file", Status: Skip,
					Summary: fmt.Sprintf("the Deployment's --config=%s is on volume %s, not a ConfigMap doctor can read; pass the file with --config", file, v.Name)}
			}
			source := fmt.Sprintf("ConfigMap %s/%s key %s (the Deployment's --config=%s)", dep.Namespace, v.ConfigMap.Name, key, file)
			cm, err := d.kube.CoreV1().ConfigMaps(dep.Namespace).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				return fail(source+": "+err.Error(), "create the ConfigMap with the rules under key "+key+" (deploy/manifests/configmap.yaml)")
			}
			data, ok := cm.Data[path.Clean(key)]
			if !ok {
				return fail(source+" does not exist: the adapter fails to start reading it",
					"add the rules under key "+key+" (deploy/manifests/configmap.yaml), or drop --config from the Deployment for the embedded default")
			}
			cfg, err := config.Parse([]byte(data), source)
			if err != nil {
				return fail(fmt.Sprintf("%s does not load: %v", source, err), "fix the rules at the lines named (promadapter check-config --config=FILE)")
			}
			return &ruleConfig{cfg, source, true}, nil
		}
	}
	return nil, &Check{Section: sectionRules, Name: "rule file", Status: Skip,
		Summary: fmt.Sprintf("the Deployment's --config=%s is on no mounted volume doctor can read; pass the file with --config", file)}
}

// compiled is a rule file's rules compiled as the adapter compiles them.
type compiled struct {
	custom, external []*naming.Rule
}

func compileRules(rc *ruleConfig, mapper apimeta.RESTMapper) (*compiled, error) {
	custom, err := naming.CompileRules(naming.KindCustom, rc.cfg.Rules, rc.cfg.Source, mapper)
	if err != nil {
		return nil, err
	}
	external, err := naming.CompileRules(naming.KindExternal, rc.cfg.ExternalRules, rc.cfg.Source, mapper)
	if err != nil {
		return nil, err
	}
	return &compiled{custom, external}, nil
}

// extraAccess is list and watch on every resource a custom rule overrides a label to that the
// install's ClusterRole does not already cover: the adapter watches those too.
func (c *compiled) extraAccess() []access {
	known := map[string]bool{}
	for _, r := range watchedResources {
		known[r.group+"/"+r.resource] = true
	}
	var out []access
	for _, r := range c.custom {
		labels := make([]string, 0, len(r.Spec.Resources.Overrides))
		for l := range r.Spec.Resources.Overrides {
			labels = append(labels, l)
		}
		sort.Strings(labels)
		for _, l := range labels {
			gr, ok := r.Resources.ResourceForLabel(l)
			if !ok || known[gr.Group+"/"+gr.Resource] {
				continue
			}
			known[gr.Group+"/"+gr.Resource] = true
			for _, verb := range []string{"list", "watch"} {
				out = append(out, access{authorizationv1.ResourceAttributes{Verb: verb, Group: gr.Group, Resource: gr.Resource}})
			}
		}
	}
	return out
}

// checkRules runs each rule's seriesQuery as discovery does (the label-values API over the
// last --metrics-max-age) against the rule's backend, and counts the metrics it yields.
func (d *doctor) checkRules(ctx context.Context, rc *ruleConfig, rules *compiled, defaults promclient.Options, maxAge time.Duration) Check {
	c := Check{Section: sectionRules, Name: "rules of " + rc.source}
	set, err := backends.Build(rc.cfg.Backends, backends.Defaults{Options: defaults})
	if err != nil {
		c.Status, c.Summary, c.Fix = Fail, "the backends do not build: "+err.Error(), "fix the backends section (promadapter check-config --config=FILE)"
		return c
	}
	defer set.Close()
	end := d.now()
	start := end.Add(-maxAge)
	var empty, broken []string
	metrics := map[naming.Kind]int{}
	for _, r := range append(append([]*naming.Rule(nil), rules.custom...), rules.external...) {
		field := "rules"
		if r.Kind == naming.KindExternal {
			field = "externalRules"
		}
		id := fmt.Sprintf("%s[%d] (line %d, seriesQuery %s)", field, r.Index, r.Spec.Line, r.SeriesQuery)
		name := r.Backend
		if name == "" {
			name = config.DefaultBackend
		}
		b, ok := set.Get(name)
		if !ok {
			broken = append(broken, id+": no backend "+name)
			continue
		}
		lister, err := b.Lister()
		if err != nil {
			broken = append(broken, id+": "+err.Error())
			continue
		}
		series, err := lister.LabelValues(ctx, "__name__", []string{r.SeriesQuery}, start, end)
		if err != nil {
			broken = append(broken, id+": "+err.Error())
			continue
		}
		names := map[string]bool{}
		for _, s := range series {
			if m, ok := r.MetricName(s); ok {
				names[m] = true
			}
		}
		metrics[r.Kind] += len(names)
		if len(names) == 0 {
			detail := "matches no series"
			if len(series) > 0 {
				detail = fmt.Sprintf("matches series names (%s) that its seriesFilters or name.matches all drop", someOf(series, 5))
			}
			empty = append(empty, fmt.Sprintf("%s %s (series of the last %s)", id, detail, maxAge))
		}
	}
	total := len(rules.custom) + len(rules.external)
	switch {
	case len(broken) > 0:
		c.Status, c.Summary = Fail, fmt.Sprintf("%d of %d rules cannot be listed", len(broken), total)
		c.Evidence = append(broken, empty...)
		c.Fix = "fix each rule's seriesQuery (a PromQL series selector) or backend (promadapter check-config --config=FILE)"
	case len(empty) > 0 && rc.explicit:
		c.Status, c.Summary = Fail, fmt.Sprintf("%d of %d rules match nothing: they serve no metric", len(empty), total)
		c.Evidence = empty
		c.Fix = "run each seriesQuery in Prometheus' UI: a rule serves only series that exist and carry a namespace label and a label named after a resource (pod, service, ...); correct the selector, or remove the rule"
	case total > 0 && len(empty) == total:
		c.Status, c.Summary = Warn, fmt.Sprintf("none of the %d rules matches a series: custom.metrics.k8s.io and external.metrics.k8s.io list nothing", total)
		c.Evidence = empty
		c.Fix = "see the cAdvisor check: the default rules need series with namespace and pod labels (kube-prometheus); for other data write rules of your own (--config)"
	default:
		c.Status, c.Summary = Pass, fmt.Sprintf("%d rules yield %d custom and %d external metrics", total, metrics[naming.KindCustom], metrics[naming.KindExternal])
		for _, e := range empty {
			c.Evidence = append(c.Evidence, e+" (a generic default rule: harmless)")
		}
	}
	return c
}

// someOf lists at most n of names, saying how many more there are.
func someOf(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}

// readsKubeStateMetrics reports whether a rule reads kube-state-metrics' kube_* series.
func readsKubeStateMetrics(rc *ruleConfig) bool {
	for _, rs := range [][]config.DiscoveryRule{rc.cfg.Rules, rc.cfg.ExternalRules} {
		for _, r := range rs {
			if strings.Contains(r.SeriesQuery, "kube_") {
				return true
			}
		}
	}
	return false
}
