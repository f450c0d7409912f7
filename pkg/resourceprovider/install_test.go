package resourceprovider

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/util/compatibility"
	"k8s.io/client-go/rest"
	openapicommon "k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/metrics/pkg/apis/metrics/v1beta1"
	generatedcore "sigs.k8s.io/custom-metrics-apiserver/pkg/generated/openapi/core"
)

// newTestServer builds a generic apiserver the way the adapter does (OpenAPI definitions of
// custom-metrics-apiserver's core package merged with ours) and installs p. It has no
// authentication or authorization: requests go straight to the handlers. With streamed, its
// handler chain has StreamPodLists in front of the handlers, as the adapter's does.
func newTestServer(t testing.TB, p *Provider, streamed ...bool) http.Handler {
	t.Helper()
	defs := func(ref openapicommon.ReferenceCallback) map[string]openapicommon.OpenAPIDefinition {
		all := generatedcore.GetOpenAPIDefinitions(ref)
		for k, v := range GetOpenAPIDefinitions(ref) {
			all[k] = v
		}
		return all
	}
	cfg := genericapiserver.NewRecommendedConfig(Codecs)
	cfg.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(defs, openapinamer.NewDefinitionNamer(Scheme))
	cfg.OpenAPIConfig.Info.Title, cfg.OpenAPIConfig.Info.Version = "test", "1"
	cfg.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(defs, openapinamer.NewDefinitionNamer(Scheme))
	cfg.OpenAPIV3Config.Info.Title, cfg.OpenAPIV3Config.Info.Version = "test", "1"
	cfg.EffectiveVersion = compatibility.DefaultBuildEffectiveVersion()
	cfg.ExternalAddress = "127.0.0.1:6443" // never listened on: requests go to the handler directly
	cfg.LoopbackClientConfig = &rest.Config{Host: "https://127.0.0.1:6443"}
	if len(streamed) > 0 && streamed[0] {
		cfg.BuildHandlerChainFunc = func(h http.Handler, c *genericapiserver.Config) http.Handler {
			return genericapiserver.DefaultBuildHandlerChain(StreamPodLists(h, p), c)
		}
	}
	srv, err := cfg.Complete().New("resourceprovider-test", genericapiserver.NewEmptyDelegate())
	if err != nil {
		t.Fatalf("building the server: %v", err)
	}
	if err := Install(srv, p); err != nil {
		t.Fatalf("Install: %v", err)
	}
	srv.PrepareRun()
	return srv.Handler
}

// get serves one request and returns the status code and body.
func get(t *testing.T, h http.Handler, path, accept string) (int, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, body
}

