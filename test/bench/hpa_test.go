package main

import (
	"fmt"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/promadapter/promadapter/test/fixture"
)

func TestHPAExpectedValuesFollowTheControllersArithmetic(t *testing.T) {
	cases := []struct {
		name string
		got  int64
		want int64
	}{
		{"a Pods average is the sum of milli-values divided by the count, truncated", podsAverageMilli([]float64{0.25, 0.5, 0.75}), 500},
		{"a Pods average truncates a third", podsAverageMilli([]float64{0.25, 0.25, 0.5}), 333},
		{"a value is rounded up to a milli-unit, as MilliValue rounds", ceilMilli(1.0 / 16), 63},
		{"an exact milli-value stays", ceilMilli(0.125), 125},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: got %d, want %d", c.name, c.got, c.want)
		}
	}
	pod := func(cores []float64, requests []int64, complete bool) fixture.Pod {
		p := fixture.Pod{}
		for i := range cores {
			p.Containers = append(p.Containers, fixture.Container{CPUCores: cores[i], CPURequestMillicores: requests[i], HasSeries: complete || i == 0})
		}
		return p
	}
	// 63m + 125m over 1,000m requested is 18.8 %: 18; the incomplete pod counts neither way.
	got := cpuUtilizationPercent([]fixture.Pod{
		pod([]float64{1.0 / 16}, []int64{500}, true),
		pod([]float64{2.0 / 16}, []int64{500}, true),
		pod([]float64{1, 1}, []int64{500, 50}, false),
	})
	if got != 18 {
		t.Errorf("cpu utilization: got %d %%, want 18 %%", got)
	}
}

func TestHPATargetsCoverEveryDeploymentWithTheMix(t *testing.T) {
	spec := (&bench{opts: options{podsPerNode: 100}}).hpaSpec(20)
	targets, err := hpaTargets(spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(targets) != 20 {
		t.Fatalf("got %d HPAs for 2 namespaces of 10 apps, want 20", len(targets))
	}
	kinds := map[string]int{}
	pairs := map[string]bool{}
	for _, tg := range targets {
		kinds[tg.Kind]++
		pairs[tg.Namespace+" "+tg.metricKey()] = true
		if tg.Replicas != hpaPodsPerApp {
			t.Errorf("%s/%s has %d replicas, want %d", tg.Namespace, tg.App, tg.Replicas, hpaPodsPerApp)
		}
	}
	if kinds[hpaPods] != 8 || kinds[hpaObject] != 4 || kinds[hpaExternal] != 4 || kinds[hpaResource] != 4 {
		t.Errorf("kinds %v, want 8 Pods and 4 of each other kind", kinds)
	}
	if len(pairs) != 8 {
		t.Errorf("%d distinct (namespace, metric) pairs, want 4 per namespace", len(pairs))
	}
	// ns-0/app-4 is an even app: 1/8 of its requests fail. ns-0/app-6's Deployment has 10 replicas.
	for _, tg := range targets {
		switch {
		case tg.Namespace == "ns-0" && tg.App == "app-4" && tg.Want != 125:
			t.Errorf("Object ns-0/app-4: want 125m, got %d", tg.Want)
		case tg.Namespace == "ns-0" && tg.App == "app-6" && tg.Want != 10000:
			t.Errorf("External ns-0/app-6: want 10000m, got %d", tg.Want)
		}
	}
}

func TestCheckHPAComparesConditionsAndValue(t *testing.T) {
	target := hpaTarget{Namespace: "ns-0", App: "app-0", Kind: hpaPods, Want: 1250}
	status := func(scalingActive corev1.ConditionStatus, milli int64) *autoscalingv2.HorizontalPodAutoscaler {
		h := &autoscalingv2.HorizontalPodAutoscaler{}
		h.Status.Conditions = []autoscalingv2.HorizontalPodAutoscalerCondition{
			{Type: autoscalingv2.AbleToScale, Status: corev1.ConditionTrue},
			{Type: autoscalingv2.ScalingActive, Status: scalingActive, Reason: "FailedGetPodsMetric"},
		}
		h.Status.CurrentMetrics = []autoscalingv2.MetricStatus{{Type: autoscalingv2.PodsMetricSourceType,
			Pods: &autoscalingv2.PodsMetricStatus{Current: autoscalingv2.MetricValueStatus{AverageValue: resource.NewMilliQuantity(milli, resource.DecimalSI)}}}}
		return h
	}
	cases := []struct {
		name    string
		hpa     *autoscalingv2.HorizontalPodAutoscaler
		wantErr string
	}{
		{"the exact value passes", status(corev1.ConditionTrue, 1250), ""},
		{"one milli-unit above passes (MilliValue rounds up)", status(corev1.ConditionTrue, 1251), ""},
		{"two milli-units off fail", status(corev1.ConditionTrue, 1252), "want 1250"},
		{"ScalingActive=False fails whatever the value", status(corev1.ConditionFalse, 1250), "ScalingActive=False"},
		{"an HPA without status fails", &autoscalingv2.HorizontalPodAutoscaler{}, "no ScalingActive"},
	}
	for _, c := range cases {
		err := checkHPA(c.hpa, target)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.wantErr)
		}
	}
}

func TestRenderHPAStatesTheChecksOutcome(t *testing.T) {
	r := &HPAResult{
		HPAs: 1000, Namespaces: 100, Pods: 10000, Nodes: 100, PodsPerApp: 10, DistinctPairs: 400,
		ByKind:     map[string]int{hpaPods: 400, hpaObject: 200, hpaExternal: 200, hpaResource: 200},
		SyncPeriod: 15, Measured: 90, Checks: 6, Correct: 998, Reconciliations: 6000, UpstreamQueries: 1800,
		AdapterCPU: 9, ControllerArgs: hpaControllerArgs, Events: map[string]int{"FailedGetPodsMetric": 2},
	}
	var b strings.Builder
	renderHPA(func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }, r)
	out := b.String()
	for _, want := range []string{
		"### 1,000 HPAs driven by kube-controller-manager",
		"998 of 1,000 HPAs had the fixture's value at every one of 6 checks",
		"1000 for 1,000 HPAs",
		"**met**: 300 per sync",
		"FailedGet* and FailedComputeMetricsReplicas: 2",
		"1500 ms CPU", // 9 s over 6 syncs
		"--kube-api-qps=500",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the HPA section lacks %q:\n%s", want, out)
		}
	}
}
