package testbed

import (
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// TokenProxy is a reverse proxy on 127.0.0.1 in front of a Prometheus that answers 401 to every
// request without "Authorization: Bearer <token>", as kube-rbac-proxy or an ingress with auth
// does. Close stops it.
type TokenProxy struct {
	// URL is the proxy's base address, http://127.0.0.1:<port>.
	URL    string
	server *http.Server
}

// StartTokenProxy starts a TokenProxy in front of backendURL requiring token.
func StartTokenProxy(backendURL, token string) (*TokenProxy, error) {
	backend, err := url.Parse(backendURL)
	if err != nil || backend.Host == "" {
		return nil, fmt.Errorf("token proxy: backend %q is not a URL", backendURL)
	}
	proxy := httputil.NewSingleHostReverseProxy(backend)
	want := []byte("Bearer " + token)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="prometheus"`)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		r.Header.Del("Authorization")
		proxy.ServeHTTP(w, r)
	})
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("token proxy: listening on 127.0.0.1: %w", err)
	}
	p := &TokenProxy{URL: "http://" + listener.Addr().String(), server: &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = p.server.Serve(listener) }()
	return p, nil
}

// Close stops the proxy.
func (p *TokenProxy) Close() { _ = p.server.Close() }
