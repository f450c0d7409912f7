package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

// The HPA measurement (hpa.go, hpa_report.go) answers: can one adapter replica serve 1,000
// HorizontalPodAutoscalers that a real kube-controller-manager syncs at its default period, with
// every HPA getting the fixture's value every sync, and at what cost upstream and in CPU?
//
// Each namespace holds hpasPerNamespace apps of hpaPodsPerApp pods (fixture Deployments, which
// keep their fixture pods: only the HPA controller runs, no Deployment or ReplicaSet
// controller), and one HPA per app. Each HPA's target equals the value the fixture implies, so
// the desired replica count equals the current one and nothing scales: a rescale (event
// SuccessfulRescale) would mean a value the fixture does not imply.
const (
	hpasPerNamespace = 10
	hpaPodsPerApp    = 10
	// hpaSyncPeriod is kube-controller-manager's default --horizontal-pod-autoscaler-sync-period.
	hpaSyncPeriod = 15 * time.Second
	// hpaWarmupSyncs are left to pass after every HPA first reports ScalingActive=True, before
	// measuring: the first syncs create each HPA's status and fill the adapter's informers.
	hpaWarmupSyncs = 2
	// hpaReadyTimeout bounds the wait for every HPA's first successful sync.
	hpaReadyTimeout = 5 * time.Minute
)

// hpaControllerArgs lift kube-controller-manager's own client limits, which are not the
// adapter's: its defaults (--kube-api-qps=20, --kube-api-burst=30 for all its clients, metrics
// clients included, and 5 concurrent HPA syncs) allow about 300 requests per 15 s, fewer than the
// two or three per HPA (scale, metric, sometimes status) that 1,000 HPAs need each sync.
var hpaControllerArgs = []string{
	"--kube-api-qps=500",
	"--kube-api-burst=1000",
	"--concurrent-horizontal-pod-autoscaler-syncs=20",
}

// Kinds of HPA metric, as autoscaling/v2 names them.
const (
	hpaPods     = string(autoscalingv2.PodsMetricSourceType)
	hpaObject   = string(autoscalingv2.ObjectMetricSourceType)
	hpaExternal = string(autoscalingv2.ExternalMetricSourceType)
	hpaResource = string(autoscalingv2.ResourceMetricSourceType)
)

// hpaMix is the kind of HPA of each app of a namespace, by app index: 4 Pods, 2 Object,
// 2 External, 2 Resource. Resource HPAs are on apps 8 and 9, away from the fixture's one
// incomplete pod (app-1 of ns-0), whose missing cAdvisor series would make the HPA controller
// treat it as a missing pod.
var hpaMix = [hpasPerNamespace]string{hpaPods, hpaPods, hpaPods, hpaPods, hpaObject, hpaObject, hpaExternal, hpaExternal, hpaResource, hpaResource}

// Metrics each kind asks, all served by the embedded default config for the fixture's series.
const (
	hpaPodsMetric     = "http_requests_per_second" // pods, from http_requests_total
	hpaObjectMetric   = "http_requests_5xx_ratio"  // the app's Service, from http_requests_total
	hpaExternalMetric = "kube_deployment_spec_replicas"
)

// hpaTarget is one HPA and the value the fixture implies for it.
type hpaTarget struct {
	Namespace, App string
	// Kind is Pods, Object, External or Resource.
	Kind string
	// Replicas is the Deployment's replica count (its fixture pods).
	Replicas int32
	// Want is the value the HPA controller computes, in its own units: milli-units for Pods
	// (status averageValue), Object and External (status value), percent for Resource (status
	// averageUtilization).
	Want int64
}

// metricKey names what the HPA asks the adapter, for counting distinct (namespace, metric) pairs.
func (t hpaTarget) metricKey() string {
	switch t.Kind {
	case hpaPods:
		return "custom.metrics.k8s.io pods/" + hpaPodsMetric
	case hpaObject:
		return "custom.metrics.k8s.io services/" + hpaObjectMetric
	case hpaExternal:
		return "external.metrics.k8s.io " + hpaExternalMetric
	default:
		return "metrics.k8s.io pods (cpu)"
	}
}

