package resourceprovider

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"math/bits"
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	genericfeatures "k8s.io/apiserver/pkg/features"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/metrics/pkg/apis/metrics"
	"k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// The encodings of a streamed PodMetrics list (stream.go): byte for byte what the apiserver's
// serializers write for the whole v1beta1 list (stream_test.go compares them).

// podListPrefix opens a v1beta1 PodMetricsList as the apiserver's JSON serializer writes it.
const podListPrefix = `{"kind":"PodMetricsList","apiVersion":"metrics.k8s.io/v1beta1","metadata":{},"items":[`

// gzipThreshold is the size from which the apiserver compresses an answer (its
// defaultGzipThresholdBytes).
const gzipThreshold = 128 << 10

// writeJSONPodList writes l as a v1beta1 PodMetricsList in JSON, building one item at a time.
func writeJSONPodList(w io.Writer, l *podList) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := bw.WriteString(podListPrefix); err != nil {
		return err
	}
	buf := make([]byte, 0, 1024)
	first := true
	err := l.each(func(pm *metrics.PodMetrics) error {
		buf = buf[:0]
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = appendPodMetricsJSON(buf, pm)
		_, err := bw.Write(buf)
		return err
	})
	if err != nil {
		return err
	}
	if _, err := bw.WriteString("]}\n"); err != nil {
		return err
	}
	return bw.Flush()
}

// acceptsGzip is the apiserver's rule: compression enabled and gzip among Accept-Encoding.
func acceptsGzip(r *http.Request) bool {
	if !utilfeature.DefaultFeatureGate.Enabled(genericfeatures.APIResponseCompression) {
		return false
	}
	for _, encoding := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		if strings.TrimSpace(encoding) == "gzip" {
			return true
		}
	}
	return false
}

// deferredGzip writes a 200 answer, gzipped when the client accepts it and the answer
// reaches gzipThreshold: it holds the first bytes until it knows which.
type deferredGzip struct {
	w         http.ResponseWriter
	mediaType string
	gzip      bool
	held      []byte
	out       io.Writer
	gzWriter  *gzip.Writer
}

func newDeferredGzip(w http.ResponseWriter, mediaType string, gzipOK bool) *deferredGzip {
	return &deferredGzip{w: w, mediaType: mediaType, gzip: gzipOK}
}

func (d *deferredGzip) Write(b []byte) (int, error) {
	if d.out != nil {
		return d.out.Write(b)
	}
	if !d.gzip {
		d.start(false)
		return d.out.Write(b)
	}
	if len(d.held)+len(b) < gzipThreshold {
		d.held = append(d.held, b...)
		return len(b), nil
	}
	d.start(true)
	held := d.held
	d.held = nil
	if _, err := d.out.Write(held); err != nil {
		return 0, err
	}
	return d.out.Write(b)
}

// start writes the header, compressed or not.
func (d *deferredGzip) start(compress bool) {
	header := d.w.Header()
	header.Set("Content-Type", d.mediaType)
	d.out = d.w
	if compress {
		header.Set("Content-Encoding", "gzip")
		header.Add("Vary", "Accept-Encoding")
		// The apiserver's level: fast, as answers are large and read once.
		d.gzWriter, _ = gzip.NewWriterLevel(d.w, gzip.BestSpeed)
		d.out = d.gzWriter
	}
	d.w.WriteHeader(http.StatusOK)
}

// Close writes what is held (an answer below the threshold, uncompressed) or ends the gzip
// stream.
func (d *deferredGzip) Close() error {
	if d.out == nil {
		d.start(false)
		_, err := d.out.Write(d.held)
		d.held = nil
		return err
	}
	if d.gzWriter != nil {
		return d.gzWriter.Close()
	}
	return nil
}

// protobufPrefix starts every Kubernetes protobuf answer ("k8s\x00").
var protobufPrefix = []byte{0x6b, 0x38, 0x73, 0x00}

// Protobuf field headers (field number << 3 | wire type 2, length-delimited) of
// PodMetricsList's metadata (1) and items (2).
const (
	listMetaField = 0x0a
	itemsField    = 0x12
)

