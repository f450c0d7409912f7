package testbed

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// backendVector is the answer of the fake backend below to every query: two pods' samples.
const backendVector = `{"status":"success","data":{"resultType":"vector","result":[` +
	`{"metric":{"namespace":"ns-0","pod":"a"},"value":[1700000000.5,"1.5"]},` +
	`{"metric":{"namespace":"ns-0","pod":"b"},"value":[1700000000.5,"2"]}]}}`

// backendLabels is its answer to the label values API.
const backendLabels = `{"status":"success","data":["http_requests_total"]}`

// startFakeBackend is a loopback server answering like Prometheus: backendVector for queries,
// backendLabels for everything else. It records the last query it saw.
func startFakeBackend(t *testing.T) (*httptest.Server, *string) {
	t.Helper()
	var lastQuery string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/api/v1/query" {
			lastQuery = r.Form.Get("query")
			io.WriteString(w, backendVector)
			return
		}
		io.WriteString(w, backendLabels)
	}))
	t.Cleanup(backend.Close)
	return backend, &lastQuery
}

func startProxy(t *testing.T) (*FaultProxy, *string) {
	t.Helper()
	backend, lastQuery := startFakeBackend(t)
	proxy, err := StartFaultProxy(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	return proxy, lastQuery
}

func setFault(t *testing.T, p *FaultProxy, f Fault) {
	t.Helper()
	if err := p.SetFault(f); err != nil {
		t.Fatal(err)
	}
}

// get asks the proxy for path with a fresh connection and returns the status and body.
func get(t *testing.T, p *FaultProxy, path string) (int, string, error) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}}
	resp, err := client.Get(p.URL + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func mustGet(t *testing.T, p *FaultProxy, path string) (int, string) {
	t.Helper()
	status, body, err := get(t, p, path)
	if err != nil {
		t.Fatalf("GET %s%s: %v", p.URL, path, err)
	}
	return status, body
}

const queryPath = "/api/v1/query?query=" + "up%7Bjob%3D%22x%22%7D"

// sample is one decoded vector or matrix element.
type sample struct {
	Metric    map[string]string   `json:"metric"`
	Value     []json.RawMessage   `json:"value"`
	Values    [][]json.RawMessage `json:"values"`
	Histogram []json.RawMessage   `json:"histogram"`
}

type answer struct {
	Status   string   `json:"status"`
	Warnings []string `json:"warnings"`
	Data     struct {
		ResultType string   `json:"resultType"`
		Result     []sample `json:"result"`
	} `json:"data"`
}

func decodeAnswer(t *testing.T, body string) answer {
	t.Helper()
	var a answer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("the answer %q is not JSON: %v", body, err)
	}
	return a
}

func value(t *testing.T, s sample) string {
	t.Helper()
	var v string
	if len(s.Value) != 2 || json.Unmarshal(s.Value[1], &v) != nil {
		t.Fatalf("sample %+v has no [time, \"value\"]", s)
	}
	return v
}

