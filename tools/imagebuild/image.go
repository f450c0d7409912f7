package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// What the image promises; the Dockerfile (distroless static :nonroot) promises the same.
const (
	// nonrootID is the uid and gid of distroless' "nonroot" user.
	nonrootID = 65532
	// imageUser is the user the container runs as, numeric so that Kubernetes' runAsNonRoot
	// check can verify it without reading /etc/passwd.
	imageUser = "65532:65532"
	// entrypoint is where the binary lives in the image.
	entrypoint = "/promadapter"
	// exposedPort is the port deploy/ passes as --secure-port (the binary's own default is 443).
	exposedPort = "6443/tcp"
	// caBundlePath is where Go's crypto/x509 looks first on Linux, and where distroless puts it.
	caBundlePath = "/etc/ssl/certs/ca-certificates.crt"
)

// OCI annotation keys, used both as config labels and as index annotations (registries such as
// ghcr.io read the source from the index of a multi-platform image).
const (
	labelSource   = "org.opencontainers.image.source"
	labelVersion  = "org.opencontainers.image.version"
	labelRevision = "org.opencontainers.image.revision"
	labelTitle    = "org.opencontainers.image.title"
)

// Platform is an OS/architecture pair as Go (GOOS/GOARCH) and OCI spell it.
type Platform struct {
	OS, Arch string
}

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// Binary is the promadapter executable built for one platform.
type Binary struct {
	Platform Platform
	Data     []byte
}

// Spec is everything that goes into the image index. Equal specs give byte-identical blobs, so
// equal digests: nothing here reads the clock, the environment or the file system.
type Spec struct {
	// Binaries holds one executable per platform; the index lists them in this order.
	Binaries []Binary
	// CACerts is the PEM bundle installed at /etc/ssl/certs/ca-certificates.crt.
	CACerts []byte
	// Version, Revision and Source fill the OCI labels; an empty one is left out.
	Version, Revision, Source string
	// Created is the timestamp of every file, of the config and of its history (reproducible
	// builds pass SOURCE_DATE_EPOCH, or the Unix epoch).
	Created time.Time
}

// labels returns the OCI labels for s, without empty values.
func (s Spec) labels() map[string]string {
	l := map[string]string{labelTitle: "promadapter"}
	for k, v := range map[string]string{labelSource: s.Source, labelVersion: s.Version, labelRevision: s.Revision} {
		if v != "" {
			l[k] = v
		}
	}
	return l
}

// BuildIndex assembles one image per binary, each of two layers: a base layer shared by all
// platforms (users, groups, CA certificates, /tmp and the nonroot home) and the binary at
// /promadapter. It returns an OCI image index listing them with their platforms.
func BuildIndex(s Spec) (v1.ImageIndex, error) {
	if len(s.Binaries) == 0 {
		return nil, fmt.Errorf("no binaries: pass at least one -binary OS/ARCH=FILE")
	}
	if len(s.CACerts) == 0 {
		return nil, fmt.Errorf("no CA certificates: the bundle for %s is empty", caBundlePath)
	}
	base, err := newLayer(baseFiles(s.CACerts), s.Created)
	if err != nil {
		return nil, fmt.Errorf("base layer: %w", err)
	}
	var idx v1.ImageIndex = mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	seen := map[Platform]bool{}
	for _, b := range s.Binaries {
		if seen[b.Platform] {
			return nil, fmt.Errorf("%s: more than one binary for this platform", b.Platform)
		}
		seen[b.Platform] = true
		img, err := buildImage(s, base, b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.Platform, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: b.Platform.OS, Architecture: b.Platform.Arch}},
		})
	}
	return mutate.Annotations(idx, s.labels()).(v1.ImageIndex), nil
}

func buildImage(s Spec, base v1.Layer, b Binary) (v1.Image, error) {
	bin, err := newLayer([]file{{name: strings.TrimPrefix(entrypoint, "/"), mode: 0o755, data: b.Data}}, s.Created)
	if err != nil {
		return nil, fmt.Errorf("binary layer: %w", err)
	}
	created := v1.Time{Time: s.Created}
	cfg := &v1.ConfigFile{
		Architecture: b.Platform.Arch,
		OS:           b.Platform.OS,
		Created:      created,
		Config: v1.Config{
			User:         imageUser,
			Entrypoint:   []string{entrypoint},
			ExposedPorts: map[string]struct{}{exposedPort: {}},
			WorkingDir:   "/home/nonroot",
			// As in distroless: a PATH for `kubectl debug` style tools, and the CA bundle named
			// explicitly for programs that do not look in Go's default places.
			Env: []string{
				"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				"SSL_CERT_FILE=" + caBundlePath,
			},
			Labels: s.labels(),
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return nil, err
	}
	return mutate.Append(img,
		mutate.Addendum{Layer: base, MediaType: types.OCILayer, History: v1.History{
			Created: created, CreatedBy: "imagebuild: base", Comment: "nonroot user and group, CA certificates, /tmp"}},
		mutate.Addendum{Layer: bin, MediaType: types.OCILayer, History: v1.History{
			Created: created, CreatedBy: "imagebuild: COPY promadapter " + entrypoint}},
	)
}

// file is one entry of a layer. A name ending in "/" is a directory.
type file struct {
	name     string
	mode     int64
	uid, gid int
	data     []byte
}

// baseFiles is the file system a static Go binary may need, as distroless static :nonroot
// provides it: users and groups (for the numeric user's name and home), name service order for
// Go's resolver, CA certificates, a writable /tmp and the nonroot home.
func baseFiles(caCerts []byte) []file {
	passwd := "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
		fmt.Sprintf("nonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonrootID, nonrootID)
	group := "root:x:0:\nnobody:x:65534:\n" + fmt.Sprintf("nonroot:x:%d:\n", nonrootID)
	return []file{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/nsswitch.conf", mode: 0o644, data: []byte("hosts: files dns\n")},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: strings.TrimPrefix(caBundlePath, "/"), mode: 0o644, data: caCerts},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, uid: nonrootID, gid: nonrootID},
		{name: "tmp/", mode: 0o1777},
	}
}

// newLayer writes files, sorted by name, into a gzip-compressed tar in which every timestamp is
// mtime and nothing describes the build machine (no user names, no access times), so the same
// files always give the same digest.
func newLayer(files []file, mtime time.Time) (v1.Layer, error) {
	files = append([]file(nil), files...)
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	// compress/gzip writes no name and a zero modification time into its header; its output
	// depends only on the input, the level and the Go release. Level 9 would save 0.4% of the
	// binary layer for almost three times the time.
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, f := range files {
		if path.Clean(f.name) != strings.TrimSuffix(f.name, "/") || path.IsAbs(f.name) {
			return nil, fmt.Errorf("layer entry %q: want a clean relative path", f.name)
		}
		h := &tar.Header{
			Name:     f.name,
			Typeflag: tar.TypeReg,
			Mode:     f.mode,
			Uid:      f.uid,
			Gid:      f.gid,
			Size:     int64(len(f.data)),
			ModTime:  mtime,
			Format:   tar.FormatPAX,
		}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	compressed := gz.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(compressed)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
