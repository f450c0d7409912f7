package testbed

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// certValidity is how long every generated certificate is valid; NotBefore is set an hour back so
// small clock differences do not matter.
const certValidity = 365 * 24 * time.Hour

// ClusterCerts are the PEM files of a test cluster's PKI, generated fresh for each cluster.
// Certificates use ECDSA P-256 keys; the service-account key pair is RSA 2048.
type ClusterCerts struct {
	// CACert signs the serving certificates and the client certificates the apiserver accepts
	// (--client-ca-file); trust it to talk to the apiserver.
	CACert string
	CAKey  string
	// APIServerCert serves kube-apiserver; its names are 127.0.0.1, localhost, kubernetes,
	// kubernetes.default, kubernetes.default.svc and kubernetes.default.svc.cluster.local.
	APIServerCert string
	APIServerKey  string
	// ControllerManagerCert serves kube-controller-manager on 127.0.0.1 and localhost.
	ControllerManagerCert string
	ControllerManagerKey  string
	// AdminCert is a client certificate for CN=admin, O=system:masters.
	AdminCert string
	AdminKey  string
	// FrontProxyCACert signs the aggregation layer's client certificate; the apiserver publishes it
	// as requestheader-client-ca-file, and an extension apiserver trusts requests signed by it.
	FrontProxyCACert string
	FrontProxyCAKey  string
	// FrontProxyClientCert (CN=front-proxy-client) is what the aggregator presents to extension
	// apiservers.
	FrontProxyClientCert string
	FrontProxyClientKey  string
	// ServiceAccountKey signs service-account tokens (PKCS#1 RSA private key); ServiceAccountPublicKey
	// verifies them (PKIX public key).
	ServiceAccountKey       string
	ServiceAccountPublicKey string
}

// certAuthority is a CA that issues certificates.
type certAuthority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// writeClusterCerts generates a cluster's PKI into dir and returns the file paths.
func writeClusterCerts(dir string) (ClusterCerts, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return ClusterCerts{}, fmt.Errorf("creating the certificate directory: %w", err)
	}
	path := func(name string) string { return filepath.Join(dir, name) }
	files := ClusterCerts{
		CACert: path("ca.crt"), CAKey: path("ca.key"),
		APIServerCert: path("apiserver.crt"), APIServerKey: path("apiserver.key"),
		ControllerManagerCert: path("controller-manager.crt"), ControllerManagerKey: path("controller-manager.key"),
		AdminCert: path("admin.crt"), AdminKey: path("admin.key"),
		FrontProxyCACert: path("front-proxy-ca.crt"), FrontProxyCAKey: path("front-proxy-ca.key"),
		FrontProxyClientCert: path("front-proxy-client.crt"), FrontProxyClientKey: path("front-proxy-client.key"),
		ServiceAccountKey: path("sa.key"), ServiceAccountPublicKey: path("sa.pub"),
	}

	clusterCA, err := newCertAuthority("testbed-cluster-ca", files.CACert, files.CAKey)
	if err != nil {
		return ClusterCerts{}, err
	}
	frontProxyCA, err := newCertAuthority("testbed-front-proxy-ca", files.FrontProxyCACert, files.FrontProxyCAKey)
	if err != nil {
		return ClusterCerts{}, err
	}
	loopback := []net.IP{net.IPv4(127, 0, 0, 1)}
	issued := []struct {
		ca        *certAuthority
		subject   pkix.Name
		usage     x509.ExtKeyUsage
		dnsNames  []string
		ips       []net.IP
		certPath  string
		keyPath   string
		debugName string
	}{
		{clusterCA, pkix.Name{CommonName: "kube-apiserver"}, x509.ExtKeyUsageServerAuth,
			[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
			loopback, files.APIServerCert, files.APIServerKey, "apiserver serving"},
		{clusterCA, pkix.Name{CommonName: "kube-controller-manager"}, x509.ExtKeyUsageServerAuth,
			[]string{"localhost"}, loopback, files.ControllerManagerCert, files.ControllerManagerKey, "controller-manager serving"},
		{clusterCA, pkix.Name{CommonName: "admin", Organization: []string{"system:masters"}}, x509.ExtKeyUsageClientAuth,
			nil, nil, files.AdminCert, files.AdminKey, "admin client"},
		{frontProxyCA, pkix.Name{CommonName: "front-proxy-client"}, x509.ExtKeyUsageClientAuth,
			nil, nil, files.FrontProxyClientCert, files.FrontProxyClientKey, "front-proxy client"},
	}
	for _, c := range issued {
		if err := c.ca.issue(c.subject, c.usage, c.dnsNames, c.ips, c.certPath, c.keyPath); err != nil {
			return ClusterCerts{}, fmt.Errorf("issuing the %s certificate: %w", c.debugName, err)
		}
	}
	if err := writeServiceAccountKeys(files.ServiceAccountKey, files.ServiceAccountPublicKey); err != nil {
		return ClusterCerts{}, err
	}
	return files, nil
}

