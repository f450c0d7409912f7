package testbed

import (
	"context"
	"fmt"
	"os"
	"time"
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
	return c.registerLocalhostAdapter(ctx, port, groups, caBundle)
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