func TestFaultProxyPassesThroughUnchanged(t *testing.T) {
	p, lastQuery := startProxy(t)
	status, body := mustGet(t, p, queryPath)
	if status != http.StatusOK || body != backendVector {
		t.Fatalf("got %d %q, want 200 and the backend's answer %q", status, body, backendVector)
	}
	if *lastQuery != `up{job="x"}` {
		t.Errorf("the backend saw query %q, want up{job=\"x\"}", *lastQuery)
	}
	// A POSTed form reaches the backend too.
	resp, err := http.PostForm(p.URL+"/api/v1/query", url.Values{"query": {`sum(up)`}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || *lastQuery != "sum(up)" {
		t.Errorf("POST: status %d, the backend saw %q; want 200 and sum(up)", resp.StatusCode, *lastQuery)
	}
	if p.Queries() != 2 || p.Faulted() != 0 {
		t.Errorf("Queries()=%d Faulted()=%d, want 2 and 0", p.Queries(), p.Faulted())
	}
}

func TestFaultProxyDownRefusesConnectionsUntilTheNextFault(t *testing.T) {
	p, _ := startProxy(t)
	setFault(t, p, Fault{Kind: Down})
	for _, path := range []string{queryPath, "/api/v1/label/__name__/values"} {
		_, _, err := get(t, p, path)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("GET %s while down: %v, want connection refused", path, err)
		}
	}
	setFault(t, p, Fault{Kind: PassThrough})
	if status, body := mustGet(t, p, queryPath); status != http.StatusOK || body != backendVector {
		t.Errorf("after coming back on the same URL %s: %d %q", p.URL, status, body)
	}
}

func TestFaultProxyLeavesNonQueryRequestsAlone(t *testing.T) {
	p, _ := startProxy(t)
	setFault(t, p, Fault{Kind: HTML502})
	if status, body := mustGet(t, p, "/api/v1/label/__name__/values"); status != http.StatusOK || body != backendLabels {
		t.Errorf("label values under HTML502: %d %q, want the backend's answer", status, body)
	}
	if p.Faulted() != 0 {
		t.Errorf("Faulted()=%d after a label request, want 0", p.Faulted())
	}
}

func TestFaultProxyCannedAnswers(t *testing.T) {
	p, _ := startProxy(t)
	for _, c := range []struct {
		fault      FaultKind
		wantStatus int
		wantBody   string
	}{
		{InvalidJSON, http.StatusOK, InvalidJSONBody},
		{HTML502, http.StatusBadGateway, HTML502Body},
	} {
		setFault(t, p, Fault{Kind: c.fault})
		status, body := mustGet(t, p, queryPath)
		if status != c.wantStatus || body != c.wantBody {
			t.Errorf("%v: got %d %q, want %d %q", c.fault, status, body, c.wantStatus, c.wantBody)
		}
		if p.Faulted() != 1 {
			t.Errorf("%v: Faulted()=%d, want 1", c.fault, p.Faulted())
		}
	}
	if json.Valid([]byte(InvalidJSONBody)) {
		t.Errorf("InvalidJSONBody is valid JSON")
	}
}

func TestFaultProxyKillMidAnswerBreaksTheConnection(t *testing.T) {
	p, _ := startProxy(t)
	setFault(t, p, Fault{Kind: KillMidAnswer})
	status, body, err := get(t, p, queryPath)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %d %q and error %v; want the body to end early (unexpected EOF)", status, body, err)
	}
	if status != http.StatusOK || body != backendVector[:len(backendVector)/2] {
		t.Errorf("got %d and %q before the cut, want 200 and the first half of the answer", status, body)
	}
}

func TestFaultProxyTruncatedBodyIsCompleteButCut(t *testing.T) {
	p, _ := startProxy(t)
	setFault(t, p, Fault{Kind: TruncatedBody})
	status, body := mustGet(t, p, queryPath)
	if status != http.StatusOK || body != backendVector[:len(backendVector)/2] {
		t.Errorf("got %d %q, want 200 and the first half of the answer", status, body)
	}
}

func TestFaultProxyDelayHoldsQueries(t *testing.T) {
	p, _ := startProxy(t)
	setFault(t, p, Fault{Kind: Delay, Delay: 300 * time.Millisecond})
	start := time.Now()
	status, body := mustGet(t, p, queryPath)
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("the answer came after %v, want at least 300ms", took)
	}
	if status != http.StatusOK || body != backendVector {
		t.Errorf("got %d %q, want the backend's answer after the delay", status, body)
	}
}

func TestFaultProxyHugeAnswerIsValidAndAtLeastTheSize(t *testing.T) {
	p, _ := startProxy(t)
	const size = 1 << 20
	setFault(t, p, Fault{Kind: HugeAnswer, Bytes: size})
	status, body := mustGet(t, p, queryPath)
	if status != http.StatusOK || len(body) < size || len(body) > size+2048 {
		t.Fatalf("got %d and %d bytes, want 200 and between %d and %d bytes", status, len(body), size, size+2048)
	}
	a := decodeAnswer(t, body)
	if a.Data.ResultType != "vector" || len(a.Data.Result) < size/1200 {
		t.Fatalf("got a %s of %d samples, want a vector of about %d", a.Data.ResultType, len(a.Data.Result), size/1150)
	}
	last := a.Data.Result[len(a.Data.Result)-1]
	if last.Metric["pod"] != "huge-"+strconv.Itoa(len(a.Data.Result)-1) || len(last.Metric["padding"]) != 1024 || value(t, last) != "1" {
		t.Errorf("last sample %v: want a distinct pod label, 1 KiB of padding and value 1", last.Metric["pod"])
	}
}

