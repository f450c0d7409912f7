//go:build e2e

// One object and one series of each kind the adapter watches for custom metrics.

package e2e

import (
	"bytes"
	"fmt"
	"time"
)

// everyWatchedKind is one object of each kind the adapter's ClusterRole lets it watch for custom
// metrics, with the label the default rules map to it (the rule's `<<.Resource>>` template).
var everyWatchedKind = []struct{ resource, label string }{
	{"services", "service"}, {"endpoints", "endpoints"}, {"replicationcontrollers", "replicationcontroller"},
	{"deployments.apps", "deployment"}, {"replicasets.apps", "replicaset"}, {"statefulsets.apps", "statefulset"},
	{"daemonsets.apps", "daemonset"}, {"ingresses.networking.k8s.io", "ingress"},
	{"pods", "pod"},
}

// everyKindSeries is lp_requests_total, one counter per object of objectsOfEveryWatchedKind.
func everyKindSeries(start, end time.Time) []byte {
	var b bytes.Buffer
	b.WriteString("# TYPE lp_requests counter\n")
	for _, k := range everyWatchedKind {
		for ts := start; !ts.After(end); ts = ts.Add(15 * time.Second) {
			fmt.Fprintf(&b, "lp_requests_total{namespace=\"lp\",%s=\"lp-%s\"} %d %d\n", k.label, k.label, ts.Sub(start)/time.Second, ts.Unix())
		}
	}
	b.WriteString("# EOF\n")
	return b.Bytes()
}

// objectsOfEveryWatchedKind holds one object named lp-<label> of each kind of everyWatchedKind.
// No controller runs, so the workloads create no pods.
const objectsOfEveryWatchedKind = `
apiVersion: v1
kind: Namespace
metadata: {name: lp}
---
# No controller creates it here, and the pod below needs it.
apiVersion: v1
kind: ServiceAccount
metadata: {name: default, namespace: lp}
---
apiVersion: v1
kind: Service
metadata: {name: lp-service, namespace: lp}
spec: {selector: {app: lp}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: lp-endpoints, namespace: lp}
---
apiVersion: v1
kind: ReplicationController
metadata: {name: lp-replicationcontroller, namespace: lp}
spec:
  replicas: 0
  selector: {app: lp-rc}
  template:
    metadata: {labels: {app: lp-rc}}
    spec: {containers: [{name: app, image: app}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: lp-deployment, namespace: lp}
spec:
  replicas: 0
  selector: {matchLabels: {app: lp-deployment}}
  template:
    metadata: {labels: {app: lp-deployment}}
    spec: {containers: [{name: app, image: app}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: lp-replicaset, namespace: lp}
spec:
  replicas: 0
  selector: {matchLabels: {app: lp-replicaset}}
  template:
    metadata: {labels: {app: lp-replicaset}}
    spec: {containers: [{name: app, image: app}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: lp-statefulset, namespace: lp}
spec:
  replicas: 0
  serviceName: lp-service
  selector: {matchLabels: {app: lp-statefulset}}
  template:
    metadata: {labels: {app: lp-statefulset}}
    spec: {containers: [{name: app, image: app}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: lp-daemonset, namespace: lp}
spec:
  selector: {matchLabels: {app: lp-daemonset}}
  template:
    metadata: {labels: {app: lp-daemonset}}
    spec: {containers: [{name: app, image: app}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: lp-ingress, namespace: lp}
spec: {defaultBackend: {service: {name: lp-service, port: {number: 80}}}}
---
apiVersion: v1
kind: Pod
metadata: {name: lp-pod, namespace: lp}
spec: {containers: [{name: app, image: app}]}
`