// encodedItemsMaxBytes bounds the items a protobuf list holds encoded while it learns the
// list's length (the envelope states it first). A list that fits is built once; the items of a
// larger one past the bound are only measured, then built again as they are written, so a
// large list costs a second build of its rest rather than its size in memory. 4 MiB holds
// about 27,000 of the benchmark's pods (two containers, one label: 154 B each); it is a var
// for the tests of both ways.
var encodedItemsMaxBytes = 4 << 20

// writeProtobufPodList writes l as a v1beta1 PodMetricsList in Kubernetes' protobuf envelope
// (runtime.Unknown holding the list).
func writeProtobufPodList(w io.Writer, l *podList) error {
	var item v1beta1.PodMetrics
	var listMeta v1beta1.PodMetricsList // its ListMeta: empty, as the apiserver's
	metaSize := listMeta.ListMeta.Size()
	total := 1 + varintSize(metaSize) + metaSize
	// held are the first items, encoded with their field headers as they will be written;
	// rest is where the items not held start, and restSizes their measured sizes.
	var held []byte
	var rest listPosition
	var restSizes []int
	full := false
	err := l.build(listPosition{}, true, func(at listPosition, pm *metrics.PodMetrics) error {
		if err := v1beta1.Convert_metrics_PodMetrics_To_v1beta1_PodMetrics(pm, &item, nil); err != nil {
			return err
		}
		n := item.Size()
		field := 1 + varintSize(n) + n
		total += field
		if !full && len(held)+field <= encodedItemsMaxBytes {
			var err error
			held, err = appendField(held, itemsField, n, item.MarshalToSizedBuffer)
			return err
		}
		if !full {
			full, rest = true, at
		}
		restSizes = append(restSizes, n)
		return nil
	})
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := bw.Write(protobufPrefix); err != nil {
		return err
	}
	unknown := runtime.Unknown{TypeMeta: runtime.TypeMeta{APIVersion: v1beta1.SchemeGroupVersion.String(), Kind: "PodMetricsList"}}
	_, err = unknown.MarshalToWriter(bw, total, func(w io.Writer) (int, error) {
		buf, err := appendField(make([]byte, 0, 1024), listMetaField, metaSize, listMeta.ListMeta.MarshalToSizedBuffer)
		if err != nil {
			return 0, err
		}
		written, err := w.Write(buf)
		if err != nil {
			return written, err
		}
		n, err := w.Write(held)
		written += n
		if err != nil || !full {
			return written, err
		}
		i := 0
		err = l.build(rest, false, func(_ listPosition, pm *metrics.PodMetrics) error {
			if i == len(restSizes) {
				return fmt.Errorf("the list has more items than the %d measured", len(restSizes))
			}
			if err := v1beta1.Convert_metrics_PodMetrics_To_v1beta1_PodMetrics(pm, &item, nil); err != nil {
				return err
			}
			if buf, err = appendField(buf[:0], itemsField, restSizes[i], item.MarshalToSizedBuffer); err != nil {
				return err
			}
			i++
			n, err := w.Write(buf)
			written += n
			return err
		})
		if err == nil && i != len(restSizes) {
			err = fmt.Errorf("the list has %d items, %d measured", i, len(restSizes))
		}
		return written, err
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}

// appendField appends a length-delimited protobuf field of the given header and measured
// size, encoded by marshal.
func appendField(b []byte, field byte, size int, marshal func([]byte) (int, error)) ([]byte, error) {
	b = appendVarint(append(b, field), size)
	header := len(b)
	if need := header + size; need > cap(b) {
		// Doubling: append's growth (1.25× for large slices) allocated five times the final
		// size of a list's held items.
		grown := make([]byte, header, max(need, 2*cap(b)))
		copy(grown, b)
		b = grown
	}
	// MarshalToSizedBuffer fills the whole slice (from its end), so it needs no zeroing.
	b = b[:header+size]
	if n, err := marshal(b[header:]); err != nil {
		return b, err
	} else if n != size {
		return b, fmt.Errorf("a protobuf field encoded to %d bytes, measured %d", n, size)
	}
	return b, nil
}

func varintSize(v int) int { return (bits.Len64(uint64(v)|1) + 6) / 7 }

func appendVarint(b []byte, v int) []byte {
	u := uint64(v)
	for u >= 1<<7 {
		b = append(b, byte(u&0x7f|0x80))
		u >>= 7
	}
	return append(b, byte(u))
}
