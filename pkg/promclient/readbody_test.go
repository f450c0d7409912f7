package promclient

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"
)

func TestReadBody(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB: several chunks
	tests := []struct {
		name          string
		r             io.Reader
		contentLength int64
		limit         int64
		want          []byte
		wantErr       error
	}{
		{"a body of announced length is read whole", bytes.NewReader(body), int64(len(body)), 2 << 20, body, nil},
		{"a body of unknown length is read whole across chunks", bytes.NewReader(body), -1, 2 << 20, body, nil},
		{"a body read one byte at a time is read whole", iotest.OneByteReader(bytes.NewReader(body[:5000])), -1, 2 << 20, body[:5000], nil},
		{"an empty body is empty", bytes.NewReader(nil), 0, 10, []byte{}, nil},
		{"a body of exactly the limit is served", bytes.NewReader(body), -1, int64(len(body)), body, nil},
		{"one byte over the limit is refused", bytes.NewReader(body), -1, int64(len(body)) - 1, nil, errOverLimit},
		{"a body shorter than announced is an error", bytes.NewReader(body[:10]), 20, 100, nil, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := readBody(tt.r, tt.contentLength, tt.limit)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && !bytes.Equal(got, tt.want) {
				t.Errorf("read %d bytes, want %d equal bytes", len(got), len(tt.want))
			}
		})
	}
}

// An answer of unknown length must not cost several times its size in discarded copies: that
// is what took the adapter past 350 MiB on two concurrent 64 MiB answers.
func TestReadBodyAllocatesAboutTwiceTheBodyAtMost(t *testing.T) {
	const size = 16 << 20
	body := bytes.Repeat([]byte{'x'}, size)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got, _, err := readBody(bytes.NewReader(body), -1, 64<<20)
	runtime.ReadMemStats(&after)
	if err != nil || len(got) != size {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 23*size/10 {
		t.Errorf("reading %d bytes allocated %d (%.1f×), want at most 2.3×", size, allocated, float64(allocated)/size)
	}
	_, _, err = readBody(bytes.NewReader(body), -1, size/2)
	if !errors.Is(err, errOverLimit) {
		t.Errorf("over the limit: %v, want errOverLimit", err)
	}
}
