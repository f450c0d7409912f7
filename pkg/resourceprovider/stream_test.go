package resourceprovider

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/component-base/metrics/testutil"
	"k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/promadapter/promadapter/pkg/explain"
)

// streamServer is StreamPodLists in front of a handler that only says it was reached, with
// the request info the apiserver's chain would have set.
func streamServer(p *Provider) http.Handler {
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	infos := &genericapirequest.RequestInfoFactory{APIPrefixes: sets.NewString("apis", "api"), GrouplessAPIPrefixes: sets.NewString("api")}
	stream := StreamPodLists(next, p)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, err := infos.NewRequestInfo(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		stream.ServeHTTP(w, r.WithContext(genericapirequest.WithRequestInfo(r.Context(), info)))
	})
}

// apiserverBytes is the answer the apiserver's own handler would write for list in mediaType:
// the internal list converted and encoded by the serializer the group is installed with.
func apiserverBytes(t *testing.T, list runtime.Object, mediaType string) []byte {
	t.Helper()
	info, ok := runtime.SerializerInfoForMediaType(Codecs.SupportedMediaTypes(), mediaType)
	if !ok {
		t.Fatalf("no serializer for %s", mediaType)
	}
	out, err := runtime.Encode(Codecs.EncoderForVersion(info.Serializer, v1beta1.SchemeGroupVersion), list)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func getThrough(t testing.TB, h http.Handler, path string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestStreamedPodListsAreTheApiserversBytes(t *testing.T) {
	for _, client := range []struct {
		name, mediaType string
		header          http.Header
	}{
		// kubectl top and the HPA controller ask for protobuf first.
		{"kubectl top (protobuf)", runtime.ContentTypeProtobuf, http.Header{"Accept": {"application/vnd.kubernetes.protobuf, */*"}, "User-Agent": {"kubectl/v1.32.4 (linux/amd64)"}}},
		{"kubectl get --raw (JSON)", runtime.ContentTypeJSON, http.Header{"Accept": {"application/json, */*"}, "User-Agent": {"kubectl/v1.32.4 (linux/amd64)"}}},
		{"no Accept (JSON)", runtime.ContentTypeJSON, nil},
	} {
		for _, tc := range []struct {
			name, path, namespace string
			selector              labels.Selector
			items                 int
		}{
			{"all namespaces", "/apis/metrics.k8s.io/v1beta1/pods", "", nil, 4},
			{"one namespace, with a pod left out (half-1) and one not running", "/apis/metrics.k8s.io/v1beta1/namespaces/team-a/pods", "team-a", nil, 3},
			{"a label selector", "/apis/metrics.k8s.io/v1beta1/pods?labelSelector=app%3Dweb", "", labels.SelectorFromSet(labels.Set{"app": "web"}), 2},
			{"a namespace without pods", "/apis/metrics.k8s.io/v1beta1/namespaces/nobody/pods", "nobody", nil, 0},
		} {
			t.Run(client.name+"/"+tc.name, func(t *testing.T) {
				p := newTestProvider(t, clusterPrometheus(), clusterPods(), nil)
				want, err := p.listPodMetrics(context.Background(), tc.namespace, tc.selector, nil)
				if err != nil {
					t.Fatal(err)
				}
				if len(want.Items) != tc.items {
					t.Fatalf("the built list has %d items, want %d", len(want.Items), tc.items)
				}
				w := getThrough(t, streamServer(p), tc.path, client.header)
				if w.Code != http.StatusOK || w.Header().Get("Content-Type") != client.mediaType {
					t.Fatalf("status %d, Content-Type %q, want 200 %s; body: %q", w.Code, w.Header().Get("Content-Type"), client.mediaType, w.Body)
				}
				if got, want := w.Body.Bytes(), apiserverBytes(t, want, client.mediaType); !bytes.Equal(got, want) {
					t.Errorf("streamed:\n%q\napiserver's:\n%q", got, want)
				}
			})
		}
	}
}

// A list of all namespaces from shardMinPods pods is read in shards; streamed, it is still
// the apiserver's bytes, and gzipped as the apiserver gzips (above 128 KiB).
func TestStreamedShardedListIsGzippedAndEqualsTheBuiltOne(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var pods []*corev1.Pod
	var cpu, memory model.Vector
	for n := range 12 {
		ns := fmt.Sprintf("ns-%02d", n)
		for i := range 500 {
			name := fmt.Sprintf("app-%d", i)
			pods = append(pods, pod(ns, name, corev1.PodRunning, map[string]string{"app": "a", "shard": ns}, "main"))
			cpu = append(cpu, containerSample(ns, name, "main", float64(i)/1000, now))
			memory = append(memory, containerSample(ns, name, "main", float64(i*mebibyte), now))
		}
	}
	prom := &selectingPrometheus{cpu: cpu, memory: memory}
	p := newTestProvider(t, prom, pods, nil)
	want, err := p.listPodMetrics(context.Background(), "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Protobuf holds the items encoded up to encodedItemsMaxBytes and builds the rest twice:
	// all held, the rest from the middle of a shard, and none held.
	for _, held := range []int{encodedItemsMaxBytes, 300_000, 0} {
		for _, mediaType := range []string{runtime.ContentTypeJSON, runtime.ContentTypeProtobuf} {
			t.Run(fmt.Sprintf("%s/%d bytes held", mediaType, held), func(t *testing.T) {
				defer func(was int) { encodedItemsMaxBytes = was }(encodedItemsMaxBytes)
				encodedItemsMaxBytes = held
				w := getThrough(t, streamServer(p), "/apis/metrics.k8s.io/v1beta1/pods", http.Header{"Accept": {mediaType}, "Accept-Encoding": {"gzip"}})
				if w.Code != http.StatusOK || w.Header().Get("Content-Encoding") != "gzip" {
					t.Fatalf("status %d, Content-Encoding %q, want 200 gzip", w.Code, w.Header().Get("Content-Encoding"))
				}
				zr, err := gzip.NewReader(w.Body)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(zr)
				if err != nil {
					t.Fatal(err)
				}
				if len(want.Items) != 6000 || !bytes.Equal(got, apiserverBytes(t, want, mediaType)) {
					t.Errorf("the streamed list (%d bytes) differs from the built one (%d items)", len(got), len(want.Items))
				}
			})
		}
	}
	// A small answer is not compressed, as the apiserver does not compress it.
	small := getThrough(t, streamServer(p), "/apis/metrics.k8s.io/v1beta1/namespaces/ns-01/pods?labelSelector=app%3Dnone", http.Header{"Accept-Encoding": {"gzip"}})
	if small.Header().Get("Content-Encoding") != "" || !strings.HasSuffix(small.Body.String(), `"items":[]}`+"\n") {
		t.Errorf("small answer: Content-Encoding %q, body %s", small.Header().Get("Content-Encoding"), small.Body)
	}
}

func TestStreamedListFailsWholeBeforeWriting(t *testing.T) {
	prom := clusterPrometheus()
	delete(prom.answers, memAll)
	p := newTestProvider(t, prom, clusterPods(), nil)
	w := getThrough(t, streamServer(p), "/apis/metrics.k8s.io/v1beta1/pods", nil)
	var status metav1.Status
	if err := runtime.DecodeInto(Codecs.UniversalDecoder(), w.Body.Bytes(), &status); err != nil {
		t.Fatalf("the answer is no Status: %v; body: %s", err, w.Body)
	}
	if w.Code < 500 || int(status.Code) != w.Code || !strings.Contains(status.Message, "no answer for") {
		t.Errorf("status %d, Status %d %q: want the query's failure, whole", w.Code, status.Code, status.Message)
	}
}

func TestRequestsTheStreamDoesNotServeGoToTheApiserver(t *testing.T) {
	p := newTestProvider(t, clusterPrometheus(), clusterPods(), nil)
	for _, tc := range []struct {
		name, path string
		header     http.Header
	}{
		{"a Table (kubectl get podmetrics)", "/apis/metrics.k8s.io/v1beta1/pods", http.Header{"Accept": {"application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}}},
		{"YAML", "/apis/metrics.k8s.io/v1beta1/pods", http.Header{"Accept": {"application/yaml"}}},
		{"a media type with parameters", "/apis/metrics.k8s.io/v1beta1/pods", http.Header{"Accept": {"application/json;q=0.9"}}},
		{"pretty output", "/apis/metrics.k8s.io/v1beta1/pods?pretty=true", nil},
		{"curl, answered pretty", "/apis/metrics.k8s.io/v1beta1/pods", http.Header{"User-Agent": {"curl/8.5.0"}}},
		{"a field selector", "/apis/metrics.k8s.io/v1beta1/pods?fieldSelector=metadata.name%3Dweb-1", nil},
		{"an invalid label selector", "/apis/metrics.k8s.io/v1beta1/pods?labelSelector=%3D%3D", nil},
		{"a watch", "/apis/metrics.k8s.io/v1beta1/pods?watch=true", nil},
		{"one pod", "/apis/metrics.k8s.io/v1beta1/namespaces/team-a/pods/web-1", nil},
		{"nodes", "/apis/metrics.k8s.io/v1beta1/nodes", nil},
		{"another group", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/team-a/pods/%2A/qps", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if w := getThrough(t, streamServer(p), tc.path, tc.header); w.Code != http.StatusTeapot {
				t.Errorf("status %d, want the apiserver's handler (418); body: %s", w.Code, w.Body)
			}
		})
	}
	t.Run("an explain request, which records the list as it is built", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "/apis/metrics.k8s.io/v1beta1/pods", nil)
		ctx, release := explain.NewContext(r.Context(), explain.NewRecorder(explain.Request{Path: r.URL.Path}))
		defer release()
		w := httptest.NewRecorder()
		streamServer(p).ServeHTTP(w, r.WithContext(ctx))
		if w.Code != http.StatusTeapot {
			t.Errorf("status %d, want the apiserver's handler (418)", w.Code)
		}
	})
}

// Through a generic apiserver's own handler chain (request info, negotiation, gzip), the
// lists kubectl and the HPA controller ask for are streamed and equal the apiserver's own
// answers; a Table is still the apiserver's.
func TestStreamedListsThroughTheAPIServerChain(t *testing.T) {
	p := newTestProvider(t, clusterPrometheus(), clusterPods(), clusterNodes())
	plain, streamed := newTestServer(t, p), newTestServer(t, p, true)
	for _, tc := range []struct {
		name, path, accept string
		wantStreamed       bool
	}{
		{"kubectl top pods -A", "/apis/metrics.k8s.io/v1beta1/pods", "application/vnd.kubernetes.protobuf, */*", true},
		{"kubectl top pods -n team-a -l app=web", "/apis/metrics.k8s.io/v1beta1/namespaces/team-a/pods?labelSelector=app%3Dweb", "application/vnd.kubernetes.protobuf, */*", true},
		{"kubectl get --raw", "/apis/metrics.k8s.io/v1beta1/pods", "application/json, */*", true},
		{"kubectl get podmetrics (a Table)", "/apis/metrics.k8s.io/v1beta1/namespaces/team-a/pods", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json", false},
		{"a field selector, checked by the apiserver", "/apis/metrics.k8s.io/v1beta1/pods?fieldSelector=spec.nodeName%3Dnode-a", "application/json", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := testutil.GetCounterMetricValue(streamMetrics.lists)
			if err != nil {
				t.Fatal(err)
			}
			wantCode, want := get(t, plain, tc.path, tc.accept)
			listsBefore := podListRequests(t)
			code, got := get(t, streamed, tc.path, tc.accept)
			after, _ := testutil.GetCounterMetricValue(streamMetrics.lists)
			if code != wantCode || !bytes.Equal(got, want) {
				t.Errorf("streamed chain: %d %q\napiserver:      %d %q", code, got, wantCode, want)
			}
			if streamedNow := after > before; streamedNow != tc.wantStreamed {
				t.Errorf("streamed: %v, want %v", streamedNow, tc.wantStreamed)
			}
			// Streamed or not, the request is in the apiserver's own request metrics.
			if n := podListRequests(t) - listsBefore; n != 1 {
				t.Errorf("apiserver_request_total{group=metrics.k8s.io,resource=pods,verb=LIST} rose by %v, want 1", n)
			}
		})
	}
}

// podListRequests sums apiserver_request_total over the LISTs of pods.metrics.k8s.io.
func podListRequests(t *testing.T) float64 {
	t.Helper()
	families, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != "apiserver_request_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["group"] == "metrics.k8s.io" && l["resource"] == "pods" && l["verb"] == "LIST" {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// BenchmarkStreamPodList measures what BenchmarkListPodMetrics does plus the encoding the
// apiserver would do, streamed, in each format: compare with BenchmarkBuildAndEncodePodList.
func BenchmarkStreamPodList(b *testing.B) {
	p, _ := benchmarkProvider(b)
	h := streamServer(p)
	for _, mediaType := range []string{runtime.ContentTypeProtobuf, runtime.ContentTypeJSON} {
		b.Run(mediaType, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				r := httptest.NewRequest(http.MethodGet, "/apis/metrics.k8s.io/v1beta1/pods", nil)
				r.Header.Set("Accept", mediaType)
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatal(w.Code)
				}
			}
		})
	}
}

