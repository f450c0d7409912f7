package serving

import (
	"context"
	"errors"
	"fmt"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/dynamicmapper"
)

// Start starts the informers of metrics.k8s.io and waits, at most until ctx ends, for them to
// sync and for the first discovery pass to end: what serve's /readyz waits for. It is for a
// process that serves no API (explain); serve's apiserver starts its informer factory itself.
func (p *Parts) Start(ctx context.Context) error {
	if p.informers != nil {
		p.informers.Start(ctx.Done())
		err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
			if err := errors.Join(p.Refusals.Err("pods"), p.Refusals.Err("nodes")); err != nil {
				return false, err
			}
			return p.Pods.HasSynced() && p.Nodes.HasSynced(), nil
		})
		if err != nil {
			return fmt.Errorf("waiting for the pod and node caches: %w", err)
		}
	}
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
		return p.Holder.Ready(), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the first discovery pass: %w", err)
	}
	return nil
}

// kubeconfigCluster is a Cluster reached with a client config of one's own.
type kubeconfigCluster struct {
	config *rest.Config
	mapper apimeta.RESTMapper
	inf    informers.SharedInformerFactory
}

// NewCluster returns the cluster config reaches, with the same kind of RESTMapper serve uses
// (custom-metrics-apiserver's, from the discovery API; read once, not refreshed).
func NewCluster(config *rest.Config) Cluster { return &kubeconfigCluster{config: config} }

func (c *kubeconfigCluster) ClientConfig() (*rest.Config, error) { return c.config, nil }

func (c *kubeconfigCluster) RESTMapper() (apimeta.RESTMapper, error) {
	if c.mapper == nil {
		dc, err := discovery.NewDiscoveryClientForConfig(c.config)
		if err != nil {
			return nil, err
		}
		m, err := dynamicmapper.NewRESTMapper(dc, time.Hour)
		if err != nil {
			return nil, err
		}
		c.mapper = m
	}
	return c.mapper, nil
}

func (c *kubeconfigCluster) Informers() (informers.SharedInformerFactory, error) {
	if c.inf == nil {
		client, err := kubernetes.NewForConfig(c.config)
		if err != nil {
			return nil, err
		}
		c.inf = informers.NewSharedInformerFactory(client, 0)
	}
	return c.inf, nil
}