// queryKeys name the upstream queries the APIs' semantics need for the HPA's request: an
// external metric's selector is rendered into its query before the rule aggregates (so two
// selectors cannot share one query without changing the answer), and a PodMetrics answer
// carries cpu and memory, one resourceRules container query each.
func (t hpaTarget) queryKeys() []string {
	switch t.Kind {
	case hpaExternal:
		return []string{t.metricKey() + "{deployment=" + t.App + "}"}
	case hpaResource:
		return []string{"resource cpu", "resource memory"}
	default:
		return []string{t.metricKey()}
	}
}

// ceilMilli is v in milli-units rounded up, as resource.Quantity.MilliValue rounds the values the
// HPA controller reads.
func ceilMilli(v float64) int64 { return int64(math.Ceil(v * 1000)) }

// podsAverageMilli is the HPA controller's Pods value: the sum of each pod's value in milli-units
// divided by the number of pods, in integer arithmetic (GetMetricUsageRatio in
// k8s.io/kubernetes/pkg/controller/podautoscaler/metrics).
func podsAverageMilli(perPod []float64) int64 {
	var sum int64
	for _, v := range perPod {
		sum += ceilMilli(v)
	}
	return sum / int64(len(perPod))
}

// cpuUtilizationPercent is the HPA controller's Resource value: the pods' summed cpu usage in
// millicores (each container's usage rounded up, as PodMetrics are read with MilliValue) times 100
// divided by their summed cpu requests, truncated (GetResourceUtilizationRatio). Pods without
// series for every container are left out, as the adapter leaves them out of PodMetrics.
func cpuUtilizationPercent(pods []fixture.Pod) int64 {
	var usage, requests int64
	for _, p := range pods {
		if !p.Complete() {
			continue
		}
		for _, c := range p.Containers {
			usage += ceilMilli(c.CPUCores)
			requests += c.CPURequestMillicores
		}
	}
	if requests == 0 {
		return 0
	}
	return usage * 100 / requests
}

// hpaTargets lists the HPAs of a spec laid out by hpaSpec, with their expected values.
func hpaTargets(spec fixture.Spec) ([]hpaTarget, error) {
	byApp := map[string][]fixture.Pod{}
	for _, p := range spec.PodList() {
		byApp[p.Namespace+"/"+p.App] = append(byApp[p.Namespace+"/"+p.App], p)
	}
	var out []hpaTarget
	for _, d := range spec.Deployments() {
		a := appIndex(d.Name)
		if a >= len(hpaMix) {
			continue
		}
		t := hpaTarget{Namespace: d.Namespace, App: d.Name, Kind: hpaMix[a], Replicas: d.Replicas}
		pods := byApp[d.Namespace+"/"+d.Name]
		switch t.Kind {
		case hpaPods:
			rates := make([]float64, len(pods))
			for i, p := range pods {
				rates[i] = p.RequestRate
			}
			t.Want = podsAverageMilli(rates)
		case hpaObject:
			ratio, ok := spec.Service5xxRatio(d.Namespace, d.Name)
			if !ok {
				return nil, fmt.Errorf("the fixture has no Service %s/%s", d.Namespace, d.Name)
			}
			t.Want = ceilMilli(ratio)
		case hpaExternal:
			t.Want = int64(d.Replicas) * 1000
		case hpaResource:
			t.Want = cpuUtilizationPercent(pods)
		}
		if t.Want <= 0 || len(pods) == 0 {
			return nil, fmt.Errorf("%s/%s: no positive expected %s value (%d) from %d pods", d.Namespace, d.Name, t.Kind, t.Want, len(pods))
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return appIndex(out[i].App) < appIndex(out[j].App)
	})
	return out, nil
}

