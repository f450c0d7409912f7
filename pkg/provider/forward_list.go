// This file holds the Forwarder's merging and refreshing of the other server's discovery list.

package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	externalv1beta1 "k8s.io/metrics/pkg/apis/external_metrics/v1beta1"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
)

// MergeExternalMetrics implements ExternalForwarder. It serves the other server's last good
// list at once and, when that list is older than the TTL, refreshes it in the background: a
// discovery request never waits for the other server. Before the first fetch has finished,
// only own is listed. A name in both lists is warned about once per process.
func (f *Forwarder) MergeExternalMetrics(own []cmprovider.ExternalMetricInfo) []cmprovider.ExternalMetricInfo {
	f.mu.Lock()
	names := f.names
	if !f.refreshing && f.now().Sub(f.listTried) >= f.listTTL {
		f.refreshing = true
		go f.refresh()
	}
	var clashes []string
	ownNames := make(map[string]struct{}, len(own))
	for _, m := range own {
		ownNames[m.Metric] = struct{}{}
	}
	out := slices.Clone(own)
	for _, n := range names {
		if _, dup := ownNames[n]; dup {
			if _, warned := f.clashed[n]; !warned {
				f.clashed[n] = struct{}{}
				clashes = append(clashes, n)
			}
			continue
		}
		out = append(out, cmprovider.ExternalMetricInfo{Metric: n})
	}
	f.mu.Unlock()
	for _, n := range clashes {
		klog.InfoS("Warning: an external metric is served by promadapter and by the forward backend; promadapter answers it, the backend's is not reachable through this APIService: rename one of them",
			"metric", n, "backend", f.host)
	}
	slices.SortFunc(out, func(a, b cmprovider.ExternalMetricInfo) int { return strings.Compare(a.Metric, b.Metric) })
	return out
}

// Refresh fetches the other server's discovery list now. On failure the last good list is
// kept; the first failure after a success is logged, later ones are not.
func (f *Forwarder) Refresh(ctx context.Context) error {
	names, err := f.fetchList(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listTried = f.now()
	if err != nil {
		if !f.listFailed {
			f.listFailed = true
			klog.ErrorS(err, "Cannot list the forward backend's external metrics; listing the last good list until it answers (requests are still forwarded)",
				"backend", f.host, "kept", len(f.names))
		}
		return err
	}
	if f.listFailed {
		klog.InfoS("The forward backend lists its external metrics again", "backend", f.host, "metrics", len(names))
	}
	f.listFailed = false
	f.names = names
	return nil
}

func (f *Forwarder) refresh() {
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	_ = f.Refresh(ctx) // logged by Refresh
	f.mu.Lock()
	f.refreshing = false
	f.mu.Unlock()
}

// fetchList GETs <url>/apis/external.metrics.k8s.io/v1beta1 and returns its resource names,
// sorted, without subresources.
func (f *Forwarder) fetchList(ctx context.Context) ([]string, error) {
	u := f.base
	u.Path += externalGroupPath
	start := time.Now()
	status, body, err := f.get(ctx, &u)
	forwardMetrics.requests.WithLabelValues(forwardOpList, forwardOutcome(status, err)).Inc()
	forwardMetrics.duration.WithLabelValues(forwardOpList).Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, fmt.Errorf("listing external metrics of %s: %w", f.host, err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("listing external metrics of %s: answered %d: %s", f.host, status, statusMessage(body))
	}
	var list metav1.APIResourceList
	if err := json.Unmarshal(body, &list); err != nil || list.GroupVersion != externalv1beta1.SchemeGroupVersion.String() {
		return nil, fmt.Errorf("listing external metrics of %s: the answer is not the APIResourceList of %s", f.host, externalv1beta1.SchemeGroupVersion)
	}
	names := make([]string, 0, len(list.APIResources))
	for _, r := range list.APIResources {
		if r.Name != "" && !strings.Contains(r.Name, "/") {
			names = append(names, r.Name)
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}
