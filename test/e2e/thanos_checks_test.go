//go:build e2e

// The known-value checks of TestThanos.

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/promadapter/promadapter/test/fixture"
)

// The requests of TestThanos, all in thanosNamespace.
var (
	thanosCustomPath   = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + thanosNamespace + "/pods/*/http_requests_per_second?labelSelector=" + url.QueryEscape(fixture.AppLabel)
	thanosExternalPath = "/apis/external.metrics.k8s.io/v1beta1/namespaces/" + thanosNamespace + "/queue_depth"
	thanosResourcePath = "/apis/metrics.k8s.io/v1beta1/namespaces/" + thanosNamespace + "/pods"
)

// checkCustom asks for the request rate of every pod of thanosNamespace and checks each pod
// comes once with the fixture's rate: twice the rate, or a pod listed twice, is what an
// undeduplicated answer over two replicas gives.
func (e *thanosEnv) checkCustom() error {
	a := e.get(thanosCustomPath)
	if a.Status != http.StatusOK {
		return notOK(thanosCustomPath, a)
	}
	var list metricValueList
	if err := json.Unmarshal([]byte(a.Body), &list); err != nil {
		return fmt.Errorf("%w: GET %s: decoding %q: %v", errWrong, thanosCustomPath, a.Body, err)
	}
	var problems []string
	seen := map[string]bool{}
	for _, it := range list.Items {
		name := it.DescribedObject.Name
		if seen[name] {
			problems = append(problems, "pod "+name+" is listed twice")
		}
		seen[name] = true
		if want, ok := e.spec.PodRequestRate(thanosNamespace, name); !ok || !near(it.Value, want) {
			problems = append(problems, fmt.Sprintf("pod %s is %s, want %v", name, it.Value.String(), want))
		}
	}
	for _, p := range e.spec.PodList() {
		if p.Namespace == thanosNamespace && !seen[p.Name] {
			problems = append(problems, "pod "+p.Name+" is missing")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: GET %s: %s", errWrong, thanosCustomPath, strings.Join(problems, "; "))
	}
	return nil
}

// checkExternal asks for every queue of thanosNamespace and checks each comes once with the
// fixture's depth.
func (e *thanosEnv) checkExternal() error {
	return checkQueueAnswer(e.spec, thanosNamespace, thanosExternalPath, e.get(thanosExternalPath))
}

// checkQueueAnswer checks an external metric answer (a 200 with body) lists every fixture
// queue of namespace once, with its exact depth.
func checkQueueAnswer(spec fixture.Spec, namespace, path string, a answer) error {
	if a.Status != http.StatusOK {
		return notOK(path, a)
	}
	var list metricValueList
	if err := json.Unmarshal([]byte(a.Body), &list); err != nil {
		return fmt.Errorf("%w: GET %s: decoding %q: %v", errWrong, path, truncateText(a.Body, 300), err)
	}
	var problems []string
	seen := map[string]bool{}
	for _, it := range list.Items {
		q := it.MetricLabels["queue"]
		if seen[q] {
			problems = append(problems, fmt.Sprintf("queue %q is listed twice", q))
		}
		seen[q] = true
		if want, ok := spec.QueueDepth(namespace, q); !ok || !near(it.Value, want) {
			problems = append(problems, fmt.Sprintf("queue %q is %s, want %v", q, it.Value.String(), want))
		}
	}
	for _, q := range fixture.Queues() {
		if !seen[q] {
			problems = append(problems, fmt.Sprintf("queue %q is missing", q))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: GET %s: %s", errWrong, path, strings.Join(problems, "; "))
	}
	return nil
}

// checkResource asks metrics.k8s.io for the pods of thanosNamespace, what kubectl top pods
// --containers shows, and checks every container with series has the fixture's usage (cpu to
// a micro-core, memory to the byte) and nothing else is listed. Undeduplicated series make
// the default rules' duplicate guard refuse the request.
func (e *thanosEnv) checkResource() error {
	a := e.get(thanosResourcePath)
	if a.Status != http.StatusOK {
		return notOK(thanosResourcePath, a)
	}
	var list podMetricsList
	if err := json.Unmarshal([]byte(a.Body), &list); err != nil {
		return fmt.Errorf("%w: GET %s: decoding %q: %v", errWrong, thanosResourcePath, a.Body, err)
	}
	got := map[string]string{}
	var problems []string
	for _, it := range list.Items {
		for _, c := range it.Containers {
			key := it.Metadata.Namespace + "/" + it.Metadata.Name + "/" + c.Name
			if _, dup := got[key]; dup {
				problems = append(problems, key+" is listed twice")
			}
			got[key] = fmt.Sprintf("%v %v", c.Usage.CPU.AsApproximateFloat64(), c.Usage.Memory.AsApproximateFloat64())
		}
	}
	for _, p := range e.spec.PodList() {
		if p.Namespace != thanosNamespace {
			continue
		}
		for _, c := range p.Containers {
			if !c.HasSeries {
				continue
			}
			key := p.Namespace + "/" + p.Name + "/" + c.Name
			value, listed := got[key]
			delete(got, key)
			switch {
			case !listed:
				problems = append(problems, fmt.Sprintf("%s is missing (want cpu, memory %v %v)", key, c.CPUCores, c.MemoryBytes))
			case !sameUsage(value, c.CPUCores, c.MemoryBytes):
				problems = append(problems, fmt.Sprintf("%s is %s, want %v %v", key, value, c.CPUCores, c.MemoryBytes))
			}
		}
	}
	for key, value := range got {
		problems = append(problems, fmt.Sprintf("unexpected container %s=%s", key, value))
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("%w: GET %s: %s", errWrong, thanosResourcePath, strings.Join(problems, "; "))
	}
	return nil
}

// refusesPartial checks that path answers 503 with a message naming the partial answer. A
// 200 is wrong: the adapter served an answer missing a replica without being allowed to.
func (e *thanosEnv) refusesPartial(path string) func() error {
	return func() error {
		a := e.get(path)
		switch {
		case a.Status == http.StatusOK:
			return fmt.Errorf("%w: GET %s: 200 %s, want 503: the answer misses replica 0 and allowPartialAnswers is not set", errWrong, path, truncateText(a.Body, 600))
		case a.Status == http.StatusInternalServerError:
			return fmt.Errorf("%w: GET %s: %v, want 503 naming a partial answer", errWrong, path, a)
		case a.Status != http.StatusServiceUnavailable:
			return fmt.Errorf("GET %s: %v, want 503 naming a partial answer", path, a)
		case !strings.Contains(strings.ToLower(a.Message), "partial"):
			return fmt.Errorf("%w: GET %s: %v, want the message to name the partial answer", errWrong, path, a)
		}
		return nil
	}
}
