// Tests that each platform's image carries what the Dockerfile's distroless image carries.

package main

import (
	"archive/tar"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestTheImageIsTheDockerfilesImage reads the layout back as a registry client would and checks
// each platform's image carries what the Dockerfile's distroless :nonroot image carries.
func TestTheImageIsTheDockerfilesImage(t *testing.T) {
	spec := fakeSpec()
	idx, err := BuildIndex(spec)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "promadapter")
	if err := WriteLayout(dir, idx, "v0.1.0-test"); err != nil {
		t.Fatal(err)
	}
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	root, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	rootManifest, err := root.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(rootManifest.Manifests) != 1 || rootManifest.Manifests[0].MediaType != types.OCIImageIndex ||
		rootManifest.Manifests[0].Annotations[refNameAnnotation] != "v0.1.0-test" {
		t.Fatalf("index.json lists %+v; want one OCI image index named v0.1.0-test", rootManifest.Manifests)
	}
	images, err := root.ImageIndex(rootManifest.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := images.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	wantLabels := map[string]string{
		labelTitle:    "promadapter",
		labelSource:   "https://github.com/promadapter/promadapter",
		labelVersion:  "v0.1.0-test",
		labelRevision: "0123456789abcdef0123456789abcdef01234567",
	}
	if !reflect.DeepEqual(im.Annotations, wantLabels) {
		t.Errorf("index annotations %v, want %v", im.Annotations, wantLabels)
	}
	if len(im.Manifests) != len(spec.Binaries) {
		t.Fatalf("the index lists %d images, want %d", len(im.Manifests), len(spec.Binaries))
	}
	for i, d := range im.Manifests {
		b := spec.Binaries[i]
		t.Run(b.Platform.String(), func(t *testing.T) {
			if d.Platform == nil || d.Platform.OS != b.Platform.OS || d.Platform.Architecture != b.Platform.Arch {
				t.Errorf("descriptor platform %+v, want %s", d.Platform, b.Platform)
			}
			if d.MediaType != types.OCIManifestSchema1 {
				t.Errorf("manifest media type %s, want %s", d.MediaType, types.OCIManifestSchema1)
			}
			img, err := images.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.OS != b.Platform.OS || cfg.Architecture != b.Platform.Arch {
				t.Errorf("config platform %s/%s, want %s", cfg.OS, cfg.Architecture, b.Platform)
			}
			if cfg.Config.User != "65532:65532" {
				t.Errorf("user %q, want 65532:65532 (distroless nonroot)", cfg.Config.User)
			}
			if !reflect.DeepEqual(cfg.Config.Entrypoint, []string{"/promadapter"}) || cfg.Config.Cmd != nil {
				t.Errorf("entrypoint %q cmd %q, want [/promadapter] and no cmd", cfg.Config.Entrypoint, cfg.Config.Cmd)
			}
			if !reflect.DeepEqual(cfg.Config.ExposedPorts, map[string]struct{}{"6443/tcp": {}}) {
				t.Errorf("exposed ports %v, want 6443/tcp", cfg.Config.ExposedPorts)
			}
			if !reflect.DeepEqual(cfg.Config.Labels, wantLabels) {
				t.Errorf("labels %v, want %v", cfg.Config.Labels, wantLabels)
			}
			if !cfg.Created.Time.Equal(time.Unix(0, 0)) {
				t.Errorf("created %s, want the fixed epoch", cfg.Created.Time)
			}
			layers, err := img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range layers {
				if mt, _ := l.MediaType(); mt != types.OCILayer {
					t.Errorf("layer media type %s, want %s", mt, types.OCILayer)
				}
			}
			checkFiles(t, img, b.Data)
		})
	}
}

// checkFiles compares the image's flattened file system with what it must hold, entry by entry.
func checkFiles(t *testing.T, img v1.Image, binary []byte) {
	t.Helper()
	type entry struct {
		mode     int64
		uid, gid int
		mtime    int64
	}
	want := map[string]entry{
		"etc":                               {0o755, 0, 0, 0},
		"etc/group":                         {0o644, 0, 0, 0},
		"etc/nsswitch.conf":                 {0o644, 0, 0, 0},
		"etc/passwd":                        {0o644, 0, 0, 0},
		"etc/ssl":                           {0o755, 0, 0, 0},
		"etc/ssl/certs":                     {0o755, 0, 0, 0},
		"etc/ssl/certs/ca-certificates.crt": {0o644, 0, 0, 0},
		"home":                              {0o755, 0, 0, 0},
		"home/nonroot":                      {0o700, 65532, 65532, 0},
		"promadapter":                       {0o755, 0, 0, 0},
		"tmp":                               {0o1777, 0, 0, 0},
	}
	got := map[string]entry{}
	contents := map[string]string{}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		got[name] = entry{h.Mode, h.Uid, h.Gid, h.ModTime.Unix()}
		data, _ := io.ReadAll(tr)
		contents[name] = string(data)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("files:\n got %v\nwant %v", got, want)
	}
	if contents["promadapter"] != string(binary) {
		t.Errorf("/promadapter holds %q, want the binary", contents["promadapter"])
	}
	if !strings.Contains(contents["etc/passwd"], "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n") {
		t.Errorf("/etc/passwd lacks the nonroot user:\n%s", contents["etc/passwd"])
	}
	if !strings.Contains(contents["etc/group"], "nonroot:x:65532:\n") {
		t.Errorf("/etc/group lacks the nonroot group:\n%s", contents["etc/group"])
	}
	if contents["etc/ssl/certs/ca-certificates.crt"] != fakeCACerts {
		t.Errorf("the CA bundle is not the one given")
	}
}
