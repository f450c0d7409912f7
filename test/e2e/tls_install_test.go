//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

// TLS between the kube-apiserver and the adapter, for real (docs/install.md, "TLS between the
// kube-apiserver and the adapter"); tls_render_test.go checks the renderings of each choice.
//
// Reproduce: make build && PROMADAPTER_BIN=$PWD/bin/promadapter go test -count=1 -tags e2e ./test/e2e/ -run 'TestTLS|TestRender' -v

var apiServiceGVR = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// TestTLSInstall runs two TLS choices for real: deploy/manifests with the tls-secret component and
// the certificate of docs/install.md's openssl commands, and the chart with tls.selfSigned (rendered
// against the cluster, so that its lookup sees the Secret). The real adapter serves the rendered
// Secret's files with the rendered args, and the rendered APIServices point at it, changed only in
// the Service port: the test bed's ExternalName Service promadapter/promadapter sends the aggregator to
// localhost, and the aggregator still checks the name promadapter.promadapter.svc.
func TestTLSInstall(t *testing.T) {
	r := newRenderer(t)
	adapterBin, err := testbed.AdapterBin()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	cluster, err := testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: r.bins, Dir: filepath.Join(dir, "cluster")})
	if err != nil {
		t.Fatal(err)
	}
	cluster.Cleanup(t)
	s := &deploySuite{cluster: cluster, bins: r.bins, repo: r.repo, dir: dir}
	s.mustKubectl(t, nil, "create", "namespace", releaseNamespace, "--save-config")

	certs := docsCertificates(t, r)
	onCluster := []string{"--dry-run=server", "--kubeconfig=" + cluster.Kubeconfig}
	renderings := map[string][]byte{
		"kustomize with tls-secret":                r.kustomize(t, r.editedManifests(t, useComponents("tls-secret"), certs)),
		"kustomize with tls-secret, keda-forward":  r.kustomize(t, r.editedManifests(t, useComponents("tls-secret", "keda-forward"), certs)),
		"the chart with tls.selfSigned":            r.chart(t, selfSigned, onCluster...),
		"the chart with selfSigned and forwarding": r.chart(t, selfSigned+forwardValues, onCluster...),
	}
	t.Run("a server-side dry run accepts every object of the renderings without warnings", func(t *testing.T) {
		for name, rendered := range renderings {
			_, stderr := s.mustKubectl(t, rendered, "apply", "--dry-run=server", "--validate=strict", "-f", "-")
			noWarnings(t, name, stderr)
		}
	})

	spec := fixture.Spec{}
	if err := spec.ApplyObjects(ctx, cluster.Client); err != nil {
		t.Fatal(err)
	}
	var om bytes.Buffer
	now := time.Now()
	if err := spec.WriteOpenMetrics(&om, now.Add(-30*time.Minute), now.Add(time.Hour), 15*time.Second); err != nil {
		t.Fatal(err)
	}
	prom, err := testbed.StartPrometheus(ctx, testbed.PrometheusOptions{Bins: r.bins, Major: "3", Dir: filepath.Join(dir, "prometheus"), OpenMetrics: om.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	prom.Cleanup(t)
	serve := func(t *testing.T, objects []*unstructured.Unstructured) {
		s.checkVerifiedServing(t, ctx, testbed.AdapterOptions{Bin: adapterBin, PrometheusURL: prom.URL}, spec, objects)
	}

	t.Run("kustomize with tls-secret: the kube-apiserver verifies the adapter with the caBundle", func(t *testing.T) {
		serve(t, decodeObjects(t, "kubectl kustomize", renderings["kustomize with tls-secret"]))
	})
	t.Run("the chart with tls.selfSigned keeps the Secret it finds, and the kube-apiserver verifies the adapter", func(t *testing.T) {
		first := decodeObjects(t, "helm template", renderings["the chart with tls.selfSigned"])
		secret := findObject(first, "Secret", releaseNamespace, servingSecret)
		if secret == nil {
			t.Fatalf("the chart renders no Secret %s", servingSecret)
		}
		secrets := cluster.Dynamic.Resource(corev1.SchemeGroupVersion.WithResource("secrets")).Namespace(releaseNamespace)
		if _, err := secrets.Create(ctx, secret, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = secrets.Delete(context.Background(), servingSecret, metav1.DeleteOptions{}) })
		// What `helm upgrade` renders: the chart looks the Secret up and keeps it.
		again := decodeObjects(t, "helm template --dry-run=server", r.chart(t, selfSigned, onCluster...))
		kept := findObject(again, "Secret", releaseNamespace, servingSecret)
		if kept == nil || !maps.EqualFunc(secretData(t, kept), secretData(t, secret), bytes.Equal) {
			t.Fatalf("rendered again with the Secret in the cluster, the chart made a new certificate instead of keeping it")
		}
		checkAPIServiceTrust(t, "the chart rendered again", again, secretData(t, secret)["ca.crt"], "")
		serve(t, again)
	})
}

