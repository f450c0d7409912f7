package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
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
