package options

import (
	"testing"

	"github.com/spf13/pflag"
)

func TestToolFlagsAreServesFlags(t *testing.T) {
	o := NewTool()
	fs := pflag.NewFlagSet("tool", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse([]string{"--config=rules.yaml", "--prometheus-url=http://127.0.0.1:9090", "--prometheus-timeout=3s", "--kubeconfig=kc"}); err != nil {
		t.Fatal(err)
	}
	if o.ConfigFile != "rules.yaml" || o.PrometheusURL != "http://127.0.0.1:9090" || o.PrometheusTimeout.String() != "3s" || o.Kubeconfig != "kc" {
		t.Errorf("parsed into %+v (kubeconfig %q)", o.Options, o.Kubeconfig)
	}
	if _, err := o.PrometheusOptions(); err != nil {
		t.Errorf("PrometheusOptions: %v", err)
	}
	if fs.Lookup("secure-port") != nil || fs.Lookup("lister-kubeconfig") != nil {
		t.Errorf("the tool flags include serving-only flags")
	}
}
