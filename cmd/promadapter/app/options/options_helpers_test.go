// Shared helpers for the options tests: parsing a command line and writing the certificates and files flags point at.

package options_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/promadapter/promadapter/cmd/promadapter/app/options"
)

// parse builds options from a command line, as `promadapter serve` does.
func parse(t *testing.T, args ...string) *options.Options {
	t.Helper()
	o := options.New()
	fs := pflag.NewFlagSet("promadapter", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parsing %q: %v", args, err)
	}
	return o
}

// testFiles are the files the flags point at, in dir; expand replaces DIR in arguments with dir.
type testFiles struct {
	dir                         string
	config, ca, token           string
	clientCert, clientKey       string
	caPEM                       []byte
	clientCertPEM, clientKeyPEM []byte
}

func newTestFiles(t *testing.T) testFiles {
	t.Helper()
	dir := t.TempDir()
	caPEM, _ := selfSigned(t, "test CA")
	certPEM, keyPEM := selfSigned(t, "promadapter client")
	f := testFiles{
		dir: dir, config: filepath.Join(dir, "config.yaml"), ca: filepath.Join(dir, "ca.pem"),
		token: filepath.Join(dir, "token"), clientCert: filepath.Join(dir, "client.pem"), clientKey: filepath.Join(dir, "client-key.pem"),
		caPEM: caPEM, clientCertPEM: certPEM, clientKeyPEM: keyPEM,
	}
	for path, content := range map[string][]byte{
		f.config: []byte("rules: []\n"), f.ca: caPEM, f.token: []byte("file-token\n"), f.clientCert: certPEM, f.clientKey: keyPEM,
	} {
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f testFiles) expand(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, "DIR", f.dir)
	}
	return out
}

// selfSigned returns a PEM certificate valid for 127.0.0.1 and its PEM private key.
func selfSigned(t *testing.T, cn string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}
