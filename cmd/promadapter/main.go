// Command promadapter serves the Kubernetes metrics APIs (metrics.k8s.io,
// custom.metrics.k8s.io, external.metrics.k8s.io) from Prometheus.
package main

import (
	"fmt"
	"os"

	"k8s.io/component-base/cli"

	"github.com/promadapter/promadapter/cmd/promadapter/app"
)

func main() {
	if err := cli.RunNoErrOutput(app.NewCommand()); err != nil {
		// One plain line per problem: no log decoration, no stack trace.
		fmt.Fprintf(os.Stderr, "promadapter: %v\n", err)
		os.Exit(1)
	}
}
