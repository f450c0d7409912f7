package main

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// metricValueList is the part of a custom.metrics.k8s.io MetricValueList the benchmark checks.
type metricValueList struct {
	Items []struct {
		DescribedObject struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"describedObject"`
		Value resource.Quantity `json:"value"`
	} `json:"items"`
}

// checkMetricValues decodes a MetricValueList and checks it holds exactly the pods of want with
// their values; it returns the number of items.
func checkMetricValues(body []byte, want map[string]float64) (int, error) {
	var list metricValueList
	if err := json.Unmarshal(body, &list); err != nil {
		return 0, fmt.Errorf("decoding the answer %.200q: %w", body, err)
	}
	got := make(map[string]float64, len(list.Items))
	for _, item := range list.Items {
		if item.DescribedObject.Kind != "Pod" {
			return 0, fmt.Errorf("the answer describes a %q, want Pod", item.DescribedObject.Kind)
		}
		got[item.DescribedObject.Name] = item.Value.AsApproximateFloat64()
	}
	if len(got) != len(list.Items) {
		return 0, fmt.Errorf("the answer lists a pod twice (%d items, %d pods)", len(list.Items), len(got))
	}
	return len(list.Items), compareValues(got, want)
}

// compareValues checks got and want hold the same names with equal values. Served quantities
// carry milli precision and rate() may differ from the formula in the last bits, so equal means
// within 0.0005 (plus 1e-9 relative).
func compareValues(got, want map[string]float64) error {
	var problems []string
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s missing", name))
		case math.Abs(g-w) >= 0.0005+1e-9*math.Abs(w):
			problems = append(problems, fmt.Sprintf("%s = %v, want %v", name, g, w))
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			problems = append(problems, fmt.Sprintf("%s not asked for", name))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	if len(problems) > 5 {
		problems = append(problems[:5], fmt.Sprintf("and %d more", len(problems)-5))
	}
	return fmt.Errorf("the answer differs from the fixture: %s", strings.Join(problems, "; "))
}
