package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// expiryWarning is how close to its end a certificate is reported.
const expiryWarning = 7 * 24 * time.Hour

// dialServing returns the certificate chain a TLS server presents at addr, sending serverName
// (SNI) as kube-apiserver does. It verifies nothing: the caller does, against the caBundle.
func dialServing(ctx context.Context, addr, serverName string) ([]*x509.Certificate, error) {
	dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 3 * time.Second},
		Config: &tls.Config{ServerName: serverName, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}} //nolint:gosec // verified below against the caBundle
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates, nil
}

// servingTarget is one (Service, port, trust) the aggregator dials, and the APIServices that
// share it.
type servingTarget struct {
	backend  *backend
	port     int32
	caBundle []byte
	insecure bool
	apis     []string
}

// checkServingTLS fetches the adapter's serving certificate where it can be dialled from here
// and checks it as kube-apiserver would: signed by the caBundle, valid for
// <service>.<namespace>.svc, not expired. kube-aggregator's availability check does not verify
// the certificate, so an APIService stays Available while every request fails on it: the
// end-to-end checks show that side.
func (d *doctor) checkServingTLS(ctx context.Context, in *install) []Check {
	var targets []*servingTarget
	for _, api := range adapterAPIs {
		a := in.apis[api.name]
		if a == nil {
			continue
		}
		ref, port := a.serviceRef()
		b := in.backends[ref]
		if b == nil || b.owner != ownerPromadapter || b.service == nil {
			continue
		}
		var t *servingTarget
		for _, o := range targets {
			if o.backend == b && o.port == port && string(o.caBundle) == string(a.Spec.CABundle) && o.insecure == a.Spec.Insecure {
				t = o
			}
		}
		if t == nil {
			t = &servingTarget{backend: b, port: port, caBundle: a.Spec.CABundle, insecure: a.Spec.Insecure}
			targets = append(targets, t)
		}
		t.apis = append(t.apis, api.name)
	}
	var checks []Check
	for _, t := range targets {
		checks = append(checks, d.checkServingTarget(ctx, t))
	}
	return checks
}

