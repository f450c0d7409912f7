package promclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestTransportAndServerTimeoutCauses(t *testing.T) {
	tlsServer := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsServer.Close()
	slowQuery := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}`))
	}))
	defer slowQuery.Close()
	cases := []struct {
		name      string
		url       string
		wantCause Cause
		wantText  []string
	}{
		{"a serving certificate nobody trusts is a transport failure, not a server error", tlsServer.URL, CauseUnreachable,
			[]string{"cannot reach Prometheus at " + tlsServer.URL, "certificate", "TLS settings"}},
		{"Prometheus' own query timeout (HTTP 503 with an API body) is a timeout with its explanation", slowQuery.URL, CauseTimeout,
			[]string{"timed out", "query timed out in expression evaluation"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			client, err := New(Options{URL: c.url, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			_, err = client.Query(context.Background(), "up", time.Time{})
			if got := CauseOf(err); got != c.wantCause {
				t.Fatalf("cause %q, want %q (err %v)", got, c.wantCause, err)
			}
			for _, w := range c.wantText {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
		})
	}
}
