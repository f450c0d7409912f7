package main

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// elfMachines are the ELF machine types of the architectures an image may be built for.
var elfMachines = map[string]elf.Machine{
	"amd64":   elf.EM_X86_64,
	"arm64":   elf.EM_AARCH64,
	"riscv64": elf.EM_RISCV,
	"ppc64le": elf.EM_PPC64,
	"s390x":   elf.EM_S390,
}

// checkELF fails unless data is a Linux executable for p, so that a binary handed to the wrong
// -binary flag cannot end up in another platform's image.
func checkELF(p Platform, data []byte) error {
	want, ok := elfMachines[p.Arch]
	if !ok {
		return fmt.Errorf("architecture %q is not supported (want one of amd64, arm64, riscv64, ppc64le, s390x)", p.Arch)
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("not an ELF executable (%v): build it with GOOS=linux", err)
	}
	defer f.Close()
	if f.Machine != want {
		return fmt.Errorf("built for %s, not %s: build it with GOARCH=%s", f.Machine, p.Arch, p.Arch)
	}
	return nil
}

// vcsRevision returns the commit the go command stamped into the binary (empty when it was built
// outside a repository or with -buildvcs=false) and whether the tree had uncommitted changes.
func vcsRevision(data []byte) (revision string, modified bool) {
	info, err := buildinfo.Read(bytes.NewReader(data))
	if err != nil {
		return "", false
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	return revision, modified
}

// readCACerts reads the build machine's CA bundle and checks it holds at least one certificate.
func readCACerts(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("CA certificates %s not found: install them (Debian: apt-get install ca-certificates) or pass -ca-certs FILE", path)
	}
	if err != nil {
		return nil, fmt.Errorf("CA certificates: %w", err)
	}
	if block, _ := pem.Decode(data); block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("CA certificates %s: no PEM certificate in it; want a bundle such as Debian's ca-certificates writes", path)
	}
	return data, nil
}
