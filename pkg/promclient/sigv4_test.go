package promclient_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/prometheus/common/config"
	"github.com/prometheus/sigv4"

	"github.com/promadapter/promadapter/pkg/promclient"
)

const (
	awsAccessKey = "AKIDPROMADAPTERTEST"
	awsSecretKey = "aws-secret-key-for-the-test"
	awsRegion    = "eu-west-1"
)

// isolateAWS keeps the AWS SDK from reading the machine's profiles, environment or instance
// metadata: the test's credentials are the only ones.
func isolateAWS(t *testing.T) {
	empty := writeFile(t, t.TempDir(), "empty", nil)
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE": empty, "AWS_SHARED_CREDENTIALS_FILE": empty, "AWS_PROFILE": "", "AWS_REGION": "",
		"AWS_DEFAULT_REGION": "", "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
		"AWS_ROLE_ARN": "", "AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
}

// verifySigV4 checks a request's signature as AWS does: it signs again, with the secret the
// server knows, the request as received (its method, path, query, body and the headers the
// signature names) at the time in its X-Amz-Date, and compares the two Authorization headers.
func verifySigV4(r *http.Request, body []byte, secret, service string) error {
	auth := r.Header.Get("Authorization")
	const prefix = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, prefix) {
		return fmt.Errorf("Authorization %q is not a SigV4 signature", auth)
	}
	var signed []string
	for part := range strings.SplitSeq(strings.TrimPrefix(auth, prefix), ", ") {
		if v, ok := strings.CutPrefix(part, "SignedHeaders="); ok {
			signed = strings.Split(v, ";")
		}
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return fmt.Errorf("X-Amz-Date: %v", err)
	}
	again, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	for _, h := range signed {
		switch h {
		case "host", "content-length":
			continue // from the request line and the body
		}
		values := r.Header.Values(h)
		if len(values) == 0 {
			return fmt.Errorf("signed header %q was not sent", h)
		}
		again.Header[http.CanonicalHeaderKey(h)] = values
	}
	hash := sha256.Sum256(body)
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: awsAccessKey, SecretAccessKey: secret},
		again, hex.EncodeToString(hash[:]), service, awsRegion, at)
	if err != nil {
		return err
	}
	if got := again.Header.Get("Authorization"); got != auth {
		return fmt.Errorf("signature mismatch:\n sent     %s\n expected %s", auth, got)
	}
	return nil
}

// sigV4Server is a fake Amazon Managed Service for Prometheus: it answers requests signed with
// awsSecretKey for the service, and refuses others with 403 as AWS does.
type sigV4Server struct {
	*httptest.Server
	mu      sync.Mutex
	seen    []*http.Request // accepted
	refused int
}

func newSigV4Server(t *testing.T, service string) *sigV4Server {
	return newSigV4ServerWith(t, service, nil)
}

