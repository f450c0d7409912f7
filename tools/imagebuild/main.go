// Command imagebuild writes promadapter's multi-platform container image as an OCI image layout,
// without a container daemon: one image per -binary (built beforehand with CGO_ENABLED=0), each a
// static, non-root image equivalent to the Dockerfile's distroless one, and an index over them.
// Its output depends only on its inputs, so building twice gives the same digests.
//
//	go run ./tools/imagebuild -out bin/images/promadapter -version v0.1.0 \
//	  -binary linux/amd64=bin/platforms/linux-amd64/promadapter -binary linux/arm64=...
//
// `make images` runs it; push the result with `crane push bin/images/promadapter REF` (without
// --index: the layout's one entry is the image index) or
// `skopeo copy --all oci:bin/images/promadapter:VERSION docker://REF`.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	o := newOptions()
	o.Flags(flag.CommandLine)
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "imagebuild: %v\n", err)
		os.Exit(1)
	}
}

func run(o *options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	spec, err := o.Spec()
	if err != nil {
		return err
	}
	idx, err := BuildIndex(spec)
	if err != nil {
		return err
	}
	if err := WriteLayout(o.out, idx, o.version); err != nil {
		return err
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	sizes, err := Sizes(idx)
	if err != nil {
		return err
	}
	fmt.Printf("%s: index %s (version %s, revision %s)\n", o.out, digest, orNone(spec.Version), orNone(spec.Revision))
	for _, s := range sizes {
		fmt.Printf("  %-14s %s  layers %s compressed, %s uncompressed\n", s.Platform, s.Digest, mib(s.Compressed), mib(s.Uncompressed))
	}
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB (%d bytes)", float64(n)/(1<<20), n) }

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
