// Tests of the client's label calls.

package promclient_test

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/promadapter/promadapter/pkg/promclient"
)

func TestLabelCallsPassMatchersAndTimeBounds(t *testing.T) {
	start := time.Unix(1700000000, 0)
	end := time.Unix(1700000600, 250_000_000)
	matches := []string{`{__name__=~"^http_.*_total$",namespace!=""}`, `up{job="kubelet"}`}
	cases := []struct {
		name       string
		verb       string
		call       func(c *promclient.Client) ([]string, error)
		answer     string
		wantPath   string
		wantMethod string
		wantForm   url.Values
		want       []string
	}{
		{
			name: "label values sends the label in the path, match[] and start/end",
			verb: "GET",
			call: func(c *promclient.Client) ([]string, error) {
				return c.LabelValues(context.Background(), "__name__", matches, start, end)
			},
			answer:     `{"status":"success","data":["http_requests_total","up"]}`,
			wantPath:   "/api/v1/label/__name__/values",
			wantMethod: http.MethodGet,
			wantForm:   url.Values{"match[]": matches, "start": {"1700000000"}, "end": {"1700000600.25"}},
			want:       []string{"http_requests_total", "up"},
		},
		{
			name: "label values without time bounds sends no start or end",
			verb: "GET",
			call: func(c *promclient.Client) ([]string, error) {
				return c.LabelValues(context.Background(), "namespace", matches[:1], time.Time{}, time.Time{})
			},
			answer:     `{"status":"success","data":["default","kube-system"]}`,
			wantPath:   "/api/v1/label/namespace/values",
			wantMethod: http.MethodGet,
			wantForm:   url.Values{"match[]": matches[:1]},
			want:       []string{"default", "kube-system"},
		},
		{
			name: "label names with verb GET sends match[] and start/end as a GET query",
			verb: "GET",
			call: func(c *promclient.Client) ([]string, error) {
				return c.LabelNames(context.Background(), matches, start, end)
			},
			answer:     `{"status":"success","data":["__name__","namespace","pod"]}`,
			wantPath:   "/api/v1/labels",
			wantMethod: http.MethodGet,
			wantForm:   url.Values{"match[]": matches, "start": {"1700000000"}, "end": {"1700000600.25"}},
			want:       []string{"__name__", "namespace", "pod"},
		},
		{
			name: "label names with verb POST sends the same parameters as a form",
			verb: "POST",
			call: func(c *promclient.Client) ([]string, error) {
				return c.LabelNames(context.Background(), matches, start, end)
			},
			answer:     `{"status":"success","data":["__name__","job"]}`,
			wantPath:   "/api/v1/labels",
			wantMethod: http.MethodPost,
			wantForm:   url.Values{"match[]": matches, "start": {"1700000000"}, "end": {"1700000600.25"}},
			want:       []string{"__name__", "job"},
		},
		{
			name: "an empty answer is an empty list",
			verb: "GET",
			call: func(c *promclient.Client) ([]string, error) {
				return c.LabelNames(context.Background(), matches, start, end)
			},
			answer:     `{"status":"success","data":[]}`,
			wantPath:   "/api/v1/labels",
			wantMethod: http.MethodGet,
			wantForm:   url.Values{"match[]": matches, "start": {"1700000000"}, "end": {"1700000600.25"}},
			want:       []string{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakePrometheus(t, func(*http.Request) (int, string) { return http.StatusOK, tc.answer })
			c := mustNew(t, promclient.Options{URL: f.URL, Verb: tc.verb})
			got, err := tc.call(c)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			r := f.lastRequest(t)
			if r.Path != tc.wantPath || r.Method != tc.wantMethod {
				t.Errorf("server saw %s %s, want %s %s", r.Method, r.Path, tc.wantMethod, tc.wantPath)
			}
			if !reflect.DeepEqual(r.Form, tc.wantForm) {
				t.Errorf("server saw parameters %v, want %v", r.Form, tc.wantForm)
			}
		})
	}
}
