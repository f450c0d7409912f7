package promclient

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
)

// vectorAnswer is an answer like Prometheus' to a cluster-wide query by namespace, pod and
// container: labels sorted, namespaces and containers interleaved (series come in hash order),
// pods unique.
func vectorAnswer(samples int) string {
	var b strings.Builder
	b.WriteString(`{"status":"success","data":{"resultType":"vector","result":[`)
	for i := range samples {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"metric":{"container":"%s","namespace":"team-%d","pod":"web-%d-7f9c6d5b4-%05d"},"value":[1700000000.123,"%s"]}`,
			[]string{"app", "istio-proxy", "log-shipper"}[i%3], i%17, i%97, i,
			strconv.FormatFloat(float64(i)*0.0137+0.25, 'f', -1, 64))
	}
	b.WriteString(`]}}`)
	return b.String()
}

// BenchmarkDecodeVector compares client_golang's v1.API.Query, fed the answer without a server,
// with decodeQueryResponse. Reproduce with
//
//	go test -run='^$' -bench=BenchmarkDecodeVector -benchmem ./pkg/promclient
func BenchmarkDecodeVector(b *testing.B) {
	for _, samples := range []int{1000, 20000} {
		body := vectorAnswer(samples)
		b.Run(fmt.Sprintf("samples=%d/client_golang", samples), func(b *testing.B) {
			api := v1.NewAPI(cannedAnswer(body))
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, _, err := api.Query(context.Background(), "q", time.Time{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("samples=%d/promclient", samples), func(b *testing.B) {
			raw := []byte(body)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeQueryResponse(raw, DefaultMaxSamples); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