// hpaSpec lays out a fixture for hpas HPAs: hpas/hpasPerNamespace namespaces of
// hpasPerNamespace apps of hpaPodsPerApp pods.
func (b *bench) hpaSpec(hpas int) fixture.Spec {
	namespaces := hpas / hpasPerNamespace
	pods := namespaces * hpasPerNamespace * hpaPodsPerApp
	return fixture.Spec{Pods: pods, Namespaces: namespaces, AppsPerNamespace: hpasPerNamespace, Nodes: max(3, pods/b.opts.podsPerNode)}
}

// hpaObjectFor builds the HPA of a target: the target value is the expected one, so the ratio the
// controller computes is 1 and the replica count stays; maxReplicas leaves room to scale up.
func hpaObjectFor(t hpaTarget) *autoscalingv2.HorizontalPodAutoscaler {
	minReplicas := int32(1)
	want := resource.NewMilliQuantity(t.Want, resource.DecimalSI)
	var m autoscalingv2.MetricSpec
	switch t.Kind {
	case hpaPods:
		m = autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: hpaPodsMetric},
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: want},
		}}
	case hpaObject:
		m = autoscalingv2.MetricSpec{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{
			DescribedObject: autoscalingv2.CrossVersionObjectReference{APIVersion: "v1", Kind: "Service", Name: t.App},
			Metric:          autoscalingv2.MetricIdentifier{Name: hpaObjectMetric},
			Target:          autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: want},
		}}
	case hpaExternal:
		m = autoscalingv2.MetricSpec{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: hpaExternalMetric,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"deployment": t.App}}},
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: want},
		}}
	case hpaResource:
		utilization := int32(t.Want)
		m = autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
			Name:   corev1.ResourceCPU,
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &utilization},
		}}
	}
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: t.Namespace, Name: t.App},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: t.App},
			MinReplicas:    &minReplicas,
			MaxReplicas:    2 * t.Replicas,
			Metrics:        []autoscalingv2.MetricSpec{m},
		},
	}
}

// measureHPA runs the HPA measurement when -hpas is set, stores it in results and adds its time
// to results.Duration.
func (b *bench) measureHPA(ctx context.Context, results *Results) error {
	if b.opts.hpas <= 0 {
		return nil
	}
	started := time.Now()
	defer func() { results.Duration += secondsOf(time.Since(started)) }()
	r, err := b.runHPA(ctx, b.opts.hpas, b.opts.hpaSyncs)
	results.HPA = r
	if err != nil {
		return fmt.Errorf("%d HPAs: %w", b.opts.hpas, err)
	}
	klog.InfoS("HPAs measured", "hpas", r.HPAs, "correct", r.Correct, "elapsed", time.Since(started).Round(time.Second))
	return nil
}

