package testbed

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// The labels and header of a Thanos set-up started by StartThanos.
const (
	// ThanosReplicaLabel is the external label that tells the Prometheus replicas apart
	// (replica="0", "1", …); the querier deduplicates along it.
	ThanosReplicaLabel = "replica"
	// ThanosTenantHeader carries the tenant id when ThanosOptions.Tenancy is set.
	ThanosTenantHeader = "X-Scope-OrgID"
	// ThanosTenantLabel is the series label the querier matches against the tenant id when
	// ThanosOptions.Tenancy is set: the backfilled series must carry it.
	ThanosTenantLabel = "tenant_id"
)

// ThanosOptions configure StartThanos.
type ThanosOptions struct {
	// Bins are the binaries to pick from; when Bins.Thanos is empty, FindBins is called.
	Bins Bins
	// Major is the Prometheus major version of the replicas, "2" or "3"; "3" when empty.
	Major string
	// Replicas is the number of Prometheus replicas, each with its own sidecar; 2 when zero.
	Replicas int
	// Dir holds one directory per replica (Dir/prometheus-<i>), the logs of the sidecars and
	// the querier, and the querier's endpoint configuration. When empty a temporary directory is
	// created, and Stop removes it.
	Dir string
	// OpenMetrics is backfilled into every replica alike (see PrometheusOptions.OpenMetrics), so
	// the replicas hold identical samples, as two Prometheus servers scraping the same targets
	// would: a deduplicated answer counts each series once.
	OpenMetrics []byte
	// ExternalLabels are given to every replica in addition to replica="<i>".
	ExternalLabels map[string]string
	// Tenancy makes the querier enforce tenancy: every query, series and label request sees only
	// the series whose ThanosTenantLabel equals the ThanosTenantHeader of the request
	// ("default-tenant" without the header).
	Tenancy bool
	// StartTimeout bounds each wait for readiness (every replica, sidecar, the querier and the
	// querier's view of the stores); 90 s when zero. The context can only shorten it.
	StartTimeout time.Duration
}

// Thanos is a Thanos query path on 127.0.0.1: Prometheus replicas with identical data, a
// sidecar in front of each (the StoreAPI over gRPC), and one querier that fans out to every
// sidecar and deduplicates along ThanosReplicaLabel.
type Thanos struct {
	// URL is the querier's HTTP base address, http://127.0.0.1:<port>: the Prometheus HTTP API
	// is under URL/api/v1.
	URL string
	// Dir holds the replicas' directories, the logs and the querier's endpoint configuration.
	Dir string
	// Stores are the replicas with their sidecars, in replica order.
	Stores []*ThanosStore

	querier *Process
	ownsDir bool
}

// ThanosStore is one Prometheus replica and its sidecar.
type ThanosStore struct {
	// Prometheus is the replica; its external labels include replica="<index>".
	Prometheus *Prometheus
	// GRPCAddress is the sidecar's StoreAPI address, 127.0.0.1:<port>, as the querier knows it.
	GRPCAddress string
	// HTTPURL is the sidecar's HTTP address (/-/ready, /metrics), http://127.0.0.1:<port>.
	HTTPURL string

	sidecar *Process
}

// Sidecar is the sidecar process.
func (s *ThanosStore) Sidecar() *Process { return s.sidecar }

// StartThanos starts opts.Replicas Prometheus replicas backfilled with opts.OpenMetrics, one
// sidecar per replica and a querier, all on free 127.0.0.1 ports, and returns once the querier
// answers /-/ready and lists every sidecar as healthy with its replica label. Errors name the
// component and quote the tail of its log.
//
// The querier treats every sidecar as a strict endpoint: it keeps querying a sidecar whose
// health check fails instead of dropping it from the fan-out. So after StopStore the querier
// does not silently answer from the remaining replicas: with partial_response=true (the
// querier's default) its answers carry a warning naming the missing store, and with
// partial_response=false they fail.
//
// ctx bounds the start-up only: everything runs until Stop, whatever happens to ctx.
func StartThanos(ctx context.Context, opts ThanosOptions) (*Thanos, error) {
	bins := opts.Bins
	if bins.Thanos == "" {
		var err error
		if bins, err = FindBins(); err != nil {
			return nil, err
		}
	}
	if !isExecutable(bins.Thanos) {
		return nil, fmt.Errorf("the thanos binary %s is missing; run `test/tools/deps.sh` from the repository root "+
			"to build it (about 10 minutes, then cached)", bins.Thanos)
	}
	replicas := cmp.Or(opts.Replicas, 2)
	if replicas < 1 {
		return nil, fmt.Errorf("thanos: %d replicas; start at least one", replicas)
	}
	if _, taken := opts.ExternalLabels[ThanosReplicaLabel]; taken {
		return nil, fmt.Errorf("thanos: the external label %q is set by StartThanos (replica index); leave it out of ExternalLabels", ThanosReplicaLabel)
	}
	th := &Thanos{Dir: opts.Dir}
	if th.Dir == "" {
		dir, err := os.MkdirTemp("", "testbed-thanos-")
		if err != nil {
			return nil, fmt.Errorf("creating Thanos' directory: %w", err)
		}
		th.Dir, th.ownsDir = dir, true
	}
	if err := th.start(ctx, bins, replicas, opts); err != nil {
		th.Stop()
		return nil, err
	}
	return th, nil
}

