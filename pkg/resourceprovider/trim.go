package resourceprovider

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TrimPod is an informer transform that keeps only what metrics.k8s.io reads of a pod: its
// identity and labels, its phase, and the names of the containers that must report usage.
// Full pods are kilobytes each (managed fields, env, volumes, statuses); at 10,000 pods the
// difference is most of the adapter's memory.
func TrimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // a DeletedFinalStateUnknown tombstone: leave it alone
	}
	out := &corev1.Pod{
		ObjectMeta: trimMeta(pod.ObjectMeta),
		Status:     corev1.PodStatus{Phase: pod.Status.Phase},
	}
	for _, c := range pod.Spec.Containers {
		out.Spec.Containers = append(out.Spec.Containers, corev1.Container{Name: c.Name})
	}
	for _, c := range pod.Spec.InitContainers {
		if c.RestartPolicy != nil { // native sidecars are the init containers that matter
			out.Spec.InitContainers = append(out.Spec.InitContainers, corev1.Container{Name: c.Name, RestartPolicy: c.RestartPolicy})
		}
	}
	return out, nil
}

// TrimNode is an informer transform that keeps a node's identity and labels only.
func TrimNode(obj any) (any, error) {
	node, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	return &corev1.Node{ObjectMeta: trimMeta(node.ObjectMeta)}, nil
}

func trimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		Labels: m.Labels, CreationTimestamp: m.CreationTimestamp,
	}
}
