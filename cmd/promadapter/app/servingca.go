package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/server/healthz"
)

// servingCACheck is ready once the serving TLS layer asks clients for certificates of the
// request-header CA, checked by a TLS handshake with the adapter's own port.
//
// Why a handshake: loading the CA (authenticationCheck) is not enough. The TLS config learns
// it a work-queue step later, and until then its certificate request names only the other
// CAs; kube-apiserver's Go client then sends no client certificate at all (it sends one only
// when its issuer is among those the server accepts), and the request is served as
// system:anonymous (403) although the CA is loaded (measured: 4 ms after /readyz turned 200).
// The handshake sees exactly what the aggregator would see. Once it has passed, the check
// passes for good: a later CA rotation goes through the same controller while serving.
//
// addr is the address to reach the secure port at (see loopbackAddr); rh is nil when request-header
// authentication is off, and then there is nothing to wait for.
func servingCACheck(addr string, rh *authenticatorfactory.RequestHeaderConfig) healthz.HealthChecker {
	var passed atomic.Bool
	return healthz.NamedCheck("promadapter-serving-client-ca", func(r *http.Request) error {
		if rh == nil || rh.CAContentProvider == nil || passed.Load() {
			return nil
		}
		bundle := rh.CAContentProvider.CurrentCABundleContent()
		if len(bundle) == 0 {
			return errors.New("the request-header client CA is not loaded yet (see promadapter-authentication)")
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := servingAcceptsCA(ctx, addr, bundle); err != nil {
			return err
		}
		passed.Store(true)
		return nil
	})
}

// servingAcceptsCA handshakes with addr and checks that its certificate request accepts every
// CA of the PEM bundle.
func servingAcceptsCA(ctx context.Context, addr string, bundle []byte) error {
	subjects, err := caSubjects(bundle)
	if err != nil {
		return err
	}
	var acceptable [][]byte
	asked := false
	dialer := &tls.Dialer{Config: &tls.Config{
		// Only the certificate request matters here; no request is sent over the connection.
		InsecureSkipVerify: true, //nolint:gosec // our own port, no data exchanged
		GetClientCertificate: func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			asked, acceptable = true, cri.AcceptableCAs
			return &tls.Certificate{}, nil // no certificate: the server only requests one
		},
	}}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("handshaking with the adapter's own secure port %s to check its client CAs: %w", addr, err)
	}
	_ = conn.Close()
	if !asked {
		return fmt.Errorf("the secure port %s does not ask for client certificates yet: the aggregator's requests would be served as system:anonymous", addr)
	}
	for _, s := range subjects {
		if !containsBytes(acceptable, s) {
			return fmt.Errorf("the secure port %s does not accept client certificates of the request-header CA yet: the aggregator's requests would be served as system:anonymous", addr)
		}
	}
	return nil
}

// caSubjects returns the raw subjects of the certificates of a PEM bundle.
func caSubjects(bundle []byte) ([][]byte, error) {
	var out [][]byte
	for rest := bundle; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("the request-header client CA bundle holds a certificate that does not parse: %w", err)
		}
		out = append(out, cert.RawSubject)
	}
	if len(out) == 0 {
		return nil, errors.New("the request-header client CA bundle holds no certificate")
	}
	return out, nil
}

func containsBytes(list [][]byte, b []byte) bool {
	for _, x := range list {
		if bytes.Equal(x, b) {
			return true
		}
	}
	return false
}

// loopbackAddr turns a listener's address into one to dial: an unspecified host (0.0.0.0,
// ::) listens on loopback too.
func loopbackAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
