package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/promadapter/promadapter/test/testbed"
)

// hpaTolerance is how far an HPA's value may be from the expected one: one milli-unit, or one
// percentage point for Resource. PromQL's rate() may differ from the fixture's exact slope in the
// last bits, and the controller rounds each value up to a milli-unit (MilliValue), so a value a
// hair above an exact 250m reads as 251m (and moves a utilization by at most one point).
const hpaTolerance = 1

// checkHPA reports whether an HPA's status shows the fixture's value with ScalingActive and
// AbleToScale True, and if not, why.
func checkHPA(h *autoscalingv2.HorizontalPodAutoscaler, t hpaTarget) error {
	for _, want := range []autoscalingv2.HorizontalPodAutoscalerConditionType{autoscalingv2.ScalingActive, autoscalingv2.AbleToScale} {
		found := false
		for _, c := range h.Status.Conditions {
			if c.Type == want {
				found = true
				if c.Status != corev1.ConditionTrue {
					return fmt.Errorf("%s=%s (%s: %s)", c.Type, c.Status, c.Reason, c.Message)
				}
			}
		}
		if !found {
			return fmt.Errorf("no %s condition yet", want)
		}
	}
	got, ok := currentValue(h, t.Kind)
	if !ok {
		return fmt.Errorf("no current %s metric in the status", t.Kind)
	}
	if d := got - t.Want; d > hpaTolerance || d < -hpaTolerance {
		return fmt.Errorf("%s value %d, want %d ± %d (%s)", t.Kind, got, t.Want, hpaTolerance, unitOf(t.Kind))
	}
	return nil
}

// currentValue reads the HPA's current value of its only metric in the units of hpaTarget.Want.
func currentValue(h *autoscalingv2.HorizontalPodAutoscaler, kind string) (int64, bool) {
	for _, cm := range h.Status.CurrentMetrics {
		switch {
		case kind == hpaPods && cm.Pods != nil && cm.Pods.Current.AverageValue != nil:
			return cm.Pods.Current.AverageValue.MilliValue(), true
		case kind == hpaObject && cm.Object != nil && cm.Object.Current.Value != nil:
			return cm.Object.Current.Value.MilliValue(), true
		case kind == hpaExternal && cm.External != nil && cm.External.Current.Value != nil:
			return cm.External.Current.Value.MilliValue(), true
		case kind == hpaResource && cm.Resource != nil && cm.Resource.Current.AverageUtilization != nil:
			return int64(*cm.Resource.Current.AverageUtilization), true
		}
	}
	return 0, false
}

func unitOf(kind string) string {
	if kind == hpaResource {
		return "percent"
	}
	return "milli-units"
}

// createHPAs creates the targets' HPAs, eight at a time.
func createHPAs(ctx context.Context, client kubernetes.Interface, targets []hpaTarget) error {
	next := make(chan hpaTarget, len(targets))
	for _, t := range targets {
		next <- t
	}
	close(next)
	return concurrently(ctx, 8, func(ctx context.Context) error {
		for t := range next {
			if _, err := client.AutoscalingV2().HorizontalPodAutoscalers(t.Namespace).Create(ctx, hpaObjectFor(t), metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("creating the HPA %s/%s: %w", t.Namespace, t.App, err)
			}
		}
		return nil
	})
}

// waitForHPAs polls every HPA until each shows the fixture's value (checkHPA), and fails after
// timeout naming the first HPAs that do not.
func waitForHPAs(ctx context.Context, client kubernetes.Interface, targets []hpaTarget, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		bad, err := checkAllHPAs(ctx, client, targets)
		if err == nil && len(bad) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return err
			}
			return fmt.Errorf("after %s, %d of %d HPAs do not show the fixture's value, e.g. %s", timeout, len(bad), len(targets), strings.Join(firstN(bad, 3), "; "))
		}
		if err := sleep(ctx, 5*time.Second); err != nil {
			return err
		}
	}
}

// checkAllHPAs lists every HPA once and returns, for each target that fails checkHPA,
// "namespace/name: why", in the targets' order.
func checkAllHPAs(ctx context.Context, client kubernetes.Interface, targets []hpaTarget) ([]string, error) {
	list, err := client.AutoscalingV2().HorizontalPodAutoscalers(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing the HPAs: %w", err)
	}
	byName := make(map[string]*autoscalingv2.HorizontalPodAutoscaler, len(list.Items))
	for i := range list.Items {
		byName[list.Items[i].Namespace+"/"+list.Items[i].Name] = &list.Items[i]
	}
	var bad []string
	for _, t := range targets {
		name := t.Namespace + "/" + t.App
		h, ok := byName[name]
		if !ok {
			bad = append(bad, name+": missing")
			continue
		}
		if err := checkHPA(h, t); err != nil {
			bad = append(bad, name+": "+err.Error())
		}
	}
	return bad, nil
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// controllerManager finds the cluster's kube-controller-manager process and a client for its
// secure port (as admin, for /metrics).
func controllerManager(cluster *testbed.Cluster) (*testbed.Process, *kubernetes.Clientset, error) {
	for _, p := range cluster.Processes() {
		if p.Name != "kube-controller-manager" {
			continue
		}
		for _, a := range p.Args {
			if port, ok := strings.CutPrefix(a, "--secure-port="); ok {
				n, err := strconv.Atoi(port)
				if err != nil {
					return nil, nil, fmt.Errorf("kube-controller-manager's %s: %w", a, err)
				}
				c, err := directClient(cluster.RESTConfig, n)
				return p, c, err
			}
		}
	}
	return nil, nil, fmt.Errorf("no kube-controller-manager with a --secure-port among the cluster's processes")
}

// hpaEvents counts the Events about HPAs, by reason, summing each Event's count.
func hpaEvents(ctx context.Context, client kubernetes.Interface) (map[string]int, error) {
	list, err := client.CoreV1().Events(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=HorizontalPodAutoscaler"})
	if err != nil {
		return nil, fmt.Errorf("listing the HPAs' events: %w", err)
	}
	out := map[string]int{}
	for _, e := range list.Items {
		out[e.Reason] += int(max(1, e.Count))
	}
	return out, nil
}
