package app

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	certutil "k8s.io/client-go/util/cert"
)

// frontProxyCA is a CA bundle such as kube-apiserver publishes as requestheader-client-ca-file.
func frontProxyCA(t *testing.T) []byte {
	t.Helper()
	cert, _, err := certutil.GenerateSelfSignedCertKey("front-proxy-ca", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// configMapCA is the provider k8s.io/apiserver builds for the request-header CA when the
// adapter looks it up in the cluster: empty until its informer has seen the ConfigMap.
func configMapCA(t *testing.T, objects ...*corev1.ConfigMap) *dynamiccertificates.ConfigMapCAController {
	t.Helper()
	client := fake.NewSimpleClientset()
	for _, o := range objects {
		if _, err := client.CoreV1().ConfigMaps(o.Namespace).Create(context.Background(), o, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := dynamiccertificates.NewDynamicCAFromConfigMapController("client-ca", "kube-system",
		"extension-apiserver-authentication", "requestheader-client-ca-file", client)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAuthenticationCheck(t *testing.T) {
	headers := headerrequest.StaticStringSlice{"X-Remote-User"}
	cases := []struct {
		name string
		rh   func(t *testing.T) *authenticatorfactory.RequestHeaderConfig
		want string // part of the error; empty when ready
	}{
		{
			name: "without request-header authentication there is nothing to wait for",
			rh:   func(*testing.T) *authenticatorfactory.RequestHeaderConfig { return nil },
		},
		{
			name: "a CA from the ConfigMap that the informer has not loaded yet is not ready",
			rh: func(t *testing.T) *authenticatorfactory.RequestHeaderConfig {
				return &authenticatorfactory.RequestHeaderConfig{CAContentProvider: configMapCA(t), UsernameHeaders: headers}
			},
			want: "the request-header client CA not loaded yet: requests through kube-apiserver's aggregator would be answered as system:anonymous",
		},
		{
			name: "a loaded CA without username headers is not ready",
			rh: func(t *testing.T) *authenticatorfactory.RequestHeaderConfig {
				ca, err := dynamiccertificates.NewStaticCAContent("requestheader", frontProxyCA(t))
				if err != nil {
					t.Fatal(err)
				}
				return &authenticatorfactory.RequestHeaderConfig{CAContentProvider: ca, UsernameHeaders: headerrequest.StaticStringSlice{}}
			},
			want: "the request-header username headers not loaded yet",
		},
		{
			name: "neither loaded names both",
			rh: func(t *testing.T) *authenticatorfactory.RequestHeaderConfig {
				return &authenticatorfactory.RequestHeaderConfig{CAContentProvider: configMapCA(t)}
			},
			want: "the request-header client CA and the request-header username headers not loaded yet",
		},
		{
			name: "a CA file and username headers are ready",
			rh: func(t *testing.T) *authenticatorfactory.RequestHeaderConfig {
				ca, err := dynamiccertificates.NewStaticCAContent("requestheader", frontProxyCA(t))
				if err != nil {
					t.Fatal(err)
				}
				return &authenticatorfactory.RequestHeaderConfig{CAContentProvider: ca, UsernameHeaders: headers}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			check := authenticationCheck(tc.rh(t))
			if check.Name() != "promadapter-authentication" {
				t.Errorf("Name() = %q", check.Name())
			}
			err := check.Check(nil)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Check() = %v, want ready", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Check() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestAuthenticationCheckTurnsReadyOnceTheConfigMapCAIsLoaded(t *testing.T) {
	ca := configMapCA(t, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "extension-apiserver-authentication"},
		Data:       map[string]string{"requestheader-client-ca-file": string(frontProxyCA(t))},
	})
	check := authenticationCheck(&authenticatorfactory.RequestHeaderConfig{
		CAContentProvider: ca, UsernameHeaders: headerrequest.StaticStringSlice{"X-Remote-User"},
	})
	// This is what k8s.io/apiserver does at configuration time: the informer has not run,
	// so nothing is loaded, and the server used to be ready from here on.
	if err := ca.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := check.Check(nil); err == nil {
		t.Fatal("ready before the ConfigMap was loaded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ca.Run(ctx, 1) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for check.Check(nil) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("still not ready after the controller ran: %v", check.Check(nil))
		}
		time.Sleep(time.Millisecond)
	}
	if _, ok := ca.VerifyOptions(); !ok {
		t.Error("ready, but the authenticator has no verify options yet")
	}
}

func TestCacheSyncCheck(t *testing.T) {
	synced, unsynced := cache.InformerSynced(func() bool { return true }), cache.InformerSynced(func() bool { return false })
	cases := []struct {
		name   string
		synced []cache.InformerSynced
		want   string
	}{
		{"every cache synced is ready", []cache.InformerSynced{synced, synced}, ""},
		{"one cache not synced is not ready", []cache.InformerSynced{synced, unsynced}, "the pod and node caches have not synced"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := cacheSyncCheck("promadapter-pod-node-cache", "pod and node caches", tc.synced...).Check(nil)
			if (tc.want == "") != (err == nil) || (err != nil && err.Error() != tc.want) {
				t.Errorf("Check() = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestDiscoveryChecks(t *testing.T) {
	cases := []struct {
		name  string
		check func() error
		want  string
	}{
		{"discovery is not ready before its first pass", func() error { return discoveryReadyCheck(func() bool { return false }).Check(nil) },
			"the first metric discovery has not completed"},
		{"discovery is ready after its first pass", func() error { return discoveryReadyCheck(func() bool { return true }).Check(nil) }, ""},
		{"a stalled loop fails the liveness check with its reason", func() error {
			return discoveryLiveCheck(func(time.Duration) error { return errors.New("stuck") }, time.Minute).Check(nil)
		}, "stuck"},
		{"the liveness check passes the bound it was given", func() error {
			return discoveryLiveCheck(func(d time.Duration) error {
				if d != 3*time.Minute {
					return errors.New("wrong bound " + d.String())
				}
				return nil
			}, 3*time.Minute).Check(nil)
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.check()
			if (tc.want == "") != (err == nil) || (err != nil && err.Error() != tc.want) {
				t.Errorf("Check() = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestDiscoveryMaxQuiet(t *testing.T) {
	cases := []struct {
		name            string
		relist, timeout time.Duration
		want            time.Duration
	}{
		{"three relist intervals when they are longer than the Prometheus timeout", time.Minute, 10 * time.Second, 3 * time.Minute},
		{"three Prometheus timeouts when a hanging call lasts longer than a relist interval", 5 * time.Second, 10 * time.Second, 30 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := discoveryMaxQuiet(tc.relist, tc.timeout); got != tc.want {
				t.Errorf("discoveryMaxQuiet(%s, %s) = %s, want %s", tc.relist, tc.timeout, got, tc.want)
			}
		})
	}
}
