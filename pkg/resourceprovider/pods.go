package resourceprovider

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/metrics/pkg/apis/metrics"

	"github.com/promadapter/promadapter/pkg/explain"
	"github.com/promadapter/promadapter/pkg/naming"
	"github.com/promadapter/promadapter/pkg/planner"
)

// podKey identifies a pod by namespace and name.
type podKey struct{ namespace, name string }

// podFields are the fields a PodMetrics list can be selected by (the apiserver accepts
// only metadata.name and metadata.namespace for this group).
func podFields(pod *Pod) fields.Set {
	return fields.Set{"metadata.name": pod.Name, "metadata.namespace": pod.Namespace}
}

// getPodMetrics serves the PodMetrics of one pod. It runs the same queries as a list of the
// pod's namespace (so the two share the planner's cache) and answers 404 with the reason
// when the pod has no complete metrics.
func (p *Provider) getPodMetrics(ctx context.Context, namespace, name string) (*metrics.PodMetrics, error) {
	rec := explain.FromContext(ctx)
	pod, err := p.pods.Get(namespace, name)
	if rec != nil {
		explainPod(rec, namespace, name, pod, err)
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, notFound(metrics.Resource("pods"), name, fmt.Sprintf("there is no pod %s/%s (in the adapter's pod cache)", namespace, name))
	case err != nil:
		return nil, apierrors.NewInternalError(fmt.Errorf("reading pod %s/%s from the adapter's cache: %w", namespace, name, err))
	case pod.Phase != corev1.PodRunning:
		return nil, notFound(metrics.Resource("pods"), name, fmt.Sprintf("the pod is %s, not Running: usage is served for running pods only", phaseName(pod.Phase)))
	}
	results, err := p.queryUsage(ctx, "pods", namespace, podsScope(namespace), func(q *resourceQueries) (string, error) { return q.podsQuery(namespace) }, rec, false)
	if err != nil {
		return nil, err
	}
	if rec != nil {
		p.explainPodAnswers(rec, results, []*Pod{pod})
	}
	usage, err := p.indexContainerUsage(results, []*Pod{pod}, fmt.Sprintf("pod %s/%s", namespace, name))
	if err != nil {
		return nil, err
	}
	pm, lo := p.podMetrics(pod, usage.of(0))
	if rec != nil {
		explainPodOutcome(rec, pod, &pm, lo)
	}
	switch {
	case lo == nil:
		return &pm, nil
	case lo.invalid:
		return nil, apierrors.NewInternalError(fmt.Errorf("pod %s/%s: %s", namespace, name, lo.reason))
	default:
		return nil, notFound(metrics.Resource("pods"), name, lo.reason)
	}
}

// podUsage is the usage of the containers of a list of pods, from one cpu and one memory
// result. It is indexed by the pods' positions in the list and their containers' positions
// in Pod.Containers: one map lookup per sample finds the pod, and a pod has few containers.
type podUsage struct {
	// containers[start[i]:start[i+1]] are the usages of pod i's containers.
	containers []usage
	start      []int
	// reported[i] is set when pod i has a series for any container, listed or not.
	reported []bool
}

// containerUsage is the usage of one pod's containers, in the order of Pod.Containers.
type containerUsage struct {
	containers []usage
	reported   bool
}

func (pu *podUsage) of(i int) containerUsage {
	return containerUsage{containers: pu.containers[pu.start[i]:pu.start[i+1]], reported: pu.reported[i]}
}

// indexContainerUsage collects the samples of pods by container. Series of other pods, and
// those with an empty or "POD" container (cgroup totals of the pod and of its sandbox in
// cAdvisor), are ignored. It fails when a result says a container of pods has duplicated
// series (see SeriesLabel) or carries an unreadable window; scope describes the request.
func (p *Provider) indexContainerUsage(results usageResults, pods []*Pod, scope string) (*podUsage, error) {
	pu := &podUsage{start: make([]int, len(pods)+1), reported: make([]bool, len(pods))}
	index := make(map[podKey]int, len(pods))
	for i, pod := range pods {
		index[podKey{pod.Namespace, pod.Name}] = i
		pu.start[i+1] = pu.start[i] + len(pod.Containers)
	}
	pu.containers = make([]usage, pu.start[len(pods)])
	// The two results are indexed concurrently: they write different fields (cpu, memory) of
	// the same usages, and each its own reported flags.
	add := func(q *resourceQueries, res *planner.Result, pick func(*usage) *sample, reported []bool, window time.Duration) error {
		namespaceLabel, podLabel, containerLabel := model.LabelName(q.namespaceLabel), model.LabelName(q.podLabel), model.LabelName(q.containerLabel)
		r := sampleReader{rule: "resourceRules." + q.name + ".containerQuery", plain: 3, window: window}
		dups := duplicates{rule: r.rule}
		for _, s := range res.Vector {
			container := string(s.Metric[containerLabel])
			if container == "" || container == "POD" {
				continue
			}
			i, ok := index[podKey{string(s.Metric[namespaceLabel]), string(s.Metric[podLabel])}]
			if !ok {
				continue
			}
			w, count, err := r.read(s)
			switch {
			case err != nil:
				return err
			case count:
				dups.add(s)
				continue
			}
			reported[i] = true
			if j := slices.Index(pods[i].Containers, container); j >= 0 {
				smp := pick(&pu.containers[pu.start[i]+j])
				if smp.seen {
					return answerDuplicate(r.rule, res.Vector, s, []model.LabelName{namespaceLabel, podLabel, containerLabel})
				}
				smp.add(s.Value, s.Timestamp, w)
			}
		}
		return dups.err(scope)
	}
	memoryReported := make([]bool, len(pods))
	var memoryErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		memoryErr = add(p.memory, results.memory, func(u *usage) *sample { return &u.memory }, memoryReported, 0)
	})
	cpuErr := add(p.cpu, results.cpu, func(u *usage) *sample { return &u.cpu }, pu.reported, p.window)
	wg.Wait()
	// When both fail (the usual case of a double scrape), the cpu error names the fault.
	if cpuErr != nil {
		return nil, cpuErr
	}
	if memoryErr != nil {
		return nil, memoryErr
	}
	for i, r := range memoryReported {
		pu.reported[i] = pu.reported[i] || r
	}
	return pu, nil
}

