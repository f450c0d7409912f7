// Command demo brings up a local demo: a real etcd + kube-apiserver, Prometheus with the
// known-value fixture (a small synthetic cluster), and promadapter on its embedded default
// config registered as the metrics APIServices; then it shows what kubectl sees and waits.
//
//	go run ./test/cmd/demo -adapter bin/promadapter [-once]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

func main() {
	adapterBin := flag.String("adapter", "bin/promadapter", "promadapter binary")
	major := flag.String("prometheus", "3", "Prometheus major version to run: 2 or 3")
	dir := flag.String("dir", "", "working directory (default: a new temporary directory)")
	once := flag.Bool("once", false, "show the output and exit instead of waiting for Ctrl-C")
	flag.Parse()
	if err := run(*adapterBin, *major, *dir, *once); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(adapterBin, major, dir string, once bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if dir == "" {
		d, err := os.MkdirTemp("", "promadapter-demo-")
		if err != nil {
			return err
		}
		dir = d
	}
	bins, err := testbed.FindBins()
	if err != nil {
		return err
	}
	step := func(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

	step("starting etcd and kube-apiserver on 127.0.0.1")
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cluster, err := testbed.StartCluster(startCtx, testbed.ClusterOptions{Bins: bins, Dir: filepath.Join(dir, "cluster")})
	if err != nil {
		return err
	}
	defer cluster.Stop()

	spec := fixture.Spec{}
	step("creating the demo cluster's objects: %d nodes, %d pods in %d namespaces", len(spec.NodeList()), len(spec.PodList()), len(spec.NamespaceNames()))
	if err := spec.ApplyObjects(startCtx, cluster.Client); err != nil {
		return err
	}

	step("starting Prometheus %s.x with sample data (cAdvisor, node-exporter, kube-state-metrics, an app counter)", major)
	var om bytes.Buffer
	now := time.Now()
	if err := spec.WriteOpenMetrics(&om, now.Add(-30*time.Minute), now.Add(6*time.Hour), 15*time.Second); err != nil {
		return err
	}
	prom, err := testbed.StartPrometheus(startCtx, testbed.PrometheusOptions{Bins: bins, Major: major, Dir: filepath.Join(dir, "prometheus"), OpenMetrics: om.Bytes()})
	if err != nil {
		return err
	}
	defer prom.Stop()

	step("starting promadapter (embedded default config) and registering its APIServices")
	adapter, err := cluster.StartAdapter(startCtx, testbed.AdapterOptions{Bin: adapterBin, PrometheusURL: prom.URL, Dir: filepath.Join(dir, "adapter")})
	if err != nil {
		return err
	}
	defer adapter.Stop()

	show := func(args ...string) {
		fmt.Printf("\n$ kubectl %s\n", joinArgs(args))
		out, err := cluster.Kubectl(ctx, args...)
		fmt.Print(out)
		if err != nil {
			fmt.Println(err)
		}
	}
	show("get", "apiservices", "v1beta1.metrics.k8s.io", "v1beta1.custom.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io")
	show("top", "nodes")
	show("top", "pods", "-A")
	show("get", "--raw", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-0/pods/*/http_requests_per_second?labelSelector=app%3Dapp-0")
	show("get", "--raw", "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns-0/kube_deployment_spec_replicas")

	fmt.Printf(`
The demo is running. Point kubectl at it:

  export KUBECONFIG=%s
  kubectl top pods -A --containers
  kubectl get --raw /apis/custom.metrics.k8s.io/v1beta2 | head -c 600
  kubectl get --raw "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-1/services/app-1/http_requests_5xx_ratio"

Prometheus: %s   adapter log: %s
`, cluster.Kubeconfig, prom.URL, adapter.LogPath)
	if once {
		return nil
	}
	fmt.Println("Press Ctrl-C to stop and clean up.")
	<-ctx.Done()
	return nil
}

func joinArgs(args []string) string {
	out := ""
	for i, a := range args {
		if i > 0 {
			out += " "
		}
		if bytes.ContainsAny([]byte(a), "*?&") {
			a = "'" + a + "'"
		}
		out += a
	}
	return out
}