func TestInstalledAPIServesKubectlTopRequests(t *testing.T) {
	h := newTestServer(t, newTestProvider(t, clusterPrometheus(), clusterPods(), clusterNodes()))

	t.Run("discovery lists nodes and pods with their kinds and read verbs", func(t *testing.T) {
		code, body := get(t, h, "/apis/metrics.k8s.io/v1beta1", "")
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
		var list metav1.APIResourceList
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, r := range list.APIResources {
			got[r.Name] = r.Kind + " namespaced=" + map[bool]string{true: "true", false: "false"}[r.Namespaced] + " verbs=" + strings.Join(r.Verbs, ",") + " singular=" + r.SingularName
		}
		want := map[string]string{
			"nodes": "NodeMetrics namespaced=false verbs=get,list singular=node",
			"pods":  "PodMetrics namespaced=true verbs=get,list singular=pod",
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("resources:\n got %v\nwant %v", got, want)
		}
	})

	podCases := []struct {
		name, path string
		want       string // pod names and their usage, as "ns/name: container=cpu,memory …"
	}{
		{"kubectl top pods -n team-a", "/apis/metrics.k8s.io/v1beta1/namespaces/team-a/pods",
			"team-a/batch-1 worker=123456n,1k; team-a/web-1 app=125m,50Mi proxy=500u,123456789; team-a/web-2 app=2,1Gi"},
		{"kubectl top pods -A", "/apis/metrics.k8s.io/v1beta1/pods",
			"team-a/batch-1 worker=123456n,1k; team-a/web-1 app=125m,50Mi proxy=500u,123456789; team-a/web-2 app=2,1Gi; team-b/db-0 postgres=250m,256Mi"},
		{"kubectl top pods -l app=web --field-selector metadata.name=web-2", "/apis/metrics.k8s.io/v1beta1/namespaces/team-a/pods?labelSelector=app%3Dweb&fieldSelector=metadata.name%3Dweb-2",
			"team-a/web-2 app=2,1Gi"},
	}
	for _, tc := range podCases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, h, tc.path, "application/json")
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			var list v1beta1.PodMetricsList
			if err := json.Unmarshal(body, &list); err != nil {
				t.Fatal(err)
			}
			if list.Kind != "PodMetricsList" || list.APIVersion != "metrics.k8s.io/v1beta1" {
				t.Errorf("kind %q apiVersion %q", list.Kind, list.APIVersion)
			}
			var parts []string
			for _, pm := range list.Items {
				s := pm.Namespace + "/" + pm.Name
				for _, c := range pm.Containers {
					s += " " + c.Name + "=" + c.Usage.Cpu().String() + "," + c.Usage.Memory().String()
				}
				parts = append(parts, s)
			}
			if got := strings.Join(parts, "; "); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}

	t.Run("a pod's JSON carries Prometheus' timestamp and the window", func(t *testing.T) {
		code, body := get(t, h, "/apis/metrics.k8s.io/v1beta1/namespaces/team-b/pods/db-0", "application/json")
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
		for _, want := range []string{`"kind":"PodMetrics"`, `"timestamp":"2025-03-01T12:00:00Z"`, `"window":"5m0s"`, `"usage":{"cpu":"250m","memory":"256Mi"}`} {
			if !strings.Contains(string(body), want) {
				t.Errorf("body lacks %s:\n%s", want, body)
			}
		}
	})

	t.Run("kubectl top node node-a", func(t *testing.T) {
		code, body := get(t, h, "/apis/metrics.k8s.io/v1beta1/nodes/node-a", "application/json")
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
		var nm v1beta1.NodeMetrics
		if err := json.Unmarshal(body, &nm); err != nil {
			t.Fatal(err)
		}
		if got := nm.Name + " " + nm.Usage.Cpu().String() + " " + nm.Usage.Memory().String() + " " + nm.Window.Duration.String(); got != "node-a 1500m 4Gi 5m0s" {
			t.Errorf("got %s", got)
		}
	})

	errorCases := []struct {
		name, path  string
		wantCode    int
		wantMessage string
	}{
		{"a pod missing a container's memory is 404 with the reason", "/apis/metrics.k8s.io/v1beta1/namespaces/team-a/pods/half-1", http.StatusNotFound,
			`pods.metrics.k8s.io \"half-1\" not found: no memory usage for container \"sidecar\"`},
		{"a field selector on another field is rejected by the apiserver", "/apis/metrics.k8s.io/v1beta1/namespaces/team-a/pods?fieldSelector=spec.nodeName%3Dnode-a", http.StatusBadRequest,
			`\"spec.nodeName\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"`},
	}
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, h, tc.path, "application/json")
			if code != tc.wantCode || !strings.Contains(string(body), tc.wantMessage) {
				t.Errorf("got %d %s\nwant %d with %s", code, body, tc.wantCode, tc.wantMessage)
			}
		})
	}

	t.Run("kubectl get podmetrics shows name, cpu, memory and window", func(t *testing.T) {
		code, body := get(t, h, "/apis/metrics.k8s.io/v1beta1/namespaces/team-a/pods", "application/json;as=Table;v=v1;g=meta.k8s.io")
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
		var table metav1.Table
		if err := json.Unmarshal(body, &table); err != nil {
			t.Fatal(err)
		}
		var columns []string
		for _, c := range table.ColumnDefinitions {
			columns = append(columns, c.Name)
		}
		var rows []string
		for _, r := range table.Rows {
			cells := make([]string, len(r.Cells))
			for i, c := range r.Cells {
				cells[i], _ = c.(string)
			}
			rows = append(rows, strings.Join(cells, " "))
		}
		wantColumns := []string{"Name", "CPU", "Memory", "Window", "Timestamp"}
		// web-1: 125m + 0.5m rounds up to 126m; 50Mi + 123456789 bytes is 167Mi and a bit.
		wantRows := []string{
			"batch-1 1m 0Mi 5m 2025-03-01T11:59:45Z",
			"web-1 126m 167Mi 5m 2025-03-01T11:59:45Z",
			"web-2 2000m 1024Mi 5m 2025-03-01T11:59:45Z",
		}
		if !reflect.DeepEqual(columns, wantColumns) || !reflect.DeepEqual(rows, wantRows) {
			t.Errorf("table:\n got %q %q\nwant %q %q", columns, rows, wantColumns, wantRows)
		}
	})

	t.Run("kubectl get nodemetrics shows name, cpu, memory and window", func(t *testing.T) {
		code, body := get(t, h, "/apis/metrics.k8s.io/v1beta1/nodes", "application/json;as=Table;v=v1;g=meta.k8s.io")
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
		var table metav1.Table
		if err := json.Unmarshal(body, &table); err != nil {
			t.Fatal(err)
		}
		var rows []string
		for _, r := range table.Rows {
			rows = append(rows, strings.Join([]string{r.Cells[0].(string), r.Cells[1].(string), r.Cells[2].(string), r.Cells[3].(string)}, " "))
		}
		if want := []string{"node-a 1500m 4096Mi 5m", "node-b 750m 2048Mi 5m"}; !reflect.DeepEqual(rows, want) {
			t.Errorf("rows: got %q, want %q", rows, want)
		}
	})

	t.Run("the OpenAPI document describes the served kinds", func(t *testing.T) {
		code, body := get(t, h, "/openapi/v2", "application/json")
		if code != http.StatusOK {
			t.Fatalf("status %d: %.500s", code, body)
		}
		var doc struct {
			Definitions map[string]struct {
				GVK []map[string]string `json:"x-kubernetes-group-version-kind"`
			} `json:"definitions"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		for _, kind := range []string{"NodeMetrics", "NodeMetricsList", "PodMetrics", "PodMetricsList"} {
			def, ok := doc.Definitions["io.k8s.metrics.pkg.apis.metrics.v1beta1."+kind]
			if !ok {
				t.Errorf("no definition for %s", kind)
				continue
			}
			want := []map[string]string{{"group": "metrics.k8s.io", "version": "v1beta1", "kind": kind}}
			if !reflect.DeepEqual(def.GVK, want) {
				t.Errorf("%s: group-version-kind %v, want %v", kind, def.GVK, want)
			}
		}
	})
}

func TestOpenAPIDefinitionsAreTheServedTypesAndResolve(t *testing.T) {
	ref := func(name string) spec.Ref { return spec.MustCreateRef("#/definitions/" + name) }
	mine := GetOpenAPIDefinitions(ref)
	var names []string
	for name := range mine {
		names = append(names, name)
	}
	sort.Strings(names)
	want := []string{
		"io.k8s.metrics.pkg.apis.metrics.v1beta1.ContainerMetrics",
		"io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics",
		"io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetricsList",
		"io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetrics",
		"io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetricsList",
	}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("definitions:\n got %q\nwant %q", names, want)
	}
	core := generatedcore.GetOpenAPIDefinitions(ref)
	for name, def := range mine {
		for _, dep := range def.Dependencies {
			_, inMine := mine[dep]
			_, inCore := core[dep]
			if !inMine && !inCore {
				t.Errorf("%s depends on %s, which neither these nor the core definitions define", name, dep)
			}
		}
	}
}
