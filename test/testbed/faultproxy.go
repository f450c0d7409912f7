package testbed

import (
	"bufio"
	"encoding/json"
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

// FaultKind is one way a Prometheus backend can misbehave.
type FaultKind int

// The faults a FaultProxy can inject. Except Down, they apply to query requests only
// (/api/v1/query and /api/v1/query_range); every other request (the label APIs the adapter's
// discovery uses, /-/ready) passes through, so a metric stays listed while its queries fail.
const (
	// PassThrough forwards every request to the backend and its answer back unchanged.
	PassThrough FaultKind = iota
	// Down closes the listener and every open connection: connections are refused until another
	// fault is set, which listens again on the same port.
	Down
	// KillMidAnswer sends the status line, headers (with the full Content-Length) and the first
	// half of the real answer, then closes the connection.
	KillMidAnswer
	// Delay holds each query for Fault.Delay before forwarding it.
	Delay
	// InvalidJSON answers 200 with a body that is not JSON.
	InvalidJSON
	// HTML502 answers 502 with an HTML error page, as a load balancer in front of a dead
	// Prometheus does.
	HTML502
	// TruncatedBody answers 200 with the first half of the real answer, its Content-Length
	// matching what is sent: the transport sees a complete answer, the decoder does not.
	TruncatedBody
	// HugeAnswer answers 200 with a well-formed vector of at least Fault.Bytes bytes, generated
	// while it is sent (never held in memory). Every sample carries a 1 KiB label, so the size
	// limit is reached long before any sample-count limit.
	HugeAnswer
	// MatrixResult rewrites a vector answer into a matrix with one point per series.
	MatrixResult
	// DuplicateSeries follows every selected sample with a copy that has one more label,
	// DuplicateLabel="1", and the same value: two series for one object.
	DuplicateSeries
	// SpecialValue sets the value of the selected samples to Fault.Value ("NaN", "+Inf", "-Inf").
	SpecialValue
	// NativeHistogram replaces the value of the selected samples with a native histogram
	// ({"count":"1","sum":"1","buckets":[]}) under "histogram".
	NativeHistogram
	// PartialWarning adds PartialWarningText to the real answer's "warnings", as Thanos does when
	// a store is down and it answers with what the others have.
	PartialWarning
)

var faultNames = [...]string{
	PassThrough: "pass-through", Down: "down", KillMidAnswer: "kill mid-answer", Delay: "delay",
	InvalidJSON: "invalid JSON", HTML502: "HTML 502 page", TruncatedBody: "truncated body",
	HugeAnswer: "huge answer", MatrixResult: "matrix result", DuplicateSeries: "duplicate series",
	SpecialValue: "special value", NativeHistogram: "native histogram", PartialWarning: "partial-response warning",
}

func (k FaultKind) String() string {
	if k >= 0 && int(k) < len(faultNames) {
		return faultNames[k]
	}
	return "FaultKind(" + strconv.Itoa(int(k)) + ")"
}

// DefaultHugeAnswerBytes is the size of a HugeAnswer when Fault.Bytes is zero: 200 MiB.
const DefaultHugeAnswerBytes int64 = 200 << 20

// DuplicateLabel is the label DuplicateSeries adds to its copies.
const DuplicateLabel = "faultproxy_copy"

// PartialWarningText is the warning PartialWarning adds.
const PartialWarningText = "partial response: store 127.0.0.1:10901 is unreachable, 1 of 2 stores answered (injected by testbed.FaultProxy)"

// HTML502Body is the page HTML502 answers with.
const HTML502Body = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"

// InvalidJSONBody is the body InvalidJSON answers with: a vector whose first sample breaks off
// into a syntax error.
const InvalidJSONBody = `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"pod" "x"},"value":[1,"1"]}]}}`

// Fault is what a FaultProxy does to queries.
type Fault struct {
	Kind FaultKind
	// Delay is how long Delay holds each query.
	Delay time.Duration
	// Bytes is the least size of a HugeAnswer; DefaultHugeAnswerBytes when zero.
	Bytes int64
	// Value is the sample value SpecialValue writes, as Prometheus writes it: "NaN", "+Inf", "-Inf".
	Value string
	// Select limits DuplicateSeries, SpecialValue and NativeHistogram to the samples that carry
	// every label given here with the given value; empty selects every sample.
	Select map[string]string
}

func (f Fault) String() string {
	switch f.Kind {
	case Delay:
		return fmt.Sprintf("%s %s", f.Kind, f.Delay)
	case HugeAnswer:
		return fmt.Sprintf("%s of %d bytes", f.Kind, f.hugeBytes())
	case SpecialValue:
		return fmt.Sprintf("%s %s for %v", f.Kind, f.Value, f.Select)
	case DuplicateSeries, NativeHistogram:
		return fmt.Sprintf("%s for %v", f.Kind, f.Select)
	}
	return f.Kind.String()
}

func (f Fault) hugeBytes() int64 {
	if f.Bytes > 0 {
		return f.Bytes
	}
	return DefaultHugeAnswerBytes
}

// selects reports whether a sample with these labels is one the fault changes.
func (f Fault) selects(metric map[string]string) bool {
	for k, v := range f.Select {
		if metric[k] != v {
			return false
		}
	}
	return true
}

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

func writeBody(w http.ResponseWriter, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// rewriteAnswer applies a rewriting fault to a Prometheus API answer and reports whether it
// changed anything. Fields it does not know are kept.
func rewriteAnswer(body []byte, f Fault) ([]byte, bool, error) {
	var answer map[string]json.RawMessage
	if err := json.Unmarshal(body, &answer); err != nil {
		return nil, false, fmt.Errorf("the backend's answer is not a JSON object: %w", err)
	}
	if f.Kind == PartialWarning {
		var warnings []string
		if raw, ok := answer["warnings"]; ok {
			if err := json.Unmarshal(raw, &warnings); err != nil {
				return nil, false, fmt.Errorf("the backend's warnings: %w", err)
			}
		}
		answer["warnings"] = mustJSON(append(warnings, PartialWarningText))
		return mustJSON(answer), true, nil
	}
	var data struct {
		ResultType string                       `json:"resultType"`
		Result     []map[string]json.RawMessage `json:"result"`
	}
	if raw, ok := answer["data"]; !ok || json.Unmarshal(raw, &data) != nil || data.ResultType != "vector" {
		return body, false, nil // only vectors are rewritten
	}
	var result []map[string]json.RawMessage
	changed := false
	for _, sample := range data.Result {
		var metric map[string]string
		if err := json.Unmarshal(sample["metric"], &metric); err != nil {
			return nil, false, fmt.Errorf("a sample's metric: %w", err)
		}
		if f.Kind != MatrixResult && !f.selects(metric) {
			result = append(result, sample)
			continue
		}
		changed = true
		switch f.Kind {
		case MatrixResult:
			sample["values"] = json.RawMessage("[" + string(sample["value"]) + "]")
			delete(sample, "value")
			result = append(result, sample)
		case DuplicateSeries:
			copied := map[string]string{DuplicateLabel: "1"}
			for k, v := range metric {
				copied[k] = v
			}
			result = append(result, sample, map[string]json.RawMessage{"metric": mustJSON(copied), "value": sample["value"]})
		case SpecialValue, NativeHistogram:
			var point []json.RawMessage
			if err := json.Unmarshal(sample["value"], &point); err != nil || len(point) != 2 {
				return nil, false, fmt.Errorf("a sample's value %s is not [time, value]", sample["value"])
			}
			if f.Kind == SpecialValue {
				sample["value"] = mustJSON([]json.RawMessage{point[0], mustJSON(f.Value)})
			} else {
				delete(sample, "value")
				sample["histogram"] = mustJSON([]json.RawMessage{point[0], json.RawMessage(`{"count":"1","sum":"1","buckets":[]}`)})
			}
			result = append(result, sample)
		}
	}
	if result == nil {
		result = []map[string]json.RawMessage{}
	}
	resultType := data.ResultType
	if f.Kind == MatrixResult {
		resultType = "matrix"
	}
	answer["data"] = mustJSON(map[string]any{"resultType": resultType, "result": result})
	return mustJSON(answer), changed, nil
}

func mustJSON(v any) json.RawMessage {
	out, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("fault proxy: encoding %T: %v", v, err))
	}
	return out
}

