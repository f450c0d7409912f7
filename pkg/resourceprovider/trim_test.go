package resourceprovider

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestTrimPodKeepsWhatUsageNeeds(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u", Labels: map[string]string{"app": "a"},
			Annotations: map[string]string{"big": "x"}, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "m"}}},
		Spec: corev1.PodSpec{
			Containers:     []corev1.Container{{Name: "app", Image: "i", Env: []corev1.EnvVar{{Name: "A"}}}},
			InitContainers: []corev1.Container{{Name: "init"}, {Name: "sidecar", RestartPolicy: &always}},
			NodeName:       "n",
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1"},
	}
	got, err := TrimPod(pod)
	if err != nil {
		t.Fatal(err)
	}
	p := got.(*corev1.Pod)
	if p.Name != "p" || p.Namespace != "ns" || p.UID != "u" || p.Labels["app"] != "a" || p.Status.Phase != corev1.PodRunning {
		t.Errorf("identity, labels or phase lost: %+v", p)
	}
	if len(p.Annotations) != 0 || len(p.ManagedFields) != 0 || p.Spec.NodeName != "" || p.Status.PodIP != "" || p.Spec.Containers[0].Image != "" {
		t.Errorf("unneeded fields kept: %+v", p)
	}
	if names := runningContainerNames(p); len(names) != 2 || names[0] != "app" || names[1] != "sidecar" {
		t.Errorf("containers that must report usage = %v, want [app sidecar]", names)
	}
}
