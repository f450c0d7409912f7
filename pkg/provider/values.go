package provider

import (
	"fmt"
	"math"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Quantity converts a sample value into an exact Kubernetes quantity: whole numbers stay
// whole (bytes are never reported as milli-bytes), fractions keep milli precision.
// NaN and ±Inf have no quantity and are errors, never zeros.
func Quantity(v float64) (*resource.Quantity, error) {
	switch {
	case math.IsNaN(v):
		return nil, fmt.Errorf("the value is NaN (often a division by zero in the query, e.g. a ratio with no traffic)")
	case math.IsInf(v, 0):
		return nil, fmt.Errorf("the value is %v (a division by zero in the query?)", v)
	}
	if v == math.Trunc(v) && math.Abs(v) < 1<<62 {
		return resource.NewQuantity(int64(v), resource.DecimalSI), nil
	}
	if milli := v * 1000; math.Abs(milli) < 1<<52 && math.Abs(milli-math.Round(milli)) < 1e-6 {
		return resource.NewMilliQuantity(int64(math.Round(milli)), resource.DecimalSI), nil
	}
	if nano := v * 1e9; math.Abs(v) < 1 && math.Abs(nano) < 1<<62 {
		// Below milli precision (e.g. a 0.04 % error ratio) keep nano precision rather than
		// rounding a non-zero value to zero.
		return resource.NewScaledQuantity(int64(math.Round(nano)), resource.Nano), nil
	}
	if math.Abs(v) < 1<<52 {
		return resource.NewMilliQuantity(int64(math.Round(v*1000)), resource.DecimalSI), nil
	}
	q, err := resource.ParseQuantity(fmt.Sprintf("%.0f", v))
	if err != nil {
		return nil, fmt.Errorf("the value %v cannot be represented as a quantity: %w", v, err)
	}
	return &q, nil
}
