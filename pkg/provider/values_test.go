package provider_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/promadapter/promadapter/pkg/planner"
	"github.com/promadapter/promadapter/pkg/promclient"
	"github.com/promadapter/promadapter/pkg/provider"
)

func TestQuantityIsExact(t *testing.T) {
	cases := []struct {
		name  string
		value float64
		want  string
	}{
		{"a fraction keeps milli precision", 0.125, "125m"},
		{"a whole number stays whole", 3, "3"},
		{"zero is zero", 0, "0"},
		{"bytes are never milli-bytes", 1073741824, "1073741824"},
		{"a whole multiple of a thousand uses the SI suffix", 2000, "2k"},
		{"a value a rounding error below a whole number is that number", 2.9999999999, "3"},
		{"a value a rounding error above a fraction is that fraction", 0.1 + 0.2, "300m"},
		{"a third keeps nano precision, being below one", 1.0 / 3, "333333333n"},
		{"a value under one milli is not rounded to zero", 0.0004, "400u"},
		{"a non-exact value above one keeps milli precision", 7.0 / 3, "2333m"},
		{"a negative fraction keeps its sign", -0.5, "-500m"},
		{"a negative whole number stays whole", -3, "-3"},
		{"a rate above a thousand keeps its milli part", 1234.5, "1234500m"},
		{"a whole number beyond int64's milli range stays whole", 1e17, "100P"},
		{"a whole number beyond 2^62 is still exact in decimal", 1e20, "100E"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q, err := provider.Quantity(tc.value)
			if err != nil {
				t.Fatalf("Quantity(%v): %v", tc.value, err)
			}
			if got := q.String(); got != tc.want {
				t.Errorf("Quantity(%v) = %s, want %s", tc.value, got, tc.want)
			}
		})
	}
}

func TestQuantityRefusesValuesWithoutAQuantity(t *testing.T) {
	cases := []struct {
		name  string
		value float64
		want  string
	}{
		{"NaN is an error, never a zero", math.NaN(), "the value is NaN"},
		{"+Inf is an error", math.Inf(1), "the value is +Inf"},
		{"-Inf is an error", math.Inf(-1), "the value is -Inf"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q, err := provider.Quantity(tc.value)
			if err == nil {
				t.Fatalf("Quantity(%v) = %v, want an error", tc.value, q)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Quantity(%v) error %q does not contain %q", tc.value, err, tc.want)
			}
		})
	}
}

func TestBackendErrorChoosesTheStatus(t *testing.T) {
	backendErr := func(c promclient.Cause) error {
		return fmt.Errorf("rule custom/0: %w", &promclient.Error{Cause: c, URL: "http://127.0.0.1:9090", Op: "query", Err: errors.New("detail")})
	}
	cases := []struct {
		name       string
		err        error
		wantStatus int32 // 0: the result is nil
	}{
		{"no error is no error", nil, 0},
		{"an unreachable Prometheus is 503: retry later", backendErr(promclient.CauseUnreachable), 503},
		{"a timeout is 503", backendErr(promclient.CauseTimeout), 503},
		{"a cancelled request is 503", backendErr(promclient.CauseCanceled), 503},
		{"a partial answer (a store is down) is 503: retry later", backendErr(promclient.CausePartial), 503},
		{"a deadline of the request itself is 503", fmt.Errorf("waiting for a free query slot: %w", context.DeadlineExceeded), 503},
		{"a rejected query is 500: fix the rule", backendErr(promclient.CauseBadQuery), 500},
		{"a native histogram result is 500: fix the rule", backendErr(promclient.CauseHistogram), 500},
		{"a refused request parameter is 500: fix the adapter's flags", backendErr(promclient.CauseBadRequest), 500},
		{"an answer over the size or sample limit is 500", backendErr(promclient.CauseTooLarge), 500},
		{"a server failure or an unusable answer (HTML, bad JSON) is 503", backendErr(promclient.CauseServer), 503},
		{"a result that is no instant vector is 500", fmt.Errorf("rule custom/0: %w", planner.ErrUnsupportedResult), 500},
		{"an error without a cause is 500", errors.New("the result is neither an instant vector nor a scalar"), 500},
		{"an API status passes through unchanged", apierrors.NewNotFound(podsResource, "web-1"), 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := provider.BackendError("querying metric \"m\"", tc.err)
			if tc.wantStatus == 0 {
				if got != nil {
					t.Fatalf("BackendError(nil) = %v, want nil", got)
				}
				return
			}
			var status apierrors.APIStatus
			if !errors.As(got, &status) {
				t.Fatalf("BackendError = %T %v, want an API status", got, got)
			}
			if code := status.Status().Code; code != tc.wantStatus {
				t.Errorf("status code = %d, want %d (%v)", code, tc.wantStatus, got)
			}
			if tc.wantStatus != 404 && !strings.Contains(got.Error(), `querying metric "m": `+tc.err.Error()) {
				t.Errorf("message %q does not keep what and the cause %q", got, tc.err)
			}
		})
	}
}

func TestBackendErrorKeepsARedactedURLRedacted(t *testing.T) {
	err := fmt.Errorf("rule custom/0: %w", &promclient.Error{Cause: promclient.CauseUnreachable, URL: "http://alice:xxxxx@prometheus:9090/?tenant=xxxxx",
		Op: "query", Err: errors.New("dial tcp 10.0.0.1:9090: connect: connection refused")})
	got := provider.BackendError(`querying metric "m"`, err)
	want := `querying metric "m": rule custom/0: cannot reach Prometheus at http://alice:xxxxx@prometheus:9090/?tenant=xxxxx (query): ` +
		`dial tcp 10.0.0.1:9090: connect: connection refused; check --prometheus-url, network policy and TLS settings`
	if got.Error() != want {
		t.Errorf("BackendError =\n%s\nwant\n%s", got, want)
	}
}
