//go:build e2e

// The known-value checks of the fault tests: each API's answers against the fixture, and the
// wait for recovery.

package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/promadapter/promadapter/test/fixture"
)

// The known-value requests the fault tests make, all in namespace ns-0.
const (
	faultNamespace = "ns-0"
	faultApp       = "app-0"
)

var (
	customPath   = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + faultNamespace + "/pods/*/http_requests_per_second?labelSelector=" + url.QueryEscape("app="+faultApp)
	externalPath = "/apis/external.metrics.k8s.io/v1beta1/namespaces/" + faultNamespace + "/kube_deployment_spec_replicas"
	resourcePath = "/apis/metrics.k8s.io/v1beta1/namespaces/" + faultNamespace + "/pods"
)

// appPods are the pods of faultApp in faultNamespace, sorted by name (startFaultEnv checks
// there are at least two).
func (e *faultEnv) appPods() []fixture.Pod {
	var pods []fixture.Pod
	for _, p := range e.spec.PodList() {
		if p.Namespace == faultNamespace && p.App == faultApp {
			pods = append(pods, p)
		}
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	return pods
}

// errWrong is the error of a check that got a 200 with wrong values, as opposed to an error
// answer: the former is never acceptable while a fault is on.
var errWrong = errors.New("wrong values")

// checkCustom asks for the per-pod request rate of faultApp's pods and checks every pod but
// leftOut has exactly its fixture value and leftOut is absent.
func (e *faultEnv) checkCustom(leftOut string) error {
	a := e.get(customPath, "")
	if a.Status != http.StatusOK {
		return fmt.Errorf("GET %s: %v", customPath, a)
	}
	var list metricValueList
	if err := json.Unmarshal([]byte(a.Body), &list); err != nil {
		return fmt.Errorf("%w: GET %s: decoding %q: %v", errWrong, customPath, a.Body, err)
	}
	got := map[string]string{}
	for _, it := range list.Items {
		got[it.DescribedObject.Name] = it.Value.String()
		if it.DescribedObject.Namespace != faultNamespace {
			return fmt.Errorf("%w: GET %s: an item of namespace %q", errWrong, customPath, it.DescribedObject.Namespace)
		}
	}
	var problems []string
	for _, p := range e.appPods() {
		want, _ := e.spec.PodRequestRate(faultNamespace, p.Name)
		value, listed := got[p.Name]
		delete(got, p.Name)
		switch {
		case p.Name == leftOut && listed:
			problems = append(problems, fmt.Sprintf("%s is listed with %s but should be left out", p.Name, value))
		case p.Name != leftOut && !listed:
			problems = append(problems, fmt.Sprintf("%s is missing (want %v)", p.Name, want))
		case p.Name != leftOut && !near(resource.MustParse(value), want):
			problems = append(problems, fmt.Sprintf("%s is %s, want %v", p.Name, value, want))
		}
	}
	for name, value := range got {
		problems = append(problems, fmt.Sprintf("unexpected item %s=%s", name, value))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: GET %s: %s", errWrong, customPath, strings.Join(problems, "; "))
	}
	return nil
}

// checkExternal asks for kube_deployment_spec_replicas (the embedded default's external rule,
// namespaced) in faultNamespace and checks every Deployment of that namespace but leftOut
// ("namespace/name") has its replicas, and no other namespace's is listed.
func (e *faultEnv) checkExternal(leftOut string) error {
	a := e.get(externalPath, "")
	if a.Status != http.StatusOK {
		return fmt.Errorf("GET %s: %v", externalPath, a)
	}
	var list metricValueList
	if err := json.Unmarshal([]byte(a.Body), &list); err != nil {
		return fmt.Errorf("%w: GET %s: decoding %q: %v", errWrong, externalPath, a.Body, err)
	}
	got := map[string]string{}
	for _, it := range list.Items {
		got[it.MetricLabels["namespace"]+"/"+it.MetricLabels["deployment"]] = it.Value.String()
	}
	var problems []string
	for _, d := range e.spec.Deployments() {
		if d.Namespace != faultNamespace {
			continue
		}
		key := d.Namespace + "/" + d.Name
		value, listed := got[key]
		delete(got, key)
		switch {
		case key == leftOut && listed:
			problems = append(problems, fmt.Sprintf("%s is listed with %s but should be left out", key, value))
		case key != leftOut && !listed:
			problems = append(problems, fmt.Sprintf("%s is missing (want %d)", key, d.Replicas))
		case key != leftOut && value != strconv.Itoa(int(d.Replicas)):
			problems = append(problems, fmt.Sprintf("%s is %s, want %d", key, value, d.Replicas))
		}
	}
	for key, value := range got {
		problems = append(problems, fmt.Sprintf("unexpected series %s=%s", key, value))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: GET %s: %s", errWrong, externalPath, strings.Join(problems, "; "))
	}
	return nil
}

// podMetricsList is the part of a metrics.k8s.io PodMetricsList the tests read.
type podMetricsList struct {
	Items []struct {
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		Containers []struct {
			Name  string `json:"name"`
			Usage struct {
				CPU    resource.Quantity `json:"cpu"`
				Memory resource.Quantity `json:"memory"`
			} `json:"usage"`
		} `json:"containers"`
	} `json:"items"`
}

// checkResource asks metrics.k8s.io for the pods of faultNamespace and checks every complete pod
// but leftOut has its containers' exact usage and leftOut is absent.
func (e *faultEnv) checkResource(leftOut string) error {
	a := e.get(resourcePath, "")
	if a.Status != http.StatusOK {
		return fmt.Errorf("GET %s: %v", resourcePath, a)
	}
	var list podMetricsList
	if err := json.Unmarshal([]byte(a.Body), &list); err != nil {
		return fmt.Errorf("%w: GET %s: decoding %q: %v", errWrong, resourcePath, a.Body, err)
	}
	got := map[string]string{}
	for _, it := range list.Items {
		for _, c := range it.Containers {
			got[it.Metadata.Namespace+"/"+it.Metadata.Name+"/"+c.Name] = fmt.Sprintf("%v %v", c.Usage.CPU.AsApproximateFloat64(), c.Usage.Memory.AsApproximateFloat64())
		}
	}
	var problems []string
	for _, p := range e.spec.PodList() {
		if p.Namespace != faultNamespace || !p.Complete() {
			continue
		}
		for _, c := range p.Containers {
			key := p.Namespace + "/" + p.Name + "/" + c.Name
			want := fmt.Sprintf("%v %v", c.CPUCores, c.MemoryBytes)
			value, listed := got[key]
			delete(got, key)
			switch {
			case p.Name == leftOut && listed:
				problems = append(problems, fmt.Sprintf("%s is listed with %s but should be left out", key, value))
			case p.Name != leftOut && !listed:
				problems = append(problems, fmt.Sprintf("%s is missing (want cpu, memory %s)", key, want))
			case p.Name != leftOut && !sameUsage(value, c.CPUCores, c.MemoryBytes):
				problems = append(problems, fmt.Sprintf("%s is %s, want %s", key, value, want))
			}
		}
	}
	// A pod missing a container's series is TestAPIs' concern (testTopPods); here it is ignored.
	if ns, name, ok := e.spec.IncompletePod(); ok {
		for key := range got {
			if strings.HasPrefix(key, ns+"/"+name+"/") {
				delete(got, key)
			}
		}
	}
	for key, value := range got {
		problems = append(problems, fmt.Sprintf("unexpected container %s=%s", key, value))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: GET %s: %s", errWrong, resourcePath, strings.Join(problems, "; "))
	}
	return nil
}

// sameUsage compares "cpu memory" as checkResource formats it with the fixture's values, CPU to
// a micro-core (rate() extrapolation), memory to the byte.
func sameUsage(got string, cpu, memory float64) bool {
	var gotCPU, gotMemory float64
	if _, err := fmt.Sscanf(got, "%g %g", &gotCPU, &gotMemory); err != nil {
		return false
	}
	return gotCPU > cpu-1e-6 && gotCPU < cpu+1e-6 && gotMemory == memory
}

// checkTop runs `kubectl top pods -n faultNamespace --containers` and checks every container of
// every complete pod shows its fixture values as kubectl formats them.
func (e *faultEnv) checkTop() error {
	out, err := e.kubectl("top", "pods", "-n", faultNamespace, "--containers", "--no-headers")
	if err != nil {
		return err
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) == 4 { // POD NAME CPU MEMORY
			got[f[0]+"/"+f[1]] = f[2] + " " + f[3]
		}
	}
	var problems []string
	for _, p := range e.spec.PodList() {
		if p.Namespace != faultNamespace || !p.Complete() {
			continue
		}
		for _, c := range p.Containers {
			key := p.Name + "/" + c.Name
			if want := topCPU(c.CPUCores) + " " + topMem(c.MemoryBytes); got[key] != want {
				problems = append(problems, fmt.Sprintf("%s shows %q, want %q", key, got[key], want))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: kubectl top pods -n %s --containers: %s\n%s", errWrong, faultNamespace, strings.Join(problems, "; "), out)
	}
	return nil
}

// checkAll runs every known-value check with nothing left out.
func (e *faultEnv) checkAll() error {
	var errs []error
	for _, check := range []func() error{
		func() error { return e.checkCustom("") },
		func() error { return e.checkExternal("") },
		func() error { return e.checkResource("") },
		e.checkTop,
	} {
		if err := check(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// waitRecovered polls until every API answers its exact known values again.
func (e *faultEnv) waitRecovered(t *testing.T, after string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	start := time.Now()
	for {
		err := e.checkAll()
		if err == nil {
			t.Logf("recovered %v after %s", time.Since(start).Round(10*time.Millisecond), after)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("60 s after %s, the adapter has not recovered by itself: %v", after, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// containsAll reports the substrings of want that s lacks.
func missingFrom(s string, want ...string) []string {
	var missing []string
	for _, w := range want {
		if !strings.Contains(s, w) {
			missing = append(missing, w)
		}
	}
	return missing
}

// oneOf is a set of acceptable statuses.
type oneOf []int

func (o oneOf) has(status int) bool { return slices.Contains(o, status) }
