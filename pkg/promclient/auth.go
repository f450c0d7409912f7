package promclient

import (
	"fmt"
	"net/http"

	"github.com/prometheus/common/config"
	"github.com/prometheus/prometheus/storage/remote/azuread"
	"github.com/prometheus/sigv4"
)

// AzureMonitorScope is the OAuth 2.0 scope of the query API of Azure Monitor managed service for
// Prometheus, asked for when Options.AzureAD sets no Scope. (Prometheus' azuread package
// defaults to the audience of remote write, https://monitor.azure.com, which is for ingestion.)
const AzureMonitorScope = "https://prometheus.monitor.azure.com/.default"

// transport is a backend's round tripper, and what closes its idle connections.
type transport struct {
	rt http.RoundTripper
	// idle closes the idle connections of the innermost transport: the signing round trippers
	// that wrap it do not pass CloseIdleConnections on.
	idle func()
}

// newTransport builds the round tripper of opts: prometheus/common's for TLS, proxies, headers
// and HTTP authentication, wrapped by the SigV4 or Azure AD signer when one is configured.
func newTransport(opts *Options, name string) (transport, error) {
	if err := opts.HTTP.Validate(); err != nil {
		return transport{}, fmt.Errorf("HTTP client config: %w", err)
	}
	if n := authMethods(opts); n > 1 {
		return transport{}, fmt.Errorf("%d ways of authenticating are configured on backend %s: keep one of httpConfig's authorization, basic_auth and oauth2, sigv4 and azureAD", n, name)
	}
	rt, err := config.NewRoundTripperFromConfig(opts.HTTP, "promadapter")
	if err != nil {
		return transport{}, fmt.Errorf("HTTP client config: %w", err)
	}
	t := transport{rt: replayablePOST{rt}, idle: func() {}}
	if ci, ok := rt.(interface{ CloseIdleConnections() }); ok {
		t.idle = ci.CloseIdleConnections
	}
	rt = t.rt
	switch {
	case opts.SigV4 != nil:
		cfg := *opts.SigV4
		if err := cfg.Validate(); err != nil {
			return transport{}, fmt.Errorf("sigv4: %w; fix sigv4 on backend %s", err, name)
		}
		// Without credentials anywhere this fails here, at configuration time, and not on
		// every request.
		if t.rt, err = sigv4.NewSigV4RoundTripper(&cfg, rt); err != nil {
			return transport{}, fmt.Errorf("sigv4: %w; set sigv4.region and credentials (access_key and secret_key, profile, or the AWS default chain: environment, IRSA, instance role) on backend %s", err, name)
		}
	case opts.AzureAD != nil:
		cfg := *opts.AzureAD // Validate fills in defaults: keep the caller's value as it was
		if cfg.WorkloadIdentity != nil {
			wi := *cfg.WorkloadIdentity
			cfg.WorkloadIdentity = &wi
		}
		if cfg.Scope == "" {
			cfg.Scope = AzureMonitorScope
		}
		if err := cfg.Validate(); err != nil {
			return transport{}, fmt.Errorf("azureAD: %w; fix azureAD on backend %s", err, name)
		}
		if t.rt, err = azuread.NewAzureADRoundTripper(&cfg, rt); err != nil {
			return transport{}, fmt.Errorf("azureAD: %w; fix azureAD on backend %s", err, name)
		}
	}
	return t, nil
}

// authMethods counts the ways of setting the Authorization header that opts configure.
func authMethods(opts *Options) int {
	n := 0
	for _, set := range []bool{
		opts.HTTP.Authorization != nil || opts.HTTP.BearerToken != "" || opts.HTTP.BearerTokenFile != "",
		opts.HTTP.BasicAuth != nil,
		opts.HTTP.OAuth2 != nil,
		opts.SigV4 != nil,
		opts.AzureAD != nil,
	} {
		if set {
			n++
		}
	}
	return n
}
