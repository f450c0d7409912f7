package promclient

import (
	"encoding/base64"
	"errors"
	"net/url"
	"sort"
	"strings"
)

// redacted replaces a secret in text meant for people.
const redacted = "xxxxx"

// minSecretLen is the shortest secret that scrub replaces in free text: shorter strings
// ("a", "1") occur everywhere, and replacing them would garble every message.
const minSecretLen = 4

// displayURL is u for messages and logs: the password and the values of the URL's parameters
// (Thanos and VictoriaMetrics tenants, access tokens) replaced by xxxxx.
func displayURL(u *url.URL) string {
	shown := *u
	if q := shown.Query(); len(q) > 0 {
		for _, vs := range q {
			for i := range vs {
				vs[i] = redacted
			}
		}
		shown.RawQuery = q.Encode()
	}
	return shown.Redacted()
}

// displayRaw is a URL string as given by a person, for messages: displayURL's redaction when
// it parses, else the text between "://" and the last "@" and everything after a "?" cut out.
// A string without "@" or "?" is returned as it is.
func displayRaw(s string) string {
	if !strings.ContainsAny(s, "@?") {
		return s
	}
	if u, err := url.Parse(s); err == nil && u.Opaque == "" {
		return displayURL(u)
	}
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i] + "?" + redacted
	}
	if at := strings.LastIndex(s, "@"); at >= 0 {
		start := strings.Index(s, "://") + len("://")
		if start < len("://") || start > at {
			start = 0
		}
		s = s[:start] + redacted + s[at:]
	}
	return s
}

// redactor removes a backend's secrets from errors: the password in its URL, the values of its
// URL's parameters and of its query parameters, and the inline secrets of its configuration,
// raw and escaped.
type redactor struct {
	secrets []string // longest first, so that no secret is left half replaced
}

func newRedactor(u *url.URL, extra ...string) *redactor {
	set := map[string]bool{}
	add := func(s string) {
		if len(s) >= minSecretLen {
			set[s], set[url.QueryEscape(s)], set[url.PathEscape(s)] = true, true, true
		}
	}
	if pass, ok := u.User.Password(); ok {
		add(pass)
		add(u.User.String()) // user:pass as the URL writes it
		// As a basic-auth header, which a proxy's error page may echo.
		add(base64.StdEncoding.EncodeToString([]byte(u.User.Username() + ":" + pass)))
	}
	for _, vs := range u.Query() {
		for _, v := range vs {
			add(v)
		}
	}
	for _, s := range extra {
		add(s)
	}
	r := &redactor{}
	for s := range set {
		r.secrets = append(r.secrets, s)
	}
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
	return r
}

// configSecrets are the secrets written inline in a backend's configuration (those in files are
// read per request and cannot be known here), and the values of its query parameters, which
// are treated as the URL's are: a gateway may take an API key there.
func configSecrets(opts *Options) []string {
	var out []string
	hc := opts.HTTP
	if hc.BasicAuth != nil && hc.BasicAuth.Password != "" {
		out = append(out, string(hc.BasicAuth.Password),
			// As a basic-auth header, which a proxy's error page may echo.
			base64.StdEncoding.EncodeToString([]byte(hc.BasicAuth.Username+":"+string(hc.BasicAuth.Password))))
	}
	if hc.Authorization != nil {
		out = append(out, string(hc.Authorization.Credentials))
	}
	out = append(out, string(hc.BearerToken))
	if hc.OAuth2 != nil {
		out = append(out, string(hc.OAuth2.ClientSecret))
	}
	if hc.HTTPHeaders != nil {
		for _, h := range hc.HTTPHeaders.Headers {
			for _, s := range h.Secrets {
				out = append(out, string(s))
			}
		}
	}
	if opts.SigV4 != nil {
		out = append(out, string(opts.SigV4.SecretKey))
	}
	if opts.AzureAD != nil && opts.AzureAD.OAuth != nil {
		out = append(out, opts.AzureAD.OAuth.ClientSecret)
	}
	for _, vs := range opts.QueryParameters {
		out = append(out, vs...)
	}
	return out
}

// scrub replaces every secret in s.
func (r *redactor) scrub(s string) string {
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, redacted)
	}
	return s
}

// error returns err, or when its text holds a secret, an error with the scrubbed text. The
// scrubbed error no longer unwraps: classify err before.
func (r *redactor) error(err error) error {
	text := err.Error()
	if clean := r.scrub(text); clean != text {
		return errors.New(clean)
	}
	return err
}

// redactURLError rewrites a transport error, which quotes the request's URL: with the
// password, the query string (the PromQL, the URL's parameters) and all. What remains names
// the endpoint: scheme, host and path.
func redactURLError(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) || ue != err {
		return err
	}
	shown := displayRaw(ue.URL)
	if u, perr := url.Parse(ue.URL); perr == nil {
		u.RawQuery, u.ForceQuery, u.Fragment = "", false, ""
		shown = u.Redacted()
	}
	return &url.Error{Op: ue.Op, URL: shown, Err: ue.Err}
}