// newCertAuthority generates a self-signed CA and writes its certificate and key.
func newCertAuthority(commonName, certPath, keyPath string) (*certAuthority, error) {
	ca, der, err := generateCA(commonName, x509.KeyUsageCertSign|x509.KeyUsageCRLSign|x509.KeyUsageDigitalSignature)
	if err != nil {
		return nil, err
	}
	if err := writeCertAndKey(der, ca.key, certPath, keyPath); err != nil {
		return nil, err
	}
	return ca, nil
}

// generateCA generates an ECDSA P-256 key and a CA certificate for it, self-signed, with the
// given key usages and certTemplate's validity. It returns the CA and its certificate as DER.
func generateCA(commonName string, usage x509.KeyUsage) (*certAuthority, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating the key of CA %s: %w", commonName, err)
	}
	template, err := certTemplate(pkix.Name{CommonName: commonName})
	if err != nil {
		return nil, nil, err
	}
	template.IsCA = true
	template.KeyUsage = usage
	der, err := x509.CreateCertificate(rand.Reader, template, template, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("self-signing CA %s: %w", commonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing CA %s: %w", commonName, err)
	}
	return &certAuthority{cert: cert, key: key}, der, nil
}

// issue generates a key and a certificate signed by the CA and writes both.
func (ca *certAuthority) issue(subject pkix.Name, usage x509.ExtKeyUsage, dnsNames []string, ips []net.IP, certPath, keyPath string) error {
	template, err := certTemplate(subject)
	if err != nil {
		return err
	}
	der, key, err := ca.sign(template, usage, dnsNames, ips)
	if err != nil {
		return err
	}
	return writeCertAndKey(der, key, certPath, keyPath)
}

// sign generates an ECDSA P-256 key and a certificate for it from template (see certTemplate),
// signed by the CA, for the extended key usage usage (key usage digital signature) and the
// given names. It returns the certificate (DER) and the key.
func (ca *certAuthority) sign(template *x509.Certificate, usage x509.ExtKeyUsage, dnsNames []string, ips []net.IP) ([]byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating a key: %w", err)
	}
	template.KeyUsage = x509.KeyUsageDigitalSignature
	template.ExtKeyUsage = []x509.ExtKeyUsage{usage}
	template.DNSNames = dnsNames
	template.IPAddresses = ips
	der, err := x509.CreateCertificate(rand.Reader, template, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing a certificate for %s: %w", template.Subject.CommonName, err)
	}
	return der, key, nil
}

// certTemplate is the part every certificate shares: subject, random serial number, validity.
func certTemplate(subject pkix.Name) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generating a serial number: %w", err)
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		BasicConstraintsValid: true,
	}, nil
}

// writeCertAndKey writes a DER certificate as PEM "CERTIFICATE" and an ECDSA key as PEM
// "EC PRIVATE KEY" (readable only by the owner).
func writeCertAndKey(certDER []byte, key *ecdsa.PrivateKey, certPath, keyPath string) error {
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding the key for %s: %w", keyPath, err)
	}
	if err := writePEM(certPath, "CERTIFICATE", certDER, 0o644); err != nil {
		return err
	}
	return writePEM(keyPath, "EC PRIVATE KEY", keyDER, 0o600)
}

// writeServiceAccountKeys generates the RSA 2048 key pair that signs and verifies service-account
// tokens.
func writeServiceAccountKeys(privatePath, publicPath string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generating the service-account key: %w", err)
	}
	publicDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return fmt.Errorf("encoding the service-account public key: %w", err)
	}
	if err := writePEM(privatePath, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), 0o600); err != nil {
		return err
	}
	return writePEM(publicPath, "PUBLIC KEY", publicDER, 0o644)
}

func writePEM(path, blockType string, der []byte, mode os.FileMode) error {
	data := pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
