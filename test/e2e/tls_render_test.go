//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// How the kube-apiserver trusts the adapter, and forwarding to KEDA, chosen both ways: with the
// components of deploy/components and with the chart's tls and externalMetricsForward values
// (docs/install.md, "TLS between the kube-apiserver and the adapter" and "Coexisting with KEDA").
// TestRenderChoicesAgree compares the renderings (tlsAndForwardChoices); TestTLSInstall runs them.
//
// Reproduce: make build && PROMADAPTER_BIN=$PWD/bin/promadapter go test -count=1 -tags e2e ./test/e2e/ -run 'TestTLS|TestRender' -v

const (
	servingSecret  = "promadapter-serving-cert"
	servingDNSName = "promadapter.promadapter.svc" // <service>.<namespace>.svc: the name the aggregator checks
	kedaURL        = "https://keda-operator-metrics-apiserver.keda.svc:443"
	forwardValues  = "externalMetricsForward: {url: \"" + kedaURL + "\", caConfigMap: keda-ca}\n"
	selfSigned     = "tls: {selfSigned: true, insecureSkipTLSVerify: false}\n"
)

// useComponents is the edit of deploy/manifests/kustomization.yaml that its comment describes:
// uncomment `components:` and the line of each named component.
func useComponents(names ...string) []fileEdit {
	edits := []fileEdit{{file: "kustomization.yaml", old: "# components:\n", new: "components:\n"}}
	for _, n := range names {
		edits = append(edits, fileEdit{file: "kustomization.yaml", old: "#   - ../components/" + n + " ", new: "  - ../components/" + n + " "})
	}
	return edits
}

// docsCertificates runs the openssl commands of docs/install.md ("A certificate you make") as they
// stand, from the root of a scratch checkout, and returns the files they leave for the tls-secret
// component, keyed by their path from that root.
func docsCertificates(t *testing.T, r *renderer) map[string][]byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(r.repo, "docs", "install.md"))
	if err != nil {
		t.Fatal(err)
	}
	const heading = "## TLS between the kube-apiserver and the adapter"
	start := bytes.Index(data, []byte(heading))
	if start < 0 {
		t.Fatalf("docs/install.md has no section %q", heading)
	}
	section, _, _ := strings.Cut(string(data[start+len(heading):]), "\n## ")
	var script string
	for _, block := range strings.Split(section, "```sh\n")[1:] {
		if code, _, _ := strings.Cut(block, "```"); strings.Contains(code, "openssl req -x509") {
			script = code
			break
		}
	}
	if script == "" {
		t.Fatal("docs/install.md, \"TLS between the kube-apiserver and the adapter\", has no ```sh block with the openssl commands")
	}
	root := t.TempDir()
	const dir = "deploy/components/tls-secret"
	if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the openssl commands of docs/install.md failed: %v\n%s\n%s", err, script, out)
	}
	files := map[string][]byte{}
	for _, name := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if files[dir+"/"+name], err = os.ReadFile(filepath.Join(root, dir, name)); err != nil {
			t.Fatalf("after the openssl commands of docs/install.md: %v", err)
		}
	}
	verifyServingCert(t, "the docs' openssl commands", files[dir+"/tls.crt"], files[dir+"/ca.crt"])
	return files
}

// verifyServingCert checks that certPEM is valid for servingDNSName as a server and signed by caPEM,
// as the aggregator checks it.
func verifyServingCert(t *testing.T, source string, certPEM, caPEM []byte) {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatalf("%s: the certificate is not PEM", source)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", source, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("%s: ca.crt holds no PEM certificate", source)
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: servingDNSName, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("%s: the serving certificate does not verify as the aggregator checks it: %v", source, err)
	}
}

