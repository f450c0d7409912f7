package doctor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// testCA issues certificates for the TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	ca := &testCA{}
	ca.cert, ca.key = issue(t, nil, &x509.Certificate{Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: testNow.Add(-365 * 24 * time.Hour), NotAfter: testNow.Add(365 * 24 * time.Hour)})
	ca.pem = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
	return ca
}

// serving issues a serving certificate for dnsName valid from notBefore to notAfter.
func (ca *testCA) serving(t *testing.T, dnsName string, notBefore, notAfter time.Time) *x509.Certificate {
	cert, _ := issue(t, ca, &x509.Certificate{Subject: pkix.Name{CommonName: dnsName}, DNSNames: []string{dnsName},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: notBefore, NotAfter: notAfter})
	return cert
}

func issue(t *testing.T, ca *testCA, template *x509.Certificate) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template.SerialNumber = big.NewInt(time.Now().UnixNano())
	parent, signer := template, key
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, template, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestServingCertificate(t *testing.T) {
	ca, other := newCA(t, "adapter-ca"), newCA(t, "another-ca")
	const name = "promadapter.promadapter.svc"
	valid := ca.serving(t, name, testNow.Add(-time.Hour), testNow.Add(90*24*time.Hour))
	for _, c := range []struct {
		name     string
		served   *x509.Certificate
		caBundle []byte // nil: insecureSkipTLSVerify
		dialErr  error
		status   Status
		wants    []string
	}{
		{"a certificate the caBundle signed, for the Service's name, passes", valid, ca.pem, nil, Pass,
			[]string{"verified with the caBundle for promadapter.promadapter.svc, expires in 90 days", "CN=adapter-ca"}},
		{"another CA's caBundle fails with the patch that puts the right CA in", valid, other.pem, nil, Fail,
			[]string{"not signed by the APIServices' caBundle", "for a in v1beta1.metrics.k8s.io; do kubectl patch apiservice $a", "availability check does not verify certificates"}},
		{"a certificate for another name fails naming the one checked", ca.serving(t, "promadapter.elsewhere.svc", testNow.Add(-time.Hour), testNow.Add(time.Hour*24*30)), ca.pem, nil, Fail,
			[]string{"it is not valid for promadapter.promadapter.svc, the name kube-apiserver checks"}},
		{"an expired certificate fails, and its signature is still judged", ca.serving(t, name, testNow.Add(-48*time.Hour), testNow.Add(-24*time.Hour)), ca.pem, nil, Fail,
			[]string{"the certificate expired 24h0m ago", "renew the serving certificate"}},
		{"a certificate about to expire warns", ca.serving(t, name, testNow.Add(-time.Hour), testNow.Add(36*time.Hour)), ca.pem, nil, Warn,
			[]string{"expires in 36h0m", "renew the serving certificate before it expires"}},
		{"insecureSkipTLSVerify warns that nothing is verified", valid, nil, nil, Warn,
			[]string{"not verified: the APIServices set insecureSkipTLSVerify", "deploy/components/tls-secret"}},
		{"an undialable Service is skipped", nil, ca.pem, errors.New("dial tcp: lookup promadapter.promadapter.svc: no such host"), Skip,
			[]string{"cannot dial promadapter.promadapter.svc:443 from here", "the end-to-end requests below still show x509 failures"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			api := apiServiceObject("v1beta1.metrics.k8s.io", "promadapter", "promadapter", 443, "True", "Passed", "")
			if c.caBundle != nil {
				api = withCABundle(api, c.caBundle)
			}
			d := newTestDoctor([]runtime.Object{service("promadapter", "promadapter")}, api)
			var dialled string
			d.dial = func(_ context.Context, addr, serverName string) ([]*x509.Certificate, error) {
				dialled = addr + " " + serverName
				if c.dialErr != nil {
					return nil, c.dialErr
				}
				return []*x509.Certificate{c.served}, nil
			}
			in, err := d.discover(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			checks := d.checkServingTLS(context.Background(), in)
			if len(checks) != 1 {
				t.Fatalf("%d checks, want 1 for the one APIService", len(checks))
			}
			got := checks[0]
			if got.Status != c.status {
				t.Errorf("status %s, want %s: %+v", got.Status, c.status, got)
			}
			if dialled != "promadapter.promadapter.svc:443 promadapter.promadapter.svc" {
				t.Errorf("dialled %q, want the Service's name and port, with its name as SNI", dialled)
			}
			mustContain(t, "the finding", got.Summary+"\n"+strings.Join(got.Evidence, "\n")+"\n"+got.Fix, c.wants...)
		})
	}
}

func TestRequestHeaderConfigMap(t *testing.T) {
	front := newCA(t, "front-proxy-ca")
	full := map[string]string{
		"client-ca-file": string(front.pem), "requestheader-client-ca-file": string(front.pem),
		"requestheader-allowed-names": `["front-proxy-client"]`, "requestheader-username-headers": `["X-Remote-User"]`,
		"requestheader-group-headers": `["X-Remote-Group"]`, "requestheader-extra-headers-prefix": `["X-Remote-Extra-"]`,
	}
	for _, c := range []struct {
		name   string
		data   map[string]string // nil: no ConfigMap
		status Status
		wants  []string
	}{
		{"kube-apiserver with the aggregation layer's flags passes", full, Pass, []string{"CN=front-proxy-ca", "allowed names [front-proxy-client], username headers [X-Remote-User]"}},
		{"without requestheader keys it fails naming the flags", map[string]string{"client-ca-file": string(front.pem)}, Fail,
			[]string{"no requestheader-client-ca-file, requestheader-username-headers, requestheader-group-headers", "--requestheader-client-ca-file", "--proxy-client-cert-file"}},
		{"without the ConfigMap it fails", nil, Fail, []string{"missing", "--requestheader-allowed-names=front-proxy-client"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var objects []runtime.Object
			if c.data != nil {
				objects = append(objects, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "extension-apiserver-authentication"}, Data: c.data})
			}
			got := newTestDoctor(objects).checkRequestHeader(context.Background())
			if got.Status != c.status {
				t.Errorf("status %s, want %s: %+v", got.Status, c.status, got)
			}
			mustContain(t, "the finding", got.Summary+"\n"+strings.Join(got.Evidence, "\n")+"\n"+got.Fix, c.wants...)
		})
	}
}
