package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// refNameAnnotation names an entry of an OCI layout's index.json, so that tools can address it as
// DIR:NAME (skopeo's oci:bin/images/promadapter:v0.1.0, for example).
const refNameAnnotation = "org.opencontainers.image.ref.name"

// WriteLayout writes idx as the only entry of a new OCI image layout at dir, replacing whatever
// was there. The layout is written beside dir and renamed into place, so a reader never sees a
// half-written one and no blob of an earlier build is left behind.
func WriteLayout(dir string, idx v1.ImageIndex, refName string) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return fmt.Errorf("writing the OCI layout: %w", err)
	}
	var opts []layout.Option
	if refName != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{refNameAnnotation: refName}))
	}
	if err := p.AppendIndex(idx, opts...); err != nil {
		return fmt.Errorf("writing the OCI layout: %w", err)
	}
	// The layout is meant to be read by others (CI, other users), but MkdirTemp creates 0700 and
	// the layout package writes blobs through temporary files (0600) and index.json as 0777.
	err = filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.Chmod(p, 0o755)
		}
		return os.Chmod(p, 0o644)
	})
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing the previous layout: %w", err)
	}
	return os.Rename(tmp, dir)
}

// ImageSize is what one platform's image weighs.
type ImageSize struct {
	Platform Platform
	Digest   v1.Hash
	// Compressed is the sum of the layers' blob sizes: what a registry stores and a node pulls,
	// for a first pull (the base layer is shared by all platforms and pulled once).
	Compressed int64
	// Uncompressed is the sum of the layers' tar sizes: about what the image takes on a node's disk.
	Uncompressed int64
}

// Sizes returns the digest and sizes of each image of idx, in the index's order.
func Sizes(idx v1.ImageIndex) ([]ImageSize, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []ImageSize
	for _, d := range m.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, err
		}
		s := ImageSize{Digest: d.Digest}
		if d.Platform != nil {
			s.Platform = Platform{OS: d.Platform.OS, Arch: d.Platform.Architecture}
		}
		layers, err := img.Layers()
		if err != nil {
			return nil, err
		}
		for _, l := range layers {
			n, err := l.Size()
			if err != nil {
				return nil, err
			}
			s.Compressed += n
			rc, err := l.Uncompressed()
			if err != nil {
				return nil, err
			}
			u, err := countBytes(rc)
			rc.Close()
			if err != nil {
				return nil, err
			}
			s.Uncompressed += u
		}
		out = append(out, s)
	}
	return out, nil
}

func countBytes(r io.Reader) (int64, error) { return io.Copy(io.Discard, r) }