func (th *Thanos) start(ctx context.Context, bins Bins, replicas int, opts ThanosOptions) error {
	timeout := cmp.Or(opts.StartTimeout, defaultStartTimeout)
	for i := range replicas {
		labels := maps.Clone(opts.ExternalLabels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels[ThanosReplicaLabel] = strconv.Itoa(i)
		prom, err := StartPrometheus(ctx, PrometheusOptions{
			Bins:           bins,
			Major:          cmp.Or(opts.Major, "3"),
			Dir:            filepath.Join(th.Dir, "prometheus-"+strconv.Itoa(i)),
			OpenMetrics:    opts.OpenMetrics,
			ExternalLabels: labels,
			StartTimeout:   timeout,
		})
		if err != nil {
			return fmt.Errorf("thanos replica %d: %w", i, err)
		}
		store := &ThanosStore{Prometheus: prom}
		th.Stores = append(th.Stores, store)
		if err := th.startSidecar(ctx, bins.Thanos, i, store, timeout); err != nil {
			return err
		}
	}
	return th.startQuerier(ctx, bins.Thanos, opts.Tenancy, timeout)
}

// StopStore stops the sidecar of replica i (its Prometheus keeps running). The querier keeps
// the sidecar as a strict endpoint, so from then on its answers miss that replica and say so:
// a warning with partial_response=true, an error with partial_response=false. It is safe to
// call more than once.
func (th *Thanos) StopStore(i int) error {
	if i < 0 || i >= len(th.Stores) {
		return fmt.Errorf("thanos: no store %d; there are %d replicas", i, len(th.Stores))
	}
	th.Stores[i].sidecar.Stop()
	return nil
}

// Processes are the querier, then each replica's sidecar and Prometheus, as far as they were
// started.
func (th *Thanos) Processes() []*Process {
	var out []*Process
	if th.querier != nil {
		out = append(out, th.querier)
	}
	for _, s := range th.Stores {
		if s.sidecar != nil {
			out = append(out, s.sidecar)
		}
		if s.Prometheus != nil && s.Prometheus.process != nil {
			out = append(out, s.Prometheus.process)
		}
	}
	return out
}

// Stop stops the querier, the sidecars and the replicas, and removes Dir if StartThanos created
// it. It is safe to call more than once.
func (th *Thanos) Stop() { th.stop(false) }

func (th *Thanos) stop(keepDir bool) {
	if th.querier != nil {
		th.querier.Stop()
	}
	for _, s := range th.Stores {
		if s.sidecar != nil {
			s.sidecar.Stop()
		}
		if s.Prometheus != nil {
			s.Prometheus.stop(keepDir)
		}
	}
	if th.ownsDir && !keepDir {
		_ = os.RemoveAll(th.Dir)
	}
}

// Cleanup registers Stop with t. When the test has failed by then, it first logs the last lines
// of every process's log, and keeps Dir if StartThanos created it.
func (th *Thanos) Cleanup(t testing.TB) {
	t.Helper()
	t.Cleanup(func() {
		failed := t.Failed()
		if failed {
			for _, p := range th.Processes() {
				t.Logf("%s log %s, last lines:\n%s", p.Name, p.LogPath, p.LogTail(logTailLines))
			}
			if th.ownsDir {
				t.Logf("keeping Thanos' directory %s for inspection", th.Dir)
			}
		}
		th.stop(failed)
	})
}
