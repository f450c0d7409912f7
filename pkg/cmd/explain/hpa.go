package explain

import (
	"context"
	"fmt"
	"net/url"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// hpaTargets reads HPA namespace/name and returns, for each of its metrics, the request the
// HPA controller makes for it: Resource and ContainerResource list the PodMetrics of the scale
// target's selector, Pods asks the custom metric of those pods, Object the custom metric of
// the described object, External the external metric with the metric's selector.
func hpaTargets(ctx context.Context, client kubernetes.Interface, dyn dynamic.Interface, mapper apimeta.RESTMapper, namespace, name string) ([]Target, error) {
	hpa, err := client.AutoscalingV2().HorizontalPodAutoscalers(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading HorizontalPodAutoscaler %s/%s: %w", namespace, name, err)
	}
	if len(hpa.Spec.Metrics) == 0 {
		// The controller's default: 80% average cpu utilization.
		hpa.Spec.Metrics = []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricSource{Name: "cpu"}}}
	}
	var podSelector string
	needsPods := func() (string, error) {
		if podSelector == "" {
			s, err := scaleSelector(ctx, dyn, mapper, namespace, hpa.Spec.ScaleTargetRef)
			if err != nil {
				return "", err
			}
			podSelector = s
		}
		return podSelector, nil
	}
	ns := url.PathEscape(namespace)
	targets := make([]Target, 0, len(hpa.Spec.Metrics))
	for i, m := range hpa.Spec.Metrics {
		title := fmt.Sprintf("HPA %s/%s, metric %d of %d: %s", namespace, name, i+1, len(hpa.Spec.Metrics), describeMetric(m))
		q := url.Values{}
		var path string
		switch m.Type {
		case autoscalingv2.ResourceMetricSourceType, autoscalingv2.ContainerResourceMetricSourceType:
			sel, err := needsPods()
			if err != nil {
				return nil, err
			}
			q.Set("labelSelector", sel)
			path = "/apis/metrics.k8s.io/v1beta1/namespaces/" + ns + "/pods"
		case autoscalingv2.PodsMetricSourceType:
			sel, err := needsPods()
			if err != nil {
				return nil, err
			}
			q.Set("labelSelector", sel)
			if err := setSelector(q, "metricLabelSelector", m.Pods.Metric.Selector); err != nil {
				return nil, fmt.Errorf("%s: %w", title, err)
			}
			path = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + ns + "/pods/*/" + url.PathEscape(m.Pods.Metric.Name)
		case autoscalingv2.ObjectMetricSourceType:
			o := m.Object.DescribedObject
			gv, err := schema.ParseGroupVersion(o.APIVersion)
			if err != nil {
				return nil, fmt.Errorf("%s: describedObject.apiVersion: %w", title, err)
			}
			mapping, err := mapper.RESTMapping(schema.GroupKind{Group: gv.Group, Kind: o.Kind}, gv.Version)
			if err != nil {
				return nil, fmt.Errorf("%s: the cluster serves no %s: %w", title, o.Kind, err)
			}
			if err := setSelector(q, "metricLabelSelector", m.Object.Metric.Selector); err != nil {
				return nil, fmt.Errorf("%s: %w", title, err)
			}
			path = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + ns + "/" + mapping.Resource.GroupResource().String() + "/" +
				url.PathEscape(o.Name) + "/" + url.PathEscape(m.Object.Metric.Name)
		case autoscalingv2.ExternalMetricSourceType:
			if err := setSelector(q, "labelSelector", m.External.Metric.Selector); err != nil {
				return nil, fmt.Errorf("%s: %w", title, err)
			}
			path = "/apis/external.metrics.k8s.io/v1beta1/namespaces/" + ns + "/" + url.PathEscape(m.External.Metric.Name)
		default:
			return nil, fmt.Errorf("%s: metric type %q is not one the HPA controller knows", title, m.Type)
		}
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		targets = append(targets, Target{Title: title, Path: path})
	}
	return targets, nil
}

// scaleSelector reads the pod selector of an HPA's scale target from its scale subresource,
// as the HPA controller does.
func scaleSelector(ctx context.Context, dyn dynamic.Interface, mapper apimeta.RESTMapper, namespace string, ref autoscalingv2.CrossVersionObjectReference) (string, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return "", fmt.Errorf("scaleTargetRef.apiVersion: %w", err)
	}
	mapping, err := mapper.RESTMapping(schema.GroupKind{Group: gv.Group, Kind: ref.Kind}, gv.Version)
	if err != nil {
		return "", fmt.Errorf("scale target %s %s: %w", ref.Kind, ref.Name, err)
	}
	scale, err := dyn.Resource(mapping.Resource).Namespace(namespace).Get(ctx, ref.Name, metav1.GetOptions{}, "scale")
	if err != nil {
		return "", fmt.Errorf("reading the scale of %s %s/%s: %w", ref.Kind, namespace, ref.Name, err)
	}
	raw, _, _ := unstructured.NestedString(scale.Object, "status", "selector")
	if raw == "" {
		return "", fmt.Errorf("the scale of %s %s/%s has no status.selector: the HPA controller cannot select its pods either", ref.Kind, namespace, ref.Name)
	}
	sel, err := labels.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("the scale of %s %s/%s has selector %q: %w", ref.Kind, namespace, ref.Name, raw, err)
	}
	return sel.String(), nil
}

// setSelector sets q[key] to the label selector's canonical form, as the HPA controller sends
// it; an empty selector is not sent.
func setSelector(q url.Values, key string, s *metav1.LabelSelector) error {
	if s == nil {
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return fmt.Errorf("metric selector: %w", err)
	}
	if !sel.Empty() {
		q.Set(key, sel.String())
	}
	return nil
}

// describeMetric names an HPA metric for people: "Pods http_requests_per_second (average value 1)".
func describeMetric(m autoscalingv2.MetricSpec) string {
	switch m.Type {
	case autoscalingv2.ResourceMetricSourceType:
		return fmt.Sprintf("Resource %s (%s)", m.Resource.Name, targetText(m.Resource.Target))
	case autoscalingv2.ContainerResourceMetricSourceType:
		return fmt.Sprintf("ContainerResource %s of container %s (%s)", m.ContainerResource.Name, m.ContainerResource.Container, targetText(m.ContainerResource.Target))
	case autoscalingv2.PodsMetricSourceType:
		return fmt.Sprintf("Pods %s (%s)", m.Pods.Metric.Name, targetText(m.Pods.Target))
	case autoscalingv2.ObjectMetricSourceType:
		o := m.Object.DescribedObject
		return fmt.Sprintf("Object %s %s, metric %s (%s)", o.Kind, o.Name, m.Object.Metric.Name, targetText(m.Object.Target))
	case autoscalingv2.ExternalMetricSourceType:
		return fmt.Sprintf("External %s (%s)", m.External.Metric.Name, targetText(m.External.Target))
	}
	return string(m.Type)
}

func targetText(t autoscalingv2.MetricTarget) string {
	switch {
	case t.AverageUtilization != nil:
		return fmt.Sprintf("target average utilization %d%%", *t.AverageUtilization)
	case t.AverageValue != nil:
		return "target average value " + t.AverageValue.String()
	case t.Value != nil:
		return "target value " + t.Value.String()
	}
	return "no target"
}
