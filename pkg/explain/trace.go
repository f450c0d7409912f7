// Package explain records what one metric request did, at the points where the serving code
// decides it — the rule chosen, the objects selected, the PromQL sent, what the backend
// answered, the values served or why none was — and renders that record for people and
// machines.
//
// A request is explained only when its context carries a Recorder (NewContext). The serving
// code (pkg/provider, pkg/planner, pkg/resourceprovider) asks FromContext once per request
// and records only when it gets one; without any explanation in flight FromContext is one
// atomic load, so no request pays for explanations it did not ask for.
//
// Nothing here prints a secret: backends are named by their redacted URLs (the ones the
// serving code's own errors carry), and a Trace holds no header, token or password.
package explain

import "time"

// Trace is the record of one request, in the order the serving code went through it. Served
// and Reason are the conclusion (Recorder.Finish).
type Trace struct {
	Request Request `json:"request"`
	// Rule is the rule that answers the metric; nil when none does (NoRule says why).
	Rule   *Rule   `json:"rule,omitempty"`
	NoRule *NoRule `json:"noRule,omitempty"`
	// Forwarded is set when no rule serves an external metric and the request went to the
	// server of --external-metrics-forward-url instead.
	Forwarded bool     `json:"forwarded,omitempty"`
	Objects   *Objects `json:"objects,omitempty"`
	Queries   []Query  `json:"queries,omitempty"`
	Values    []Value  `json:"values,omitempty"`
	// LeftOut are the objects the request covered that got no value, each with its reason.
	LeftOut []LeftOut `json:"leftOut,omitempty"`
	// Backends are the backends checked after the request, when their state explains the
	// outcome (discovery failing, say).
	Backends []Backend `json:"backends,omitempty"`
	// Status is the API's answer to the request itself.
	Status Status `json:"status"`
	// Served is true when the answer is a success holding at least one value.
	Served bool    `json:"served"`
	Reason *Reason `json:"reason,omitempty"`
}

// Request is what was asked.
type Request struct {
	// Path is the API path with its query, e.g.
	// /apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/rps?labelSelector=app%3Dweb.
	Path string `json:"path"`
	// Group is the API group (custom.metrics.k8s.io, external.metrics.k8s.io, metrics.k8s.io).
	Group string `json:"group,omitempty"`
	// Title says what asks it, for people: "HPA shop/web, metric 2 (Pods http_requests)".
	Title string `json:"title,omitempty"`
}

// Rule names a rule of the config and what it is made of.
type Rule struct {
	// ID is the rule as logs and errors name it: "custom/3 (config.yaml:69)", or the field of
	// a resource rule: "resourceRules.cpu.containerQuery".
	ID   string `json:"id"`
	File string `json:"file,omitempty"`
	// Line is the rule's line in File; 0 when unknown.
	Line         int    `json:"line,omitempty"`
	SeriesQuery  string `json:"seriesQuery,omitempty"`
	MetricsQuery string `json:"metricsQuery,omitempty"`
	// Series is the Prometheus series name the metric is served from.
	Series string `json:"series,omitempty"`
	// Metric and Resource are what the rule serves here: "http_requests_per_second", "pods".
	Metric   string `json:"metric,omitempty"`
	Resource string `json:"resource,omitempty"`
}

// NoRule says why no rule answers a metric.
type NoRule struct {
	Metric string `json:"metric"`
	// Resource is the resource asked for ("pods"); "" for external metrics.
	Resource string `json:"resource,omitempty"`
	// Served counts the metrics served for Resource (or the external metrics); Close are the
	// served names nearest to Metric.
	Served int      `json:"served"`
	Close  []string `json:"close,omitempty"`
	// Elsewhere are the resources the same metric name is served for.
	Elsewhere []Elsewhere `json:"elsewhere,omitempty"`
	// DiscoveryReady is false before discovery's first pass; DiscoveryFailing are the
	// failures of its last pass, one per failing rule.
	DiscoveryReady   bool     `json:"discoveryReady"`
	DiscoveryFailing []string `json:"discoveryFailing,omitempty"`
}

// Elsewhere is a resource a metric is served for by a rule, and the label that rule maps to
// the resource asked for ("" when it maps none).
type Elsewhere struct {
	Resource string `json:"resource"`
	Rule     Rule   `json:"rule"`
	Label    string `json:"label,omitempty"`
}

// Objects are the objects a request covers.
type Objects struct {
	Resource  string `json:"resource"`
	Namespace string `json:"namespace,omitempty"`
	// Selector is the label selector that chose them; "" when the request named one object
	// (or asked for every object).
	Selector string   `json:"selector,omitempty"`
	Names    []string `json:"names"`
	// Error is why the objects could not be listed.
	Error string `json:"error,omitempty"`
}

