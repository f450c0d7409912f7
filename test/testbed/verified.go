package testbed

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	corev1apply "k8s.io/client-go/applyconfigurations/core/v1"
)

// ServingDNSName is the name kube-apiserver checks in the certificate of an adapter registered
// by RegisterAdapterVerified: <service>.<namespace>.svc.
const ServingDNSName = AdapterServiceName + "." + AdapterNamespace + ".svc"

// RegisterAdapterVerified is RegisterAdapter with TLS verified: the APIServices carry caBundle
// (PEM) and insecureSkipTLSVerify false, so kube-apiserver sends requests only to an adapter
// whose certificate caBundle signed and that names ServingDNSName. It takes over the fields of
// APIServices and the Service that others set (server-side apply, forced), so calling it again
// repairs whatever a test changed in them.
func (c *Cluster) RegisterAdapterVerified(ctx context.Context, port int, groups []APIServiceGroup, caBundle []byte) error {
	if port <= 0 || port > 65535 || len(groups) == 0 || len(caBundle) == 0 {
		return fmt.Errorf("registering the adapter: need a TCP port (got %d), group versions (got %d) and a caBundle (got %d bytes)", port, len(groups), len(caBundle))
	}
	apply := metav1.ApplyOptions{FieldManager: fieldManager, Force: true}
	if _, err := c.Client.CoreV1().Namespaces().Apply(ctx, corev1apply.Namespace(AdapterNamespace), apply); err != nil {
		return fmt.Errorf("applying namespace %s: %w", AdapterNamespace, err)
	}
	service := corev1apply.Service(AdapterServiceName, AdapterNamespace).WithSpec(corev1apply.ServiceSpec().
		WithType(corev1.ServiceTypeExternalName).WithExternalName("localhost").
		WithPorts(corev1apply.ServicePort().WithName("https").WithPort(int32(port))))
	if _, err := c.Client.CoreV1().Services(AdapterNamespace).Apply(ctx, service, apply); err != nil {
		return fmt.Errorf("applying Service %s/%s: %w", AdapterNamespace, AdapterServiceName, err)
	}
	for _, g := range groups {
		apiService := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiregistration.k8s.io/v1",
			"kind":       "APIService",
			"metadata":   map[string]any{"name": g.Name()},
			"spec": map[string]any{
				"group": g.Group, "version": g.Version,
				"service":               map[string]any{"namespace": AdapterNamespace, "name": AdapterServiceName, "port": int64(port)},
				"caBundle":              base64.StdEncoding.EncodeToString(caBundle),
				"insecureSkipTLSVerify": false,
				"groupPriorityMinimum":  int64(100),
				"versionPriority":       g.versionPriority(),
			},
		}}
		if _, err := c.Dynamic.Resource(apiServiceResource).Apply(ctx, g.Name(), apiService, apply); err != nil {
			return fmt.Errorf("applying APIService %s: %w", g.Name(), err)
		}
	}
	return nil
}

// WriteServing issues a certificate for dnsName valid from notBefore to notAfter and writes it
// and its key to certFile and keyFile as the kubelet updates a mounted Secret: each file
// written beside and renamed over the old one, the key first.
func (ca *ServingCA) WriteServing(dnsName string, notBefore, notAfter time.Time, certFile, keyFile string) error {
	certPEM, keyPEM, err := ca.Issue(dnsName, notBefore, notAfter)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		path string
		data []byte
	}{{keyFile, keyPEM}, {certFile, certPEM}} {
		if err := os.WriteFile(f.path+".new", f.data, 0o600); err != nil {
			return err
		}
		if err := os.Rename(f.path+".new", f.path); err != nil {
			return err
		}
	}
	return nil
}