func (d *doctor) checkServingTarget(ctx context.Context, t *servingTarget) Check {
	ref := t.backend.ref
	serverName := ref.Name + "." + ref.Namespace + ".svc"
	c := Check{Section: sectionTLS, Name: "serving certificate for " + strings.Join(t.apis, ", ")}
	host := serverName
	if svc := t.backend.service; svc.Spec.Type == corev1.ServiceTypeExternalName {
		host = svc.Spec.ExternalName
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(t.port)))
	chain, err := d.dial(ctx, addr, serverName)
	if err != nil {
		c.Status, c.Summary = Skip, fmt.Sprintf("cannot dial %s from here (%v); the end-to-end requests below still show x509 failures", addr, err)
		_, hasCert := t.backend.flag("tls-cert-file")
		if _, certDir := t.backend.flag("cert-dir"); len(t.caBundle) > 0 && !hasCert && (certDir || t.backend.deployment != nil) {
			c.Status = Warn
			c.Evidence = []string{fmt.Sprintf("the APIServices carry a caBundle, but Deployment %s runs without --tls-cert-file: the adapter generates its own self-signed certificate, which no caBundle can verify", deploymentName(t.backend))}
			c.Fix = "pass --tls-cert-file and --tls-private-key-file with a certificate signed by the caBundle's CA (deploy/components/tls-secret or cert-manager; docs/install.md, TLS)"
		}
		return c
	}
	leaf := chain[0]
	now := d.now()
	c.Evidence = append(c.Evidence, fmt.Sprintf("%s presents %s, issued by %s, DNS names [%s], valid %s to %s",
		addr, leaf.Subject, leaf.Issuer, strings.Join(leaf.DNSNames, ", "), leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339)))

	var problems, fixes []string
	switch {
	case now.After(leaf.NotAfter):
		problems = append(problems, "the certificate expired "+human(now.Sub(leaf.NotAfter))+" ago")
		fixes = append(fixes, "renew the serving certificate (same CA, DNS name "+serverName+") in the Secret the adapter mounts; the adapter reloads --tls-cert-file and --tls-private-key-file without a restart (cert-manager renews by itself)")
	case now.Before(leaf.NotBefore):
		problems = append(problems, "the certificate is not valid before "+leaf.NotBefore.UTC().Format(time.RFC3339)+" (clock skew?)")
		fixes = append(fixes, "issue it with a NotBefore in the past, or fix the clocks")
	}
	if t.insecure {
		c.Evidence = append(c.Evidence, "kube-apiserver does not check it: the APIServices set insecureSkipTLSVerify")
		if len(problems) == 0 {
			c.Status, c.Summary = Warn, "not verified: the APIServices set insecureSkipTLSVerify, so kube-apiserver accepts any certificate"
			c.Fix = "give the APIServices the CA of the adapter's certificate instead (deploy/components/tls-secret or cert-manager, Helm tls.*; docs/install.md, TLS)"
		} else {
			c.Status, c.Summary = Warn, strings.Join(problems, "; ")+" (accepted anyway: insecureSkipTLSVerify)"
			c.Fix = strings.Join(fixes, "\n")
		}
		return c
	}
	if len(t.caBundle) == 0 {
		c.Status, c.Summary = Fail, "the APIServices set neither caBundle nor insecureSkipTLSVerify: kube-apiserver cannot trust any certificate"
		c.Fix = "set the caBundle of the CA that signed the adapter's certificate (docs/install.md, TLS)"
		return c
	}
	roots := x509.NewCertPool()
	bundle := parsePEM(t.caBundle)
	var cas []string
	for _, ca := range bundle {
		roots.AddCert(ca)
		cas = append(cas, ca.Subject.String())
	}
	c.Evidence = append(c.Evidence, fmt.Sprintf("caBundle: %d certificate(s): %s", len(cas), strings.Join(cas, "; ")))
	if err := leaf.VerifyHostname(serverName); err != nil {
		problems = append(problems, fmt.Sprintf("it is not valid for %s, the name kube-apiserver checks (%v)", serverName, err))
		fixes = append(fixes, "issue a certificate whose DNS names include "+serverName+" (docs/install.md, TLS)")
	}
	intermediates := x509.NewCertPool()
	for _, ic := range chain[1:] {
		intermediates.AddCert(ic)
	}
	if now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		// Verify would stop at the expiry reported above: judge the signature apart.
		err = signedBy(leaf, chain[1:], bundle)
	} else {
		_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	}
	var unknown x509.UnknownAuthorityError
	switch {
	case errors.As(err, &unknown):
		problems = append(problems, "it is not signed by the APIServices' caBundle (x509: certificate signed by unknown authority)")
		fixes = append(fixes, fmt.Sprintf("put the CA that signed the adapter's certificate, saved as ca.crt, into the caBundle:\n"+
			"  for a in %s; do kubectl patch apiservice $a --type=merge -p \"{\\\"spec\\\":{\\\"caBundle\\\":\\\"$(base64 -w0 ca.crt)\\\"}}\"; done\n"+
			"(or re-apply deploy/components/tls-secret, Helm tls.caBundle); an adapter started with --cert-dir makes its own certificate: pass --tls-cert-file and --tls-private-key-file", strings.Join(t.apis, " ")))
	case err != nil:
		problems = append(problems, "the caBundle does not verify it: "+err.Error())
		fixes = append(fixes, "issue the serving certificate from the caBundle's CA, with extended key usage serverAuth")
	}
	if len(problems) > 0 {
		c.Status, c.Summary = Fail, strings.Join(problems, "; ")
		c.Evidence = append(c.Evidence, "kube-aggregator's availability check does not verify certificates: the APIServices may still say Available while every request through them fails")
		c.Fix = strings.Join(fixes, "\n")
		return c
	}
	c.Status, c.Summary = Pass, fmt.Sprintf("verified with the caBundle for %s, expires in %s", serverName, human(leaf.NotAfter.Sub(now)))
	if leaf.NotAfter.Sub(now) < expiryWarning {
		c.Status = Warn
		c.Fix = "renew the serving certificate before it expires (cert-manager renews by itself)"
	}
	return c
}

// human writes a duration as people say it: "3 days", "5h20m", "40s".
func human(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	case d >= time.Hour:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	}
	return d.Round(time.Second).String()
}

// parsePEM returns the certificates of a PEM bundle, skipping what does not parse.
func parsePEM(data []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		if block, data = pem.Decode(data); block == nil {
			return out
		}
		if c, err := x509.ParseCertificate(block.Bytes); err == nil {
			out = append(out, c)
		}
	}
}

