package resourceprovider

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/promadapter/promadapter/pkg/explain"
	"github.com/promadapter/promadapter/pkg/promclient"
)

// explainedCall runs call with a Recorder in a context of namespace, through the storage
// Install serves, and returns the concluded trace.
func explainedCall(t *testing.T, namespace string, call func(ctx context.Context) error) explain.Trace {
	t.Helper()
	rec := explain.NewRecorder(explain.Request{Path: "/test"})
	ctx, release := explain.NewContext(inNamespace(namespace), rec)
	defer release()
	status := explain.Status{Code: http.StatusOK}
	var s apierrors.APIStatus
	if err := call(ctx); errors.As(err, &s) {
		status = explain.Status{Code: int(s.Status().Code), Message: s.Status().Message}
	} else if err != nil {
		t.Fatalf("the storage answered an error that is no API status: %v", err)
	}
	return rec.Finish(status)
}

func TestExplainPodList(t *testing.T) {
	p := newTestProvider(t, clusterPrometheus(), clusterPods(), clusterNodes())
	pods := Storage(p)["pods"].(rest.Lister)
	tr := explainedCall(t, "team-a", func(ctx context.Context) error {
		_, err := pods.List(ctx, listOptions(t, "app=web", ""))
		return err
	})

	wantObjects := explain.Objects{Resource: "pods", Namespace: "team-a", Selector: "app=web", Names: []string{"team-a/half-1", "team-a/web-1", "team-a/web-2"}}
	if tr.Objects == nil || !reflect.DeepEqual(*tr.Objects, wantObjects) {
		t.Errorf("objects = %+v, want %+v", tr.Objects, wantObjects)
	}
	if len(tr.Queries) != 2 {
		t.Fatalf("queries = %+v, want cpu and memory", tr.Queries)
	}
	byWhat := map[string]explain.Query{}
	for _, q := range tr.Queries {
		byWhat[q.What] = q
	}
	cpu, memory := byWhat["cpu"], byWhat["memory"]
	if cpu.Rule != "resourceRules.cpu.containerQuery" || cpu.PromQL != cpuTeamA || cpu.Lookback != "5m" || cpu.Answered != "backend" ||
		cpu.Backend != "test" || cpu.Total != 10 || cpu.Others != 3 || len(cpu.Samples) != 7 {
		t.Errorf("cpu query = %+v", cpu)
	}
	if memory.Rule != "resourceRules.memory.containerQuery" || memory.PromQL != memTeamA || memory.Lookback != "" || memory.Total != 6 ||
		memory.Others != 2 || len(memory.Samples) != 4 {
		t.Errorf("memory query = %+v", memory)
	}
	tMem := t0.Add(-15 * time.Second)
	wantValues := []explain.Value{
		{Object: "team-a/web-1", Value: "cpu 125500u, memory 175885589", Time: tMem, Window: "5m", CPU: "125500u", Memory: "175885589",
			Containers: []explain.Container{{Name: "app", CPU: "125m", Memory: "50Mi"}, {Name: "proxy", CPU: "500u", Memory: "123456789"}}},
		{Object: "team-a/web-2", Value: "cpu 2, memory 1Gi", Time: tMem, Window: "5m", CPU: "2", Memory: "1Gi",
			Containers: []explain.Container{{Name: "app", CPU: "2", Memory: "1Gi"}}},
	}
	if !reflect.DeepEqual(tr.Values, wantValues) {
		t.Errorf("values =\n%+v\nwant\n%+v", tr.Values, wantValues)
	}
	wantLeft := []explain.LeftOut{
		{Object: "team-a/half-1", Code: explain.ReasonNoSeries,
			Reason: `no memory usage for container "sidecar" (no series with namespace="team-a",pod="half-1",container="sidecar" in the result of resourceRules.memory.containerQuery)`},
		{Object: "team-a/pending-1", Code: explain.ReasonNotRunning, Reason: "the pod is Pending, not Running: usage is served for running pods only"},
	}
	if !reflect.DeepEqual(tr.LeftOut, wantLeft) {
		t.Errorf("left out =\n%+v\nwant\n%+v", tr.LeftOut, wantLeft)
	}
	if !tr.Served {
		t.Errorf("not served: %+v", tr.Reason)
	}
}

func TestExplainResourceReasons(t *testing.T) {
	p := newTestProvider(t, clusterPrometheus(), clusterPods(), clusterNodes())
	storage := Storage(p)
	for _, tc := range []struct {
		name, namespace string
		call            func(ctx context.Context) error
		code, text      string
	}{
		{"a pod that is not Running", "team-a", func(ctx context.Context) error {
			_, err := storage["pods"].(rest.Getter).Get(ctx, "pending-1", &metav1.GetOptions{})
			return err
		}, explain.ReasonNotRunning, "team-a/pending-1: the pod is Pending, not Running"},
		{"a pod that does not exist", "team-a", func(ctx context.Context) error {
			_, err := storage["pods"].(rest.Getter).Get(ctx, "web-9", &metav1.GetOptions{})
			return err
		}, explain.ReasonNoObjects, "team-a/web-9: there is no such pod"},
		{"a node without series", "", func(ctx context.Context) error {
			_, err := storage["nodes"].(rest.Getter).Get(ctx, "node-c", &metav1.GetOptions{})
			return err
		}, explain.ReasonNoSeries, `node-c: no cpu usage for this node (no series with node="node-c" in the result of resourceRules.cpu.nodeQuery)`},
		{"a selector that selects no pod", "team-b", func(ctx context.Context) error {
			_, err := storage["pods"].(rest.Lister).List(ctx, listOptions(t, "app=web", ""))
			return err
		}, explain.ReasonNoObjects, `the label selector "app=web" selects no pods in namespace "team-b"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := explainedCall(t, tc.namespace, tc.call)
			if tr.Served || tr.Reason == nil || tr.Reason.Code != tc.code || !strings.Contains(tr.Reason.Text, tc.text) {
				t.Fatalf("served %v, reason %+v; want %s with %q", tr.Served, tr.Reason, tc.code, tc.text)
			}
		})
	}
}

// downPrometheus fails every query as an unreachable backend does.
type downPrometheus struct{}

func (downPrometheus) Query(context.Context, string, time.Time) (model.Value, error) {
	return nil, &promclient.Error{Cause: promclient.CauseUnreachable, URL: "http://prometheus.monitoring:9090", Op: "query", Err: errors.New("connection refused")}
}

func TestExplainPrometheusDown(t *testing.T) {
	p := newTestProvider(t, downPrometheus{}, clusterPods(), clusterNodes())
	tr := explainedCall(t, "", func(ctx context.Context) error {
		_, err := Storage(p)["nodes"].(rest.Lister).List(ctx, listOptions(t, "", ""))
		return err
	})
	if tr.Served || tr.Status.Code != http.StatusServiceUnavailable || tr.Reason == nil || tr.Reason.Code != explain.ReasonUnreachable ||
		!strings.Contains(tr.Reason.Text, `backend "test" at http://prometheus.monitoring:9090 did not answer the`) {
		t.Fatalf("status %+v, reason %+v", tr.Status, tr.Reason)
	}
}
