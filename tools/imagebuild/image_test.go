package main

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const fakeCACerts = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"

// fakeSpec is a spec with tiny fake binaries, one per platform, each with different content.
func fakeSpec() Spec {
	var bins []Binary
	for _, arch := range []string{"amd64", "arm64", "riscv64"} {
		bins = append(bins, Binary{Platform: Platform{OS: "linux", Arch: arch}, Data: []byte("#!fake promadapter for " + arch + "\n")})
	}
	return Spec{
		Binaries: bins,
		CACerts:  []byte(fakeCACerts),
		Version:  "v0.1.0-test",
		Revision: "0123456789abcdef0123456789abcdef01234567",
		Source:   "https://github.com/promadapter/promadapter",
		Created:  time.Unix(0, 0).UTC(),
	}
}

// readTree returns every regular file of dir by its relative path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBuildingTwiceGivesTheSameLayoutByteForByte(t *testing.T) {
	var trees []map[string][]byte
	var digests []v1.Hash
	for i := range 2 {
		idx, err := BuildIndex(fakeSpec())
		if err != nil {
			t.Fatal(err)
		}
		d, err := idx.Digest()
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "promadapter")
		if err := WriteLayout(dir, idx, "v0.1.0-test"); err != nil {
			t.Fatalf("build %d: %v", i+1, err)
		}
		digests = append(digests, d)
		trees = append(trees, readTree(t, dir))
	}
	if digests[0] != digests[1] {
		t.Errorf("index digests differ: %s, then %s", digests[0], digests[1])
	}
	if len(trees[0]) != len(trees[1]) {
		t.Fatalf("the layouts hold %d and %d files", len(trees[0]), len(trees[1]))
	}
	for name, data := range trees[0] {
		if !bytes.Equal(data, trees[1][name]) {
			t.Errorf("%s differs between the two builds", name)
		}
	}
	// 1 index + 3 manifests + 3 configs + 1 shared base layer + 3 binary layers.
	if blobs := len(trees[0]) - 2; blobs != 11 {
		t.Errorf("%d blobs, want 11 (the base layer written once for all platforms)", blobs)
	}
}

func TestTheDigestFollowsTheInputs(t *testing.T) {
	base, err := BuildIndex(fakeSpec())
	if err != nil {
		t.Fatal(err)
	}
	baseDigest, _ := base.Digest()
	changes := []struct {
		name   string
		change func(*Spec)
	}{
		{"another binary", func(s *Spec) { s.Binaries[1].Data = []byte("other") }},
		{"another version", func(s *Spec) { s.Version = "v0.2.0" }},
		{"another timestamp", func(s *Spec) { s.Created = time.Unix(1700000000, 0) }},
		{"other CA certificates", func(s *Spec) { s.CACerts = []byte(fakeCACerts + fakeCACerts) }},
	}
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			s := fakeSpec()
			c.change(&s)
			idx, err := BuildIndex(s)
			if err != nil {
				t.Fatal(err)
			}
			if d, _ := idx.Digest(); d == baseDigest {
				t.Errorf("the index digest did not change")
			}
		})
	}
}

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

func TestRefusals(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Spec)
		want   string
	}{
		{"no binaries", func(s *Spec) { s.Binaries = nil }, "no binaries"},
		{"no CA certificates", func(s *Spec) { s.CACerts = nil }, "no CA certificates"},
		{"two binaries for one platform", func(s *Spec) { s.Binaries[2].Platform = s.Binaries[0].Platform }, "linux/amd64: more than one binary"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := fakeSpec()
			c.change(&s)
			_, err := BuildIndex(s)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("BuildIndex: %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestReadCACertsSaysWhatToInstall(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "empty.crt")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.crt")
	if err := os.WriteFile(good, []byte(fakeCACerts), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path, want string
	}{
		{"a missing bundle names the Debian package", filepath.Join(dir, "absent.crt"), "apt-get install ca-certificates"},
		{"a file without certificates is refused", notPEM, "no PEM certificate"},
		{"a PEM bundle is read", good, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := readCACerts(c.path)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Errorf("readCACerts(%s): %v, want %q", c.path, err, c.want)
			}
		})
	}
}

func TestCheckELFRefusesABinaryOfAnotherArchitecture(t *testing.T) {
	// The test binary itself is an ELF executable for this machine.
	if runtime.GOOS != "linux" {
		t.Skip("needs a Linux test binary")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	if err := checkELF(Platform{"linux", runtime.GOARCH}, data); err != nil {
		t.Errorf("this machine's binary for linux/%s: %v", runtime.GOARCH, err)
	}
	if err := checkELF(Platform{"linux", other}, data); err == nil || !strings.Contains(err.Error(), "GOARCH="+other) {
		t.Errorf("this machine's binary for linux/%s: %v, want a refusal naming GOARCH=%s", other, err, other)
	}
	if err := checkELF(Platform{"linux", runtime.GOARCH}, []byte("#!/bin/sh\n")); err == nil || !strings.Contains(err.Error(), "not an ELF") {
		t.Errorf("a shell script: %v, want a refusal", err)
	}
}

func TestBinaryFlags(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		want  []binaryFlag
		error string
	}{
		{"platforms keep their order", []string{"linux/arm64=a", "linux/amd64=b"},
			[]binaryFlag{{Platform{"linux", "arm64"}, "a"}, {Platform{"linux", "amd64"}, "b"}}, ""},
		{"a file path may contain =", []string{"linux/riscv64=dir/a=b"}, []binaryFlag{{Platform{"linux", "riscv64"}, "dir/a=b"}}, ""},
		{"no file", []string{"linux/amd64"}, nil, "want OS/ARCH=FILE"},
		{"no architecture", []string{"linux=x"}, nil, "want OS/ARCH=FILE"},
		{"not linux", []string{"darwin/arm64=x"}, nil, "only linux images"},
		{"an unknown architecture", []string{"linux/mips=x"}, nil, `architecture "mips" is not supported`},
		{"a platform twice", []string{"linux/amd64=a", "linux/amd64=b"}, nil, "linux/amd64 is already given (a)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b binaryFlags
			var err error
			for _, a := range c.args {
				if err = b.Set(a); err != nil {
					break
				}
			}
			if c.error != "" {
				if err == nil || !strings.Contains(err.Error(), c.error) {
					t.Errorf("error %v, want one containing %q", err, c.error)
				}
				return
			}
			if err != nil || !reflect.DeepEqual([]binaryFlag(b), c.want) {
				t.Errorf("got %v, %v; want %v", b, err, c.want)
			}
		})
	}
}

func TestTheLayoutIsReadableByEveryoneAndReplacesTheOldOne(t *testing.T) {
	idx, err := BuildIndex(fakeSpec())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "images", "promadapter")
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "blobs", "sha256", "0000")
	if err := os.WriteFile(stale, []byte("a blob of an earlier build"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteLayout(dir, idx, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("a blob of the earlier layout is still there (%v)", err)
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o644)
		if d.IsDir() {
			want = 0o755 | fs.ModeDir
		}
		if info.Mode() != want {
			t.Errorf("%s: mode %s, want %s", p, info.Mode(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	siblings, _ := os.ReadDir(filepath.Dir(dir))
	if len(siblings) != 1 {
		t.Errorf("%s holds %d entries, want only the layout (no temporary directory left)", filepath.Dir(dir), len(siblings))
	}
}
