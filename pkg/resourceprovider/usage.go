package resourceprovider

import (
	"fmt"
	"math"
	"time"

	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// sample is one resource's usage of one container or node: the value of the one sample of
// the result that names it (a second one is an error, see answerDuplicate).
//
// Its time is Prometheus' (milliseconds), which keeps a sample at 32 bytes: a list of
// 10,000 pods holds one per container and resource.
type sample struct {
	value float64
	time  model.Time
	// window is the span a cpu rate covers, ending at time (see sampleReader); 0 for memory.
	window time.Duration
	seen   bool
}

func (s *sample) add(v model.SampleValue, ts model.Time, window time.Duration) {
	s.value, s.time, s.window, s.seen = float64(v), ts, window, true
}

// usage is the cpu and memory usage of one container or node.
type usage struct {
	cpu, memory sample
}

// leftOut says why an object has no metrics.
type leftOut struct {
	reason string
	// invalid is set when a value exists but is not a usage (NaN, ±Inf, negative): the rule
	// is wrong rather than the data missing. A get then answers 500 instead of 404.
	invalid bool
}

// usageList converts a usage into a ResourceList, in metrics-server's units: cpu in cores
// with nano-core precision (0.125 → "125m"), memory in whole bytes (never milli-bytes).
func usageList(u *usage) (corev1.ResourceList, time.Time, *unusable) {
	cpu, err := cpuQuantity(u.cpu.value)
	if err != nil {
		return nil, time.Time{}, &unusable{"cpu", err}
	}
	memory, err := memoryQuantity(u.memory.value)
	if err != nil {
		return nil, time.Time{}, &unusable{"memory", err}
	}
	ts := u.cpu.time
	if u.memory.time.Before(ts) {
		ts = u.memory.time
	}
	// Format each quantity once, here, where it is addressable: String caches the text, which
	// the copies in the map keep. Encoders read map values as copies, which cannot cache it, so
	// otherwise each formats it again (protobuf twice: to measure it and to write it).
	_, _ = cpu.String(), memory.String()
	return corev1.ResourceList{corev1.ResourceCPU: cpu, corev1.ResourceMemory: memory}, ts.Time(), nil
}

// unusable is a usage value that is no usage at all (see checkUsage).
type unusable struct {
	resource string
	err      error
}

// leftOut says why the object was left out; what names it ("container \"app\"", "this node").
func (u *unusable) leftOut(what string) *leftOut {
	return &leftOut{reason: fmt.Sprintf("the %s usage of %s is unusable: %v", u.resource, what, u.err), invalid: true}
}

// cpuQuantity converts a rate in cores into a quantity with nano-core precision, the
// precision metrics-server reports; its canonical form is as short as the value allows
// (0.125 → "125m", 2 → "2", 0.000001234 → "1234n").
func cpuQuantity(cores float64) (resource.Quantity, error) {
	if err := checkUsage(cores, "cores"); err != nil {
		return resource.Quantity{}, err
	}
	nano := math.Round(cores * 1e9)
	if nano >= math.MaxInt64 {
		return resource.Quantity{}, fmt.Errorf("%g cores is too large for a quantity", cores)
	}
	return *resource.NewScaledQuantity(int64(nano), resource.Nano), nil
}

// memoryQuantity converts bytes into a whole-byte quantity in binary SI form ("1Gi" when
// exact), as metrics-server reports memory. Fractions of a byte (from an average, say) are
// rounded: a memory quantity is never in milli-bytes.
func memoryQuantity(bytes float64) (resource.Quantity, error) {
	if err := checkUsage(bytes, "bytes"); err != nil {
		return resource.Quantity{}, err
	}
	whole := math.Round(bytes)
	if whole >= math.MaxInt64 {
		return resource.Quantity{}, fmt.Errorf("%g bytes is too large for a quantity", bytes)
	}
	return *resource.NewQuantity(int64(whole), resource.BinarySI), nil
}

// checkUsage rejects values that are no usage at all; they are errors, never zeros.
func checkUsage(v float64, unit string) error {
	switch {
	case math.IsNaN(v):
		return fmt.Errorf("the value is NaN (a division by zero in the query?)")
	case math.IsInf(v, 0):
		return fmt.Errorf("the value is %v %s (a division by zero in the query?)", v, unit)
	case v < 0:
		return fmt.Errorf("the value is negative (%g %s): usage cannot be; does the query subtract or use deriv() instead of rate()?", v, unit)
	}
	return nil
}
