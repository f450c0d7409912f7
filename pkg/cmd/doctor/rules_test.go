package doctor

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/promadapter/promadapter/pkg/promclient"
)

const twoRules = `rules:
- seriesQuery: 'http_requests_total{namespace!=""}'
  resources: {template: '<<.Resource>>'}
  name: {matches: '^(.*)_total$', as: '${1}_per_second'}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
- seriesQuery: 'http_requests_totl{namespace!=""}'
  resources: {overrides: {namespace: {resource: namespace}, job_name: {group: batch, resource: job}}}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
`

// adapterWithConfigMap is the adapter's Deployment mounting ConfigMap promadapter-config at
// /etc/promadapter/config and passing --config there, and the ConfigMap with data.
func adapterWithConfigMap(data map[string]string) []runtime.Object {
	dep := deployment("promadapter", "promadapter", promadapterImage, "promadapter", "--config=/etc/promadapter/config/config.yaml")
	spec := &dep.Spec.Template.Spec
	spec.Volumes = []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "promadapter-config"}}}}}
	spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "config", MountPath: "/etc/promadapter/config", ReadOnly: true}}
	return []runtime.Object{service("promadapter", "promadapter"), dep,
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "promadapter", Name: "promadapter-config"}, Data: data}}
}

func TestRulesFromTheDeploymentsConfigMap(t *testing.T) {
	// Prometheus knows http_requests_total only: the second rule's misspelt series match nothing.
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		var names []string
		if r.URL.Path == "/api/v1/label/__name__/values" && strings.HasPrefix(r.Form.Get("match[]"), "http_requests_total") {
			names = []string{"http_requests_total"}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": names})
	}))
	defer server.Close()

	d := newTestDoctor(adapterWithConfigMap(map[string]string{"config.yaml": twoRules}), allAPIServices()...)
	in, err := d.discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rc, check := d.loadConfig(context.Background(), in)
	if check != nil {
		t.Fatalf("loading the Deployment's config: %+v", check)
	}
	if rc.source != "ConfigMap promadapter/promadapter-config key config.yaml (the Deployment's --config=/etc/promadapter/config/config.yaml)" || !rc.explicit {
		t.Errorf("config from %q (explicit %v), want the Deployment's ConfigMap", rc.source, rc.explicit)
	}
	rules, err := compileRules(rc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if extra := rules.extraAccess(); len(extra) != 2 || extra[0].String() != "list jobs.batch" || extra[1].String() != "watch jobs.batch" {
		t.Errorf("extra rights %v, want list and watch on jobs.batch, which the second rule maps job_name to", extra)
	}
	got := d.checkRules(context.Background(), rc, rules, promclient.Options{URL: server.URL}, 10*time.Minute)
	if got.Status != Fail || got.Summary != "1 of 2 rules match nothing: they serve no metric" {
		t.Errorf("got %+v, want the second rule failing", got)
	}
	mustContain(t, "evidence", strings.Join(got.Evidence, "\n"), `rules[1] (line 6, seriesQuery http_requests_totl{namespace!=""}) matches no series (series of the last 10m0s)`)
}

func TestConfigTheDeploymentNamesButTheConfigMapLacks(t *testing.T) {
	d := newTestDoctor(adapterWithConfigMap(map[string]string{"other.yaml": twoRules}), allAPIServices()...)
	in, err := d.discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rc, check := d.loadConfig(context.Background(), in)
	if rc != nil || check == nil || check.Status != Fail || !strings.Contains(check.Summary, "key config.yaml") || !strings.Contains(check.Summary, "does not exist") {
		t.Errorf("got %+v, %+v; want a failure naming the missing key", rc, check)
	}
}
