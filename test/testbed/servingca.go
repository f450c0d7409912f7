package testbed

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"time"
)

// ServingCA is a CA for an adapter's serving certificates, whose validity a test chooses: the
// certificates kube-apiserver verifies against an APIService's caBundle.
type ServingCA struct {
	// PEM is the CA certificate, what goes into a caBundle.
	PEM []byte
	ca  *certAuthority
}

// NewServingCA makes a CA valid from an hour ago for a year.
func NewServingCA(commonName string) (*ServingCA, error) {
	ca, der, err := generateCA(commonName, x509.KeyUsageCertSign|x509.KeyUsageDigitalSignature)
	if err != nil {
		return nil, err
	}
	return &ServingCA{PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ca: ca}, nil
}

// Issue makes a serving certificate (extended key usage serverAuth) for dnsName, valid from
// notBefore to notAfter (which may lie in the past, for an expired certificate), and returns it
// and its key as PEM.
func (ca *ServingCA) Issue(dnsName string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	template, err := certTemplate(pkix.Name{CommonName: dnsName})
	if err != nil {
		return nil, nil, err
	}
	template.NotBefore, template.NotAfter = notBefore, notAfter
	der, key, err := ca.ca.sign(template, x509.ExtKeyUsageServerAuth, []string{dnsName}, nil)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}
