package app

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/metadata"
	"k8s.io/klog/v2"
	openapicommon "k8s.io/kube-openapi/pkg/common"
	cmapiserver "sigs.k8s.io/custom-metrics-apiserver/pkg/apiserver"
	generatedcore "sigs.k8s.io/custom-metrics-apiserver/pkg/generated/openapi/core"
	generatedcustom "sigs.k8s.io/custom-metrics-apiserver/pkg/generated/openapi/custommetrics"
	generatedexternal "sigs.k8s.io/custom-metrics-apiserver/pkg/generated/openapi/externalmetrics"

	"github.com/promadapter/promadapter/cmd/promadapter/app/options"
	"github.com/promadapter/promadapter/pkg/backend"
	"github.com/promadapter/promadapter/pkg/informeraccess"
	"github.com/promadapter/promadapter/pkg/planner"
	"github.com/promadapter/promadapter/pkg/provider"
	"github.com/promadapter/promadapter/pkg/resourceprovider"
	"github.com/promadapter/promadapter/pkg/snapshot"
)

// Run wires the parts and serves until ctx ends. It holds no logic of its own: it loads the
// config, builds the backend and planner, compiles rules against the cluster's RESTMapper,
// installs the three API groups, starts discovery and serves.
func Run(ctx context.Context, o *options.Options) error {
	// The config first: a mistake in it is one clear line, before anything contacts the cluster.
	reloader := &snapshot.Reloader{File: o.ConfigFile, Relist: o.MetricsRelistInterval, Probe: snapshot.ProbeBackends}
	loaded, err := reloader.Load()
	if err != nil {
		return err
	}
	po, err := o.PrometheusOptions()
	if err != nil {
		return err
	}
	plan := planner.New(planner.Options{
		CachePeriod: o.QueryCachePeriod, MaxCacheBytes: o.QueryCacheMaxBytes, MaxConcurrent: o.MaxConcurrentQueries,
		MaxSlotWait: o.PrometheusTimeout, ServeStaleFor: o.ServeStaleFor,
	})

	o.Adapter.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(openAPIDefinitions(), openapi.NewDefinitionNamer(cmapiserver.Scheme, resourceprovider.Scheme))
	o.Adapter.OpenAPIConfig.Info.Title, o.Adapter.OpenAPIConfig.Info.Version = "promadapter", "1.0.0"
	o.Adapter.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(openAPIDefinitions(), openapi.NewDefinitionNamer(cmapiserver.Scheme, resourceprovider.Scheme))
	o.Adapter.OpenAPIV3Config.Info.Title, o.Adapter.OpenAPIV3Config.Info.Version = "promadapter", "1.0.0"

	mapper, err := o.Adapter.RESTMapper()
	if err != nil {
		return fmt.Errorf("reading the cluster's API resources (is --lister-kubeconfig or the in-cluster config right?): %w", err)
	}
	builder := &snapshot.Builder{
		Defaults: backend.Defaults{Options: po}, Mapper: mapper, Planner: plan, MetricsMaxAge: o.MetricsMaxAge,
		Custom: o.EnableCustomMetrics, External: o.EnableExternalMetrics, Resources: o.EnableResourceMetrics,
	}
	var objects *provider.InformerObjects
	refusals := &informeraccess.Refusals{}
	if o.EnableCustomMetrics {
		restConfig, err := o.Adapter.ClientConfig()
		if err != nil {
			return err
		}
		meta, err := metadata.NewForConfig(restConfig)
		if err != nil {
			return err
		}
		objects = provider.NewInformerObjects(meta, mapper, ctx.Done())
		objects.Refusals = refusals
	}
	reloader.Builder = builder
	var readyChecks []healthz.HealthChecker
	if o.EnableResourceMetrics && loaded.Config.ResourceRules != nil {
		inf, err := o.Adapter.Informers()
		if err != nil {
			return err
		}
		pods, nodes := inf.Core().V1().Pods().Informer(), inf.Core().V1().Nodes().Informer()
		// Cache only what usage and selectors need: a compact record per pod, not a corev1.Pod.
		if err := pods.SetTransform((&resourceprovider.PodTrimmer{}).Transform); err != nil {
			return err
		}
		if err := nodes.SetTransform(resourceprovider.TrimNode); err != nil {
			return err
		}
		if err := errors.Join(refusals.Track("pods", pods), refusals.Track("nodes", nodes)); err != nil {
			return err
		}
		if objects != nil {
			// Selector requests on pods read the same (trimmed) cache: one copy of every pod.
			objects.Share(corev1.SchemeGroupVersion.WithResource("pods"), pods)
		}
		readyChecks = append(readyChecks, cacheSyncCheck("promadapter-pod-node-cache", "pod and node caches", pods.HasSynced, nodes.HasSynced),
			accessCheck(refusals, "pods", "nodes"))
		builder.Pods, builder.Nodes = resourceprovider.NewPodLister(pods.GetIndexer()), inf.Core().V1().Nodes().Lister()
	}
	if err := reloader.Init(ctx, loaded); err != nil {
		return err
	}
	current := reloader.Holder
	if o.EnableCustomMetrics {
		o.Adapter.WithCustomMetrics(&provider.Custom{Source: current.Providers(), Planner: plan, Mapper: mapper, Objects: objects})
	}
	if o.EnableExternalMetrics {
		var forward provider.ExternalForwarder // nil: no forwarding
		if fc, on := o.ExternalForwardConfig(); on {
			if forward, err = provider.NewForwarder(fc); err != nil {
				return err
			}
		}
		o.Adapter.WithExternalMetrics(&provider.External{Source: current.Providers(), Planner: plan, Forward: forward})
	}

	serverConfig, err := o.Adapter.Config() // built once; Server() below uses it
	if err != nil {
		return err
	}
	serverConfig.GenericConfig.BuildHandlerChainFunc = func(h http.Handler, c *genericapiserver.Config) http.Handler {
		return genericapiserver.DefaultBuildHandlerChain(provider.MetricSelectorGuard(h), c)
	}
	first := current.Load()
	for _, w := range first.Config.Warnings {
		klog.InfoS("Config warning", "warning", w.String())
	}

	srv, err := o.Adapter.Server()
	if err != nil {
		return fmt.Errorf("building the API server: %w", err)
	}
	if first.Resources != nil {
		if err := resourceprovider.Install(srv.GenericAPIServer, current.Resources()); err != nil {
			return fmt.Errorf("installing metrics.k8s.io: %w", err)
		}
	}
	// Health semantics: see health.go.
	requestHeader := serverConfig.GenericConfig.Authentication.RequestHeaderConfig
	readyChecks = append(readyChecks, discoveryReadyCheck(current.Ready), authenticationCheck(requestHeader))
	if ss := srv.GenericAPIServer.SecureServingInfo; ss != nil && ss.Listener != nil {
		readyChecks = append(readyChecks, servingCACheck(loopbackAddr(ss.Listener.Addr()), requestHeader))
	}
	if err := srv.GenericAPIServer.AddReadyzChecks(readyChecks...); err != nil {
		return err
	}
	if err := srv.GenericAPIServer.AddLivezChecks(0, discoveryLiveCheck(current.Stalled,
		discoveryMaxQuiet(o.MetricsRelistInterval, o.PrometheusTimeout))); err != nil {
		return err
	}

	klog.InfoS("starting promadapter", "config", first.Config.Source, "backends", first.Backends.Names(),
		"customRules", len(first.Custom), "externalRules", len(first.External), "resourceMetrics", first.Resources != nil)
	snapshot.ProbeBackends(ctx, first)
	go func() {
		if err := reloader.Run(ctx); err != nil {
			klog.ErrorS(err, "config hot reload is off; restart to load config changes")
		}
	}()
	return srv.GenericAPIServer.PrepareRun().RunWithContext(ctx)
}

