// Command promadapter serves the Kubernetes metrics APIs (metrics.k8s.io,
// custom.metrics.k8s.io, external.metrics.k8s.io) from Prometheus.
package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"k8s.io/component-base/cli"

	"github.com/promadapter/promadapter/cmd/promadapter/app"
)

// defaultGCPercent is the garbage collector's target when GOGC is not set. Most of the
// adapter's live heap is long-lived caches (pods, nodes, discovered metrics), and Go's
// default of 100 lets the heap grow to twice that before collecting. 50 keeps the resident
// set about a quarter smaller at 10,000 pods for little CPU: requests allocate little besides
// their answers (measured in docs/benchmarks.md). Set GOGC (or GOMEMLIMIT) to override.
const defaultGCPercent = 50

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
	if err := cli.RunNoErrOutput(app.NewCommand()); err != nil {
		// One plain line per problem: no log decoration, no stack trace.
		fmt.Fprintf(os.Stderr, "promadapter: %v\n", err)
		os.Exit(1)
	}
}
