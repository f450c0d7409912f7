package explain

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/promadapter/promadapter/pkg/explain"
)

// runServer asks the running adapter for each explanation, through kube-apiserver with the
// kubeconfig's identity, as `kubectl get --raw PATH?promadapter-explain=true` would.
func (o *Options) runServer(ctx context.Context, targets []Target) ([]explain.Trace, error) {
	cfg := rest.CopyConfig(o.restConfig)
	cfg.APIPath, cfg.GroupVersion = "/", &schema.GroupVersion{}
	// Decodes the Status of a refusal, so its message (who may not do what) reaches the user.
	cfg.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	client, err := rest.UnversionedRESTClientFor(cfg)
	if err != nil {
		return nil, err
	}
	traces := make([]explain.Trace, 0, len(targets))
	for _, t := range targets {
		trace, err := askServer(ctx, client, t.Path)
		if err != nil {
			return nil, err
		}
		trace.Request.Title = t.Title
		traces = append(traces, trace)
	}
	return traces, nil
}

// askServer GETs path with the explain parameter and decodes the explanation.
func askServer(ctx context.Context, client rest.Interface, path string) (explain.Trace, error) {
	asked, err := explain.WithParameter(path)
	if err != nil {
		return explain.Trace{}, fmt.Errorf("%q is not an API path: %w", path, err)
	}
	u, _ := url.Parse(asked) // WithParameter wrote it
	req := client.Get().AbsPath(u.Path)
	for k, vs := range u.Query() {
		for _, v := range vs {
			req = req.Param(k, v)
		}
	}
	res := req.Do(ctx)
	body, _ := res.Raw()
	if err := res.Error(); err != nil { // decodes the Status of a refusal, unlike Raw and DoRaw
		if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
			return explain.Trace{}, fmt.Errorf("the cluster refuses you the request itself, so its explanation too: %w", err)
		}
		return explain.Trace{}, fmt.Errorf("asking the adapter to explain %s (through kube-apiserver; is its APIService available? "+
			"`kubectl get apiservices`; or explain in-process with --prometheus-url): %w", path, err)
	}
	var t explain.Trace
	if err := json.Unmarshal(body, &t); err != nil || t.Request.Path == "" {
		return explain.Trace{}, fmt.Errorf("the server answered %s with something other than an explanation (an adapter older than explain, or another metrics server behind the APIService?): %.200s", path, body)
	}
	return t, nil
}
