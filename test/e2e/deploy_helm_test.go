//go:build e2e

// TestDeploy's Helm chart step.

package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/promadapter/promadapter/test/testbed"
)

// helm returns the helm binary: $HELM, else the one test/tools/deps.sh builds, else helm on
// PATH; "" when there is none.
func helm() string {
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	if bins, err := testbed.FindBins(); err == nil && bins.Helm != "" {
		if _, err := os.Stat(bins.Helm); err == nil {
			return bins.Helm
		}
	}
	h, _ := exec.LookPath("helm")
	return h
}

func (s *deploySuite) testHelmChart(t *testing.T) {
	helmBin := helm()
	if helmBin == "" {
		t.Skip("helm is not installed (Debian has no helm package; test/tools/deps.sh builds one): the chart is not checked; set HELM=/path/to/helm to check it")
	}
	version, err := s.cluster.Client.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	const namespace = "promadapter-chart"
	s.mustKubectl(t, nil, "create", "namespace", namespace)
	caPEM, err := os.ReadFile(s.cluster.Certs.CACert)
	if err != nil {
		t.Fatal(err)
	}
	chart := filepath.Join(s.repo, "deploy", "chart", "promadapter")
	for i, c := range []struct {
		name   string
		values string
		want   []string // the APIServices the release registers
	}{
		{
			name:   "default values",
			values: "",
			want:   []string{"v1beta1.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io", "v1beta1.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"},
		},
		{
			name: "external metrics left to KEDA, own rules, a verified serving certificate",
			values: `apis: {metrics: true, custom: true, external: false}
config: |
  rules:
    - seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
      resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
      metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
tls: {insecureSkipTLSVerify: false, secretName: promadapter-serving-cert, caBundle: ` + base64.StdEncoding.EncodeToString(caPEM) + `}
extraArgs: ["--metrics-relist-interval=2m", "--prometheus-header=X-Scope-OrgID=tenant 1"]
replicas: 2
podDisruptionBudget: {enabled: true}
rbac:
  extraRules:
    - apiGroups: [batch]
      resources: [cronjobs]
      verbs: [get, list, watch]
`,
			want: []string{"v1beta1.custom.metrics.k8s.io", "v1beta1.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"},
		},
		{
			name:   "cert-manager injects the CA that verifies the adapter",
			values: "tls: {insecureSkipTLSVerify: false, secretName: promadapter-serving-cert}\napiServiceAnnotations: {cert-manager.io/inject-ca-from: promadapter-chart/promadapter-serving-cert}\n",
			want:   []string{"v1beta1.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io", "v1beta1.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"},
		},
		{
			name:   "metrics.k8s.io left to metrics-server",
			values: "apis: {metrics: false}\n",
			want:   []string{"v1beta1.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			valuesFile := filepath.Join(s.dir, fmt.Sprintf("helm-values-%d.yaml", i))
			if err := os.WriteFile(valuesFile, []byte(c.values), 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"template", "promadapter", chart, "--namespace=" + namespace, "--kube-version=" + version.GitVersion, "--values=" + valuesFile}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, helmBin, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			rendered, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s %s: %v\n%s", helmBin, strings.Join(args, " "), err, stderr.String())
			}
			objects := decodeObjects(t, "helm template", rendered)
			var got []string
			for _, o := range objects {
				if o.GetKind() == "APIService" {
					got = append(got, o.GetName())
				}
			}
			sort.Strings(got)
			if !slices.Equal(got, c.want) {
				t.Errorf("the release registers APIServices %v, want %v", got, c.want)
			}
			checkWiring(t, objects)
			_, kubectlErr := s.mustKubectl(t, rendered, "apply", "--dry-run=server", "--validate=strict", "-f", "-")
			noWarnings(t, "helm template | kubectl apply --dry-run=server", kubectlErr)
		})
	}
}
