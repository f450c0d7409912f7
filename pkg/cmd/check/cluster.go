package check

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// clusterTimeout bounds each discovery request to the cluster when the kubeconfig sets none.
const clusterTimeout = 30 * time.Second

// clusterMapper reads the cluster's API resources once into a RESTMapper, as serve's does
// (custom-metrics-apiserver's dynamic mapper is a discovery RESTMapper rebuilt on a timer). A
// group whose discovery fails (an aggregated API whose server is down, which may be this
// adapter's own) is left out rather than failing the check: note names those groups, whose
// resources then count as missing.
func clusterMapper(rc *rest.Config) (apimeta.RESTMapper, string, error) {
	rc = rest.CopyConfig(rc)
	if rc.Timeout == 0 {
		rc.Timeout = clusterTimeout
	}
	dc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return nil, "", err
	}
	groups, err := restmapper.GetAPIGroupResources(dc)
	note := ""
	if err != nil {
		var failed *discovery.ErrGroupDiscoveryFailed
		if !errors.As(err, &failed) || len(groups) == 0 {
			return nil, "", err
		}
		names := make([]string, 0, len(failed.Groups))
		for gv := range failed.Groups {
			names = append(names, gv.String())
		}
		sort.Strings(names)
		note = fmt.Sprintf("the cluster did not list the resources of %s (an API server behind an APIService is down?): their resources count as missing", strings.Join(names, ", "))
	}
	return restmapper.NewDiscoveryRESTMapper(groups), note, nil
}
