//go:build e2e

// simulatedApp, which plays kubelet and cAdvisor for the pods of one Deployment in the HPA tests.

package e2e

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/promadapter/promadapter/test/fixture"
)

// simulatedApp plays kubelet and cAdvisor for the pods of one Deployment (those labelled
// app=<name> in its namespace), looking every simulatorInterval:
//   - a pod that is not Running and Ready is marked so, started simulatedPodStartedAgo ago (or as
//     startNewPodsAs says);
//   - a Running pod's series are published in the exporter with the current load: cpu and memory
//     of its container (labels namespace, pod, container) and http_requests_total with code 200
//     and 500 (labels namespace, pod, service, code);
//   - the series of a pod that is gone or terminating are removed;
//   - the namespace's queue depth is published as queue_messages_ready{namespace, queue="orders"}.
//
// It stops, and removes every series it published, when the test ends.
type simulatedApp struct {
	client    kubernetes.Interface
	exporter  *fixture.Exporter
	namespace string
	name      string

	mu      sync.Mutex
	load    appLoad
	lastErr error
	// newPods, when set, is what pods marked Running from then on claim and publish instead of
	// simulatedPodStartedAgo and load (see startNewPodsAs).
	newPods *newPodSimulation
	// podLoad is the load of the pods marked while newPods was set; written by the loop only.
	podLoad map[string]appLoad
	// published is the load each pod's series were last set to; written by the loop only.
	published map[string]appLoad
	// queuePublished is whether the queue gauge has been set, and to what.
	queuePublished bool
	queueDepth     float64
}

const simulatorInterval = 500 * time.Millisecond

func startSimulatedApp(t *testing.T, client kubernetes.Interface, exporter *fixture.Exporter, namespace, name string, load appLoad) *simulatedApp {
	a := &simulatedApp{client: client, exporter: exporter, namespace: namespace, name: name, load: load, published: map[string]appLoad{}, podLoad: map[string]appLoad{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ticker := time.NewTicker(simulatorInterval)
		defer ticker.Stop()
		for {
			a.step(ctx)
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		for pod := range a.published {
			a.unpublish(pod)
		}
		a.exporter.Remove("queue_messages_ready", a.queueLabels())
	})
	return a
}

// setLoad changes what the series say from the next step on.
func (a *simulatedApp) setLoad(l appLoad) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.load = l
}

// newPodSimulation is how the pods a simulatedApp marks Running from some moment on differ.
type newPodSimulation struct {
	// startedAgo is how long before being marked they claim to have started and become Ready.
	startedAgo time.Duration
	// load is what their series say, instead of the app's load.
	load appLoad
}

// startNewPodsAs makes the pods marked Running from now on claim that they started and became
// Ready startedAgo before, and publish load rather than the app's load.
func (a *simulatedApp) startNewPodsAs(startedAgo time.Duration, load appLoad) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.newPods = &newPodSimulation{startedAgo: startedAgo, load: load}
}

// lastError is the last error of talking to the apiserver, if any.
func (a *simulatedApp) lastError() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastErr
}

func (a *simulatedApp) fail(err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lastErr = err
}

func (a *simulatedApp) step(ctx context.Context) {
	a.mu.Lock()
	appWide, newPods := a.load, a.newPods
	a.mu.Unlock()
	load := appWide
	if !a.queuePublished || a.queueDepth != load.QueueDepth {
		a.exporter.SetGauge("queue_messages_ready", a.queueLabels(), load.QueueDepth)
		a.queuePublished, a.queueDepth = true, load.QueueDepth
	}
	listCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pods, err := a.client.CoreV1().Pods(a.namespace).List(listCtx, metav1.ListOptions{LabelSelector: "app=" + a.name})
	if err != nil {
		a.fail(fmt.Errorf("listing the pods of %s/%s: %w", a.namespace, a.name, err))
		return
	}
	running := map[string]bool{}
	for i := range pods.Items {
		pod := &pods.Items[i]
		if pod.DeletionTimestamp != nil {
			continue
		}
		if !runningAndReady(pod) {
			startedAgo := simulatedPodStartedAgo
			if newPods != nil {
				startedAgo = newPods.startedAgo
			}
			if err := a.markRunning(listCtx, pod, startedAgo); err != nil {
				a.fail(fmt.Errorf("marking pod %s/%s Running and Ready: %w", a.namespace, pod.Name, err))
				continue
			}
			if newPods != nil {
				a.podLoad[pod.Name] = newPods.load
			}
		}
		running[pod.Name] = true
		load = appWide
		if l, ok := a.podLoad[pod.Name]; ok {
			load = l
		}
		if published, ok := a.published[pod.Name]; !ok || published != load {
			a.publish(pod.Name, load)
		}
	}
	for pod := range a.published {
		if !running[pod] {
			a.unpublish(pod)
		}
	}
}

func runningAndReady(pod *corev1.Pod) bool {
	if pod.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// markRunning does a kubelet's part: the pod's containers run and are ready, and claim to have
// started and become Ready startedAgo.
func (a *simulatedApp) markRunning(ctx context.Context, pod *corev1.Pod, startedAgo time.Duration) error {
	started := metav1.NewTime(time.Now().Add(-startedAgo).Truncate(time.Second))
	pod = pod.DeepCopy()
	pod.Status.Phase = corev1.PodRunning
	pod.Status.StartTime = &started
	pod.Status.Conditions = nil
	for _, t := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: started})
	}
	pod.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name:    c.Name,
			Image:   c.Image,
			Ready:   true,
			Started: ptrTo(true),
			State:   corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}},
		})
	}
	_, err := a.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	return err
}

func (a *simulatedApp) containerLabels(pod string) map[string]string {
	return map[string]string{"namespace": a.namespace, "pod": pod, "container": simulatedContainer}
}

func (a *simulatedApp) requestLabels(pod, code string) map[string]string {
	return map[string]string{"namespace": a.namespace, "pod": pod, "service": a.name, "code": code}
}

func (a *simulatedApp) queueLabels() map[string]string {
	return map[string]string{"namespace": a.namespace, "queue": simulatedQueue}
}

func (a *simulatedApp) publish(pod string, l appLoad) {
	a.exporter.SetCounterRate("container_cpu_usage_seconds_total", a.containerLabels(pod), l.CPUCores)
	a.exporter.SetGauge("container_memory_working_set_bytes", a.containerLabels(pod), simulatedPodMemoryBytes)
	a.exporter.SetCounterRate("http_requests_total", a.requestLabels(pod, "200"), l.RequestsPerSecond*(1-l.ErrorShare))
	a.exporter.SetCounterRate("http_requests_total", a.requestLabels(pod, "500"), l.RequestsPerSecond*l.ErrorShare)
	a.published[pod] = l
}

func (a *simulatedApp) unpublish(pod string) {
	a.exporter.Remove("container_cpu_usage_seconds_total", a.containerLabels(pod))
	a.exporter.Remove("container_memory_working_set_bytes", a.containerLabels(pod))
	a.exporter.Remove("http_requests_total", a.requestLabels(pod, "200"))
	a.exporter.Remove("http_requests_total", a.requestLabels(pod, "500"))
	delete(a.published, pod)
	delete(a.podLoad, pod)
}
