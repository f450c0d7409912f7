package app

import (
	"context"
	"fmt"

	"k8s.io/klog/v2"

	"github.com/promadapter/promadapter/cmd/promadapter/app/options"
	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/pkg/promclient"
)

// Run wires the parts and serves until ctx ends. It holds no logic of its own.
func Run(ctx context.Context, o *options.Options) error {
	cfg, err := config.Load(o.ConfigFile)
	if err != nil {
		return err
	}
	po, err := o.PrometheusOptions()
	if err != nil {
		return err
	}
	backend, err := promclient.New(po)
	if err != nil {
		return err
	}
	klog.InfoS("starting promadapter", "config", cfg.Source, "prometheus", backend.URL())
	srv, err := o.Adapter.Server()
	if err != nil {
		return fmt.Errorf("building the API server: %w", err)
	}
	return srv.GenericAPIServer.PrepareRun().RunWithContext(ctx)
}