// openAPIDefinitions are the schemas of the served types and of what they refer to. The
// generated sets also hold every Kubernetes core type (a few thousand schemas that the
// apiserver would keep in memory for the process lifetime); only those reachable from the
// served groups and apimachinery's own types are kept.
func openAPIDefinitions() openapicommon.GetOpenAPIDefinitions {
	return func(ref openapicommon.ReferenceCallback) map[string]openapicommon.OpenAPIDefinition {
		return reachableDefinitions(allOpenAPIDefinitions(ref), func(name string) bool { return !isKubernetesAPIType(name) })
	}
}

// allOpenAPIDefinitions are the generated definitions of the served groups, unpruned.
func allOpenAPIDefinitions(ref openapicommon.ReferenceCallback) map[string]openapicommon.OpenAPIDefinition {
	all := map[string]openapicommon.OpenAPIDefinition{}
	for _, g := range []openapicommon.GetOpenAPIDefinitions{
		generatedcore.GetOpenAPIDefinitions, generatedcustom.GetOpenAPIDefinitions,
		generatedexternal.GetOpenAPIDefinitions, resourceprovider.GetOpenAPIDefinitions,
	} {
		maps.Copy(all, g(ref))
	}
	return all
}

// isKubernetesAPIType reports whether a definition is a type of the k8s.io/api module (core,
// apps, ...), named by its Go package or by its OpenAPI model name.
func isKubernetesAPIType(name string) bool {
	return strings.HasPrefix(name, "k8s.io/api/") || strings.HasPrefix(name, "io.k8s.api.")
}

// reachableDefinitions returns the definitions whose names satisfy root, and those their
// dependencies reach.
func reachableDefinitions(all map[string]openapicommon.OpenAPIDefinition, root func(name string) bool) map[string]openapicommon.OpenAPIDefinition {
	kept := map[string]openapicommon.OpenAPIDefinition{}
	var visit func(name string)
	visit = func(name string) {
		if _, done := kept[name]; done {
			return
		}
		def, ok := all[name]
		if !ok {
			return // the builder reports a missing definition by name
		}
		kept[name] = def
		for _, dep := range def.Dependencies {
			visit(dep)
		}
	}
	for name := range all {
		if root(name) {
			visit(name)
		}
	}
	return kept
}
