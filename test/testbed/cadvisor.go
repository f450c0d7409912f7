package testbed

import (
	"bytes"
	"fmt"
	"time"
)

// CAdvisorPre116Series is OpenMetrics text of cAdvisor's container cpu and memory series for
// the given pods (namespace, name), one sample every 15 s from start to end, labelled as cAdvisor
// labelled them before Kubernetes 1.16: pod_name and container_name ("app"), no pod nor
// container label. The counter grows by a quarter core.
func CAdvisorPre116Series(pods [][2]string, start, end time.Time) []byte {
	var b bytes.Buffer
	for _, family := range []struct{ typ, name, series string }{
		{"counter", "container_cpu_usage_seconds", "container_cpu_usage_seconds_total"},
		{"gauge", "container_memory_working_set_bytes", "container_memory_working_set_bytes"},
	} {
		fmt.Fprintf(&b, "# TYPE %s %s\n", family.name, family.typ)
		for _, p := range pods {
			for ts := start; !ts.After(end); ts = ts.Add(15 * time.Second) {
				value := int64(100 << 20)
				if family.typ == "counter" {
					value = 1000 + int64(ts.Sub(start)/time.Second)/4
				}
				fmt.Fprintf(&b, "%s{container_name=\"app\",id=\"/kubepods/%s\",job=\"kubelet\",namespace=%q,pod_name=%q} %d %d\n",
					family.series, p[1], p[0], p[1], value, ts.Unix())
			}
		}
	}
	b.WriteString("# EOF\n")
	return b.Bytes()
}
