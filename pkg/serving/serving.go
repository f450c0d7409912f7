// Package serving builds the parts that answer metric requests — the query planner, the config
// snapshot and its discovery loop, the object caches and the custom, external and resource
// metrics providers — from serve's options and a connection to the cluster. `promadapter
// serve` wires them into an API server; `promadapter explain` runs one request through the very
// same parts in-process. Neither builds them any other way.
package serving

import (
	"context"
	"errors"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/promadapter/promadapter/cmd/promadapter/app/options"
	"github.com/promadapter/promadapter/pkg/backend"
	"github.com/promadapter/promadapter/pkg/informeraccess"
	"github.com/promadapter/promadapter/pkg/memlimit"
	"github.com/promadapter/promadapter/pkg/planner"
	"github.com/promadapter/promadapter/pkg/provider"
	"github.com/promadapter/promadapter/pkg/resourceprovider"
	"github.com/promadapter/promadapter/pkg/snapshot"
)

// Cluster is how the parts reach the cluster. custom-metrics-apiserver's AdapterBase is one
// (serve: --lister-kubeconfig or the pod's in-cluster config); NewCluster makes one from a
// kubeconfig (the helper subcommands).
type Cluster interface {
	RESTMapper() (apimeta.RESTMapper, error)
	ClientConfig() (*rest.Config, error)
	Informers() (informers.SharedInformerFactory, error)
}

// Parts are what serve builds to answer requests. Custom, External and Pods are nil when their
// API is off (--enable-*-metrics, or a config without resourceRules).
type Parts struct {
	Mapper  apimeta.RESTMapper
	Planner *planner.Planner
	// Reloader keeps Holder's snapshot in step with the config file (Reloader.Run).
	Reloader *snapshot.Reloader
	Holder   *snapshot.Holder
	// Objects lists the objects of selector requests; Refusals says which of the cluster's
	// informers the kube-apiserver refuses (RBAC).
	Objects  *provider.InformerObjects
	Refusals *informeraccess.Refusals
	// Pods and Nodes are the informers metrics.k8s.io answers from, created but not started:
	// serve's apiserver starts its informer factory, and Start does for a process without one.
	Pods, Nodes cache.SharedIndexInformer
	Custom      *provider.Custom
	External    *provider.External

	informers informers.SharedInformerFactory
}

// Build builds the parts and starts discovery, which runs until ctx ends. The config comes
// first: a mistake in it is one clear line, before anything contacts the cluster.
func Build(ctx context.Context, o *options.Options, cluster Cluster) (*Parts, error) {
	reloader := &snapshot.Reloader{File: o.ConfigFile, Relist: o.MetricsRelistInterval, Probe: snapshot.ProbeBackends}
	loaded, err := reloader.Load()
	if err != nil {
		return nil, err
	}
	// After the config loaded, so that a broken config is the first line a person reads; before
	// the caches fill, which is when the heap grows most.
	applyMemoryLimit(o.MemoryLimitRatio)
	po, err := o.PrometheusOptions()
	if err != nil {
		return nil, err
	}
	p := &Parts{Reloader: reloader, Refusals: &informeraccess.Refusals{}}
	p.Planner = planner.New(planner.Options{
		CachePeriod: o.QueryCachePeriod, MaxCacheBytes: o.QueryCacheMaxBytes, MaxConcurrent: o.MaxConcurrentQueries,
		MaxSlotWait: o.PrometheusTimeout, ServeStaleFor: o.ServeStaleFor, ObjectPlans: planner.PlanMode(o.QueryPlan),
	})
	if p.Mapper, err = cluster.RESTMapper(); err != nil {
		return nil, fmt.Errorf("reading the cluster's API resources (is --lister-kubeconfig or the in-cluster config right?): %w", err)
	}
	builder := &snapshot.Builder{
		Defaults: backend.Defaults{Options: po}, Mapper: p.Mapper, Planner: p.Planner, MetricsMaxAge: o.MetricsMaxAge,
		Custom: o.EnableCustomMetrics, External: o.EnableExternalMetrics, Resources: o.EnableResourceMetrics,
	}
	if o.EnableCustomMetrics {
		restConfig, err := cluster.ClientConfig()
		if err != nil {
			return nil, err
		}
		meta, err := metadata.NewForConfig(restConfig)
		if err != nil {
			return nil, err
		}
		p.Objects = provider.NewInformerObjects(meta, p.Mapper, ctx.Done())
		p.Objects.Refusals = p.Refusals
	}
	reloader.Builder = builder
	if o.EnableResourceMetrics && loaded.Config.ResourceRules != nil {
		if err := p.podsAndNodes(cluster, builder); err != nil {
			return nil, err
		}
	}
	if err := reloader.Init(ctx, loaded); err != nil {
		return nil, err
	}
	p.Holder = reloader.Holder
	if o.EnableCustomMetrics {
		p.Custom = &provider.Custom{Source: p.Holder.Providers(), Planner: p.Planner, Mapper: p.Mapper, Objects: p.Objects}
	}
	if o.EnableExternalMetrics {
		var forward provider.ExternalForwarder // nil: no forwarding
		if fc, on := o.ExternalForwardConfig(); on {
			if forward, err = provider.NewForwarder(fc); err != nil {
				return nil, err
			}
		}
		p.External = &provider.External{Source: p.Holder.Providers(), Planner: p.Planner, Forward: forward}
	}
	return p, nil
}

// podsAndNodes creates the informers metrics.k8s.io answers from and hands their listers to
// the builder.
func (p *Parts) podsAndNodes(cluster Cluster, builder *snapshot.Builder) error {
	inf, err := cluster.Informers()
	if err != nil {
		return err
	}
	p.informers = inf
	p.Pods, p.Nodes = inf.Core().V1().Pods().Informer(), inf.Core().V1().Nodes().Informer()
	// Cache only what usage and selectors need: a compact record per pod, not a corev1.Pod.
	if err := p.Pods.SetTransform((&resourceprovider.PodTrimmer{}).Transform); err != nil {
		return err
	}
	if err := p.Nodes.SetTransform(resourceprovider.TrimNode); err != nil {
		return err
	}
	if err := errors.Join(p.Refusals.Track("pods", p.Pods), p.Refusals.Track("nodes", p.Nodes)); err != nil {
		return err
	}
	if p.Objects != nil {
		// Selector requests on pods read the same (trimmed) cache: one copy of every pod.
		p.Objects.Share(corev1.SchemeGroupVersion.WithResource("pods"), p.Pods)
	}
	builder.Pods, builder.Nodes = resourceprovider.NewPodLister(p.Pods.GetIndexer()), inf.Core().V1().Nodes().Lister()
	return nil
}

// applyMemoryLimit gives the Go runtime ratio of the container's memory limit (pkg/memlimit).
// An unreadable cgroup costs the soft limit, never the start: the adapter serves without it.
func applyMemoryLimit(ratio float64) {
	applied, err := memlimit.Apply(os.DirFS("/"), ratio)
	switch {
	case err != nil:
		klog.ErrorS(err, "Go memory limit not set: the container's memory limit could not be read; set GOMEMLIMIT, or --memory-limit-ratio=0 to skip reading it")
	case applied.Set:
		klog.InfoS("Go memory limit set from the container's", "limitBytes", applied.Bytes, "containerLimitBytes", applied.Container.Bytes, "from", applied.Container.File, "ratio", ratio)
	default:
		klog.V(2).InfoS("Go memory limit not set", "reason", applied.Reason)
	}
}
