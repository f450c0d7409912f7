// Command promadapter serves the Kubernetes metrics APIs (metrics.k8s.io,
// custom.metrics.k8s.io, external.metrics.k8s.io) from Prometheus.
package main

import (
	"os"

	"k8s.io/component-base/cli"

	"github.com/promadapter/promadapter/cmd/promadapter/app"
)

func main() {
	os.Exit(cli.Run(app.NewCommand()))
}