// tlsAndForwardChoices are TestRenderChoicesAgree's cases for TLS and KEDA forwarding. Not among
// them: tls.selfSigned, which only the chart offers (kustomize has no function that generates a
// certificate; docs/install.md sends kustomize users to the tls-secret case, with openssl).
func tlsAndForwardChoices(t *testing.T, r *renderer) []renderChoice {
	t.Helper()
	certs := docsCertificates(t, r)
	caPEM := certs["deploy/components/tls-secret/ca.crt"]
	certManager := "tls: {insecureSkipTLSVerify: false, certManager: {enabled: true}}\n"
	return []renderChoice{
		{
			name:        "TLS: a certificate made with openssl in a Secret, its CA in every APIService",
			values:      fmt.Sprintf("tls: {insecureSkipTLSVerify: false, secretName: %s, caBundle: %s}\n", servingSecret, base64.StdEncoding.EncodeToString(caPEM)),
			edits:       useComponents("tls-secret"),
			files:       certs,
			flag:        "--tls-cert-file=/etc/promadapter/tls/tls.crt",
			apiServices: allAPIServices,
			// The chart mounts a Secret the user creates (`kubectl create secret tls`, docs/install.md);
			// the component generates it from the same files.
			onlyKustomize: []string{"Secret promadapter/" + servingSecret},
			check: func(t *testing.T, source string, objects []*unstructured.Unstructured) {
				checkWiring(t, objects)
				checkAPIServiceTrust(t, source, objects, caPEM, "")
			},
		},
		{
			// cert-manager's CRDs are not in the test bed: this choice is checked as rendered objects
			// only, and applying it needs cert-manager installed (docs/install.md says so).
			name:        "TLS: cert-manager issues the certificate and injects its CA",
			values:      certManager,
			edits:       useComponents("cert-manager"),
			flag:        "--tls-cert-file=/etc/promadapter/tls/tls.crt",
			apiServices: allAPIServices,
			check: func(t *testing.T, source string, objects []*unstructured.Unstructured) {
				checkWiring(t, objects)
				checkAPIServiceTrust(t, source, objects, nil, "promadapter/"+servingSecret)
				checkCertManagerObjects(t, source, objects)
			},
		},
		{
			name:        "KEDA: external metrics no rule serves are forwarded with the ServiceAccount token",
			values:      forwardValues,
			edits:       useComponents("keda-forward"),
			flag:        "--external-metrics-forward-url=" + kedaURL,
			apiServices: allAPIServices,
			check:       checkForward,
		},
		{
			name:        "cert-manager and forwarding to KEDA together",
			values:      certManager + forwardValues,
			edits:       useComponents("cert-manager", "keda-forward"),
			flag:        "--external-metrics-forward-ca-file=/etc/promadapter/forward-ca/ca.crt",
			apiServices: allAPIServices,
			check: func(t *testing.T, source string, objects []*unstructured.Unstructured) {
				checkAPIServiceTrust(t, source, objects, nil, "promadapter/"+servingSecret)
				checkCertManagerObjects(t, source, objects)
				checkForward(t, source, objects)
			},
		},
	}
}

// checkAPIServiceTrust checks that no APIService skips TLS verification, and that each one has
// caPEM as caBundle (none when caPEM is nil) and inject as cert-manager's CA injector annotation
// (none when empty).
func checkAPIServiceTrust(t *testing.T, source string, objects []*unstructured.Unstructured, caPEM []byte, inject string) {
	t.Helper()
	for _, o := range objects {
		if o.GetKind() != "APIService" {
			continue
		}
		if _, found, _ := unstructured.NestedFieldNoCopy(o.Object, "spec", "insecureSkipTLSVerify"); found {
			t.Errorf("%s: %s sets insecureSkipTLSVerify", source, objectID(o))
		}
		text, _, _ := unstructured.NestedString(o.Object, "spec", "caBundle")
		if got, err := base64.StdEncoding.DecodeString(text); err != nil || !bytes.Equal(got, caPEM) {
			t.Errorf("%s: %s has caBundle %.40q…, want the base64 of %.40q… (%v)", source, objectID(o), text, caPEM, err)
		}
		if got := o.GetAnnotations()["cert-manager.io/inject-ca-from"]; got != inject {
			t.Errorf("%s: %s has cert-manager.io/inject-ca-from %q, want %q", source, objectID(o), got, inject)
		}
	}
}

