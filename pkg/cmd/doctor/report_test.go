package doctor

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestReportText(t *testing.T) {
	r := &Report{Cluster: "https://127.0.0.1:6443", Adapter: "promadapter/promadapter", ServiceAccount: "promadapter/promadapter (from the default)", Prometheus: "none"}
	r.add(
		Check{Section: sectionAPIServices, Name: "v1beta1.metrics.k8s.io", Status: Pass, Summary: "Available", Evidence: []string{"spec.service promadapter/promadapter port 443"}, Fix: "never shown for a pass"},
		Check{Section: sectionAPIServices, Name: "v1beta1.custom.metrics.k8s.io", Status: Fail, Summary: "not registered", Fix: "kubectl apply -f a.yaml\nor\n  kubectl apply -f b.yaml"},
		Check{Section: sectionTLS, Name: "serving certificate", Status: Warn, Summary: "insecureSkipTLSVerify"},
		Check{Section: sectionTLS, Name: "dial", Status: Skip, Summary: "cannot dial"},
	)
	var out bytes.Buffer
	if err := r.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	want := `cluster https://127.0.0.1:6443
adapter Service promadapter/promadapter, ServiceAccount promadapter/promadapter (from the default)
Prometheus none

APIServices
✓ v1beta1.metrics.k8s.io: Available
    spec.service promadapter/promadapter port 443
✗ v1beta1.custom.metrics.k8s.io: not registered
    fix: kubectl apply -f a.yaml
         or
           kubectl apply -f b.yaml

TLS and the aggregation layer
! serving certificate: insecureSkipTLSVerify
- dial: cannot dial

1 passed, 1 warned, 1 failed, 1 skipped
`
	if out.String() != want {
		t.Errorf("text report:\n%s\nwant:\n%s", out.String(), want)
	}

	out.Reset()
	if err := r.WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(out.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Counts != (Counts{Pass: 1, Warn: 1, Fail: 1, Skip: 1}) || len(back.Checks) != 4 || back.Checks[1].Status != Fail || back.Checks[1].Fix != r.Checks[1].Fix {
		t.Errorf("JSON report read back as %+v", back)
	}
}
