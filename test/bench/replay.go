package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"k8s.io/client-go/rest"
)

// replayProxy stands between kubectl and kube-apiserver to measure what kubectl itself costs.
// It forwards every request, except that it records the first answer to GET path and answers
// later requests for path from that recording, at once. `kubectl top pods -A` through it then
// takes only kubectl's own time (start, discovery, decoding and printing) and none of the
// adapter's or the aggregator's: the floor that no adapter can go below.
type replayProxy struct {
	path     string
	server   *http.Server
	listener net.Listener
	forward  *httputil.ReverseProxy

	mu       sync.Mutex
	recorded *recordedAnswer // guarded by mu
}

type recordedAnswer struct {
	accept string
	header http.Header
	body   []byte
}

// startReplayProxy listens on a free loopback port (plain HTTP) and forwards to the cluster
// with config's credentials.
func startReplayProxy(config *rest.Config, path string) (*replayProxy, error) {
	transport, err := rest.TransportFor(config)
	if err != nil {
		return nil, err
	}
	upstream, err := url.Parse(config.Host)
	if err != nil {
		return nil, fmt.Errorf("the cluster's address %q: %w", config.Host, err)
	}
	p := &replayProxy{path: path}
	p.forward = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(upstream)
			r.Out.Host = upstream.Host
		},
		Transport:      transport,
		ModifyResponse: p.record,
	}
	if p.listener, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	p.server = &http.Server{Handler: p}
	go func() { _ = p.server.Serve(p.listener) }()
	return p, nil
}

func (p *replayProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == p.path {
		p.mu.Lock()
		rec := p.recorded
		p.mu.Unlock()
		if rec != nil && rec.accept == r.Header.Get("Accept") {
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(rec.body)
			return
		}
	}
	p.forward.ServeHTTP(w, r)
}

// record keeps the first successful answer to path.
func (p *replayProxy) record(resp *http.Response) error {
	req := resp.Request
	if req.Method != http.MethodGet || req.URL.Path != p.path || resp.StatusCode != http.StatusOK {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	header := resp.Header.Clone()
	header.Del("Content-Length")
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.recorded == nil {
		p.recorded = &recordedAnswer{accept: req.Header.Get("Accept"), header: header, body: body}
	}
	return nil
}

// replayed reports whether an answer has been recorded.
func (p *replayProxy) replayed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.recorded != nil
}

// writeKubeconfig writes a kubeconfig that points kubectl at the proxy.
func (p *replayProxy) writeKubeconfig(dir string) (string, error) {
	path := filepath.Join(dir, "replay.kubeconfig")
	config := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: replay, cluster: {server: "http://%s"}}]
users: [{name: replay, user: {}}]
contexts: [{name: replay, context: {cluster: replay, user: replay}}]
current-context: replay
`, p.listener.Addr())
	return path, os.WriteFile(path, []byte(config), 0o600)
}

func (p *replayProxy) close() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.server.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		_ = p.server.Close()
	}
}
