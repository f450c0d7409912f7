// Package testbed starts and stops real components on loopback for end-to-end tests: etcd and
// kube-apiserver (with the aggregation layer on), kube-controller-manager, Prometheus 2.x and 3.x,
// and any other child process a test needs.
//
// The binaries come from test/tools/deps.sh, which builds them once into a cache outside the clone
// (see FindBins). Everything listens on 127.0.0.1 on ports chosen at run time, so tests can run
// side by side. Every child runs in its own process group and is killed with SIGKILL if the test
// binary dies (Pdeathsig), so nothing outlives the test even when it panics or times out.
//
// A typical test:
//
//	cluster, err := testbed.StartCluster(ctx, testbed.ClusterOptions{Dir: t.TempDir()})
//	if err != nil {
//		t.Fatal(err)
//	}
//	cluster.Cleanup(t)
//
// Start-up waits poll for readiness with a deadline; their errors name the component, what was
// expected, and the component's log file with its last lines.
package testbed
