// The faults a FaultProxy injects.

package testbed

import (
	"fmt"
	"strconv"
	"time"
)

// FaultKind is one way a Prometheus backend can misbehave.
type FaultKind int

// The faults a FaultProxy can inject. Except Down, they apply to query requests only
// (/api/v1/query and /api/v1/query_range); every other request (the label APIs the adapter's
// discovery uses, /-/ready) passes through, so a metric stays listed while its queries fail.
const (
	// PassThrough forwards every request to the backend and its answer back unchanged.
	PassThrough FaultKind = iota
	// Down closes the listener and every open connection: connections are refused until another
	// fault is set, which listens again on the same port.
	Down
	// KillMidAnswer sends the status line, headers (with the full Content-Length) and the first
	// half of the real answer, then closes the connection.
	KillMidAnswer
	// Delay holds each query for Fault.Delay before forwarding it.
	Delay
	// InvalidJSON answers 200 with a body that is not JSON.
	InvalidJSON
	// HTML502 answers 502 with an HTML error page, as a load balancer in front of a dead
	// Prometheus does.
	HTML502
	// TruncatedBody answers 200 with the first half of the real answer, its Content-Length
	// matching what is sent: the transport sees a complete answer, the decoder does not.
	TruncatedBody
	// HugeAnswer answers 200 with a well-formed vector of at least Fault.Bytes bytes, generated
	// while it is sent (never held in memory). Every sample carries a 1 KiB label, so the size
	// limit is reached long before any sample-count limit.
	HugeAnswer
	// MatrixResult rewrites a vector answer into a matrix with one point per series.
	MatrixResult
	// DuplicateSeries follows every selected sample with a copy that has one more label,
	// DuplicateLabel="1", and the same value: two series for one object.
	DuplicateSeries
	// SpecialValue sets the value of the selected samples to Fault.Value ("NaN", "+Inf", "-Inf").
	SpecialValue
	// NativeHistogram replaces the value of the selected samples with a native histogram
	// ({"count":"1","sum":"1","buckets":[]}) under "histogram".
	NativeHistogram
	// PartialWarning adds PartialWarningText to the real answer's "warnings", as Thanos does when
	// a store is down and it answers with what the others have.
	PartialWarning
)

var faultNames = [...]string{
	PassThrough: "pass-through", Down: "down", KillMidAnswer: "kill mid-answer", Delay: "delay",
	InvalidJSON: "invalid JSON", HTML502: "HTML 502 page", TruncatedBody: "truncated body",
	HugeAnswer: "huge answer", MatrixResult: "matrix result", DuplicateSeries: "duplicate series",
	SpecialValue: "special value", NativeHistogram: "native histogram", PartialWarning: "partial-response warning",
}

func (k FaultKind) String() string {
	if k >= 0 && int(k) < len(faultNames) {
		return faultNames[k]
	}
	return "FaultKind(" + strconv.Itoa(int(k)) + ")"
}

// DefaultHugeAnswerBytes is the size of a HugeAnswer when Fault.Bytes is zero: 200 MiB.
const DefaultHugeAnswerBytes int64 = 200 << 20

// DuplicateLabel is the label DuplicateSeries adds to its copies.
const DuplicateLabel = "faultproxy_copy"

// PartialWarningText is the warning PartialWarning adds.
const PartialWarningText = "partial response: store 127.0.0.1:10901 is unreachable, 1 of 2 stores answered (injected by testbed.FaultProxy)"

// HTML502Body is the page HTML502 answers with.
const HTML502Body = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"

// InvalidJSONBody is the body InvalidJSON answers with: a vector whose first sample breaks off
// into a syntax error.
const InvalidJSONBody = `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"pod" "x"},"value":[1,"1"]}]}}`

// Fault is what a FaultProxy does to queries.
type Fault struct {
	Kind FaultKind
	// Delay is how long Delay holds each query.
	Delay time.Duration
	// Bytes is the least size of a HugeAnswer; DefaultHugeAnswerBytes when zero.
	Bytes int64
	// Value is the sample value SpecialValue writes, as Prometheus writes it: "NaN", "+Inf", "-Inf".
	Value string
	// Select limits DuplicateSeries, SpecialValue and NativeHistogram to the samples that carry
	// every label given here with the given value; empty selects every sample.
	Select map[string]string
}

func (f Fault) String() string {
	switch f.Kind {
	case Delay:
		return fmt.Sprintf("%s %s", f.Kind, f.Delay)
	case HugeAnswer:
		return fmt.Sprintf("%s of %d bytes", f.Kind, f.hugeBytes())
	case SpecialValue:
		return fmt.Sprintf("%s %s for %v", f.Kind, f.Value, f.Select)
	case DuplicateSeries, NativeHistogram:
		return fmt.Sprintf("%s for %v", f.Kind, f.Select)
	}
	return f.Kind.String()
}

func (f Fault) hugeBytes() int64 {
	if f.Bytes > 0 {
		return f.Bytes
	}
	return DefaultHugeAnswerBytes
}

// selects reports whether a sample with these labels is one the fault changes.
func (f Fault) selects(metric map[string]string) bool {
	for k, v := range f.Select {
		if metric[k] != v {
			return false
		}
	}
	return true
}