func TestFaultProxyDefaultHugeAnswerIsStreamed(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 200 MiB")
	}
	p, _ := startProxy(t)
	setFault(t, p, Fault{Kind: HugeAnswer})
	resp, err := http.Get(p.URL + queryPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != -1 {
		t.Errorf("Content-Length %d: a streamed answer has none", resp.ContentLength)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n < DefaultHugeAnswerBytes {
		t.Errorf("read %d bytes (%v), want at least %d", n, err, DefaultHugeAnswerBytes)
	}
}

func TestFaultProxyRewritesRealAnswers(t *testing.T) {
	p, _ := startProxy(t)
	onlyA := map[string]string{"pod": "a"}

	setFault(t, p, Fault{Kind: MatrixResult})
	a := decodeAnswer(t, mustBody(t, p))
	if a.Data.ResultType != "matrix" || len(a.Data.Result) != 2 || len(a.Data.Result[0].Values) != 1 || a.Data.Result[0].Value != nil {
		t.Errorf("matrix: got %+v, want a matrix of two series with one point each", a.Data)
	}

	setFault(t, p, Fault{Kind: DuplicateSeries, Select: onlyA})
	a = decodeAnswer(t, mustBody(t, p))
	var got []string
	for _, s := range a.Data.Result {
		got = append(got, s.Metric["pod"]+"/"+s.Metric[DuplicateLabel]+"="+value(t, s))
	}
	if want := "a/=1.5 a/1=1.5 b/=2"; strings.Join(got, " ") != want {
		t.Errorf("duplicate: got %q, want %q", strings.Join(got, " "), want)
	}

	for _, special := range []string{"NaN", "+Inf"} {
		setFault(t, p, Fault{Kind: SpecialValue, Value: special, Select: onlyA})
		a = decodeAnswer(t, mustBody(t, p))
		if len(a.Data.Result) != 2 || value(t, a.Data.Result[0]) != special || value(t, a.Data.Result[1]) != "2" {
			t.Errorf("%s: got %+v, want pod a's value %s and pod b's unchanged", special, a.Data.Result, special)
		}
	}

	setFault(t, p, Fault{Kind: NativeHistogram, Select: onlyA})
	a = decodeAnswer(t, mustBody(t, p))
	if h := a.Data.Result[0]; h.Value != nil || len(h.Histogram) != 2 || string(h.Histogram[1]) != `{"count":"1","sum":"1","buckets":[]}` {
		t.Errorf("histogram: got %+v for pod a, want a histogram instead of a value", h)
	}
	if value(t, a.Data.Result[1]) != "2" {
		t.Errorf("histogram: pod b changed: %+v", a.Data.Result[1])
	}

	setFault(t, p, Fault{Kind: PartialWarning})
	a = decodeAnswer(t, mustBody(t, p))
	if a.Status != "success" || len(a.Warnings) != 1 || a.Warnings[0] != PartialWarningText || len(a.Data.Result) != 2 {
		t.Errorf("partial: got %+v, want the real answer plus the warning", a)
	}

	setFault(t, p, Fault{Kind: SpecialValue, Value: "NaN", Select: map[string]string{"pod": "nobody"}})
	if body := mustBody(t, p); p.Faulted() != 0 || len(decodeAnswer(t, body).Data.Result) != 2 {
		t.Errorf("a selection matching no sample: Faulted()=%d, answer %s; want 0 and the answer unchanged", p.Faulted(), body)
	}
}

func mustBody(t *testing.T, p *FaultProxy) string {
	t.Helper()
	status, body := mustGet(t, p, queryPath)
	if status != http.StatusOK {
		t.Fatalf("%v: got %d %q, want 200", p.Fault(), status, body)
	}
	return body
}

func TestFaultProxyRejectsIncompleteFaults(t *testing.T) {
	p, _ := startProxy(t)
	if err := p.SetFault(Fault{Kind: SpecialValue}); err == nil {
		t.Error("SpecialValue without a Value was accepted")
	}
	if err := p.SetFault(Fault{Kind: PartialWarning + 1}); err == nil {
		t.Error("an unknown fault was accepted")
	}
	p.Close()
	if err := p.SetFault(Fault{Kind: PassThrough}); err == nil {
		t.Error("SetFault after Close was accepted")
	}
}
