package testbed

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"slices"
	"testing"
	"time"
)

func TestWriteClusterCertsProducesAChainTheClusterAccepts(t *testing.T) {
	certs, err := writeClusterCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clusterCA := readCert(t, certs.CACert)
	frontProxyCA := readCert(t, certs.FrontProxyCACert)
	clusterRoots := x509.NewCertPool()
	clusterRoots.AddCert(clusterCA)
	frontProxyRoots := x509.NewCertPool()
	frontProxyRoots.AddCert(frontProxyCA)

	tests := []struct {
		name       string
		certPath   string
		keyPath    string
		roots      *x509.CertPool
		usage      x509.ExtKeyUsage
		serverName string // verified as a DNS name or IP when set
		wantCN     string
		wantOrg    []string
	}{
		{"the apiserver certificate serves 127.0.0.1", certs.APIServerCert, certs.APIServerKey, clusterRoots, x509.ExtKeyUsageServerAuth, "127.0.0.1", "kube-apiserver", nil},
		{"the apiserver certificate serves localhost", certs.APIServerCert, certs.APIServerKey, clusterRoots, x509.ExtKeyUsageServerAuth, "localhost", "kube-apiserver", nil},
		{"the apiserver certificate serves kubernetes.default.svc", certs.APIServerCert, certs.APIServerKey, clusterRoots, x509.ExtKeyUsageServerAuth, "kubernetes.default.svc", "kube-apiserver", nil},
		{"the apiserver certificate serves kubernetes", certs.APIServerCert, certs.APIServerKey, clusterRoots, x509.ExtKeyUsageServerAuth, "kubernetes", "kube-apiserver", nil},
		{"the controller-manager certificate serves 127.0.0.1", certs.ControllerManagerCert, certs.ControllerManagerKey, clusterRoots, x509.ExtKeyUsageServerAuth, "127.0.0.1", "kube-controller-manager", nil},
		{"the admin certificate is a system:masters client of the cluster CA", certs.AdminCert, certs.AdminKey, clusterRoots, x509.ExtKeyUsageClientAuth, "", "admin", []string{"system:masters"}},
		{"the front-proxy client certificate is a client of the front-proxy CA", certs.FrontProxyClientCert, certs.FrontProxyClientKey, frontProxyRoots, x509.ExtKeyUsageClientAuth, "", "front-proxy-client", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cert := readCert(t, tc.certPath)
			if _, err := cert.Verify(x509.VerifyOptions{Roots: tc.roots, DNSName: tc.serverName, KeyUsages: []x509.ExtKeyUsage{tc.usage}}); err != nil {
				t.Errorf("verifying %s: %v", tc.certPath, err)
			}
			if cert.Subject.CommonName != tc.wantCN || !slices.Equal(cert.Subject.Organization, tc.wantOrg) {
				t.Errorf("subject CN=%q O=%q, want CN=%q O=%q", cert.Subject.CommonName, cert.Subject.Organization, tc.wantCN, tc.wantOrg)
			}
			if key, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || key.Curve != elliptic.P256() {
				t.Errorf("public key is %T, want an ECDSA P-256 key", cert.PublicKey)
			}
			if validity := cert.NotAfter.Sub(time.Now()); validity < 364*24*time.Hour || validity > 366*24*time.Hour {
				t.Errorf("valid for another %s, want about a year", validity)
			}
			if _, err := tls.LoadX509KeyPair(tc.certPath, tc.keyPath); err != nil {
				t.Errorf("certificate and key do not load as a pair: %v", err)
			}
			if info, err := os.Stat(tc.keyPath); err != nil || info.Mode().Perm() != 0o600 {
				t.Errorf("key file %s: mode %v (err %v), want 0600", tc.keyPath, info.Mode().Perm(), err)
			}
		})
	}

	t.Run("the front-proxy client certificate is not trusted by the cluster CA", func(t *testing.T) {
		cert := readCert(t, certs.FrontProxyClientCert)
		if _, err := cert.Verify(x509.VerifyOptions{Roots: clusterRoots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
			t.Error("the cluster CA accepted the front-proxy client certificate; the two CAs must be separate")
		}
	})

	t.Run("the service-account keys are a matching RSA 2048 pair", func(t *testing.T) {
		private, err := x509.ParsePKCS1PrivateKey(readPEM(t, certs.ServiceAccountKey, "RSA PRIVATE KEY"))
		if err != nil {
			t.Fatal(err)
		}
		public, err := x509.ParsePKIXPublicKey(readPEM(t, certs.ServiceAccountPublicKey, "PUBLIC KEY"))
		if err != nil {
			t.Fatal(err)
		}
		if private.N.BitLen() != 2048 {
			t.Errorf("private key has %d bits, want 2048", private.N.BitLen())
		}
		if rsaPublic, ok := public.(*rsa.PublicKey); !ok || !rsaPublic.Equal(&private.PublicKey) {
			t.Errorf("public key %s does not match the private key", certs.ServiceAccountPublicKey)
		}
	})
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	cert, err := x509.ParseCertificate(readPEM(t, path, "CERTIFICATE"))
	if err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	return cert
}

func readPEM(t *testing.T, path, wantType string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != wantType {
		t.Fatalf("%s does not start with a PEM %q block", path, wantType)
	}
	return block.Bytes
}
