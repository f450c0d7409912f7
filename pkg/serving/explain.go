package serving

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	cmint "k8s.io/metrics/pkg/apis/custom_metrics"
	cmregistry "sigs.k8s.io/custom-metrics-apiserver/pkg/registry/custom_metrics"
	emregistry "sigs.k8s.io/custom-metrics-apiserver/pkg/registry/external_metrics"

	"github.com/promadapter/promadapter/pkg/explain"
	"github.com/promadapter/promadapter/pkg/resourceprovider"
)

// requestInfo parses API paths as serve's apiserver does.
var requestInfo = &genericapirequest.RequestInfoFactory{APIPrefixes: sets.NewString("apis", "api"), GrouplessAPIPrefixes: sets.NewString("api")}

// Explain runs the GET of path (an API path with its query, as a client sends it) through the
// parts with a Recorder, and returns its trace: through custom-metrics-apiserver's REST storage
// over the custom and external providers, or metrics.k8s.io's storage, as serve's apiserver
// would once it has authorized the request. title says who asks, for the trace.
func (p *Parts) Explain(ctx context.Context, path, title string) (explain.Trace, error) {
	u, err := url.Parse(path)
	if err != nil {
		return explain.Trace{}, fmt.Errorf("%q is not an API path: %w", path, err)
	}
	info, err := requestInfo.NewRequestInfo(&http.Request{Method: http.MethodGet, URL: u})
	if err != nil || !info.IsResourceRequest {
		return explain.Trace{}, fmt.Errorf("%q is not a request for a metric: ask for e.g. /apis/custom.metrics.k8s.io/v1beta2/namespaces/NS/pods/*/METRIC", path)
	}
	rec := explain.NewRecorder(explain.Request{Path: u.RequestURI(), Group: info.APIGroup, Title: title})
	rctx, release := explain.NewContext(ctx, rec)
	defer release()
	t := rec.Finish(statusOf(p.serve(rctx, info, u.Query())))
	p.Annotate(ctx, &t)
	t.Conclude()
	return t, nil
}

// serve answers one parsed request as serve's handlers would.
func (p *Parts) serve(ctx context.Context, info *genericapirequest.RequestInfo, query url.Values) error {
	labelSel, err := labels.Parse(query.Get("labelSelector"))
	if err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("labelSelector: %v", err))
	}
	fieldSel, err := fields.ParseSelector(query.Get("fieldSelector"))
	if err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("fieldSelector: %v", err))
	}
	gr := schema.GroupResource{Group: info.APIGroup, Resource: info.Resource}
	notServed := func() error {
		return apierrors.NewNotFound(gr, fmt.Sprintf("%s is not served by this configuration", info.APIGroup))
	}
	switch info.APIGroup {
	case "metrics.k8s.io":
		if p.Pods == nil || p.Holder.Load().Resources == nil {
			return notServed()
		}
		storage, ok := resourceprovider.Storage(p.Holder.Resources())[info.Resource]
		if !ok || info.Subresource != "" {
			return apierrors.NewNotFound(gr, info.Name)
		}
		ctx = genericapirequest.WithNamespace(ctx, info.Namespace)
		if info.Name != "" {
			_, err = storage.(rest.Getter).Get(ctx, info.Name, &metav1.GetOptions{})
			return err
		}
		_, err = storage.(rest.Lister).List(ctx, &metainternalversion.ListOptions{LabelSelector: labelSel, FieldSelector: fieldSel})
		return err
	case "custom.metrics.k8s.io":
		if p.Custom == nil {
			return notServed()
		}
		cm := *info
		if cm.Namespace != "" && cm.Resource == "metrics" {
			// custom-metrics-apiserver's route for metrics of namespaces: namespaces/NS/metrics/M.
			cm.Subresource, cm.Name, cm.Resource, cm.Namespace = cm.Name, cm.Namespace, "namespaces", ""
		}
		if cm.Name == "" || cm.Subresource == "" {
			return apierrors.NewBadRequest("invalid request path: ask for /apis/custom.metrics.k8s.io/v1beta2/[namespaces/NS/]RESOURCE/NAME|*/METRIC")
		}
		ctx = genericapirequest.WithRequestInfo(genericapirequest.WithNamespace(ctx, cm.Namespace), &cm)
		// The handler turns the object name of the path into a field selector, as for a watch.
		opts := &metainternalversion.ListOptions{LabelSelector: labelSel, FieldSelector: fields.OneTermEqualSelector("metadata.name", cm.Name)}
		_, err = cmregistry.NewREST(p.Custom).List(ctx, opts, &cmint.MetricListOptions{
			LabelSelector: query.Get("labelSelector"), MetricLabelSelector: query.Get("metricLabelSelector"),
		})
		return err
	case "external.metrics.k8s.io":
		if p.External == nil {
			return notServed()
		}
		ctx = genericapirequest.WithRequestInfo(genericapirequest.WithNamespace(ctx, info.Namespace), info)
		_, err = emregistry.NewREST(p.External).List(ctx, &metainternalversion.ListOptions{LabelSelector: labelSel})
		return err
	}
	return apierrors.NewNotFound(gr, fmt.Sprintf("API group %q is not one promadapter serves (metrics.k8s.io, custom.metrics.k8s.io, external.metrics.k8s.io)", info.APIGroup))
}

// statusOf is the API's answer to an error, as the apiserver writes it.
func statusOf(err error) explain.Status {
	if err == nil {
		return explain.Status{Code: http.StatusOK}
	}
	status := apierrors.APIStatus(apierrors.NewInternalError(err))
	var s apierrors.APIStatus
	if errors.As(err, &s) {
		status = s
	}
	st := status.Status()
	return explain.Status{Code: int(st.Code), Reason: string(st.Reason), Message: strings.TrimSpace(st.Message)}
}