// checkCertManagerObjects checks the Certificate the APIServices' injector annotation names: it
// writes the Secret the Deployment mounts, names servingDNSName, and comes from the self-signed Issuer
// rendered beside it.
func checkCertManagerObjects(t *testing.T, source string, objects []*unstructured.Unstructured) {
	t.Helper()
	cert := findObject(objects, "Certificate", releaseNamespace, servingSecret)
	if cert == nil {
		t.Fatalf("%s renders no Certificate %s/%s, which the APIServices' cert-manager.io/inject-ca-from names", source, releaseNamespace, servingSecret)
	}
	if got := cert.GetAPIVersion(); got != "cert-manager.io/v1" {
		t.Errorf("%s: the Certificate is %s, want cert-manager.io/v1", source, got)
	}
	secretName, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
	if v, ok := mountedVolume(t, objects, "/etc/promadapter/tls/tls.crt"); !ok || v.Secret == nil || v.Secret.SecretName != secretName {
		t.Errorf("%s: the Certificate writes Secret %q, but --tls-cert-file is on %s", source, secretName, describeVolume(v, ok))
	}
	if names, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames"); !slices.Contains(names, servingDNSName) {
		t.Errorf("%s: the Certificate names %v, want %s among them", source, names, servingDNSName)
	}
	issuer, _, _ := unstructured.NestedStringMap(cert.Object, "spec", "issuerRef")
	if o := findObject(objects, issuer["kind"], releaseNamespace, issuer["name"]); issuer["kind"] != "Issuer" || o == nil {
		t.Errorf("%s: the Certificate's issuerRef %v is not an Issuer of the rendering", source, issuer)
	} else if _, selfSigned, _ := unstructured.NestedMap(o.Object, "spec", "selfSigned"); !selfSigned {
		t.Errorf("%s: Issuer %s is not selfSigned: %v", source, o.GetName(), o.Object["spec"])
	}
}

// checkForward checks the forwarding to KEDA: the flags, the CA on the mounted ConfigMap keda-ca, and
// a ClusterRole granting the adapter's ServiceAccount get and list on external.metrics.k8s.io only.
func checkForward(t *testing.T, source string, objects []*unstructured.Unstructured) {
	t.Helper()
	checkWiring(t, objects)
	args := containerArgs(t, objects)
	const caFile, tokenFile = "/etc/promadapter/forward-ca/ca.crt", "/var/run/secrets/kubernetes.io/serviceaccount/token"
	for _, want := range []string{"--external-metrics-forward-url=" + kedaURL, "--external-metrics-forward-ca-file=" + caFile, "--external-metrics-forward-token-file=" + tokenFile} {
		if !slices.Contains(args, want) {
			t.Errorf("%s runs the adapter with %v, want %s among them", source, args, want)
		}
	}
	if v, ok := mountedVolume(t, objects, caFile); !ok || v.ConfigMap == nil || v.ConfigMap.Name != "keda-ca" || v.ConfigMap.Optional != nil {
		t.Errorf("%s: %s is not on the mounted ConfigMap keda-ca (required: the adapter refuses to start without it), but on %s", source, caFile, describeVolume(v, ok))
	}
	const name = "promadapter-external-metrics-forward"
	role, binding := findObject(objects, "ClusterRole", "", name), findObject(objects, "ClusterRoleBinding", "", name)
	if role == nil || binding == nil {
		t.Fatalf("%s renders no ClusterRole and ClusterRoleBinding %s", source, name)
	}
	want := []any{map[string]any{"apiGroups": []any{"external.metrics.k8s.io"}, "resources": []any{"*"}, "verbs": []any{"get", "list"}}}
	if diffs := fieldDiffs("rules", role.Object["rules"], want); len(diffs) > 0 {
		t.Errorf("%s: ClusterRole %s grants more or less than get and list on external.metrics.k8s.io:\n  %s", source, name, strings.Join(diffs, "\n  "))
	}
	wantBinding := map[string]any{
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
		"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": "promadapter", "namespace": releaseNamespace}},
	}
	if diffs := fieldDiffs("", map[string]any{"roleRef": binding.Object["roleRef"], "subjects": binding.Object["subjects"]}, wantBinding); len(diffs) > 0 {
		t.Errorf("%s: ClusterRoleBinding %s does not bind the role to the adapter's ServiceAccount alone:\n  %s", source, name, strings.Join(diffs, "\n  "))
	}
}

// findObject returns the object of the rendering with that kind, namespace and name, or nil.
func findObject(objects []*unstructured.Unstructured, kind, namespace, name string) *unstructured.Unstructured {
	for _, o := range objects {
		if o.GetKind() == kind && o.GetNamespace() == namespace && o.GetName() == name {
			return o
		}
	}
	return nil
}

