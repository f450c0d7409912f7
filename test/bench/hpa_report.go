package main

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// HPAResult is the HPA measurement (-hpas): HPAs synced by a real kube-controller-manager
// against one adapter replica.
type HPAResult struct {
	HPAs       int `json:"hpas"`
	Namespaces int `json:"namespaces"`
	Pods       int `json:"pods"`
	Nodes      int `json:"nodes"`
	PodsPerApp int `json:"podsPerApp"`
	// ByKind counts the HPAs by metric kind (Pods, Object, External, Resource).
	ByKind map[string]int `json:"byKind"`
	// DistinctPairs counts the distinct (namespace, metric) pairs the HPAs ask the adapter.
	DistinctPairs int `json:"distinctPairs"`
	// DistinctQueries counts the distinct upstream queries the APIs' semantics need for those
	// requests (hpaTarget.queryKeys): external selectors and PodMetrics' two resources apart.
	DistinctQueries int `json:"distinctQueries,omitempty"`
	// SyncPeriod is kube-controller-manager's --horizontal-pod-autoscaler-sync-period;
	// ControllerArgs the client limits raised for 1,000 HPAs; CachePeriod the adapter's
	// --query-cache-period (its default).
	SyncPeriod     Seconds  `json:"syncPeriod"`
	ControllerArgs []string `json:"controllerArgs"`
	CachePeriod    Seconds  `json:"cachePeriod"`
	// FirstSync is from kube-controller-manager's start until every HPA showed the fixture's
	// value; WarmupSyncs sync periods then passed before Measured (the measured span) began.
	FirstSync   Seconds `json:"firstSync"`
	WarmupSyncs int     `json:"warmupSyncs"`
	Measured    Seconds `json:"measured"`
	// Checks is how many times every HPA was read (once per sync period); Correct how many HPAs
	// passed every check; Failures are the first failed checks.
	Checks   int      `json:"checks"`
	Correct  int      `json:"correct"`
	Failures []string `json:"failures,omitempty"`
	// Reconciliations and ReconcileErrors are kube-controller-manager's HPA syncs over Measured
	// (horizontal_pod_autoscaler_controller_reconciliations_total, error!="none");
	// Computations and ComputationErrors its metric computations by kind.
	// ReconcileMean is the mean duration of one HPA sync in kube-controller-manager
	// (horizontal_pod_autoscaler_controller_reconciliation_duration_seconds).
	ReconcileMean     Seconds        `json:"reconcileMean"`
	Reconciliations   int            `json:"reconciliations"`
	ReconcileErrors   int            `json:"reconcileErrors"`
	Computations      map[string]int `json:"computations"`
	ComputationErrors map[string]int `json:"computationErrors"`
	// AdapterRequests are the requests the adapter served over Measured by API group
	// (apiserver_request_total on its /metrics); AdapterLatency their mean duration.
	AdapterRequests map[string]int     `json:"adapterRequests"`
	AdapterLatency  map[string]Seconds `json:"adapterLatency"`
	// UpstreamQueries are the adapter's PromQL queries over Measured
	// (promadapter_planner_upstream_queries_total), UpstreamFailed those whose outcome was not
	// success, UpstreamByRule by rule; PlannerRequests the planner's answers by result.
	UpstreamQueries int `json:"upstreamQueries"`
	// UpstreamMean is the queries' mean duration (promadapter_planner_upstream_query_duration_seconds).
	UpstreamMean    Seconds        `json:"upstreamMean"`
	UpstreamFailed  int            `json:"upstreamFailed"`
	UpstreamByRule  map[string]int `json:"upstreamByRule"`
	PlannerRequests map[string]int `json:"plannerRequests"`
	// AdapterCPU and ManagerCPU are the processes' CPU time (user + system) over Measured.
	AdapterCPU Seconds `json:"adapterCPU"`
	ManagerCPU Seconds `json:"managerCPU"`
	// RSS and HWM are the adapter's resident set and its peak at the end.
	RSS int64 `json:"rss"`
	HWM int64 `json:"hwm"`
	// EventsBefore are the HPAs' Events by reason from their creation to the start of Measured;
	// Events those during Measured.
	EventsBefore map[string]int `json:"eventsBefore"`
	Events       map[string]int `json:"events"`
	LoadBefore   float64        `json:"loadBefore"`
	LoadAfter    float64        `json:"loadAfter"`
}