// Query is one query sent for the request.
type Query struct {
	// What the query is for: "metric", "cpu", "memory", or "metric without the metric
	// selector" (finding out whom a rejected query blames).
	What string `json:"what"`
	// Rule is the ID of the rule (or resource rule field) that rendered it.
	Rule    string `json:"rule"`
	Backend string `json:"backend"`
	// URL is the backend's redacted URL.
	URL    string `json:"url,omitempty"`
	PromQL string `json:"promql"`
	// Lookback is how far back the query reads samples: the longest range of its range
	// selectors ("2m"), or "" for the backend's lookback delta (5m in Prometheus).
	Lookback string `json:"lookback,omitempty"`
	// Answered says where the answer came from: "backend" (Prometheus was asked), "cache"
	// (the adapter's query cache), "in-flight" (an identical query on its way), "stale"
	// (the backend failed; its last good answer, --serve-stale-for).
	Answered string `json:"answered,omitempty"`
	// Plan is how an object request was queried and why, e.g. "by-name (cheaper)" or
	// "namespace (shared)" (pkg/planner.ChoosePlan); "" for other queries.
	Plan string `json:"plan,omitempty"`
	// Time is the evaluation time of the answer.
	Time *time.Time `json:"time,omitempty"`
	// Samples are the answer's samples for the objects the request covers (every sample for
	// external metrics); Others counts the rest (other objects of the namespace).
	Samples []Sample `json:"samples,omitempty"`
	Others  int      `json:"others,omitempty"`
	// Omitted counts samples for the objects covered beyond those Samples shows.
	Omitted int `json:"omitted,omitempty"`
	// Total is the number of samples in the answer.
	Total int `json:"total"`
	// Error is why the query failed; Cause classifies it (promclient.Cause: unreachable,
	// timeout, bad_query...).
	Error string `json:"error,omitempty"`
	Cause string `json:"cause,omitempty"`
}

// Sample is one sample of an answer.
type Sample struct {
	Labels map[string]string `json:"labels"`
	Value  string            `json:"value"`
	Time   time.Time         `json:"time"`
}

// Value is a value served.
type Value struct {
	// Object is the object ("ns/name", or a node's name), or the labels of an external value.
	Object string    `json:"object"`
	Value  string    `json:"value"`
	Time   time.Time `json:"time"`
	// Window is the span a resource usage covers.
	Window string `json:"window,omitempty"`
	// Note says where a value comes from when not from a sample (a rule's defaultValue).
	Note string `json:"note,omitempty"`
	// CPU and Memory are a metrics.k8s.io usage (a pod's: the sum of Containers).
	CPU        string      `json:"cpu,omitempty"`
	Memory     string      `json:"memory,omitempty"`
	Containers []Container `json:"containers,omitempty"`
}

// Container is the usage of one container of a pod (metrics.k8s.io).
type Container struct {
	Name   string `json:"name"`
	CPU    string `json:"cpu"`
	Memory string `json:"memory"`
}

// LeftOut is an object the request covered that got no value.
type LeftOut struct {
	Object string `json:"object"`
	// Code classifies the reason: ReasonNoSeries, ReasonNotANumber, ReasonNotRunning...
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// Backend is the state of a backend, as found by asking it for vector(1).
type Backend struct {
	Name  string `json:"name"`
	URL   string `json:"url,omitempty"`
	Error string `json:"error,omitempty"`
	Cause string `json:"cause,omitempty"`
}

// Status is the API's answer to the request: its HTTP code, and for a failure the Status'
// reason and message.
type Status struct {
	Code    int    `json:"code"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// Reason is why nothing is served: a stable code for machines and a sentence for people.
type Reason struct {
	Code string `json:"code"`
	Text string `json:"text"`
}

// Reason codes.
const (
	ReasonNoRule      = "no-rule"             // no rule serves the name (for this resource)
	ReasonNoLabel     = "series-lack-label"   // the name is served for other resources only: its series lack the label
	ReasonDiscovery   = "discovery-pending"   // discovery has not completed a pass yet
	ReasonUnreachable = "backend-unreachable" // the backend could not be reached, or timed out
	ReasonBackend     = "backend-error"       // the backend answered with an error
	ReasonNoObjects   = "no-objects"          // the request covers no object
	ReasonListObjects = "objects-unlisted"    // the objects could not be listed
	ReasonNoSeries    = "no-series"           // the objects have no series in the query's window
	ReasonNotANumber  = "not-a-number"        // every value found is NaN or infinite (or no usage)
	ReasonNotRunning  = "not-running"         // the pod is not Running: metrics.k8s.io serves running pods only
	ReasonDuplicate   = "duplicate-series"    // an object has two series where one is expected
	ReasonRequest     = "bad-request"         // the request itself is wrong (scope, selector)
	ReasonOther       = "error"               // any other failure: see Status
)
