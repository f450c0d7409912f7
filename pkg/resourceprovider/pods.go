package resourceprovider

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"time"

	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/metrics/pkg/apis/metrics"

	"github.com/promadapter/promadapter/pkg/naming"
	"github.com/promadapter/promadapter/pkg/planner"
)

// podKey identifies a pod by namespace and name.
type podKey struct{ namespace, name string }

// podFields are the fields a PodMetrics list can be selected by (the apiserver accepts
// only metadata.name and metadata.namespace for this group).
func podFields(pod *corev1.Pod) fields.Set {
	return fields.Set{"metadata.name": pod.Name, "metadata.namespace": pod.Namespace}
}

// listPodMetrics serves a PodMetrics list of one namespace, or of all namespaces when
// namespace is "". Running pods from the lister that match both selectors (nil means
// everything) are listed when every container has cpu and memory usage; the others are left
// out and logged once. The list is sorted by namespace and name.
func (p *Provider) listPodMetrics(ctx context.Context, namespace string, labelSel labels.Selector, fieldSel fields.Selector) (*metrics.PodMetricsList, error) {
	if labelSel == nil {
		labelSel = labels.Everything()
	}
	if fieldSel == nil {
		fieldSel = fields.Everything()
	}
	if namespace == "" {
		// `kubectl get podmetrics -A --field-selector metadata.namespace=x` needs only x.
		if ns, ok := fieldSel.RequiresExactMatch("metadata.namespace"); ok && ns != "" {
			namespace = ns
		}
	}
	var pods []*corev1.Pod
	var err error
	if namespace == "" {
		pods, err = p.pods.List(labelSel)
	} else {
		pods, err = p.pods.Pods(namespace).List(labelSel)
	}
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("listing pods from the adapter's cache: %w", err))
	}
	wanted := make(map[podKey]*corev1.Pod, len(pods))
	for _, pod := range pods {
		if pod.Status.Phase == corev1.PodRunning && fieldSel.Matches(podFields(pod)) {
			wanted[podKey{pod.Namespace, pod.Name}] = pod
		}
	}
	list := &metrics.PodMetricsList{}
	if len(wanted) == 0 {
		// Nothing could be served: spare Prometheus the queries.
		return list, nil
	}
	results, err := p.queryUsage(ctx, "pods", podsScope(namespace), func(q *resourceQueries) (string, error) { return q.podsQuery(namespace) })
	if err != nil {
		return nil, err
	}
	byPod := p.indexContainerUsage(results, wanted)
	list.Items = make([]metrics.PodMetrics, 0, len(wanted))
	for key, pod := range wanted {
		ref := objectRef{pod.Namespace, pod.Name, pod.UID}
		pm, lo := p.podMetrics(pod, byPod[key])
		if lo != nil {
			p.podsLeftOut.leftOut(ref, lo.reason)
			continue
		}
		p.podsLeftOut.served(ref)
		list.Items = append(list.Items, *pm)
	}
	sort.Slice(list.Items, func(i, j int) bool {
		a, b := &list.Items[i], &list.Items[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return list, nil
}

// getPodMetrics serves the PodMetrics of one pod. It runs the same queries as a list of the
// pod's namespace (so the two share the planner's cache) and answers 404 with the reason
// when the pod has no complete metrics.
func (p *Provider) getPodMetrics(ctx context.Context, namespace, name string) (*metrics.PodMetrics, error) {
	pod, err := p.pods.Pods(namespace).Get(name)
	switch {
	case apierrors.IsNotFound(err):
		return nil, notFound(metrics.Resource("pods"), name, fmt.Sprintf("there is no pod %s/%s (in the adapter's pod cache)", namespace, name))
	case err != nil:
		return nil, apierrors.NewInternalError(fmt.Errorf("reading pod %s/%s from the adapter's cache: %w", namespace, name, err))
	case pod.Status.Phase != corev1.PodRunning:
		return nil, notFound(metrics.Resource("pods"), name, fmt.Sprintf("the pod is %s, not Running: usage is served for running pods only", phaseName(pod.Status.Phase)))
	}
	results, err := p.queryUsage(ctx, "pods", podsScope(namespace), func(q *resourceQueries) (string, error) { return q.podsQuery(namespace) })
	if err != nil {
		return nil, err
	}
	key := podKey{pod.Namespace, pod.Name}
	byPod := p.indexContainerUsage(results, map[podKey]*corev1.Pod{key: pod})
	pm, lo := p.podMetrics(pod, byPod[key])
	switch {
	case lo == nil:
		return pm, nil
	case lo.invalid:
		return nil, apierrors.NewInternalError(fmt.Errorf("pod %s/%s: %s", namespace, name, lo.reason))
	default:
		return nil, notFound(metrics.Resource("pods"), name, lo.reason)
	}
}

// indexContainerUsage collects the samples of wanted pods by pod and container name. Series
// of other pods, and those with an empty or "POD" container (cgroup totals of the pod and
// of its sandbox in cAdvisor), are ignored.
func (p *Provider) indexContainerUsage(results usageResults, wanted map[podKey]*corev1.Pod) map[podKey]map[string]*usage {
	byPod := make(map[podKey]map[string]*usage, len(wanted))
	add := func(q *resourceQueries, res *planner.Result, pick func(*usage) *sample) {
		for _, s := range res.Vector {
			key := podKey{string(s.Metric[model.LabelName(q.namespaceLabel)]), string(s.Metric[model.LabelName(q.podLabel)])}
			if _, ok := wanted[key]; !ok {
				continue
			}
			container := string(s.Metric[model.LabelName(q.containerLabel)])
			if container == "" || container == "POD" {
				continue
			}
			containers := byPod[key]
			if containers == nil {
				containers = map[string]*usage{}
				byPod[key] = containers
			}
			u := containers[container]
			if u == nil {
				u = &usage{}
				containers[container] = u
			}
			pick(u).add(s.Value, s.Timestamp)
		}
	}
	add(p.cpu, results.cpu, func(u *usage) *sample { return &u.cpu })
	add(p.memory, results.memory, func(u *usage) *sample { return &u.memory })
	return byPod
}

// podMetrics builds a pod's PodMetrics from its containers' usage, or says why it cannot:
// every container of the pod (and every native sidecar, an init container that keeps
// running) must have both cpu and memory usage. The pod's timestamp is its oldest
// container's, so the usage is never claimed fresher than its oldest part.
func (p *Provider) podMetrics(pod *corev1.Pod, containers map[string]*usage) (*metrics.PodMetrics, *leftOut) {
	if len(containers) == 0 {
		return nil, &leftOut{reason: fmt.Sprintf("Prometheus has no usage for any container of this pod (no cpu or memory series with %s); is the pod's node scraped for container metrics (cAdvisor or the kubelet's resource metrics)?",
			p.cpu.podMatchers(pod, ""))}
	}
	names := runningContainerNames(pod)
	pm := &metrics.PodMetrics{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, Labels: maps.Clone(pod.Labels)},
		Window:     metav1.Duration{Duration: p.window},
		Containers: make([]metrics.ContainerMetrics, 0, len(names)),
	}
	var oldest time.Time
	for _, name := range names {
		u := containers[name]
		for _, r := range []struct {
			q    *resourceQueries
			seen bool
		}{{p.cpu, u != nil && u.cpu.seen}, {p.memory, u != nil && u.memory.seen}} {
			if !r.seen {
				return nil, &leftOut{reason: fmt.Sprintf("no %s usage for container %q (no series with %s in the result of resourceRules.%s.containerQuery)",
					r.q.name, name, r.q.podMatchers(pod, name), r.q.name)}
			}
		}
		list, ts, lo := usageList(u, fmt.Sprintf("container %q", name))
		if lo != nil {
			return nil, lo
		}
		if oldest.IsZero() || ts.Before(oldest) {
			oldest = ts
		}
		pm.Containers = append(pm.Containers, metrics.ContainerMetrics{Name: name, Usage: list})
	}
	pm.Timestamp = metav1.NewTime(oldest)
	return pm, nil
}

// runningContainerNames lists the containers that run for the pod's whole life: its
// containers, then its native sidecars (init containers with restartPolicy Always).
func runningContainerNames(pod *corev1.Pod) []string {
	names := make([]string, 0, len(pod.Spec.Containers))
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			names = append(names, c.Name)
		}
	}
	return names
}

// podMatchers renders the labels that identify the pod (and container, when set) in the
// rule's results, for messages.
func (q *resourceQueries) podMatchers(pod *corev1.Pod, container string) string {
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
