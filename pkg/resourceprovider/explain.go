package resourceprovider

import (
	"fmt"
	"sort"
	"strings"

	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/metrics/pkg/apis/metrics"

	"github.com/promadapter/promadapter/pkg/explain"
	"github.com/promadapter/promadapter/pkg/planner"
)

// This file turns what metrics.k8s.io decides into an explanation (pkg/explain). Everything
// here runs only for requests that carry a Recorder.

// ruleField names the resource rule a query of kind ("pods" or "nodes") comes from, as the
// config spells it: resourceRules.cpu.containerQuery.
func ruleField(resource, kind string) string {
	if kind == "nodes" {
		return "resourceRules." + resource + ".nodeQuery"
	}
	return "resourceRules." + resource + ".containerQuery"
}

// code classifies a reason an object was left out.
func (lo *leftOut) code() string {
	if lo.invalid {
		return explain.ReasonNotANumber
	}
	return explain.ReasonNoSeries
}

// selectorText writes the request's selectors as a person would type them.
func selectorText(labelSel labels.Selector, fieldSel fields.Selector) string {
	var parts []string
	if labelSel != nil && !labelSel.Empty() {
		parts = append(parts, labelSel.String())
	}
	if fieldSel != nil && !fieldSel.Empty() {
		parts = append(parts, "fields "+fieldSel.String())
	}
	return strings.Join(parts, ", ")
}

func explainNotRunning(rec *explain.Recorder, pod *Pod) {
	rec.Left(pod.Namespace+"/"+pod.Name, explain.ReasonNotRunning,
		fmt.Sprintf("the pod is %s, not Running: usage is served for running pods only", phaseName(pod.Phase)))
}

// explainPods records the pods a list covers.
func explainPods(rec *explain.Recorder, namespace, selector string, pods []*Pod) {
	names := make([]string, 0, len(pods))
	for _, pod := range pods {
		names = append(names, pod.Namespace+"/"+pod.Name)
	}
	sort.Strings(names)
	rec.Selected(explain.Objects{Resource: "pods", Namespace: namespace, Selector: selector, Names: names})
}

// explainPod records the pod a get covers, or why there is none to serve.
func explainPod(rec *explain.Recorder, namespace, name string, pod *Pod, err error) {
	ref := namespace + "/" + name
	switch {
	case apierrors.IsNotFound(err):
		rec.Selected(explain.Objects{Resource: "pods", Namespace: namespace})
		rec.Left(ref, explain.ReasonNoObjects, "there is no such pod (in the adapter's pod cache)")
	case err != nil:
		rec.Selected(explain.Objects{Resource: "pods", Namespace: namespace, Error: err.Error()})
	case pod.Phase != corev1.PodRunning:
		rec.Selected(explain.Objects{Resource: "pods", Namespace: namespace})
		explainNotRunning(rec, pod)
	default:
		rec.Selected(explain.Objects{Resource: "pods", Namespace: namespace, Names: []string{ref}})
	}
}

// explainPodAnswers records the samples of the cpu and memory answers that name the pods.
func (p *Provider) explainPodAnswers(rec *explain.Recorder, results usageResults, pods []*Pod) {
	wanted := make(map[podKey]bool, len(pods))
	for _, pod := range pods {
		wanted[podKey{pod.Namespace, pod.Name}] = true
	}
	for _, a := range []struct {
		q      *resourceQueries
		res    *planner.Result
		traced *explain.Query
	}{{p.cpu, results.cpu, results.cpuTrace}, {p.memory, results.memory, results.memoryTrace}} {
		namespaceLabel, podLabel := model.LabelName(a.q.namespaceLabel), model.LabelName(a.q.podLabel)
		var kept []*model.Sample
		for _, s := range a.res.Vector {
			if wanted[podKey{string(s.Metric[namespaceLabel]), string(s.Metric[podLabel])}] {
				kept = append(kept, s)
			}
		}
		rec.Kept(a.traced, kept, len(a.res.Vector))
	}
}

