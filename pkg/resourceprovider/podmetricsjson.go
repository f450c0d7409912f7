package resourceprovider

import (
	"encoding/json"
	"slices"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/metrics/pkg/apis/metrics"
)

// appendPodMetricsJSON appends pm as encoding/json writes its v1beta1 form (what the apiserver's
// JSON serializer writes for a list's item), without reflection: a streamed JSON list of 10,000
// pods spent most of its CPU in encoding/json, more than the apiserver's whole-list encoding
// did. It writes the fields podMetrics sets (name, namespace and labels of the metadata,
// timestamp, window, containers); stream_test.go compares its bytes with the apiserver's
// encoder, so a field podMetrics starts setting fails there until it is written here.
func appendPodMetricsJSON(b []byte, pm *metrics.PodMetrics) []byte {
	b = append(b, `{"metadata":{`...)
	sep := false
	field := func(name string) {
		if sep {
			b = append(b, ',')
		}
		sep = true
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":`...)
	}
	if pm.Name != "" {
		field("name")
		b = appendJSONString(b, pm.Name)
	}
	if pm.Namespace != "" {
		field("namespace")
		b = appendJSONString(b, pm.Namespace)
	}
	if len(pm.Labels) > 0 {
		field("labels")
		b = append(b, '{')
		var held [8]string
		for i, k := range sortedKeys(held[:0], pm.Labels) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, pm.Labels[k])
		}
		b = append(b, '}')
	}
	b = append(b, `},"timestamp":`...)
	b = appendJSONTime(b, pm.Timestamp)
	b = append(b, `,"window":`...)
	b = appendJSONString(b, pm.Window.Duration.String())
	b = append(b, `,"containers":`...)
	if pm.Containers == nil {
		return append(b, "null}"...)
	}
	b = append(b, '[')
	for i := range pm.Containers {
		c := &pm.Containers[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendJSONString(b, c.Name)
		b = append(b, `,"usage":`...)
		if c.Usage == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, '{')
			var held [2]corev1.ResourceName // cpu and memory: no allocation
			for j, name := range sortedKeys(held[:0], c.Usage) {
				if j > 0 {
					b = append(b, ',')
				}
				q := c.Usage[name]
				b = appendJSONString(b, string(name))
				b = append(b, ':')
				// Quantity.MarshalJSON writes the canonical form String returns, quoted.
				b = appendJSONString(b, q.String())
			}
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendJSONTime writes t as metav1.Time.MarshalJSON does: RFC 3339 in UTC, or null.
func appendJSONTime(b []byte, t metav1.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339)
	return append(b, '"')
}

// appendJSONString appends s quoted as encoding/json quotes it (HTML characters escaped, as
// by json.Encoder's default). Kubernetes names and label values need no escaping, so they
// are copied; anything else goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= utf8.RuneSelf {
			quoted, _ := json.Marshal(s) // a string always encodes
			return append(b, quoted...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// sortedKeys appends m's keys to keys, sorted, as encoding/json orders a map's.
func sortedKeys[K ~string, V any](keys []K, m map[K]V) []K {
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