// newSigV4ServerWith is newSigV4Server with connState as the server's http.Server.ConnState.
func newSigV4ServerWith(t *testing.T, service string, connState func(net.Conn, http.ConnState)) *sigV4Server {
	s := &sigV4Server{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := verifySigV4(r, body, awsSecretKey, service); err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = fmt.Fprintf(w, `{"message":"The request signature we calculated does not match the signature you provided."}`)
			t.Logf("refused: %v", err)
			s.mu.Lock()
			s.refused++
			s.mu.Unlock()
			return
		}
		s.mu.Lock()
		s.seen = append(s.seen, r)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/query") {
			_, _ = io.WriteString(w, vectorBody)
			return
		}
		_, _ = io.WriteString(w, `{"status":"success","data":["up"]}`)
	}))
	s.Config.ConnState = connState
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func TestSigV4SignaturesAreVerifiedByTheServer(t *testing.T) {
	isolateAWS(t)
	cases := []struct {
		name    string
		sigv4   sigv4.SigV4Config
		service string // the server's
		verb    string
		tenant  string
		wantErr bool
	}{
		{"GET requests signed for aps are accepted", sigv4.SigV4Config{Region: awsRegion, AccessKey: awsAccessKey, SecretKey: awsSecretKey}, "aps", "GET", "", false},
		{"POST requests, body and all, are accepted", sigv4.SigV4Config{Region: awsRegion, AccessKey: awsAccessKey, SecretKey: awsSecretKey}, "aps", "POST", "", false},
		{"a tenant header is signed with the rest", sigv4.SigV4Config{Region: awsRegion, AccessKey: awsAccessKey, SecretKey: awsSecretKey}, "aps", "POST", "team-a", false},
		{"another service name is used when configured", sigv4.SigV4Config{Region: awsRegion, AccessKey: awsAccessKey, SecretKey: awsSecretKey, ServiceName: "execute-api"}, "execute-api", "GET", "", false},
		{"a wrong secret key is refused, and not quoted", sigv4.SigV4Config{Region: awsRegion, AccessKey: awsAccessKey, SecretKey: "wrong-aws-secret-key"}, "aps", "GET", "", true},
		{"a signature for another service is refused", sigv4.SigV4Config{Region: awsRegion, AccessKey: awsAccessKey, SecretKey: awsSecretKey, ServiceName: "s3"}, "aps", "GET", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSigV4Server(t, tc.service)
			cfg := tc.sigv4
			c := mustNew(t, promclient.Options{URL: srv.URL + "/workspaces/ws-1", Verb: tc.verb, SigV4: &cfg, Tenant: promclient.TenantOptions{Header: "X-Tenant"}})
			if tc.tenant != "" {
				var err error
				if c, err = c.WithTenant(tc.tenant); err != nil {
					t.Fatal(err)
				}
			}
			for _, call := range calls {
				err := call.call(c)
				if tc.wantErr {
					if err == nil || !strings.Contains(err.Error(), "client error: 403") {
						t.Errorf("%s = %v, want the server's 403", call.op, err)
					}
					assertNoSecret(t, err, string(tc.sigv4.SecretKey), awsSecretKey)
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", call.op, err)
				}
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if !tc.wantErr {
				// A refused POST would be retried as a GET: count the refusals, and the methods.
				var methods []string
				for _, r := range srv.seen {
					methods = append(methods, r.Method)
				}
				want := []string{tc.verb, tc.verb, "GET"} // label values are always a GET
				if srv.refused != 0 || fmt.Sprint(methods) != fmt.Sprint(want) {
					t.Errorf("the server refused %d requests and accepted %v, want none refused and %v", srv.refused, methods, want)
				}
			}
			if tc.tenant != "" {
				for _, r := range srv.seen {
					if r.Header.Get("X-Tenant") != tc.tenant || !strings.Contains(r.Header.Get("Authorization"), "x-tenant") {
						t.Errorf("request %s: X-Tenant %q, Authorization %q; want the tenant, signed", r.URL.Path, r.Header.Get("X-Tenant"), r.Header.Get("Authorization"))
					}
				}
			}
		})
	}
}

func TestSigV4IsRefusedAtConfigurationTimeWhenItCannotWork(t *testing.T) {
	isolateAWS(t)
	cases := []struct {
		name string
		opts promclient.Options
		want string
	}{
		{"an access key without a secret key", promclient.Options{SigV4: &sigv4.SigV4Config{Region: awsRegion, AccessKey: awsAccessKey}},
			"sigv4: must provide a AWS SigV4 Access key and Secret Key"},
		{"no region anywhere", promclient.Options{SigV4: &sigv4.SigV4Config{AccessKey: awsAccessKey, SecretKey: awsSecretKey}},
			"region not configured"},
		{"SigV4 and a bearer token both", promclient.Options{SigV4: &sigv4.SigV4Config{Region: awsRegion, AccessKey: awsAccessKey, SecretKey: awsSecretKey},
			HTTP: config.HTTPClientConfig{Authorization: &config.Authorization{Type: "Bearer", Credentials: "x"}}},
			"2 ways of authenticating are configured on backend amp: keep one of httpConfig's authorization, basic_auth and oauth2, sigv4 and azureAD"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Name, tc.opts.URL = "amp", "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1"
			_, err := promclient.New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error containing %q", err, tc.want)
			}
			assertNoSecret(t, err, awsSecretKey)
		})
	}
}

func TestCloseClosesTheIdleConnectionsBeneathTheSigner(t *testing.T) {
	isolateAWS(t)
	for _, signed := range []bool{false, true} {
		t.Run(fmt.Sprintf("signed=%v", signed), func(t *testing.T) {
			closed := make(chan struct{}, 16)
			srv := newSigV4ServerWith(t, "aps", func(_ net.Conn, s http.ConnState) {
				if s == http.StateClosed {
					closed <- struct{}{}
				}
			})
			opts := promclient.Options{URL: srv.URL}
			if signed {
				opts.SigV4 = &sigv4.SigV4Config{Region: awsRegion, AccessKey: awsAccessKey, SecretKey: awsSecretKey}
			}
			c := mustNew(t, opts)
			// Unsigned, the server refuses the query, on a connection kept alive all the same.
			if _, err := c.Query(context.Background(), "up", time.Time{}); (err == nil) != signed {
				t.Fatalf("Query: %v", err)
			}
			select {
			case <-closed:
				t.Fatal("the connection closed before Close")
			case <-time.After(50 * time.Millisecond):
			}
			c.Close()
			select {
			case <-closed:
			case <-time.After(5 * time.Second):
				t.Fatal("the idle connection is still open 5s after Close")
			}
		})
	}
}
