package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"k8s.io/client-go/rest"
)

func TestReplayProxyRecordsOnceThenReplays(t *testing.T) {
	var upstreamCalls atomic.Int32
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamCalls.Add(1)
		w.Header().Set("Content-Type", "application/test")
		_, _ = io.WriteString(w, "answer to "+r.URL.Path)
	}))
	defer upstream.Close()
	proxy, err := startReplayProxy(&rest.Config{Host: upstream.URL}, "/recorded")
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.close()
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get("http://" + proxy.listener.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if ct := resp.Header.Get("Content-Type"); ct != "application/test" {
			t.Errorf("GET %s: Content-Type %q, want the upstream's", path, ct)
		}
		return string(body)
	}
	for i, want := range []int32{1, 1, 1} {
		if body := get("/recorded"); body != "answer to /recorded" {
			t.Errorf("GET /recorded #%d = %q", i+1, body)
		}
		if got := upstreamCalls.Load(); got != want {
			t.Errorf("after GET /recorded #%d the upstream answered %d times, want %d", i+1, got, want)
		}
	}
	if !proxy.replayed() {
		t.Error("replayed() = false after a recording")
	}
	if body := get("/other"); body != "answer to /other" || upstreamCalls.Load() != 2 {
		t.Errorf("GET /other = %q with %d upstream calls; want it forwarded", body, upstreamCalls.Load())
	}
}