// Syncs is the measured span in sync periods.
func (r *HPAResult) Syncs() float64 {
	if r.SyncPeriod <= 0 {
		return 0
	}
	return float64(r.Measured / r.SyncPeriod)
}

// perSync divides a count over the measured span by its sync periods.
func (r *HPAResult) perSync(n float64) float64 {
	if s := r.Syncs(); s > 0 {
		return n / s
	}
	return 0
}

// hpaSnapshot is what measureSyncs reads at the start and the end of the measured syncs.
type hpaSnapshot struct {
	at                     time.Time
	adapter, manager       Families
	adapterCPU, managerCPU Seconds
}

func takeHPASnapshot(ctx context.Context, adapter, manager kubernetes.Interface, adapterPID, managerPID int) (hpaSnapshot, error) {
	s := hpaSnapshot{at: time.Now()}
	var err error
	if s.adapterCPU, err = cpuSeconds(adapterPID); err != nil {
		return s, err
	}
	if s.managerCPU, err = cpuSeconds(managerPID); err != nil {
		return s, err
	}
	if s.adapter, err = scrapeREST(ctx, adapter); err != nil {
		return s, fmt.Errorf("reading the adapter's metrics: %w", err)
	}
	if s.manager, err = scrapeREST(ctx, manager); err != nil {
		return s, fmt.Errorf("reading kube-controller-manager's metrics: %w", err)
	}
	return s, nil
}

// Metrics read on kube-controller-manager's /metrics (k8s.io/kubernetes
// pkg/controller/podautoscaler/monitor) and on the adapter's (its generic apiserver's and its
// planner's).
const (
	hpaReconciliationsMetric = "horizontal_pod_autoscaler_controller_reconciliations_total"
	hpaComputationsMetric    = "horizontal_pod_autoscaler_controller_metric_computation_total"
	hpaReconcileDuration     = "horizontal_pod_autoscaler_controller_reconciliation_duration_seconds"
	apiRequestsMetric        = "apiserver_request_total"
	apiDurationMetric        = "apiserver_request_duration_seconds"
	plannerRequestsMetric    = "promadapter_planner_requests_total"
)

// hpaAPIGroups are the metrics APIs the HPA controller reads from the adapter.
var hpaAPIGroups = []string{"custom.metrics.k8s.io", "external.metrics.k8s.io", "metrics.k8s.io"}

