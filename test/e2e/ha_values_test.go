//go:build e2e

// TestTwoReplicasBehindOneAPIService's check that both replicas answer the same exact values.

package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/promadapter/promadapter/test/testbed"
)

// haExpected is one value the fixture implies and how far an answer may be from it.
type haExpected struct {
	value, tolerance float64
}

// expectedValues are the values the three APIs must answer for faultNamespace, keyed as
// valuesFrom keys them: the custom metric of faultApp's pods (to near's tolerance), every
// Deployment's replicas as external metric (exactly), and every container of the complete pods
// on metrics.k8s.io (CPU to a micro-core, as sameUsage, and memory to the byte).
func (s *haSuite) expectedValues() map[string]haExpected {
	want := map[string]haExpected{}
	for _, p := range s.appPods() {
		rate, _ := s.spec.PodRequestRate(faultNamespace, p.Name)
		want["custom "+faultNamespace+"/"+p.Name] = haExpected{rate, 0.0005 + 1e-9*math.Abs(rate)}
	}
	for _, d := range s.spec.Deployments() {
		if d.Namespace == faultNamespace {
			want["external "+d.Namespace+"/"+d.Name] = haExpected{float64(d.Replicas), 0}
		}
	}
	for _, p := range s.spec.PodList() {
		if p.Namespace != faultNamespace || !p.Complete() {
			continue
		}
		for _, c := range p.Containers {
			key := p.Namespace + "/" + p.Name + "/" + c.Name
			want["resource cpu "+key] = haExpected{c.CPUCores, 1e-6}
			want["resource memory "+key] = haExpected{c.MemoryBytes, 0}
		}
	}
	return want
}

// valuesFrom reads customPath, externalPath and resourcePath with get and flattens the answers
// into one value per key (see expectedValues). The fixture's incomplete pod is left out of the
// metrics.k8s.io answer, as checkResource does.
func (s *haSuite) valuesFrom(get func(path string) (answer, error)) (map[string]float64, error) {
	read := func(path string, v any) error {
		a, err := get(path)
		if err != nil {
			return fmt.Errorf("GET %s: %w", path, err)
		}
		if a.Status != http.StatusOK {
			return fmt.Errorf("GET %s: %v", path, a)
		}
		if err := json.Unmarshal([]byte(a.Body), v); err != nil {
			return fmt.Errorf("%w: GET %s: decoding %q: %v", errWrong, path, truncateText(a.Body, 300), err)
		}
		return nil
	}
	var custom, external metricValueList
	var pods podMetricsList
	if err := errors.Join(read(customPath, &custom), read(externalPath, &external), read(resourcePath, &pods)); err != nil {
		return nil, err
	}
	got := map[string]float64{}
	for _, it := range custom.Items {
		got["custom "+it.DescribedObject.Namespace+"/"+it.DescribedObject.Name] = it.Value.AsApproximateFloat64()
	}
	for _, it := range external.Items {
		got["external "+it.MetricLabels["namespace"]+"/"+it.MetricLabels["deployment"]] = it.Value.AsApproximateFloat64()
	}
	incompleteNS, incompleteName, _ := s.spec.IncompletePod()
	for _, it := range pods.Items {
		if it.Metadata.Namespace == incompleteNS && it.Metadata.Name == incompleteName {
			continue
		}
		for _, c := range it.Containers {
			key := it.Metadata.Namespace + "/" + it.Metadata.Name + "/" + c.Name
			got["resource cpu "+key] = c.Usage.CPU.AsApproximateFloat64()
			got["resource memory "+key] = c.Usage.Memory.AsApproximateFloat64()
		}
	}
	return got, nil
}

// valueProblems lists how got differs from want, sorted.
func valueProblems(got map[string]float64, want map[string]haExpected) []string {
	var problems []string
	for _, key := range slices.Sorted(maps.Keys(want)) {
		w := want[key]
		v, ok := got[key]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s is missing (want %v)", key, w.value))
		case math.Abs(v-w.value) > w.tolerance:
			problems = append(problems, fmt.Sprintf("%s is %v, want %v", key, v, w.value))
		}
	}
	for _, key := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[key]; !ok {
			problems = append(problems, fmt.Sprintf("unexpected %s=%v", key, got[key]))
		}
	}
	return problems
}

func (s *haSuite) testSameValues(t *testing.T) {
	want := s.expectedValues()
	for _, r := range s.replicas {
		got, err := s.valuesFrom(func(path string) (answer, error) { return s.directTo(r.port, path, "admin") })
		if err != nil {
			t.Errorf("%v, asked directly: %v", r, err)
			continue
		}
		if problems := valueProblems(got, want); len(problems) > 0 {
			t.Errorf("%v, asked directly, answers other values than the fixture's:\n  %s", r, strings.Join(problems, "\n  "))
		} else {
			t.Logf("%v, asked directly, answers the %d fixture values exactly", r, len(got))
		}
	}

	before := map[*haReplica]float64{}
	for _, r := range s.replicas {
		before[r] = s.mustServedCustom(t, r)
	}
	through := func(path string) (answer, error) { return s.get(path, ""), nil }
	for round := 1; round <= haRounds; round++ {
		got, err := s.valuesFrom(through)
		if err != nil {
			t.Errorf("through kube-apiserver (round %d): %v", round, err)
			continue
		}
		if problems := valueProblems(got, want); len(problems) > 0 {
			t.Errorf("through kube-apiserver (round %d), other values than the fixture's:\n  %s", round, strings.Join(problems, "\n  "))
		}
	}
	if err := s.checkTop(); err != nil {
		t.Errorf("through kube-apiserver: %v", err)
	}
	var shares []string
	for _, r := range s.replicas {
		served := s.mustServedCustom(t, r) - before[r]
		shares = append(shares, fmt.Sprintf("%s %v", r.name, served))
		if served == 0 {
			t.Errorf("%v served none of the %d custom metric requests sent through kube-apiserver; want the aggregator to send it some (is kube-apiserver running with %v?)", r, haRounds, testbed.AggregatorRoutingArgs)
		}
	}
	t.Logf("through kube-apiserver, %d rounds of the three APIs answered the fixture values; the %d custom metric requests went to replicas %s",
		haRounds, haRounds, strings.Join(shares, ", "))
}
