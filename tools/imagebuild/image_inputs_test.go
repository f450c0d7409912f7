// Tests of the inputs the build refuses or checks: specs, CA certificates, binaries and their flags.

package main

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

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