// podMetrics builds a pod's PodMetrics from its containers' usage, or says why it cannot.
// It serves what metrics-server serves: the containers that have usage (those the kubelet
// reports), each with both cpu and memory. A container of the pod (or native sidecar, an init
// container that keeps running) without any series is absent from the PodMetrics, as one
// the kubelet does not report is from metrics-server's; a container with only one of the two
// leaves the pod out, as a container without two cpu points does in metrics-server. A pod
// with no container left is left out.
//
// The pod's timestamp is its oldest sample's and its window the longest of its containers'
// cpu windows, so the span claimed never starts later, nor ends later, than any part's.
func (p *Provider) podMetrics(pod *Pod, cu containerUsage) (metrics.PodMetrics, *leftOut) {
	if !cu.reported {
		return metrics.PodMetrics{}, &leftOut{reason: fmt.Sprintf("Prometheus has no usage for any container of this pod (no cpu or memory series with %s); is the pod's node scraped for container metrics (cAdvisor or the kubelet's resource metrics)?",
			p.cpu.podMatchers(pod, ""))}
	}
	pm := metrics.PodMetrics{
		// The labels map is the cached pod's, shared rather than copied: the informer
		// replaces cached objects and never changes them, and PodMetrics are only encoded.
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, Labels: pod.Labels},
		Containers: make([]metrics.ContainerMetrics, 0, len(pod.Containers)),
	}
	var oldest time.Time
	var window time.Duration
	for j, name := range pod.Containers {
		u := &cu.containers[j]
		if !u.cpu.seen && !u.memory.seen {
			continue
		}
		for _, r := range []struct {
			q    *resourceQueries
			seen bool
		}{{p.cpu, u.cpu.seen}, {p.memory, u.memory.seen}} {
			if !r.seen {
				return metrics.PodMetrics{}, &leftOut{reason: fmt.Sprintf("no %s usage for container %q (no series with %s in the result of resourceRules.%s.containerQuery)",
					r.q.name, name, r.q.podMatchers(pod, name), r.q.name)}
			}
		}
		list, ts, bad := usageList(u)
		if bad != nil {
			return metrics.PodMetrics{}, bad.leftOut(fmt.Sprintf("container %q", name))
		}
		if oldest.IsZero() || ts.Before(oldest) {
			oldest = ts
		}
		window = max(window, u.cpu.window)
		pm.Containers = append(pm.Containers, metrics.ContainerMetrics{Name: name, Usage: list})
	}
	if len(pm.Containers) == 0 {
		return metrics.PodMetrics{}, &leftOut{reason: fmt.Sprintf("Prometheus has usage only for containers this pod does not run (its containers are %s; series with %s)",
			strings.Join(pod.Containers, ", "), p.cpu.podMatchers(pod, ""))}
	}
	pm.Timestamp = metav1.NewTime(oldest)
	pm.Window = metav1.Duration{Duration: window}
	return pm, nil
}

// podMatchers renders the labels that identify the pod (and container, when set) in the
// rule's results, for messages.
func (q *resourceQueries) podMatchers(pod *Pod, container string) string {
	ms := []naming.Matcher{
		{Name: q.namespaceLabel, Op: naming.OpEqual, Value: pod.Namespace},
		{Name: q.podLabel, Op: naming.OpEqual, Value: pod.Name},
	}
	if container != "" {
		ms = append(ms, naming.Matcher{Name: q.containerLabel, Op: naming.OpEqual, Value: container})
	}
	return naming.JoinMatchers(ms)
}

// podsScope describes a pods request for messages.
func podsScope(namespace string) string {
	if namespace == "" {
		return "pods in all namespaces"
	}
	return fmt.Sprintf("pods in namespace %q", namespace)
}

func phaseName(phase corev1.PodPhase) string {
	if phase == "" {
		return "in no phase yet"
	}
	return string(phase)
}