// explainPodMetrics records a PodMetrics served: its containers' usage and their sum.
func explainPodMetrics(rec *explain.Recorder, pm *metrics.PodMetrics) {
	var cpu, memory resource.Quantity
	containers := make([]explain.Container, 0, len(pm.Containers))
	for _, c := range pm.Containers {
		ccpu, cmem := c.Usage[corev1.ResourceCPU], c.Usage[corev1.ResourceMemory]
		cpu.Add(ccpu)
		memory.Add(cmem)
		containers = append(containers, explain.Container{Name: c.Name, CPU: ccpu.String(), Memory: cmem.String()})
	}
	rec.Served(explain.Value{
		Object: pm.Namespace + "/" + pm.Name, Value: fmt.Sprintf("cpu %s, memory %s", cpu.String(), memory.String()),
		Time: pm.Timestamp.Time, Window: model.Duration(pm.Window.Duration).String(),
		CPU: cpu.String(), Memory: memory.String(), Containers: containers,
	})
}

// explainPodOutcome records what a get serves of its pod, or why nothing.
func explainPodOutcome(rec *explain.Recorder, pod *Pod, pm *metrics.PodMetrics, lo *leftOut) {
	if lo != nil {
		rec.Left(pod.Namespace+"/"+pod.Name, lo.code(), lo.reason)
		return
	}
	explainPodMetrics(rec, pm)
}

// explainNodes records the nodes a list covers.
func explainNodes(rec *explain.Recorder, selector string, wanted map[string]*corev1.Node) {
	names := make([]string, 0, len(wanted))
	for name := range wanted {
		names = append(names, name)
	}
	sort.Strings(names)
	rec.Selected(explain.Objects{Resource: "nodes", Selector: selector, Names: names})
}

// explainNode records the node a get covers, or why there is none.
func explainNode(rec *explain.Recorder, name string, err error) {
	switch {
	case apierrors.IsNotFound(err):
		rec.Selected(explain.Objects{Resource: "nodes"})
		rec.Left(name, explain.ReasonNoObjects, "there is no such node (in the adapter's node cache)")
	case err != nil:
		rec.Selected(explain.Objects{Resource: "nodes", Error: err.Error()})
	default:
		rec.Selected(explain.Objects{Resource: "nodes", Names: []string{name}})
	}
}

// explainNodeAnswers records the samples of the cpu and memory answers that name the nodes.
func (p *Provider) explainNodeAnswers(rec *explain.Recorder, results usageResults, wanted map[string]*corev1.Node) {
	for _, a := range []struct {
		q      *resourceQueries
		res    *planner.Result
		traced *explain.Query
	}{{p.cpu, results.cpu, results.cpuTrace}, {p.memory, results.memory, results.memoryTrace}} {
		nodeLabel := model.LabelName(a.q.nodeLabel)
		var kept []*model.Sample
		for _, s := range a.res.Vector {
			if _, ok := wanted[string(s.Metric[nodeLabel])]; ok {
				kept = append(kept, s)
			}
		}
		rec.Kept(a.traced, kept, len(a.res.Vector))
	}
}

// explainNodeOutcome records what is served of a node, or why nothing.
func explainNodeOutcome(rec *explain.Recorder, name string, nm *metrics.NodeMetrics, lo *leftOut) {
	if lo != nil {
		rec.Left(name, lo.code(), lo.reason)
		return
	}
	cpu, memory := nm.Usage[corev1.ResourceCPU], nm.Usage[corev1.ResourceMemory]
	rec.Served(explain.Value{
		Object: name, Value: fmt.Sprintf("cpu %s, memory %s", cpu.String(), memory.String()),
		Time: nm.Timestamp.Time, Window: model.Duration(nm.Window.Duration).String(), CPU: cpu.String(), Memory: memory.String(),
	})
}