// measureSyncs reads the counters, checks every HPA once per sync period for syncs periods, and
// reads the counters again; r gets the differences.
func (r *HPAResult) measureSyncs(ctx context.Context, client, adapter, manager kubernetes.Interface, adapterPID, managerPID int, targets []hpaTarget, syncs int) (err error) {
	if r.EventsBefore, err = hpaEvents(ctx, client); err != nil {
		return err
	}
	before, err := takeHPASnapshot(ctx, adapter, manager, adapterPID, managerPID)
	if err != nil {
		return err
	}
	failed := map[string]bool{}
	var after hpaSnapshot
	for s := 1; s <= syncs; s++ {
		if err := sleep(ctx, time.Until(before.at.Add(time.Duration(s)*hpaSyncPeriod))); err != nil {
			return err
		}
		if s == syncs {
			if after, err = takeHPASnapshot(ctx, adapter, manager, adapterPID, managerPID); err != nil {
				return err
			}
		}
		bad, err := checkAllHPAs(ctx, client, targets)
		if err != nil {
			return err
		}
		r.Checks++
		for _, b := range bad {
			name, _, _ := strings.Cut(b, ": ")
			failed[name] = true
			if len(r.Failures) < 5 {
				r.Failures = append(r.Failures, fmt.Sprintf("check %d: %s", s, b))
			}
		}
		klog.InfoS("HPAs checked", "check", s, "of", syncs, "failing", len(bad))
	}
	r.Correct = len(targets) - len(failed)
	eventsAfter, err := hpaEvents(ctx, client)
	if err != nil {
		return err
	}
	r.Events = map[string]int{}
	for reason, n := range eventsAfter {
		if d := n - r.EventsBefore[reason]; d > 0 {
			r.Events[reason] = d
		}
	}
	r.Measured = secondsOf(after.at.Sub(before.at))
	r.AdapterCPU = after.adapterCPU - before.adapterCPU
	r.ManagerCPU = after.managerCPU - before.managerCPU
	delta := func(f func(s hpaSnapshot) float64) int { return int(math.Round(f(after) - f(before))) }
	r.Reconciliations = delta(func(s hpaSnapshot) float64 { return s.manager.Sum(hpaReconciliationsMetric, nil) })
	r.ReconcileErrors = r.Reconciliations - delta(func(s hpaSnapshot) float64 {
		return s.manager.Sum(hpaReconciliationsMetric, map[string]string{"error": "none"})
	})
	r.ReconcileMean = meanOver(before.manager, after.manager, hpaReconcileDuration)
	r.UpstreamMean = meanOver(before.adapter, after.adapter, upstreamDurationSum)
	r.Computations, r.ComputationErrors = map[string]int{}, map[string]int{}
	for _, kind := range []string{hpaPods, hpaObject, hpaExternal, hpaResource} {
		all := delta(func(s hpaSnapshot) float64 {
			return s.manager.Sum(hpaComputationsMetric, map[string]string{"metric_type": kind})
		})
		ok := delta(func(s hpaSnapshot) float64 {
			return s.manager.Sum(hpaComputationsMetric, map[string]string{"metric_type": kind, "error": "none"})
		})
		r.Computations[kind], r.ComputationErrors[kind] = all, all-ok
	}
	r.AdapterRequests, r.AdapterLatency = map[string]int{}, map[string]Seconds{}
	for _, group := range hpaAPIGroups {
		want := map[string]string{"group": group}
		r.AdapterRequests[group] = delta(func(s hpaSnapshot) float64 { return s.adapter.Sum(apiRequestsMetric, want) })
		if n := after.adapter.Count(apiDurationMetric, want) - before.adapter.Count(apiDurationMetric, want); n > 0 {
			r.AdapterLatency[group] = Seconds((after.adapter.Sum(apiDurationMetric, want) - before.adapter.Sum(apiDurationMetric, want)) / float64(n))
		}
	}
	r.UpstreamQueries = delta(func(s hpaSnapshot) float64 { return s.adapter.Sum(upstreamQueriesMetric, nil) })
	r.UpstreamFailed = r.UpstreamQueries - delta(func(s hpaSnapshot) float64 {
		return s.adapter.Sum(upstreamQueriesMetric, map[string]string{"outcome": "success"})
	})
	r.UpstreamByRule = deltaByLabel(before.adapter, after.adapter, upstreamQueriesMetric, "rule")
	r.PlannerRequests = deltaByLabel(before.adapter, after.adapter, plannerRequestsMetric, "result")
	return nil
}