// signedBy checks, regardless of validity periods, that leaf was signed by a certificate of
// bundle, directly or through one of the intermediates the server sent.
func signedBy(leaf *x509.Certificate, intermediates, bundle []*x509.Certificate) error {
	for _, ca := range bundle {
		if leaf.CheckSignatureFrom(ca) == nil {
			return nil
		}
		for _, ic := range intermediates {
			if leaf.CheckSignatureFrom(ic) == nil && ic.CheckSignatureFrom(ca) == nil {
				return nil
			}
		}
	}
	return x509.UnknownAuthorityError{Cert: leaf}
}

// extensionAuthConfigMap is where kube-apiserver publishes the aggregation layer's request-header
// settings for extension apiservers.
var extensionAuthConfigMap = nsName{"kube-system", "extension-apiserver-authentication"}

// checkRequestHeader reads kube-system/extension-apiserver-authentication: without its
// requestheader keys, kube-apiserver runs without the aggregation layer's --requestheader-*
// and --proxy-client-* flags and no extension apiserver can trust what it forwards.
func (d *doctor) checkRequestHeader(ctx context.Context) Check {
	c := Check{Section: sectionTLS, Name: "aggregation layer (ConfigMap " + extensionAuthConfigMap.String() + ")"}
	flagsFix := "start kube-apiserver with --requestheader-client-ca-file, --requestheader-allowed-names=front-proxy-client, --requestheader-username-headers=X-Remote-User, " +
		"--requestheader-group-headers=X-Remote-Group, --requestheader-extra-headers-prefix=X-Remote-Extra-, --proxy-client-cert-file and --proxy-client-key-file (kubeadm, k3s and managed clusters set them)"
	cm, err := d.kube.CoreV1().ConfigMaps(extensionAuthConfigMap.Namespace).Get(ctx, extensionAuthConfigMap.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		c.Status, c.Summary, c.Fix = Fail, "missing: kube-apiserver has not published its request-header settings", flagsFix
		return c
	}
	if err != nil {
		c.Status, c.Summary = Skip, "cannot read it: "+err.Error()
		return c
	}
	var missing []string
	for _, key := range []string{"requestheader-client-ca-file", "requestheader-username-headers", "requestheader-group-headers"} {
		if v := cm.Data[key]; v == "" || v == "[]" {
			missing = append(missing, key)
		}
	}
	if len(missing) > 0 {
		c.Status, c.Summary = Fail, "no "+strings.Join(missing, ", ")+": kube-apiserver runs without the aggregation layer's --requestheader-* and --proxy-client-* flags"
		c.Fix = flagsFix
		return c
	}
	var cas, expired []string
	for _, ca := range parsePEM([]byte(cm.Data["requestheader-client-ca-file"])) {
		cas = append(cas, fmt.Sprintf("%s (until %s)", ca.Subject, ca.NotAfter.UTC().Format(time.RFC3339)))
		if d.now().After(ca.NotAfter) {
			expired = append(expired, ca.Subject.String())
		}
	}
	c.Evidence = []string{
		"requestheader-client-ca-file: " + strings.Join(cas, "; "),
		fmt.Sprintf("allowed names %s, username headers %s, group headers %s, extra headers prefix %s",
			jsonList(cm.Data["requestheader-allowed-names"]), jsonList(cm.Data["requestheader-username-headers"]),
			jsonList(cm.Data["requestheader-group-headers"]), jsonList(cm.Data["requestheader-extra-headers-prefix"])),
	}
	switch {
	case len(cas) == 0:
		c.Status, c.Summary, c.Fix = Fail, "requestheader-client-ca-file holds no certificate", flagsFix
	case len(expired) > 0:
		c.Status, c.Summary = Fail, "the front-proxy CA has expired: "+strings.Join(expired, "; ")
		c.Fix = "renew the front-proxy CA and client certificate (kubeadm certs renew front-proxy-client; a new CA for --requestheader-client-ca-file), then restart kube-apiserver"
	default:
		c.Status, c.Summary = Pass, "kube-apiserver publishes the front-proxy CA and headers extension apiservers trust"
	}
	return c
}

// jsonList shows a ConfigMap value that holds a JSON list of strings.
func jsonList(v string) string {
	var list []string
	if json.Unmarshal([]byte(v), &list) != nil {
		return fmt.Sprintf("%q", v)
	}
	return "[" + strings.Join(list, ", ") + "]"
}
