package testbed

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// FaultProxy is an HTTP proxy on 127.0.0.1 in front of a Prometheus server whose behaviour a
// test switches at run time with SetFault, to see how a client copes with a failing backend.
// It starts in PassThrough. Close stops it.
type FaultProxy struct {
	// URL is the proxy's base address, http://127.0.0.1:<port>; it stays the same across Down.
	URL string

	backend *url.URL
	addr    string
	client  *http.Client

	mu     sync.Mutex // guards everything below and serialises SetFault and Close
	fault  Fault
	server *http.Server  // nil while Down
	served chan struct{} // closed when server's Serve has returned
	closed bool

	queries atomic.Int64 // query requests received since the last SetFault
	faulted atomic.Int64 // answers the current fault changed since the last SetFault
}

// StartFaultProxy starts a proxy on a free 127.0.0.1 port in front of backendURL (e.g. a
// Prometheus' URL), passing everything through until SetFault says otherwise.
func StartFaultProxy(backendURL string) (*FaultProxy, error) {
	backend, err := url.Parse(backendURL)
	if err != nil || backend.Scheme != "http" || backend.Host == "" {
		return nil, fmt.Errorf("fault proxy: backend %q is not an http:// URL", backendURL)
	}
	p := &FaultProxy{
		backend: backend,
		// No timeout of its own: a request ends when the client goes away.
		client: &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}},
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fault proxy: listening on 127.0.0.1: %w", err)
	}
	p.addr = listener.Addr().String()
	p.URL = "http://" + p.addr
	p.mu.Lock()
	p.serve(listener)
	p.mu.Unlock()
	return p, nil
}

// serve starts a new server on listener. p.mu must be held.
func (p *FaultProxy) serve(listener net.Listener) {
	server := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = server.Serve(listener)
	}()
	p.server, p.served = server, served
}

// shutdown closes the listener and every connection, and returns once the server has stopped
// accepting. p.mu must be held.
func (p *FaultProxy) shutdown() {
	if p.server == nil {
		return
	}
	_ = p.server.Close()
	<-p.served
	p.server, p.served = nil, nil
}

// SetFault switches the proxy to f. Down closes the listener and all connections at once; any
// other fault after Down listens again on the same port (retrying for up to 5 s while the port
// is still held). It also resets Queries and Faulted.
func (p *FaultProxy) SetFault(f Fault) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("fault proxy: already closed")
	}
	if f.Kind < PassThrough || f.Kind > PartialWarning {
		return fmt.Errorf("fault proxy: unknown fault %v", f.Kind)
	}
	if f.Kind == SpecialValue && f.Value == "" {
		return errors.New("fault proxy: SpecialValue needs Fault.Value, e.g. \"NaN\" or \"+Inf\"")
	}
	p.fault = f
	p.queries.Store(0)
	p.faulted.Store(0)
	if f.Kind == Down {
		p.shutdown()
		return nil
	}
	if p.server != nil {
		return nil
	}
	var listener net.Listener
	deadline := time.Now().Add(5 * time.Second)
	for {
		var err error
		listener, err = net.Listen("tcp", p.addr)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return fmt.Errorf("fault proxy: listening again on %s: %w", p.addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.serve(listener)
	return nil
}

// Fault is the fault in effect.
func (p *FaultProxy) Fault() Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fault
}

// Queries is how many query requests reached the proxy since the last SetFault.
func (p *FaultProxy) Queries() int64 { return p.queries.Load() }

// Faulted is how many answers the current fault has changed since the last SetFault: a test
// checks it to know its request really met the fault (a rewriting fault that selected no sample
// does not count).
func (p *FaultProxy) Faulted() int64 { return p.faulted.Load() }

// Close stops the proxy. It is safe to call more than once.
func (p *FaultProxy) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.shutdown()
	p.client.CloseIdleConnections()
}

// isQuery reports whether path is one of the query endpoints the faults apply to.
func isQuery(path string) bool {
	return path == "/api/v1/query" || path == "/api/v1/query_range"
}