// deltaByLabel is the increase of counter name from before to after, by the value of label;
// values that did not increase are left out.
func deltaByLabel(before, after Families, name, label string) map[string]int {
	sums := func(f Families) map[string]float64 {
		out := map[string]float64{}
		for _, m := range f.matching(name, nil) {
			for _, l := range m.GetLabel() {
				if l.GetName() == label {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
		return out
	}
	b, a := sums(before), sums(after)
	out := map[string]int{}
	for k, v := range a {
		if d := int(math.Round(v - b[k])); d > 0 {
			out[k] = d
		}
	}
	return out
}

// meanOver is the mean observation of histogram name between two scrapes (0 without any).
func meanOver(before, after Families, name string) Seconds {
	n := after.Count(name, nil) - before.Count(name, nil)
	if n == 0 {
		return 0
	}
	return Seconds((after.Sum(name, nil) - before.Sum(name, nil)) / float64(n))
}

// failedGetEvents counts events whose reason starts with FailedGet or is
// FailedComputeMetricsReplicas: the HPA controller's "could not get the metric" events.
func failedGetEvents(events map[string]int) int {
	n := 0
	for reason, c := range events {
		if strings.HasPrefix(reason, "FailedGet") || reason == "FailedComputeMetricsReplicas" {
			n += c
		}
	}
	return n
}

// byCountText formats a map of counts as "a 3, b 2" in key order, each divided by div (per
// sync) when div > 0.
func byCountText(m map[string]int, div float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		if div > 0 {
			parts = append(parts, fmt.Sprintf("%s %s", k, trimFloat(float64(m[k])/div)))
		} else {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// renderHPA renders the HPA measurement.
func renderHPA(p printer, r *HPAResult) {
	if r == nil || r.HPAs == 0 {
		return
	}
	syncs := r.Syncs()
	p("### %s HPAs driven by kube-controller-manager\n\n", count(r.HPAs))
	p("%s HorizontalPodAutoscalers (%s) in %s namespaces, one per fixture Deployment of %d pods (%s pods on %s nodes), "+
		"synced by a real kube-controller-manager running only its HPA controller at its default `--horizontal-pod-autoscaler-sync-period=%s`, "+
		"against one adapter replica on its embedded default config (query cache %s). Pods HPAs ask `%s` of the Deployment's pods, Object HPAs `%s` of its Service, "+
		"External HPAs `%s` with the selector `deployment=<name>`, Resource HPAs cpu utilization (metrics.k8s.io). "+
		"Each HPA's target is the value the fixture implies, so nothing scales; no Deployment or ReplicaSet controller runs, so the fixture's pods stay as they are. "+
		"kube-controller-manager ran with `%s`: these are kube-controller-manager's own client and worker limits, not the adapter's "+
		"(its defaults, 20 QPS, burst 30 and 5 concurrent syncs, allow about 300 API requests per sync for all HPAs, fewer than 1,000 HPAs need).\n\n",
		count(r.HPAs), byCountText(r.ByKind, 0), count(r.Namespaces), r.PodsPerApp, count(r.Pods), count(r.Nodes), durationText(r.SyncPeriod),
		durationText(r.CachePeriod), hpaPodsMetric, hpaObjectMetric, hpaExternalMetric, strings.Join(r.ControllerArgs, " "))
	p("Every HPA showed the fixture's value %s after kube-controller-manager started; %d sync periods later the counters were read, "+
		"then every HPA was read once per sync period for %s (%s sync periods), and the counters read again. "+
		"Figures per sync are increases over that span divided by its sync periods. A check passes when the HPA's ScalingActive and AbleToScale conditions are True "+
		"and its current value equals the fixture's as the HPA controller computes it (Pods: the mean of the pods' values in milli-units, integer division; "+
		"Object and External: the value; Resource: usage ÷ requests in whole percent, truncated) within 1 milli-unit or 1 percentage point: "+
		"the controller rounds each value up to a milli-unit and PromQL's rate() may differ from the fixture's exact slope in the last bits. "+
		"The HPA controller writes an HPA's status only when it changes, so the checks show the values held; the controller's own counters show how often HPAs were synced. "+
		"It queues an HPA again one sync period after its previous sync ended, so each HPA's interval is the period plus its wait for one of the controller's workers and its sync's own duration, and syncs per period fall a little short of the HPAs. "+
		"The distinct (namespace, metric) pairs the HPAs ask are, in each namespace, pods' `%s`, Services' `%s`, `%s` and metrics.k8s.io PodMetrics: %s per namespace, %s in all. "+
		"The machine's 1-minute load average was %.1f at the start and %.1f at the end.\n\n",
		durationText(r.FirstSync), r.WarmupSyncs, durationText(r.Measured), trimFloat(syncs),
		hpaPodsMetric, hpaObjectMetric, hpaExternalMetric, trimFloat(float64(r.DistinctPairs)/float64(max(r.Namespaces, 1))), count(r.DistinctPairs),
		r.LoadBefore, r.LoadAfter)

	p("| Figure | Measured |\n|---|---|\n")
	p("| HPAs with the fixture's value at every sync (read once per sync period) | %s of %s HPAs had the fixture's value at every one of %d checks |\n", count(r.Correct), count(r.HPAs), r.Checks)
	p("| HPA syncs per sync period (kube-controller-manager's `%s`) | %s for %s HPAs, %d with an error |\n",
		hpaReconciliationsMetric, trimFloat(r.perSync(float64(r.Reconciliations))), count(r.HPAs), r.ReconcileErrors)
	if r.Reconciliations > 0 {
		p("| Each HPA's mean interval between syncs; one sync's mean duration in kube-controller-manager | %.2f s; %s |\n",
			float64(r.Measured)*float64(r.HPAs)/float64(r.Reconciliations), millis(r.ReconcileMean))
	}
	p("| Metric computations per sync, by kind (errors over the span) | %s (errors: %s) |\n", byCountText(r.Computations, syncs), byCountText(nonZero(r.ComputationErrors), 0))
	var requests []string
	for _, group := range hpaAPIGroups {
		requests = append(requests, fmt.Sprintf("%s %s (mean %s)", group, trimFloat(r.perSync(float64(r.AdapterRequests[group]))), millis(r.AdapterLatency[group])))
	}
	p("| Requests to the adapter per sync, by API, with their mean duration as the adapter saw it | %s |\n", strings.Join(requests, "; "))
	upstream := r.perSync(float64(r.UpstreamQueries))
	p("| Upstream PromQL queries per sync | %s |\n", verdict(upstream <= float64(r.DistinctPairs),
		fmt.Sprintf("%s per sync (%d over the span, %d failed, mean %s) against %s distinct (namespace, metric) pairs asked",
			trimFloat(upstream), r.UpstreamQueries, r.UpstreamFailed, millis(r.UpstreamMean), count(r.DistinctPairs))))
	if r.DistinctQueries > 0 {
		p("| Upstream PromQL queries per sync against the distinct queries the APIs' semantics need (an external metric's selector is rendered into its query before the rule aggregates, so two selectors are two queries; a PodMetrics answer carries cpu and memory, two `resourceRules` queries) | %s |\n",
			verdict(upstream <= float64(r.DistinctQueries), fmt.Sprintf("%s per sync against %s distinct queries", trimFloat(upstream), count(r.DistinctQueries))))
	}
	p("| Upstream queries per sync, by rule of the default config (`custom/N`: its N-th `rules` entry from 0, `external/N`: of `externalRules`, `resource/<resource>/pods`: a `resourceRules` container query), and per namespace | %s |\n", r.ruleText())
	p("| Planner answers per sync (cache hit, new query, joined one in flight) | %s |\n", byCountText(r.PlannerRequests, syncs))
	p("| Adapter CPU per sync (everything the process did: requests, informers, its 1-minute metric relist) | %s (%.0f %% of one core) |\n", cpuText(Seconds(r.perSync(float64(r.AdapterCPU)))), 100*float64(r.AdapterCPU)/float64(max(r.Measured, 1e-9)))
	p("| kube-controller-manager CPU per sync (for comparison) | %s |\n", cpuText(Seconds(r.perSync(float64(r.ManagerCPU)))))
	p("| Adapter RSS at the end / peak | %s / %s |\n", mib(r.RSS), mib(r.HWM))
	p("| HPA Events during the measured syncs | FailedGet* and FailedComputeMetricsReplicas: %d; all: %s |\n", failedGetEvents(r.Events), byCountText(r.Events, 0))
	p("| HPA Events before (creation, first syncs, warm-up) | FailedGet* and FailedComputeMetricsReplicas: %d; all: %s |\n", failedGetEvents(r.EventsBefore), byCountText(r.EventsBefore, 0))
	p("\n")
	if len(r.Failures) > 0 {
		p("First failed checks:\n\n")
		for _, f := range r.Failures {
			p("- `%s`\n", f)
		}
		p("\n")
	}
}

// nonZero drops zero counts.
func nonZero(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// ruleText formats the upstream queries per sync by rule, each also per namespace (every
// namespace holds the same mix of HPAs).
func (r *HPAResult) ruleText() string {
	rules := make([]string, 0, len(r.UpstreamByRule))
	for rule := range r.UpstreamByRule {
		rules = append(rules, rule)
	}
	sort.Strings(rules)
	var parts []string
	for _, rule := range rules {
		perSync := r.perSync(float64(r.UpstreamByRule[rule]))
		parts = append(parts, fmt.Sprintf("`%s` %s (%s per namespace)", rule, trimFloat(perSync), trimFloat(perSync/float64(max(r.Namespaces, 1)))))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
