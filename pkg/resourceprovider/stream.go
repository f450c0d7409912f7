package resourceprovider

import (
	"io"
	"net/http"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/endpoints/handlers/negotiation"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	endpointsmetrics "k8s.io/apiserver/pkg/endpoints/metrics"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/metrics"
	"k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/promadapter/promadapter/pkg/explain"
)

// StreamPodLists serves PodMetrics lists (`kubectl top pods`, `kubectl get --raw`, the HPA
// controller's reads of a Deployment's pods) by encoding each item as it is built, and hands
// every other request to next.
//
// Why: the apiserver's handlers take a list whole. At 150,000 pods the built PodMetrics are
// about 200 MB and encoding them allocates as much again, so `kubectl top pods -A` took the
// adapter from 228 MiB at rest to a peak of 884 MiB. Streamed, a list costs its compact usage
// (about 15 MB at that size) and one item at a time.
//
// The bytes are the apiserver's: the media type its negotiation picks (protobuf, which
// kubectl top and the controllers ask for first, or JSON), encoded as its serializers encode
// a list; the same gzip rule (APIResponseCompression, asked for by Accept-Encoding, from
// 128 KiB); errors written by its error writer before any of the list; the request counted in
// its apiserver_request_* metrics under the same labels. Requests for anything else (a Table
// or other conversion, YAML, pretty JSON, a field selector, parameters this path does not
// know) go to next, the apiserver's own handlers, as does an explain request.
func StreamPodLists(next http.Handler, src Source) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, ok := genericapirequest.RequestInfoFrom(r.Context())
		if !ok || !isPodList(info) || explain.FromContext(r.Context()) != nil {
			next.ServeHTTP(w, r)
			return
		}
		format, ok := negotiateFormat(r)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		selector, ok := streamableQuery(r)
		p := src.Current()
		if !ok || p == nil {
			next.ServeHTTP(w, r)
			return
		}
		scope := endpointsmetrics.CleanScope(info)
		endpointsmetrics.InstrumentHandlerFunc("LIST", metrics.GroupName, v1beta1.SchemeGroupVersion.Version, "pods", "", scope, endpointsmetrics.APIServerComponent, false, "",
			func(w http.ResponseWriter, r *http.Request) { p.streamPodList(w, r, info.Namespace, selector, format) })(w, r)
	})
}

func isPodList(info *genericapirequest.RequestInfo) bool {
	return info.IsResourceRequest && info.Verb == "list" && info.APIGroup == metrics.GroupName &&
		info.APIVersion == v1beta1.SchemeGroupVersion.Version && info.Resource == "pods" && info.Subresource == "" && info.Name == ""
}

// listFormat is a media type a list is streamed in.
type listFormat struct {
	mediaType string
	write     func(io.Writer, *podList) error
}

var (
	jsonFormat     = listFormat{runtime.ContentTypeJSON, writeJSONPodList}
	protobufFormat = listFormat{runtime.ContentTypeProtobuf, writeProtobufPodList}
)

// negotiateFormat picks the media type as the apiserver does, and tells whether this path
// serves it. A media range with parameters may ask for a conversion (as=Table), which only
// the apiserver's handlers do, so any parameter sends the request there.
func negotiateFormat(r *http.Request) (listFormat, bool) {
	if strings.Contains(r.Header.Get("Accept"), ";") {
		return listFormat{}, false
	}
	opts, _, err := negotiation.NegotiateOutputMediaType(r, Codecs, negotiation.DefaultEndpointRestrictions)
	if err != nil {
		return listFormat{}, false
	}
	switch opts.Accepted.MediaType {
	case runtime.ContentTypeProtobuf:
		return protobufFormat, true
	case runtime.ContentTypeJSON:
		return jsonFormat, !opts.Pretty && !prettyPrinted(r)
	}
	return listFormat{}, false
}

// prettyPrinted is the apiserver's rule for indenting JSON: ?pretty, or a client that is a
// person's (curl, wget, a browser).
func prettyPrinted(r *http.Request) bool {
	if pretty, err := strconv.ParseBool(r.URL.Query().Get("pretty")); err == nil {
		return pretty
	}
	ua := r.UserAgent()
	return strings.HasPrefix(ua, "curl") || strings.HasPrefix(ua, "Wget") || strings.HasPrefix(ua, "Mozilla/5.0")
}

// streamableQuery reads the label selector of r's query, and tells whether this path serves r:
// every other parameter it knows changes nothing for PodMetrics (the storage has no versions
// and lists whole), and anything else (fieldSelector, resourceVersionMatch, pretty, watch,
// unknown) is left to the apiserver, which validates it.
func streamableQuery(r *http.Request) (labels.Selector, bool) {
	query := r.URL.Query()
	for name := range query {
		switch name {
		case "labelSelector", "limit", "resourceVersion", "timeout", "timeoutSeconds":
		default:
			return nil, false
		}
	}
	selector, err := labels.Parse(query.Get("labelSelector"))
	if err != nil {
		// The apiserver says what is wrong with it.
		return nil, false
	}
	return selector, true
}

func (p *Provider) streamPodList(w http.ResponseWriter, r *http.Request, namespace string, selector labels.Selector, format listFormat) {
	l, err := p.readPodList(r.Context(), namespace, selector, nil)
	if err != nil {
		responsewriters.ErrorNegotiated(err, Codecs, v1beta1.SchemeGroupVersion, w, r)
		return
	}
	streamMetrics.lists.Inc()
	out := newDeferredGzip(w, format.mediaType, acceptsGzip(r))
	err = format.write(out, l)
	if err == nil {
		err = out.Close()
	}
	if err != nil {
		// The status line is gone: end the answer broken rather than let it look complete.
		klog.V(2).InfoS("A streamed PodMetrics list ended early", "namespace", namespace, "err", err)
		panic(http.ErrAbortHandler)
	}
}
