package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// options are imagebuild's flags; nothing else reads them.
type options struct {
	out      string
	binaries binaryFlags
	version  string
	revision string
	source   string
	caCerts  string
	// epoch is the Unix time of every timestamp in the image.
	epoch int64
}

func newOptions() *options {
	o := &options{caCerts: caBundlePath}
	// SOURCE_DATE_EPOCH is the reproducible-builds convention for "the time of this source".
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		o.epoch, _ = strconv.ParseInt(s, 10, 64)
	}
	return o
}

// Flags registers the options on fs.
func (o *options) Flags(fs *flag.FlagSet) {
	fs.StringVar(&o.out, "out", "", "directory of the OCI image layout to write (replaced if it exists)")
	fs.Var(&o.binaries, "binary", "OS/ARCH=FILE: the promadapter binary for one platform; repeat per platform")
	fs.StringVar(&o.version, "version", "", "the version: label org.opencontainers.image.version and the layout's ref name")
	fs.StringVar(&o.revision, "revision", "", "the source commit (label org.opencontainers.image.revision); empty: the one the go command stamped into the binaries")
	fs.StringVar(&o.source, "source", "", "the source repository URL (label org.opencontainers.image.source)")
	fs.StringVar(&o.caCerts, "ca-certs", o.caCerts, "PEM bundle installed as "+caBundlePath)
	fs.Int64Var(&o.epoch, "epoch", o.epoch, "Unix time of every timestamp in the image (default: $SOURCE_DATE_EPOCH, else 0)")
}

// Validate checks the flags without reading any file.
func (o *options) Validate() error {
	if o.out == "" {
		return fmt.Errorf("-out is required")
	}
	if len(o.binaries) == 0 {
		return fmt.Errorf("no -binary OS/ARCH=FILE given")
	}
	if o.epoch < 0 {
		return fmt.Errorf("-epoch %d: want a Unix time >= 0", o.epoch)
	}
	return nil
}

// Spec reads the binaries and the CA bundle, checks each binary is an executable for its
// platform, and takes the revision from the binaries when -revision is empty.
func (o *options) Spec() (Spec, error) {
	s := Spec{Version: o.version, Revision: o.revision, Source: o.source, Created: time.Unix(o.epoch, 0).UTC()}
	var err error
	if s.CACerts, err = readCACerts(o.caCerts); err != nil {
		return Spec{}, err
	}
	stamped := map[string]bool{}
	for _, b := range o.binaries {
		data, err := os.ReadFile(b.file)
		if err != nil {
			return Spec{}, fmt.Errorf("%s binary: %w", b.platform, err)
		}
		if err := checkELF(b.platform, data); err != nil {
			return Spec{}, fmt.Errorf("%s binary %s: %w", b.platform, b.file, err)
		}
		rev, modified := vcsRevision(data)
		if modified {
			fmt.Fprintf(os.Stderr, "imagebuild: note: %s was built from a tree with uncommitted changes; the revision label names the commit they are based on\n", b.file)
		}
		stamped[rev] = true
		s.Binaries = append(s.Binaries, Binary{Platform: b.platform, Data: data})
	}
	if s.Revision == "" && len(stamped) == 1 {
		for rev := range stamped {
			s.Revision = rev
		}
	} else if s.Revision == "" {
		fmt.Fprintf(os.Stderr, "imagebuild: note: the binaries name different commits; no revision label (pass -revision)\n")
	}
	return s, nil
}

// binaryFlag is one -binary OS/ARCH=FILE.
type binaryFlag struct {
	platform Platform
	file     string
}

// binaryFlags collects repeated -binary flags in order.
type binaryFlags []binaryFlag

func (b *binaryFlags) String() string {
	parts := make([]string, len(*b))
	for i, f := range *b {
		parts[i] = f.platform.String() + "=" + f.file
	}
	return strings.Join(parts, ",")
}

func (b *binaryFlags) Set(v string) error {
	plat, file, ok := strings.Cut(v, "=")
	osName, arch, ok2 := strings.Cut(plat, "/")
	if !ok || !ok2 || file == "" || arch == "" {
		return fmt.Errorf("%q: want OS/ARCH=FILE, e.g. linux/arm64=bin/platforms/linux-arm64/promadapter", v)
	}
	if osName != "linux" {
		return fmt.Errorf("%q: only linux images are built (the binary is a static Linux executable)", v)
	}
	if _, ok := elfMachines[arch]; !ok {
		return fmt.Errorf("%q: architecture %q is not supported", v, arch)
	}
	p := Platform{OS: osName, Arch: arch}
	for _, f := range *b {
		if f.platform == p {
			return fmt.Errorf("%q: %s is already given (%s)", v, p, f.file)
		}
	}
	*b = append(*b, binaryFlag{platform: p, file: file})
	return nil
}
