package promclient_test

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/prometheus/storage/remote/azuread"

	"github.com/promadapter/promadapter/pkg/promclient"
)

// TestAzureADTokensForTheQueryAPIAreFetchedAndSent runs the managed identity path against a
// local token endpoint: App Service's (IDENTITY_ENDPOINT and IDENTITY_HEADER), the one source
// of managed identity tokens whose address the Azure SDK takes from the environment. What it
// shows holds for every source: the scope asked for is the query API's, and the token goes
// in the Authorization header of every call.
func TestAzureADTokensForTheQueryAPIAreFetchedAndSent(t *testing.T) {
	const identityHeader = "identity-header-secret"
	var mu sync.Mutex
	var resources []string
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-IDENTITY-HEADER") != identityHeader {
			http.Error(w, "bad identity header", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		resources = append(resources, r.URL.Query().Get("resource")+" for "+r.URL.Query().Get("client_id"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"access_token":"azure-access-token","expires_on":"%d","resource":%q,"token_type":"Bearer"}`,
			time.Now().Add(time.Hour).Unix(), r.URL.Query().Get("resource"))
	}))
	t.Cleanup(tokens.Close)
	for k, v := range map[string]string{
		"IDENTITY_ENDPOINT": tokens.URL + "/msi/token", "IDENTITY_HEADER": identityHeader, "IDENTITY_SERVER_THUMBPRINT": "",
		"MSI_ENDPOINT": "", "MSI_SECRET": "", "IMDS_ENDPOINT": "",
	} {
		t.Setenv(k, v)
	}
	backend := guarded(t, func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer azure-access-token" })
	// A user-assigned identity of its own, so that no token cached by an earlier run is used.
	cfg := &azuread.AzureADConfig{ManagedIdentity: &azuread.ManagedIdentityConfig{ClientID: randomUUID(t)}}
	c := mustNew(t, promclient.Options{Name: "azure", URL: backend.URL, AzureAD: cfg})
	for _, call := range calls {
		if err := call.call(c); err != nil {
			t.Fatalf("%s: %v", call.op, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"https://prometheus.monitor.azure.com for " + cfg.ManagedIdentity.ClientID}; fmt.Sprint(resources) != fmt.Sprint(want) {
		t.Errorf("tokens were asked for %q, want one for %q", resources, want)
	}
	if cfg.Scope != "" || cfg.Cloud != "" {
		t.Errorf("New changed the caller's configuration: scope %q, cloud %q", cfg.Scope, cfg.Cloud)
	}
}

func randomUUID(t *testing.T) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func TestAzureADIsRefusedAtConfigurationTimeWhenItCannotWork(t *testing.T) {
	cases := []struct {
		name string
		opts promclient.Options
		want string
	}{
		{"no way of getting a token", promclient.Options{AzureAD: &azuread.AzureADConfig{}},
			"azureAD: must provide an Azure Managed Identity, Azure Workload Identity, Azure OAuth or Azure SDK in the Azure AD config; fix azureAD on backend azure"},
		{"a client id that is not a UUID", promclient.Options{AzureAD: &azuread.AzureADConfig{ManagedIdentity: &azuread.ManagedIdentityConfig{ClientID: "nope"}}},
			"azureAD: the provided Azure Managed Identity client_id is invalid"},
		{"Azure AD and basic auth both", promclient.Options{AzureAD: &azuread.AzureADConfig{SDK: &azuread.SDKConfig{}},
			HTTP: config.HTTPClientConfig{BasicAuth: &config.BasicAuth{Username: "u", Password: "azure-basic-password"}}},
			"2 ways of authenticating are configured on backend azure"},
		{"an OAuth client secret is never quoted", promclient.Options{AzureAD: &azuread.AzureADConfig{OAuth: &azuread.OAuthConfig{
			ClientID: "not-a-uuid", ClientSecret: "azure-client-secret", TenantID: "tenant"}}},
			"azureAD: the provided Azure OAuth client_id is invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Name, tc.opts.URL = "azure", "https://workspace.eastus.prometheus.monitor.azure.com"
			_, err := promclient.New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error containing %q", err, tc.want)
			}
			assertNoSecret(t, err, "azure-basic-password", "azure-client-secret")
		})
	}
}