// checkVerifiedServing starts the adapter as the rendering's Deployment would run it, registers the
// rendered APIServices, and checks that the aggregator verifies the adapter: the APIServices become
// Available and data flows; with a caBundle of another CA, requests fail with an x509 error; new
// certificates in the mounted files are served without a restart, and one for another name fails.
func (s *deploySuite) checkVerifiedServing(t *testing.T, ctx context.Context, adapter testbed.AdapterOptions, spec fixture.Spec, objects []*unstructured.Unstructured) {
	deployment := renderedDeployment(t, objects)
	pod := deployment.Spec.Template.Spec
	// The Secrets the pod mounts, written out as the kubelet would; args follow them there.
	local := t.TempDir()
	var mounts []string // mount path, local directory, ...
	for _, m := range pod.Containers[0].VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name != m.Name || v.Secret == nil {
				continue
			}
			secret := findObject(objects, "Secret", deployment.Namespace, v.Secret.SecretName)
			if secret == nil {
				t.Fatalf("the pod mounts Secret %s, which the rendering does not hold", v.Secret.SecretName)
			}
			into := filepath.Join(local, m.Name)
			if err := os.MkdirAll(into, 0o700); err != nil {
				t.Fatal(err)
			}
			for key, value := range secretData(t, secret) {
				if err := os.WriteFile(filepath.Join(into, key), value, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			mounts = append(mounts, "="+strings.TrimSuffix(m.MountPath, "/")+"/", "="+into+"/")
		}
	}
	var certFile, keyFile string
	for _, arg := range pod.Containers[0].Args {
		if strings.HasPrefix(arg, "--prometheus-url=") || strings.HasPrefix(arg, "--secure-port=") {
			continue // the test bed's Prometheus and port
		}
		arg = strings.NewReplacer(mounts...).Replace(arg)
		if name, value, _ := strings.Cut(arg, "="); name == "--tls-cert-file" {
			certFile = value
		} else if name == "--tls-private-key-file" {
			keyFile = value
		}
		adapter.ExtraArgs = append(adapter.ExtraArgs, arg)
	}
	if !strings.HasPrefix(certFile, local) || !strings.HasPrefix(keyFile, local) {
		t.Fatalf("the rendered args %v serve no certificate from a mounted Secret", pod.Containers[0].Args)
	}
	a, err := s.cluster.StartAdapter(ctx, adapter)
	if a != nil {
		t.Cleanup(func() {
			if t.Failed() {
				if log, err := os.ReadFile(a.LogPath); err == nil {
					t.Logf("adapter log (%s), last lines:\n%s", a.LogPath, tail(string(log), 40))
				}
			}
			a.Stop()
		})
	}
	if err != nil {
		t.Fatal(err)
	}

	// The rendered APIServices replace the test bed's (which skip verification).
	apiServices := s.cluster.Dynamic.Resource(apiServiceGVR)
	var names []string
	for _, o := range objects {
		if o.GetKind() != "APIService" {
			continue
		}
		o = o.DeepCopy()
		if err := unstructured.SetNestedField(o.Object, int64(a.Port), "spec", "service", "port"); err != nil {
			t.Fatal(err)
		}
		if err := apiServices.Delete(ctx, o.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		if _, err := apiServices.Create(ctx, o, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating %s as rendered: %v", objectID(o), err)
		}
		names = append(names, o.GetName())
		t.Cleanup(func() { _ = apiServices.Delete(context.Background(), o.GetName(), metav1.DeleteOptions{}) })
	}
	if err := s.cluster.WaitAPIServicesAvailable(ctx, names...); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		stored, err := apiServices.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if insecure, _, _ := unstructured.NestedBool(stored.Object, "spec", "insecureSkipTLSVerify"); insecure {
			t.Errorf("APIService %s is stored with insecureSkipTLSVerify", name)
		}
		if ca, _, _ := unstructured.NestedString(stored.Object, "spec", "caBundle"); ca == "" {
			t.Errorf("APIService %s is stored without a caBundle", name)
		}
	}
	var nodes []string
	for _, n := range spec.NodeList() {
		nodes = append(nodes, n.Name)
	}
	slices.Sort(nodes)
	const nodesPath = "/apis/metrics.k8s.io/v1beta1/nodes"
	var list namedList
	if err := jsonUnmarshal([]byte(s.waitRaw(t, nodesPath, "")), &list); err != nil || !slices.Equal(list.names(), nodes) {
		t.Errorf("kubectl get --raw %s: %v (%v); want metrics of nodes %v", nodesPath, list.names(), err, nodes)
	}

	// Another CA in the caBundle: the aggregator refuses the adapter's certificate. Only requests
	// show it: the APIService's availability check does not verify certificates
	// (kube-aggregator's remote_available_controller.go), so its condition is only logged.
	const metricsAPI = "v1beta1.metrics.k8s.io"
	otherCA, otherKey, otherPEM := newTestCA(t, "another-ca")
	patch := fmt.Sprintf(`{"spec":{"caBundle":%q}}`, base64.StdEncoding.EncodeToString(otherPEM))
	s.mustKubectl(t, nil, "patch", "apiservice", metricsAPI, "--type=merge", "-p", patch)
	s.waitRaw(t, nodesPath, "x509: certificate signed by unknown authority")
	available, _ := s.mustKubectl(t, nil, "get", "apiservice", metricsAPI, "-o", `jsonpath={.status.conditions[?(@.type=="Available")].status} {.status.conditions[?(@.type=="Available")].message}`)
	t.Logf("with another CA's caBundle, APIService %s reports Available=%s", metricsAPI, available)

	// New certificates of that CA in the mounted files, as the kubelet swaps a Secret's files: the
	// adapter serves them without a restart, and the aggregator checks the name too.
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(a.Port))
	for _, c := range []struct{ dnsName, wantErr string }{
		{"promadapter.elsewhere.svc", "x509: certificate is valid for promadapter.elsewhere.svc, not " + servingDNSName},
		{servingDNSName, ""},
	} {
		certPEM, keyPEM := issueTestCert(t, otherCA, otherKey, c.dnsName)
		replaceFile(t, keyFile, keyPEM)
		replaceFile(t, certFile, certPEM)
		waitServing(t, addr, certPEM)
		s.waitRaw(t, nodesPath, c.wantErr)
	}
}