// writeHugeAnswer streams a vector of at least size bytes: samples of faultproxy_huge, each with
// a distinct pod label and a 1 KiB padding label, value 1 at the current time.
func writeHugeAnswer(w http.ResponseWriter, size int64) {
	const head = `{"status":"success","data":{"resultType":"vector","result":[`
	const trailer = `]}}`
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	out := bufio.NewWriterSize(w, 64<<10)
	padding := strings.Repeat("x", 1024)
	prefix := []byte(`{"metric":{"__name__":"faultproxy_huge","namespace":"faultproxy","padding":"` + padding + `","pod":"huge-`)
	suffix := []byte(`"},"value":[` + strconv.FormatInt(time.Now().Unix(), 10) + `,"1"]}`)
	written, _ := out.WriteString(head)
	total := int64(written)
	var digits []byte
	for i := 0; total+int64(len(trailer)) < size; i++ {
		if i > 0 {
			if out.WriteByte(',') != nil {
				return
			}
			total++
		}
		digits = strconv.AppendInt(digits[:0], int64(i), 10)
		n1, _ := out.Write(prefix)
		n2, _ := out.Write(digits)
		n3, err := out.Write(suffix)
		if err != nil {
			return // the client went away
		}
		total += int64(n1 + n2 + n3)
	}
	_, _ = out.WriteString(trailer)
	_ = out.Flush()
}
