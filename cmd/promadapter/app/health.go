package app

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/tools/cache"

	"github.com/promadapter/promadapter/pkg/informeraccess"
)

// The adapter's own health checks, next to the apiserver's (ping, log, etcd-free poststarthooks).
//
// /readyz answers 200 once the adapter can answer correctly: its pod and node caches have
// synced, the first metric discovery pass has ended, and the request-header authentication
// config is loaded. Prometheus being down does not make it unready: every replica would
// turn unready at once and the APIService would be unavailable, with no better answer than
// the 503 each request gets (or its stale answer, --serve-stale-for).
//
// /livez fails only for what a restart fixes: a discovery loop that shows no sign of life.
// Prometheus being down never fails it, or every replica would restart at once.

// authenticationCheck is ready once requests from kube-apiserver's aggregator can be
// authenticated. They carry the user in headers (X-Remote-User), trusted only over a TLS
// client certificate signed by the request-header CA; the CA and the header names come from
// ConfigMap kube-system/extension-apiserver-authentication, which k8s.io/apiserver loads
// through an informer after the server starts. Until the CA has arrived, the client
// certificate is not verified and every aggregated request is served as system:anonymous
// (403). rh is nil when request-header authentication is off (--authentication-skip-lookup
// or no authentication kubeconfig): then there is nothing to wait for.
//
// The serving TLS config learns the CA from the same provider through a listener, a work
// queue step after the content is visible here.
func authenticationCheck(rh *authenticatorfactory.RequestHeaderConfig) healthz.HealthChecker {
	return healthz.NamedCheck("promadapter-authentication", func(*http.Request) error {
		if rh == nil {
			return nil
		}
		var missing []string
		if rh.CAContentProvider == nil || len(rh.CAContentProvider.CurrentCABundleContent()) == 0 {
			missing = append(missing, "the request-header client CA")
		}
		if rh.UsernameHeaders == nil || len(rh.UsernameHeaders.Value()) == 0 {
			missing = append(missing, "the request-header username headers")
		}
		if len(missing) == 0 {
			return nil
		}
		return fmt.Errorf("%s not loaded yet: requests through kube-apiserver's aggregator would be answered as system:anonymous; "+
			"they come from ConfigMap kube-system/extension-apiserver-authentication (or --requestheader-client-ca-file): "+
			"if this lasts, check that the adapter may read it (RoleBinding to the Role extension-apiserver-authentication-reader)",
			strings.Join(missing, " and "))
	})
}

// cacheSyncCheck is ready once every informer has synced: metrics.k8s.io answers from the
// pod and node caches, and before they sync it would report no pods.
func cacheSyncCheck(name, what string, synced ...cache.InformerSynced) healthz.HealthChecker {
	return healthz.NamedCheck(name, func(*http.Request) error {
		for _, s := range synced {
			if !s() {
				return fmt.Errorf("the %s have not synced", what)
			}
		}
		return nil
	})
}

// accessCheck is ready while the kube-apiserver lets the adapter list and watch the caches
// every request needs (pods and nodes for metrics.k8s.io). A refused list leaves a cache empty
// forever; a refused watch leaves it stale while requests are answered from it: either way the
// replica must not receive traffic, and /readyz?verbose names the rights to grant. Caches a
// custom rule needs (statefulsets, a custom resource) fail only their own requests.
func accessCheck(refusals *informeraccess.Refusals, names ...string) healthz.HealthChecker {
	return healthz.NamedCheck("promadapter-cache-access", func(*http.Request) error { return refusals.Check(names...) })
}

// discoveryReadyCheck is ready once the first discovery pass has ended, successful or not:
// before it no custom or external metric is listed. A pass against a Prometheus that is down
// also ends (its rules are then reported as failing in 404 answers).
func discoveryReadyCheck(ready func() bool) healthz.HealthChecker {
	return healthz.NamedCheck("promadapter-discovery", func(*http.Request) error {
		if !ready() {
			return errors.New("the first metric discovery has not completed")
		}
		return nil
	})
}

// discoveryLiveCheck fails when the discovery loop has shown no sign of life for maxQuiet
// (see discovery.Discoverer.Stalled).
func discoveryLiveCheck(stalled func(maxQuiet time.Duration) error, maxQuiet time.Duration) healthz.HealthChecker {
	return healthz.NamedCheck("promadapter-discovery-loop", func(*http.Request) error {
		return stalled(maxQuiet)
	})
}

// discoveryMaxQuiet is how long the discovery loop may show no sign of life before /livez
// fails: three relist intervals, or three Prometheus timeouts when those are longer, since a
// call to a Prometheus that hangs is a silence of up to one timeout and must not count.
func discoveryMaxQuiet(relist, prometheusTimeout time.Duration) time.Duration {
	return 3 * max(relist, prometheusTimeout)
}