// runHPA builds the cluster, creates the HPAs, starts kube-controller-manager and measures syncs
// syncs after the warm-up.
func (b *bench) runHPA(ctx context.Context, hpas, syncs int) (*HPAResult, error) {
	if hpas%hpasPerNamespace != 0 {
		return nil, fmt.Errorf("-hpas %d: give a multiple of %d (the HPAs of one namespace)", hpas, hpasPerNamespace)
	}
	spec := b.hpaSpec(hpas)
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	targets, err := hpaTargets(spec)
	if err != nil {
		return nil, err
	}
	r := &HPAResult{
		HPAs: len(targets), Namespaces: spec.Namespaces, Pods: spec.Pods, Nodes: spec.Nodes, PodsPerApp: hpaPodsPerApp,
		SyncPeriod: secondsOf(hpaSyncPeriod), WarmupSyncs: hpaWarmupSyncs, ControllerArgs: hpaControllerArgs,
		CachePeriod: secondsOf(defaultCachePeriod), ByKind: map[string]int{}, LoadBefore: loadAverage(),
	}
	pairs, queries := map[string]bool{}, map[string]bool{}
	for _, t := range targets {
		r.ByKind[t.Kind]++
		pairs[t.Namespace+" "+t.metricKey()] = true
		for _, k := range t.queryKeys() {
			queries[t.Namespace+" "+k] = true
		}
	}
	r.DistinctPairs, r.DistinctQueries = len(pairs), len(queries)

	dir := filepath.Join(b.workDir, "hpa-"+strconv.Itoa(hpas))
	klog.InfoS("Starting a cluster for the HPAs", "hpas", hpas, "pods", spec.Pods, "namespaces", spec.Namespaces)
	cluster, err := testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: b.bins, Dir: filepath.Join(dir, "cluster")})
	if err != nil {
		return r, err
	}
	defer cluster.Stop()
	client, err := fastClient(cluster)
	if err != nil {
		return r, err
	}
	if err := spec.ApplyObjects(ctx, client); err != nil {
		return r, fmt.Errorf("creating the fixture's objects: %w", err)
	}
	started := time.Now()
	promDir := filepath.Join(dir, "prometheus")
	// The data must outlast the warm-up and the measured syncs, with the same margin as a size.
	horizon := dataHorizon(spec.Pods) + hpaReadyTimeout + time.Duration(hpaWarmupSyncs+syncs)*hpaSyncPeriod
	if err := b.backfill(ctx, promDir, func(w *bufio.Writer) error {
		return spec.WriteOpenMetrics(w, started.Add(-dataLookback), started.Add(horizon), sampleStep)
	}); err != nil {
		return r, err
	}
	prom, err := testbed.StartPrometheus(ctx, testbed.PrometheusOptions{Bins: b.bins, Major: "3", Dir: promDir, StartTimeout: 5 * time.Minute})
	if err != nil {
		return r, err
	}
	defer prom.Stop()
	adapter, err := cluster.StartAdapter(ctx, testbed.AdapterOptions{
		Bin:           b.adapterBin,
		PrometheusURL: prom.URL,
		Dir:           filepath.Join(dir, "adapter"),
		ExtraArgs:     append([]string(nil), adapterArgs...),
	})
	if err != nil {
		return r, err
	}
	defer adapter.Stop()
	adapterPID, err := findChildPID("--secure-port=" + strconv.Itoa(adapter.Port))
	if err != nil {
		return r, err
	}
	direct, err := directClient(cluster.RESTConfig, adapter.Port)
	if err != nil {
		return r, err
	}

	if err := createHPAs(ctx, client, targets); err != nil {
		return r, err
	}
	klog.InfoS("Created the HPAs; starting kube-controller-manager", "hpas", len(targets), "syncPeriod", hpaSyncPeriod, "args", hpaControllerArgs)
	controllerStarted := time.Now()
	if err := cluster.StartControllerManager(ctx, []string{"horizontalpodautoscaling"}, hpaSyncPeriod, hpaControllerArgs...); err != nil {
		return r, err
	}
	manager, managerClient, err := controllerManager(cluster)
	if err != nil {
		return r, err
	}
	if err := waitForHPAs(ctx, client, targets, hpaReadyTimeout); err != nil {
		return r, fmt.Errorf("%w (adapter log %s, kube-controller-manager log %s)", err, adapter.LogPath, manager.LogPath)
	}
	r.FirstSync = secondsOf(time.Since(controllerStarted))
	klog.InfoS("Every HPA has its value; warming up", "after", time.Since(controllerStarted).Round(time.Second), "syncs", hpaWarmupSyncs)
	if err := sleep(ctx, hpaWarmupSyncs*hpaSyncPeriod); err != nil {
		return r, err
	}

	if err := r.measureSyncs(ctx, client, direct, managerClient, adapterPID, manager.PID(), targets, syncs); err != nil {
		return r, fmt.Errorf("%w (adapter log %s, kube-controller-manager log %s)", err, adapter.LogPath, manager.LogPath)
	}
	mem, err := readMemory(adapterPID)
	if err != nil {
		return r, err
	}
	r.RSS, r.HWM = mem.RSS, mem.HWM
	r.LoadAfter = loadAverage()
	return r, nil
}
