// The measured requests (calls) with their checks, and the clients that send them.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/promadapter/promadapter/test/fixture"
)

// call is one kind of request with its check.
type call struct {
	do    func(context.Context) error
	check func() (int, error)
	// once does and checks one request; it is safe for concurrent use.
	once func(context.Context) error
}

// selectorCall is the selector request through client, with labelSelector (empty selects every
// pod of the namespace), checked against want (pod name → request rate).
func (e *sizeEnv) selectorCall(client kubernetes.Interface, selector string, want map[string]float64) call {
	return metricCall(client, e.selectorPath(), selector, want)
}

// metricCall is the custom metric at path (a list of pods) through client, with labelSelector
// (empty selects every pod of the namespace), checked against want (pod name → value).
func metricCall(client kubernetes.Interface, path, selector string, want map[string]float64) call {
	get := func(ctx context.Context) ([]byte, error) {
		req := client.CoreV1().RESTClient().Get().AbsPath(path)
		if selector != "" {
			req = req.Param("labelSelector", selector)
		}
		return req.DoRaw(ctx)
	}
	var body []byte
	return call{
		do: func(ctx context.Context) error {
			var err error
			body, err = get(ctx)
			return err
		},
		check: func() (int, error) { return checkMetricValues(body, want) },
		once: func(ctx context.Context) error {
			b, err := get(ctx)
			if err != nil {
				return err
			}
			_, err = checkMetricValues(b, want)
			return err
		},
	}
}

// rawCall sends query straight to Prometheus with the same client library the adapter uses, and
// checks every answer holds exactly the request rates of want (pod name → rate).
func (e *sizeEnv) rawCall(query string, want map[string]float64) call {
	run := func(ctx context.Context) (model.Vector, error) {
		v, _, _, err := e.promQL.Query(ctx, query, time.Now())
		if err != nil {
			return nil, err
		}
		vector, ok := v.(model.Vector)
		if !ok {
			return nil, fmt.Errorf("the query answered a %s, not a vector", v.Type())
		}
		return vector, nil
	}
	check := func(vector model.Vector) (int, error) {
		got := make(map[string]float64, len(vector))
		for _, s := range vector {
			got[string(s.Metric["pod"])] = float64(s.Value)
		}
		return len(got), compareValues(got, want)
	}
	var last model.Vector
	return call{
		do: func(ctx context.Context) error {
			var err error
			last, err = run(ctx)
			return err
		},
		check: func() (int, error) { return check(last) },
		once: func(ctx context.Context) error {
			vector, err := run(ctx)
			if err != nil {
				return err
			}
			_, err = check(vector)
			return err
		},
	}
}

// podMetricsCall lists the PodMetrics of every namespace through kube-apiserver, as
// `kubectl top pods -A` does, and checks the number of pods listed.
func (e *sizeEnv) podMetricsCall() call {
	var body []byte
	get := func(ctx context.Context) ([]byte, error) {
		return e.client.CoreV1().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/pods").DoRaw(ctx)
	}
	check := func(body []byte) (int, error) {
		var list struct {
			Items []struct {
				Metadata struct {
					Namespace string `json:"namespace"`
					Name      string `json:"name"`
				} `json:"metadata"`
				Containers []struct {
					Usage map[string]resource.Quantity `json:"usage"`
				} `json:"containers"`
			} `json:"items"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			return 0, fmt.Errorf("decoding the PodMetricsList: %w", err)
		}
		if len(list.Items) != e.completePods {
			return len(list.Items), fmt.Errorf("the PodMetricsList has %d pods, want %d", len(list.Items), e.completePods)
		}
		// Every pod's value, not only the count: a list of all namespaces is answered in shards
		// at large sizes, and a shard answering another's pods must fail the run.
		for _, item := range list.Items {
			key := item.Metadata.Namespace + "/" + item.Metadata.Name
			want, ok := e.podUsage[key]
			if !ok {
				return 0, fmt.Errorf("the PodMetricsList holds %s, which the fixture does not list", key)
			}
			var cpu, memory float64
			for _, c := range item.Containers {
				q, m := c.Usage["cpu"], c.Usage["memory"]
				cpu, memory = cpu+q.AsApproximateFloat64(), memory+m.AsApproximateFloat64()
			}
			// cpu is served in nano-cores, memory in whole bytes, each rounded per container.
			if math.Abs(cpu-want.cpuCores) > 1e-6*want.cpuCores+1e-9*float64(want.containers) || math.Abs(memory-want.memoryBytes) > float64(want.containers) {
				return 0, fmt.Errorf("the PodMetricsList gives %s cpu %g cores, memory %g bytes; the fixture %g cores, %g bytes", key, cpu, memory, want.cpuCores, want.memoryBytes)
			}
		}
		return len(list.Items), nil
	}
	return call{
		do: func(ctx context.Context) error {
			var err error
			body, err = get(ctx)
			return err
		},
		check: func() (int, error) { return check(body) },
		once: func(ctx context.Context) error {
			b, err := get(ctx)
			if err != nil {
				return err
			}
			_, err = check(b)
			return err
		},
	}
}

// selectorPath is the custom metrics path of metric for pods of the namespace.
func (e *sizeEnv) selectorPath() string {
	return "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + e.namespace + "/pods/*/" + selectorMetric
}

func labelSelector(app string) string { return fixture.AppLabel + "=" + app }

// directClient talks to the adapter's port as the cluster's admin, without the aggregator in
// between. The adapter serves a self-signed certificate, so it is not verified.
func directClient(admin *rest.Config, port int) (*kubernetes.Clientset, error) {
	config := rest.CopyConfig(admin)
	config.Host = "https://127.0.0.1:" + strconv.Itoa(port)
	config.TLSClientConfig.Insecure = true
	config.TLSClientConfig.CAData, config.TLSClientConfig.CAFile = nil, ""
	config.QPS, config.Burst = -1, 0
	return kubernetes.NewForConfig(config)
}

// scrapeREST reads /metrics through a Kubernetes client (kube-apiserver's or the adapter's).
func scrapeREST(ctx context.Context, client kubernetes.Interface) (Families, error) {
	body, err := client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	return parseFamilies(strings.NewReader(string(body)))
}