// renderedDeployment returns the rendering's only Deployment, typed.
func renderedDeployment(t *testing.T, objects []*unstructured.Unstructured) *appsv1.Deployment {
	t.Helper()
	for _, o := range objects {
		if o.GetKind() == "Deployment" {
			var d appsv1.Deployment
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d); err != nil {
				t.Fatal(err)
			}
			return &d
		}
	}
	t.Fatal("the rendering holds no Deployment")
	return nil
}

// mountedVolume returns the volume the Deployment's container mounts file from.
func mountedVolume(t *testing.T, objects []*unstructured.Unstructured, file string) (corev1.Volume, bool) {
	t.Helper()
	pod := renderedDeployment(t, objects).Spec.Template.Spec
	for _, m := range pod.Containers[0].VolumeMounts {
		if strings.HasPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/") {
			for _, v := range pod.Volumes {
				if v.Name == m.Name {
					return v, true
				}
			}
		}
	}
	return corev1.Volume{}, false
}

// describeVolume names a volume and what it holds, for messages.
func describeVolume(v corev1.Volume, mounted bool) string {
	switch {
	case !mounted:
		return "no mounted volume"
	case v.Secret != nil:
		return fmt.Sprintf("volume %s (Secret %s)", v.Name, v.Secret.SecretName)
	case v.ConfigMap != nil:
		return fmt.Sprintf("volume %s (ConfigMap %s, optional %v)", v.Name, v.ConfigMap.Name, v.ConfigMap.Optional != nil && *v.ConfigMap.Optional)
	}
	return "volume " + v.Name
}

// TestRenderChartSelfSigned: with tls.selfSigned the chart renders a kubernetes.io/tls Secret
// whose certificate is valid for <service>.<namespace>.svc and signed by its ca.crt, that CA as
// every APIService's caBundle, and the Secret mounted for the --tls-* flags. Without a cluster to
// look the Secret up in, `helm template` generates a new pair each time, as documented; TestTLSInstall
// checks that an existing Secret is kept. (Helm only: see tlsAndForwardChoices.)
func TestRenderChartSelfSigned(t *testing.T) {
	r := newRenderer(t)
	objects := decodeObjects(t, "helm template", r.chart(t, selfSigned))
	secret := findObject(objects, "Secret", releaseNamespace, servingSecret)
	if secret == nil {
		t.Fatalf("helm template with %q renders no Secret %s/%s", selfSigned, releaseNamespace, servingSecret)
	}
	data := secretData(t, secret)
	if secretType, _, _ := unstructured.NestedString(secret.Object, "type"); secretType != "kubernetes.io/tls" {
		t.Errorf("the Secret's type is %q, want kubernetes.io/tls", secretType)
	}
	if _, err := tls.X509KeyPair(data["tls.crt"], data["tls.key"]); err != nil {
		t.Errorf("tls.crt and tls.key are not a key pair: %v", err)
	}
	verifyServingCert(t, "the chart", data["tls.crt"], data["ca.crt"])
	checkAPIServiceTrust(t, "the chart", objects, data["ca.crt"], "")
	checkWiring(t, objects)
	if v, ok := mountedVolume(t, objects, "/etc/promadapter/tls/tls.crt"); !ok || v.Secret == nil || v.Secret.SecretName != servingSecret {
		t.Errorf("--tls-cert-file is not on the mounted Secret %s, but on %s", servingSecret, describeVolume(v, ok))
	}
	again := secretData(t, findObject(decodeObjects(t, "helm template", r.chart(t, selfSigned)), "Secret", releaseNamespace, servingSecret))
	if bytes.Equal(again["ca.crt"], data["ca.crt"]) {
		t.Errorf("two runs of helm template rendered the same CA; docs/install.md says each run generates a new one")
	}
}

// secretData decodes a rendered Secret's data.
func secretData(t *testing.T, secret *unstructured.Unstructured) map[string][]byte {
	t.Helper()
	encoded, _, _ := unstructured.NestedStringMap(secret.Object, "data")
	data := map[string][]byte{}
	for key, value := range encoded {
		var err error
		if data[key], err = base64.StdEncoding.DecodeString(value); err != nil {
			t.Fatalf("%s: data[%s]: %v", objectID(secret), key, err)
		}
	}
	return data
}

