package doctor

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/promadapter/promadapter/cmd/promadapter/app/options"
	"github.com/promadapter/promadapter/pkg/promclient"
)

// fakeProm answers queries from a table; a query not in it is an empty vector.
type fakeProm struct {
	answers    map[string]model.Value
	labelNames []string
	names      []string // values of __name__
}

func (f *fakeProm) Query(_ context.Context, q string, _ time.Time) (model.Value, error) {
	if v, ok := f.answers[q]; ok {
		return v, nil
	}
	return model.Vector{}, nil
}

func (f *fakeProm) LabelValues(context.Context, string, []string, time.Time, time.Time) ([]string, error) {
	return f.names, nil
}

func (f *fakeProm) LabelNames(context.Context, []string, time.Time, time.Time) ([]string, error) {
	return f.labelNames, nil
}

func vector(value float64, labels ...string) model.Vector {
	m := model.Metric{}
	for i := 0; i+1 < len(labels); i += 2 {
		m[model.LabelName(labels[i])] = model.LabelValue(labels[i+1])
	}
	return model.Vector{&model.Sample{Metric: m, Value: model.SampleValue(value)}}
}

func TestCAdvisorSeries(t *testing.T) {
	const cpu = "container_cpu_usage_seconds_total"
	withPod := fmt.Sprintf(`count(%s{namespace!="",pod!="",container!="",container!="POD"})`, cpu)
	all := fmt.Sprintf(`count(%s)`, cpu)
	for _, c := range []struct {
		name    string
		answers map[string]model.Value
		labels  []string
		status  Status
		wants   []string
	}{
		{"container series with pod labels pass", map[string]model.Value{withPod: vector(17), all: vector(43)}, nil, Pass,
			[]string{"17 container series with namespace, pod and container labels (of 43)"}},
		{"no series at all fail: cAdvisor is not scraped", nil, nil, Fail, []string{"Prometheus does not scrape cAdvisor", "/metrics/cadvisor"}},
		{"series labelled pod_name fail with the relabeling", map[string]model.Value{all: vector(12),
			fmt.Sprintf(`topk(1, %s{id!="/"})`, cpu): vector(1, "__name__", cpu, "pod_name", "web-1", "container_name", "app", "namespace", "shop")},
			[]string{"__name__", "container_name", "id", "namespace", "pod_name"}, Fail,
			[]string{"12 series, none with namespace, pod and container labels", "it carries pod_name", `pod_name="web-1"`, "- {source_labels: [pod_name], target_label: pod}"}},
		{"some series without pod warn", map[string]model.Value{withPod: vector(10), all: vector(20),
			fmt.Sprintf(`count(%s{container!="",container!="POD",pod=""})`, cpu): vector(4)}, nil, Warn,
			[]string{"4 container series lack the pod label (10 have it)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := &promTarget{q: &fakeProm{answers: c.answers, labelNames: c.labels}}
			got := p.checkCAdvisor(context.Background(), cpu)
			if got.Status != c.status {
				t.Errorf("status %s, want %s: %+v", got.Status, c.status, got)
			}
			mustContain(t, "the finding", got.Summary+"\n"+strings.Join(got.Evidence, "\n")+"\n"+got.Fix, c.wants...)
		})
	}
}

func TestNodeSourcesCoverEveryNode(t *testing.T) {
	p := &promTarget{q: &fakeProm{answers: map[string]model.Value{
		`count by (node) (node_cpu_usage_seconds_total{node!=""})`:                      vector(1, "node", "node-0"),
		`count by (instance) (node_cpu_seconds_total{instance!~".*:.*"})`:               vector(1, "instance", "node-1"),
		`count by (node) (container_cpu_usage_seconds_total{id="/",node!=""})`:          vector(1, "node", "node-0"),
		`count by (instance) (node_cpu_usage_seconds_total{node="",instance!~".*:.*"})`: model.Vector{},
	}}}
	got := p.checkNodeSources(context.Background(), []string{"node-0", "node-1", "node-2"})
	if got.Status != Fail || !strings.Contains(got.Summary, "1 of 3 nodes have no cpu usage source: node-2") {
		t.Errorf("got %+v, want node-2 named as without a source", got)
	}
	mustContain(t, "evidence", strings.Join(got.Evidence, "\n"), "kubelet node_cpu_usage_seconds_total: node-0", "node-exporter by instance: node-1")

	got = p.checkNodeSources(context.Background(), []string{"node-0", "node-1"})
	if got.Status != Pass {
		t.Errorf("two covered nodes: got %+v, want a pass", got)
	}
}

func TestClockSkew(t *testing.T) {
	for _, c := range []struct {
		skew   time.Duration
		status Status
	}{{0, Pass}, {30 * time.Second, Warn}, {-10 * time.Minute, Fail}} {
		t.Run(fmt.Sprint(c.skew), func(t *testing.T) {
			at := testNow.Add(c.skew)
			p := &promTarget{q: &fakeProm{answers: map[string]model.Value{"time()": &model.Scalar{Value: model.SampleValue(float64(at.UnixMilli()) / 1000)}}},
				url: "http://prometheus:9090", from: "--prometheus-url", credentials: "no credentials"}
			checks, ok := p.checkReachable(context.Background(), func() time.Time { return testNow })
			if !ok || len(checks) != 2 || checks[0].Status != Pass {
				t.Fatalf("checks %+v, want reachable plus clock", checks)
			}
			if checks[1].Status != c.status {
				t.Errorf("skew %s: %+v, want %s", c.skew, checks[1], c.status)
			}
		})
	}
}

// TestRefusedCredentials goes through promclient, as doctor does, to a server that wants a
// bearer token, and checks that doctor says which credential was refused without printing it.
func TestRefusedCredentials(t *testing.T) {
	const secret = "s3cret-token"
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+secret {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"scalar","result":[1772366400,"1772366400"]}}`)
	}))
	defer server.Close()
	dir := t.TempDir()
	wrong, right := filepath.Join(dir, "wrong"), filepath.Join(dir, "right")
	if err := os.WriteFile(wrong, []byte("not-it"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(right, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, tokenFile string
		status          Status
		want            string
	}{
		{"no credentials", "", Fail, "refused the request with 401: it needs credentials and doctor sent none"},
		{"a wrong token", wrong, Fail, "refused the request with 401: it did not accept a bearer token from --prometheus-token-file=" + wrong},
		{"the right token", right, Pass, "answered in"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := options.New()
			o.PrometheusURL, o.PrometheusTokenFile = server.URL, c.tokenFile
			po, err := o.PrometheusOptions()
			if err != nil {
				t.Fatal(err)
			}
			client, err := promclient.New(po)
			if err != nil {
				t.Fatal(err)
			}
			p := &promTarget{q: client, url: client.URL(), from: "--prometheus-url", credentials: credentialsOf(o)}
			checks, _ := p.checkReachable(context.Background(), time.Now)
			got := checks[0]
			if got.Status != c.status || !strings.Contains(got.Summary, c.want) {
				t.Errorf("got %+v, want %s with %q", got, c.status, c.want)
			}
			if text := fmt.Sprint(checks); strings.Contains(text, secret) {
				t.Errorf("the token appears in the findings: %s", text)
			}
		})
	}
}