// waitRaw polls `kubectl get --raw path -v=8` until it answers (wantErr empty) or fails with
// wantErr in its output, and returns the answer. kubectl reports a failed proxy request as
// "ServiceUnavailable: the server is currently unable to handle the request"; the reason is in the
// response body, which -v=8 prints (docs/install.md gives the same command). It gives up after 45 s:
// the aggregator applies a changed APIService within a second or two.
func (s *deploySuite) waitRaw(t *testing.T, path, wantErr string) string {
	t.Helper()
	// lineWith returns the line of text holding the first of marks found, trimmed.
	lineWith := func(text string, marks ...string) string {
		for _, mark := range marks {
			if i := strings.Index(text, mark); i >= 0 {
				line, _, _ := strings.Cut(text[strings.LastIndex(text[:i], "\n")+1:], "\n")
				return strings.TrimSpace(line)
			}
		}
		return ""
	}
	deadline := time.Now().Add(45 * time.Second)
	for {
		out, stderr, err := s.kubectl(context.Background(), nil, "get", "--raw", path, "-v=8")
		if wantErr == "" && err == nil {
			return out
		}
		if wantErr != "" && err != nil && strings.Contains(stderr, wantErr) {
			t.Logf("kubectl get --raw %s -v=8: %s", path, lineWith(stderr, wantErr))
			return out
		}
		if time.Now().After(deadline) {
			want := "an answer"
			if wantErr != "" {
				want = fmt.Sprintf("a failure with %q in the response body", wantErr)
			}
			got := "an answer"
			if err != nil {
				got = lineWith(stderr, "error trying to reach service", "Error from server", "error:")
			}
			t.Fatalf("kubectl get --raw %s -v=8: %s (answer %.200q) after 45 s; want %s", path, got, out, want)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitServing waits until the TLS server at addr presents certPEM.
func waitServing(t *testing.T, addr string, certPEM []byte) {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	deadline := time.Now().Add(90 * time.Second) // fsnotify at once, else the one-minute re-read
	for {
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // comparing the certificate itself
		if err == nil {
			served := conn.ConnectionState().PeerCertificates[0].Raw
			_ = conn.Close()
			if bytes.Equal(served, block.Bytes) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the adapter at %s does not serve the new certificate after 90 s (last error: %v): it did not reload its files", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// replaceFile replaces path with data the way the kubelet updates a mounted Secret: a new file
// renamed over the old one.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// newTestCA makes a CA certificate and key.
func newTestCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// issueTestCert makes a serving certificate for dnsName signed by ca; it returns it and its key, PEM.
func issueTestCert(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, dnsName string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: dnsName}, DNSNames: []string{dnsName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}