// BenchmarkBuildAndEncodePodList is the apiserver's way: the list built whole, then encoded.
func BenchmarkBuildAndEncodePodList(b *testing.B) {
	p, _ := benchmarkProvider(b)
	enc := Codecs.LegacyCodec(v1beta1.SchemeGroupVersion)
	b.ReportAllocs()
	for b.Loop() {
		list, err := p.listPodMetrics(context.Background(), "", nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		var buf bytes.Buffer
		if err := enc.Encode(list, &buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPodListThroughTheAPIServerChain serves a 10,000-pod list of all namespaces through
// a generic apiserver's handler chain, gzipped as clients ask, built whole by the apiserver's
// handlers or streamed: what the adapter spends per `kubectl top pods -A` (protobuf) or
// client-go JSON list, without Prometheus' answers.
func BenchmarkPodListThroughTheAPIServerChain(b *testing.B) {
	p, _ := benchmarkProvider(b)
	for _, chain := range []struct {
		name     string
		streamed bool
	}{{"built", false}, {"streamed", true}} {
		h := newTestServer(b, p, chain.streamed)
		for _, mediaType := range []string{runtime.ContentTypeProtobuf, runtime.ContentTypeJSON} {
			b.Run(chain.name+"/"+mediaType, func(b *testing.B) {
				b.ReportAllocs()
				start, lists := processCPU(b), 0
				for b.Loop() {
					w := getThrough(b, h, "/apis/metrics.k8s.io/v1beta1/pods", http.Header{"Accept": {mediaType}, "Accept-Encoding": {"gzip"}})
					if w.Code != http.StatusOK {
						b.Fatal(w.Code)
					}
					lists++
				}
				// The collector runs beside the loop on another CPU: ns/op leaves it out, CPU
				// time (what make bench reports per list) does not.
				b.ReportMetric(float64(processCPU(b)-start)/float64(lists)/1e6, "cpu-ms/op")
			})
		}
	}
}

// processCPU is the CPU time this process has used, user and system.
func processCPU(b *testing.B) time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		b.Fatal(err)
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}
