package promclient

import (
	"context"
	"errors"
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
	body, read, err := readBody(resp.Body, resp.ContentLength, b.maxBytes)
	if read >= releaseAfterBytes {
		releaser.schedule()
	}
	switch {
	case ctx.Err() != nil:
		return resp, nil, ctx.Err()
	case errors.Is(err, errOverLimit):
		return resp, nil, &tooLargeError{limit: b.maxBytes}
	case err != nil:
		return resp, nil, redactURLError(err)
	}
	return resp, body, nil
}

// errOverLimit is readBody's answer to a body longer than its limit.
var errOverLimit = errors.New("the body is longer than the limit")

// Chunk sizes for bodies of unknown length: small answers (most) take one small chunk, large
// ones grow to chunks of maxChunk.
const (
	firstChunk = 32 << 10
	maxChunk   = 4 << 20
)

// readBody reads r, at most limit bytes, and returns the body and how many bytes it read.
// A body longer than limit is errOverLimit, and its bytes are dropped as soon as that is known.
//
// Memory is what bounds it: a body of announced length is read into one buffer of that size;
// one of unknown length (chunked encoding) into chunks copied once into a buffer of the exact
// size at the end. Growing a single slice instead (io.ReadAll) allocates about four times the
// body in discarded smaller copies (slices grow by 1.25× when large), which is what took the
// adapter's RSS past 350 MiB on two concurrent 64 MiB answers.
func readBody(r io.Reader, contentLength, limit int64) ([]byte, int64, error) {
	r = io.LimitReader(r, limit+1) // one byte more tells a body of exactly limit from a longer one
	if contentLength >= 0 {
		buf := make([]byte, contentLength+1) // +1: see EOF without a second buffer
		n, err := io.ReadFull(r, buf)
		switch {
		case err == nil: // longer than announced: net/http does not allow it, but be safe
			return nil, int64(n), errOverLimit
		case errors.Is(err, io.ErrUnexpectedEOF) && int64(n) == contentLength, errors.Is(err, io.EOF) && contentLength == 0:
			return buf[:n], int64(n), nil
		default:
			return nil, int64(n), err
		}
	}
	var chunks [][]byte
	var total int64
	for size := firstChunk; ; size = min(2*size, maxChunk) {
		chunk := make([]byte, size)
		n, err := io.ReadFull(r, chunk)
		total += int64(n)
		if total > limit {
			return nil, total, errOverLimit
		}
		chunks = append(chunks, chunk[:n])
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, total, err
		}
	}
	if len(chunks) == 1 {
		return chunks[0], total, nil
	}
	body := make([]byte, 0, total)
	for _, c := range chunks {
		body = append(body, c...)
	}
	return body, total, nil
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

// replayablePOST marks every POST as safe to send again, for the round tripper it wraps: the
// POSTs of the API have no side effects. An Idempotency-Key, even empty and so not sent, lets
// net/http retry a POST on a keep-alive connection the server had closed. It is set here,
// beneath the SigV4 signer, rather than when the request is made: the signer would sign the
// empty header, which is never sent, and the signature would not match what the server gets.
type replayablePOST struct{ next http.RoundTripper }

func (r replayablePOST) RoundTrip(req *http.Request) (*http.Response, error) {
	if _, ok := req.Header["Idempotency-Key"]; req.Method == http.MethodPost && !ok {
		req = req.Clone(req.Context())
		req.Header["Idempotency-Key"] = nil
	}
	return r.next.RoundTrip(req)
}

// send asks for the endpoint u with the form-encoded parameters: as a GET query string when
// getOnly, or when the verb is GET and they fit in MaxGETQueryBytes; else as a POST form. Like
// client_golang, it retries a POST refused with 403, 405 or 501 as a GET.
func (c *Client) send(ctx context.Context, u *url.URL, form string, getOnly bool) (*http.Response, []byte, error) {
	if getOnly || c.verb == http.MethodGet && len(form) <= MaxGETQueryBytes {
		return c.get(ctx, u, form)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	c.setTenantHeader(req.Header)
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
	c.setTenantHeader(req.Header)
	return c.base.Do(ctx, req)
}
