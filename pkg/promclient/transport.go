package promclient

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/api"
)

// boundedClient is the api.Client that every call goes through, queries and label calls alike.
// It sends requests with an *http.Client over the round tripper built from the HTTP config (so
// TLS, authorization and headers are those of Prometheus' own client), and reads at most
// maxBytes of an answer: beyond that it stops reading and closes the connection, so one huge
// answer cannot take the adapter's memory. client_golang's own Do reads whole bodies.
type boundedClient struct {
	api.Client // builds endpoint URLs; its Do is never called
	http       *http.Client
	maxBytes   int64
}

func (b *boundedClient) Do(ctx context.Context, req *http.Request) (*http.Response, []byte, error) {
	resp, err := b.http.Do(req.WithContext(ctx))
	if err != nil {
		// A transport error quotes the request's URL, password and query string included.
		return nil, nil, redactURLError(err)
	}
	defer resp.Body.Close() // before EOF, this closes the connection rather than draining it
	if resp.ContentLength > b.maxBytes {
		return resp, nil, &tooLargeError{limit: b.maxBytes, seen: resp.ContentLength}
	}
	body, err := readBody(resp.Body, resp.ContentLength, b.maxBytes+1)
	if len(body) >= releaseAfterBytes {
		releaser.schedule()
	}
	switch {
	case ctx.Err() != nil:
		return resp, nil, ctx.Err()
	case err != nil:
		return resp, nil, redactURLError(err)
	case int64(len(body)) > b.maxBytes:
		return resp, nil, &tooLargeError{limit: b.maxBytes}
	}
	return resp, body, nil
}

// readBody reads r up to limit bytes into a buffer sized from the announced length, so that a
// body of known length is read without a copy, and one of unknown length grows as io.ReadAll's.
func readBody(r io.Reader, contentLength, limit int64) ([]byte, error) {
	size := int64(512)
	if contentLength >= 0 {
		size = contentLength + 1 // room to see EOF without growing
	}
	buf := make([]byte, 0, min(size, limit))
	r = io.LimitReader(r, limit)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// releaseAfterBytes is the answer size after which the memory freed once it is dropped is
// returned to the operating system: the Go runtime otherwise keeps it for a while, and the
// adapter's RSS stays at its peak.
const releaseAfterBytes = 16 << 20

// releaser returns memory to the operating system after large answers, at most every 30 s: a
// release is a full garbage collection.
// The one-second delay lets the answer that asked for it be dropped first: its caller is still
// decoding it.
var releaser = &memoryReleaser{delay: time.Second, every: 30 * time.Second, free: debug.FreeOSMemory}

// memoryReleaser runs free delay after schedule is called, once for all the calls until it
// runs, and not sooner than every after its last run.
type memoryReleaser struct {
	delay time.Duration
	every time.Duration
	free  func()

	mu      sync.Mutex
	pending bool      // guarded by mu
	last    time.Time // guarded by mu: when free last ran
}

func (m *memoryReleaser) schedule() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pending {
		return
	}
	m.pending = true
	wait := max(m.delay, time.Until(m.last.Add(m.every)))
	time.AfterFunc(wait, func() {
		m.free()
		m.mu.Lock()
		m.pending, m.last = false, time.Now()
		m.mu.Unlock()
	})
}

// getClient, for the label calls that go through client_golang, sends form-encoded POSTs as
// GETs while they fit in MaxGETQueryBytes, honouring
// --prometheus-verb=GET for servers or proxies that only allow GET, and falling back to POST
// for long queries so nothing is rejected for its length.
type getClient struct{ api.Client }

func (g getClient) Do(ctx context.Context, req *http.Request) (*http.Response, []byte, error) {
	if req.Method == http.MethodPost && req.Header.Get("Content-Type") == "application/x-www-form-urlencoded" && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, nil, err
		}
		if len(body) <= MaxGETQueryBytes {
			get := req.Clone(ctx)
			get.Method = http.MethodGet
			get.Body = nil
			get.ContentLength = 0
			get.Header.Del("Content-Type")
			get.URL.RawQuery = string(body)
			return g.Client.Do(ctx, get)
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	return g.Client.Do(ctx, req)
}

// send asks for the endpoint u with the form-encoded parameters: as a GET query string when
// the verb is GET and they fit in MaxGETQueryBytes, else as a POST form. Like client_golang, it
// retries a POST refused with 403, 405 or 501 as a GET.
func (c *Client) send(ctx context.Context, u *url.URL, form string) (*http.Response, []byte, error) {
	if c.verb == http.MethodGet && len(form) <= MaxGETQueryBytes {
		return c.get(ctx, u, form)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// An Idempotency-Key, even empty and so not sent, lets net/http retry the POST on a
	// keep-alive connection the server had closed: a query has no side effects.
	req.Header["Idempotency-Key"] = nil
	resp, body, err := c.base.Do(ctx, req)
	if resp != nil {
		switch resp.StatusCode {
		case http.StatusForbidden, http.StatusMethodNotAllowed, http.StatusNotImplemented:
			return c.get(ctx, u, form)
		}
	}
	return resp, body, err
}

// get asks for the endpoint u with the form as its query string.
func (c *Client) get(ctx context.Context, u *url.URL, form string) (*http.Response, []byte, error) {
	withQuery := *u
	withQuery.RawQuery = form
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, withQuery.String(), nil)
	if err != nil {
		return nil, nil, err
	}
	return c.base.Do(ctx, req)
}
