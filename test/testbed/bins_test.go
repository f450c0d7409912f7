package testbed

import "testing"

func TestParsePrometheusVersion(t *testing.T) {
	tests := []struct {
		name   string
		output string
		want   string
	}{
		{"a Debian build reports its release", "prometheus, version 2.42.0+ds (branch: debian/sid, revision: 2.42.0+ds-5+deb12u1)\n  build user: x\n", "2.42.0+ds"},
		{"a release build reports its release", "promtool, version 3.9.1 (branch: HEAD, revision: abc)\n", "3.9.1"},
		{"a build without version stamping reports none", "prometheus, version  (branch: , revision: unknown)\n  build user:       \n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePrometheusVersion(tc.output)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("parsePrometheusVersion(%q) = %q, want %q", tc.output, got, tc.want)
			}
		})
	}
	t.Run("output without a version is an error", func(t *testing.T) {
		if got, err := parsePrometheusVersion("unknown flag --version\n"); err == nil {
			t.Errorf("got %q and no error, want an error", got)
		}
	})
}

func TestReleaseFromModuleVersion(t *testing.T) {
	tests := []struct {
		moduleVersion string
		want          string
	}{
		{"v0.309.1", "3.9.1"},
		{"v0.310.0", "3.10.0"},
		{"v0.54.1", "v0.54.1"}, // Prometheus 2.x module versions do not encode the release
		{"v1.2.3", "v1.2.3"},
	}
	for _, tc := range tests {
		t.Run(tc.moduleVersion+" is release "+tc.want, func(t *testing.T) {
			if got := releaseFromModuleVersion(tc.moduleVersion); got != tc.want {
				t.Errorf("releaseFromModuleVersion(%q) = %q, want %q", tc.moduleVersion, got, tc.want)
			}
		})
	}
}

func TestShellQuote(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"plain words stay as they are", []string{"kubectl", "--kubeconfig=/tmp/a.kubeconfig", "get", "--raw", "/readyz"}, "kubectl --kubeconfig=/tmp/a.kubeconfig get --raw /readyz"},
		{"words with spaces or shell characters are single-quoted", []string{"sh", "-c", "echo $HOME; exit"}, "sh -c 'echo $HOME; exit'"},
		{"single quotes inside are escaped", []string{"echo", "it's"}, `echo 'it'\''s'`},
		{"an empty word is kept", []string{"echo", ""}, "echo ''"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := shellQuote(tc.args); got != tc.want {
				t.Errorf("shellQuote(%q) = %s, want %s", tc.args, got, tc.want)
			}
		})
	}
}
