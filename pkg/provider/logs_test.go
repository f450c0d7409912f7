package provider_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promadapter/promadapter/internal/promtest"
)

// logBuffer collects klog's output; planner goroutines may log while a test reads it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// captureLogs sends klog's output at the given verbosity to a buffer until the test ends.
func captureLogs(t *testing.T, verbosity string) *logBuffer {
	t.Helper()
	var fs flag.FlagSet
	klog.InitFlags(&fs)
	for k, v := range map[string]string{"v": verbosity, "logtostderr": "false", "alsologtostderr": "false", "one_output": "true"} {
		if err := fs.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	buf := &logBuffer{}
	klog.SetOutput(buf)
	t.Cleanup(func() {
		klog.Flush()
		_ = fs.Set("v", "0")
		_ = fs.Set("logtostderr", "true")
		klog.SetOutput(os.Stderr)
	})
	return buf
}

func TestObjectsWithoutANumberAreLoggedAtV4OneLineEach(t *testing.T) {
	answer := vectorAnswer(
		sample{value: "1", labels: []string{"pod", "web-1"}},
		sample{value: "NaN", labels: []string{"pod", "web-2"}},
		sample{value: "+Inf", labels: []string{"pod", "web-3"}},
	)
	const msg = `"Leaving an object whose value is not a number out of the list"`
	cases := []struct {
		name      string
		verbosity string
		want      []string
	}{
		{"at verbosity 4 each object left out is one line with the metric, the object and the value", "4", []string{
			msg + ` metric="http_requests_per_second" object="shop/web-2" value="NaN"`,
			msg + ` metric="http_requests_per_second" object="shop/web-3" value="+Inf"`,
		}},
		{"at verbosity 3 nothing is logged", "3", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{custom: customRules, series: shopSeries})
			e.prom.SetAnswer(answer)
			logs := captureLogs(t, tc.verbosity)
			list, err := e.custom.GetMetricBySelector(context.Background(), "shop", mustSelector(t, "app=web"), requestsPods, labels.Everything())
			if err != nil {
				t.Fatal(err)
			}
			if len(list.Items) != 1 || list.Items[0].DescribedObject.Name != "web-1" {
				t.Errorf("items = %+v, want web-1 only", list.Items)
			}
			klog.Flush()
			var got []string
			for _, line := range strings.Split(logs.String(), "\n") {
				if i := strings.Index(line, msg); i >= 0 {
					got = append(got, line[i:])
				}
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("log lines =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestBackendErrorsKeepURLsRedacted: the answer and the logs of a failed query show the
// backend's URL as promclient redacts it; the provider formats no URL of its own.
func TestBackendErrorsKeepURLsRedacted(t *testing.T) {
	const password, tenant = "s3cr3t-pass", "t0k3n-value"
	closed := promtest.ClosedURL(t)
	queryURL := strings.Replace(closed, "http://", "http://alice:"+password+"@", 1) + "/?tenant=" + tenant
	e := newEnv(t, envOptions{custom: customRules, external: externalRules, series: shopSeries, queryURL: queryURL})
	logs := captureLogs(t, "10")
	redactedURL := strings.Replace(closed, "http://", "http://alice:xxxxx@", 1) + "/?tenant=xxxxx"
	calls := []struct {
		name string
		call func() error
	}{
		{"a selector request", func() error {
			_, err := e.custom.GetMetricBySelector(context.Background(), "shop", mustSelector(t, "app=web"), requestsPods, labels.Everything())
			return err
		}},
		{"a request by name", func() error {
			_, err := e.custom.GetMetricByName(context.Background(), types.NamespacedName{Namespace: "shop", Name: "web-1"}, requestsPods, labels.Everything())
			return err
		}},
		{"an external request", func() error {
			_, err := e.external.GetExternalMetric(context.Background(), "shop", labels.Everything(), cmprovider.ExternalMetricInfo{Metric: "depth"})
			return err
		}},
	}
	for _, c := range calls {
		t.Run(c.name+" answers 503 with the redacted URL", func(t *testing.T) {
			err := c.call()
			checkAPIError(t, err, &errorCheck{503, []string{"cannot reach Prometheus at " + redactedURL}})
			for _, secret := range []string{password, tenant} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows the secret %q", err, secret)
				}
			}
		})
	}
	klog.Flush()
	for _, secret := range []string{password, tenant} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the logs show the secret %q:\n%s", secret, logs)
		}
	}
}
