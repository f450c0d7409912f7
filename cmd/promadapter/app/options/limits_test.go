package options_test

import (
	"strings"
	"testing"
	"time"

	"github.com/promadapter/promadapter/cmd/promadapter/app/options"
	"github.com/promadapter/promadapter/pkg/promclient"
)

func TestAnswerLimitFlagsReachTheClientOptions(t *testing.T) {
	cases := []struct {
		name         string
		args         []string
		wantBytes    int64
		wantSamples  int
		wantPartial  bool
		wantStaleFor time.Duration
	}{
		{
			name:      "without the flags the client's own defaults apply and partial answers are refused",
			wantBytes: promclient.DefaultMaxAnswerBytes, wantSamples: promclient.DefaultMaxSamples,
		},
		{
			name:      "the answer size and sample bounds pass through",
			args:      []string{"--prometheus-max-answer-bytes=1048576", "--prometheus-max-samples=2000"},
			wantBytes: 1 << 20, wantSamples: 2000,
		},
		{
			name:      "partial answers can be allowed",
			args:      []string{"--allow-partial-answers"},
			wantBytes: promclient.DefaultMaxAnswerBytes, wantSamples: promclient.DefaultMaxSamples, wantPartial: true,
		},
		{
			name:      "serving stale answers can be turned on",
			args:      []string{"--serve-stale-for=2m"},
			wantBytes: promclient.DefaultMaxAnswerBytes, wantSamples: promclient.DefaultMaxSamples, wantStaleFor: 2 * time.Minute,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := parse(t, append([]string{"--prometheus-url=http://127.0.0.1:9090"}, tc.args...)...)
			if errs := o.Validate(); len(errs) != 0 {
				t.Fatalf("Validate() = %v", errs)
			}
			po, err := o.PrometheusOptions()
			if err != nil {
				t.Fatalf("PrometheusOptions(): %v", err)
			}
			if po.MaxAnswerBytes != tc.wantBytes || po.MaxSamples != tc.wantSamples || po.AllowPartial != tc.wantPartial {
				t.Errorf("PrometheusOptions() limits = (MaxAnswerBytes %d, MaxSamples %d, AllowPartial %v), want (%d, %d, %v)",
					po.MaxAnswerBytes, po.MaxSamples, po.AllowPartial, tc.wantBytes, tc.wantSamples, tc.wantPartial)
			}
			if o.ServeStaleFor != tc.wantStaleFor {
				t.Errorf("ServeStaleFor = %s, want %s", o.ServeStaleFor, tc.wantStaleFor)
			}
			if _, err := promclient.New(po); err != nil {
				t.Errorf("promclient.New refuses the options: %v", err)
			}
		})
	}
}

func TestValidateRefusesLimitsThatAreNotPositive(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"a zero answer size bound is reported", []string{"--prometheus-max-answer-bytes=0"}, "--prometheus-max-answer-bytes=0 must be positive"},
		{"a negative answer size bound is reported", []string{"--prometheus-max-answer-bytes=-1"}, "--prometheus-max-answer-bytes=-1 must be positive"},
		{"a zero sample bound is reported", []string{"--prometheus-max-samples=0"}, "--prometheus-max-samples=0 must be positive"},
		{"a negative stale period is reported", []string{"--serve-stale-for=-1s"}, "--serve-stale-for=-1s must not be negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := parse(t, append([]string{"--prometheus-url=http://127.0.0.1:9090"}, tc.args...)...).Validate()
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want) {
				t.Fatalf("Validate() = %v, want one error containing %q", errs, tc.want)
			}
		})
	}
}

func TestRedactURLNeverShowsThePassword(t *testing.T) {
	cases := []struct {
		name string
		raw  string
		want string
	}{
		{"a URL without credentials is unchanged", "http://prometheus:9090/prom", "http://prometheus:9090/prom"},
		{"a password is replaced", "https://admin:s3cret@prometheus:9090/prom", "https://admin:xxxxx@prometheus:9090/prom"},
		{"a user name alone is kept", "https://admin@prometheus:9090", "https://admin@prometheus:9090"},
		{"an '@' in the path is not user information", "http://prometheus:9090/a@b", "http://prometheus:9090/a@b"},
		{"a password in a URL without scheme is hidden", "admin:s3cret@prometheus:9090", "(an unparsable URL, not shown as it may hold a password)"},
		{"an unparsable URL keeps only its scheme and host", "http://admin:s3cret@prometheus:9090/%zz", "http://xxxxx@prometheus:9090/…"},
		{"a password holding a slash is hidden whole", "http://admin:s3/cret@prometheus:9090/%zz", "http://xxxxx@prometheus:9090/…"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := options.RedactURL(tc.raw); got != tc.want {
				t.Errorf("RedactURL(%q) = %q, want %q", tc.raw, got, tc.want)
			}
		})
	}
}

func TestValidationErrorsNeverShowThePrometheusPassword(t *testing.T) {
	for _, raw := range []string{
		"ftp://admin:s3cret@prometheus:9090",
		"admin:s3cret@prometheus:9090",
		"http://admin:s3cret@prometheus:9090/%zz",
		"http://admin:s3cret@/api",
	} {
		t.Run("the URL "+options.RedactURL(raw)+" is reported without its password", func(t *testing.T) {
			errs := parse(t, "--prometheus-url="+raw).Validate()
			if len(errs) == 0 {
				t.Fatalf("Validate() accepted %s", options.RedactURL(raw))
			}
			for _, err := range errs {
				if !strings.Contains(err.Error(), "--prometheus-url") {
					t.Errorf("error %q does not name the flag", err)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error %q shows the password", err)
				}
			}
		})
	}
}
