package resourceprovider

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/metrics/pkg/apis/metrics"
	"k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// appendPodMetricsJSON writes what encoding/json writes for the v1beta1 item, including the
// shapes podMetrics does not build today.
func TestPodMetricsJSONIsEncodingJSONs(t *testing.T) {
	ts := metav1.NewTime(time.Date(2025, 3, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600)))
	usage := corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi"), corev1.ResourceCPU: *resource.NewScaledQuantity(123456, resource.Nano)}
	for _, tc := range []struct {
		name string
		pm   metrics.PodMetrics
	}{
		{"as podMetrics builds it", metrics.PodMetrics{
			ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "team-a", Labels: map[string]string{"app": "web", "pod-template-hash": "5d4f8", "app.kubernetes.io/name": "web"}},
			Timestamp:  ts, Window: metav1.Duration{Duration: 30 * time.Second},
			Containers: []metrics.ContainerMetrics{{Name: "app", Usage: usage}, {Name: "proxy", Usage: usage}},
		}},
		{"no labels, no namespace, zero time and window", metrics.PodMetrics{
			ObjectMeta: metav1.ObjectMeta{Name: "x"},
			Containers: []metrics.ContainerMetrics{{Name: "c", Usage: usage}},
		}},
		{"nil containers", metrics.PodMetrics{ObjectMeta: metav1.ObjectMeta{Name: "x"}}},
		{"empty containers, nil usage", metrics.PodMetrics{Containers: []metrics.ContainerMetrics{{Name: "c"}}}},
		{"more resources than cpu and memory, unformatted quantities", metrics.PodMetrics{
			Containers: []metrics.ContainerMetrics{{Name: "c", Usage: corev1.ResourceList{
				"memory": *resource.NewQuantity(1<<20, resource.BinarySI), "cpu": *resource.NewMilliQuantity(250, resource.DecimalSI),
				"ephemeral-storage": *resource.NewQuantity(5e9, resource.DecimalSI), "a": resource.MustParse("1")}}},
		}},
		{"characters encoding/json escapes", metrics.PodMetrics{
			ObjectMeta: metav1.ObjectMeta{Name: `a"b\c`, Namespace: "<&>", Labels: map[string]string{"é": "\u2028\x01\n", "k": "bad \xff utf-8"}},
			Containers: []metrics.ContainerMetrics{{Name: "\t", Usage: usage}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var item v1beta1.PodMetrics
			if err := v1beta1.Convert_metrics_PodMetrics_To_v1beta1_PodMetrics(&tc.pm, &item, nil); err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			if err := json.NewEncoder(&want).Encode(&item); err != nil {
				t.Fatal(err)
			}
			got := appendPodMetricsJSON([]byte("prefix"), &tc.pm)
			if w := append([]byte("prefix"), bytes.TrimSuffix(want.Bytes(), []byte("\n"))...); !bytes.Equal(got, w) {
				t.Errorf("got  %s\nwant %s", got, w)
			}
		})
	}
}