// ServeHTTP answers one request according to the fault in effect.
func (p *FaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !isQuery(r.URL.Path) {
		p.forward(w, r)
		return
	}
	p.queries.Add(1)
	f := p.Fault()
	switch f.Kind {
	case PassThrough, Down: // Down: a request accepted just before the listener closed
		p.forward(w, r)
	case Delay:
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
			p.faulted.Add(1)
			return
		}
		p.faulted.Add(1)
		p.forward(w, r)
	case InvalidJSON:
		p.faulted.Add(1)
		writeBody(w, http.StatusOK, "application/json", []byte(InvalidJSONBody))
	case HTML502:
		p.faulted.Add(1)
		writeBody(w, http.StatusBadGateway, "text/html", []byte(HTML502Body))
	case HugeAnswer:
		p.faulted.Add(1)
		writeHugeAnswer(w, f.hugeBytes())
	case KillMidAnswer, TruncatedBody:
		status, header, body, err := p.fetch(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		p.faulted.Add(1)
		copyHeader(w.Header(), header)
		half := body[:len(body)/2]
		if f.Kind == TruncatedBody {
			w.Header().Set("Content-Length", strconv.Itoa(len(half)))
			w.WriteHeader(status)
			_, _ = w.Write(half)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write(half)
		if flusher, ok := w.(http.Flusher); ok {
			flusher.Flush()
		}
		// Closes the connection without finishing the answer (net/http logs nothing for it).
		panic(http.ErrAbortHandler)
	default: // the rewriting faults
		status, header, body, err := p.fetch(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if status == http.StatusOK {
			if rewritten, changed, err := rewriteAnswer(body, f); err != nil {
				http.Error(w, "fault proxy: "+err.Error(), http.StatusBadGateway)
				return
			} else if changed {
				p.faulted.Add(1)
				body = rewritten
			}
		}
		copyHeader(w.Header(), header)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}
}

// hopHeaders are not forwarded (RFC 9110 section 7.6.1), nor are the ones that describe a body
// the proxy may change.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Content-Length", "Content-Encoding"}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = append([]string(nil), vs...)
	}
	for _, h := range hopHeaders {
		dst.Del(h)
	}
}

// backendRequest is r addressed to the backend. Accept-Encoding is dropped so the transport asks
// for gzip itself and hands over the decoded body.
func (p *FaultProxy) backendRequest(r *http.Request) *http.Request {
	out := r.Clone(r.Context())
	target := *p.backend
	target.Path = strings.TrimSuffix(p.backend.Path, "/") + r.URL.Path
	target.RawPath = ""
	target.RawQuery = r.URL.RawQuery
	out.URL = &target
	out.Host = ""
	out.RequestURI = ""
	copyHeader(out.Header, r.Header)
	out.Header.Del("Accept-Encoding")
	if r.ContentLength > 0 {
		out.ContentLength = r.ContentLength
	}
	return out
}

// forward streams the backend's answer to r back unchanged.
func (p *FaultProxy) forward(w http.ResponseWriter, r *http.Request) {
	resp, err := p.client.Do(p.backendRequest(r))
	if err != nil {
		http.Error(w, "fault proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	copyHeader(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// maxRewrittenAnswer bounds the real answers the proxy reads whole to change them.
const maxRewrittenAnswer = 64 << 20

// fetch reads the backend's whole answer to r.
func (p *FaultProxy) fetch(r *http.Request) (status int, header http.Header, body []byte, err error) {
	resp, err := p.client.Do(p.backendRequest(r))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("fault proxy: %w", err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxRewrittenAnswer+1))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("fault proxy: reading the backend's answer: %w", err)
	}
	if len(body) > maxRewrittenAnswer {
		return 0, nil, nil, fmt.Errorf("fault proxy: the backend's answer is over %d bytes", maxRewrittenAnswer)
	}
	return resp.StatusCode, resp.Header, body, nil
}