// TestRenderChartRefusesChoicesThatCannotWork: the chart's guards name the values to fix.
func TestRenderChartRefusesChoicesThatCannotWork(t *testing.T) {
	r := newRenderer(t)
	for _, c := range []struct{ name, values, want string }{
		{"selfSigned with insecureSkipTLSVerify left on", "tls: {selfSigned: true}", "set tls.insecureSkipTLSVerify=false"},
		{"cert-manager with insecureSkipTLSVerify left on", "tls: {certManager: {enabled: true}}", "set tls.insecureSkipTLSVerify=false"},
		{"caBundle with insecureSkipTLSVerify left on", "tls: {secretName: s, caBundle: Zm9v}", "caBundle and insecureSkipTLSVerify exclude each other"},
		{"no way to trust the adapter", "tls: {insecureSkipTLSVerify: false}", "the kube-apiserver cannot trust the adapter"},
		{"caBundle without the Secret it verifies", "tls: {insecureSkipTLSVerify: false, caBundle: Zm9v}", "needs tls.secretName"},
		{"selfSigned and cert-manager together", "tls: {insecureSkipTLSVerify: false, selfSigned: true, certManager: {enabled: true}}", "choose one"},
		{"caBundle beside selfSigned", "tls: {insecureSkipTLSVerify: false, selfSigned: true, caBundle: Zm9v}", "leave caBundle empty"},
		{"forwarding over http", "externalMetricsForward: {url: \"http://keda\"}", "must be an https URL"},
		{"forwarding without the external metrics API", "apis: {external: false}\nexternalMetricsForward: {url: \"" + kedaURL + "\"}", "needs apis.external: true"},
		{"a forward CA but no URL", "externalMetricsForward: {caConfigMap: keda-ca}", "url is empty"},
		{"the forward CA from a ConfigMap and a Secret", "externalMetricsForward: {url: \"" + kedaURL + "\", caConfigMap: a, caSecret: b}", "not both"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, r.helm, "template", releaseName, r.chartDir(), "--namespace", releaseNamespace, "--values", "-")
			cmd.Stdin = strings.NewReader(c.values + "\n")
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), c.want) {
				t.Errorf("helm template with values %q: %v, output %.300q; want a failure saying %q", c.values, err, out, c.want)
			}
		})
	}
}

// TestRenderChartForwardOptions: the forwarding values that deploy/components/keda-forward does not
// offer (a CA from a Secret, a client certificate instead of the token, a timeout) set the flags and
// mount the files, and without the token the chart grants the ServiceAccount nothing.
func TestRenderChartForwardOptions(t *testing.T) {
	r := newRenderer(t)
	objects := decodeObjects(t, "helm template", r.chart(t, "externalMetricsForward: {url: \""+kedaURL+"\", caSecret: keda-ca, "+
		"serviceAccountToken: false, clientCertSecret: keda-client, timeout: 5s}\n"))
	checkWiring(t, objects)
	args := containerArgs(t, objects)
	for flag, secret := range map[string]string{
		"--external-metrics-forward-ca-file=/etc/promadapter/forward-ca/ca.crt":               "keda-ca",
		"--external-metrics-forward-client-cert-file=/etc/promadapter/forward-client/tls.crt": "keda-client",
		"--external-metrics-forward-client-key-file=/etc/promadapter/forward-client/tls.key":  "keda-client",
	} {
		_, file, _ := strings.Cut(flag, "=")
		if v, ok := mountedVolume(t, objects, file); !slices.Contains(args, flag) || !ok || v.Secret == nil || v.Secret.SecretName != secret {
			t.Errorf("want %s among the args %v, on the mounted Secret %s; the file is on %s", flag, args, secret, describeVolume(v, ok))
		}
	}
	if !slices.Contains(args, "--external-metrics-forward-timeout=5s") || slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, "token-file") }) {
		t.Errorf("the adapter runs with %v; want --external-metrics-forward-timeout=5s and no token file", args)
	}
	if o := findObject(objects, "ClusterRole", "", "promadapter-external-metrics-forward"); o != nil {
		t.Errorf("without serviceAccountToken the chart still grants the ServiceAccount external metrics (%s)", objectID(o))
	}
}
