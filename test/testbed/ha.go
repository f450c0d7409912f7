package testbed

import (
	"context"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1apply "k8s.io/client-go/applyconfigurations/core/v1"
	discoveryv1apply "k8s.io/client-go/applyconfigurations/discovery/v1"
)

// Several adapter processes behind one APIService, as a Deployment with replicas: 2 would be.
//
// The aggregator balances between endpoints only with kube-apiserver's
// --enable-aggregator-routing=true (AggregatorRoutingArgs): it then resolves the APIService's
// Service to one ready endpoint per request, picked at random from the Service's EndpointSlices
// (k8s.io/apiserver/pkg/util/proxy.ResolveEndpoint). Without the flag it dials the Service's
// ClusterIP, which nothing routes on the test bed.
//
// Two workarounds make loopback processes look like pods:
//   - EndpointSlices of addressType IPv4 (and Endpoints) refuse loopback addresses, so each replica's
//     slice has addressType FQDN with the address "127.0.0.1": the resolver takes Addresses[0]
//     whatever the type, and the dial goes to 127.0.0.1. (kube-apiserver v1.34 warns that FQDN
//     endpoints are deprecated; it still stores and routes them.)
//   - A slice's ports apply to all its endpoints, and the replicas listen on different ports, so
//     each replica has its own slice (as the EndpointSlice controller also splits them when ports
//     differ). The Service maps its port 443, which the APIServices name, through the port name
//     "https" to each slice's port.
//
// No controller owns the Service (it has no selector, and the slices are labelled as managed by
// the test bed): the test adds and removes replicas itself, standing in for the endpoint controller.
const (
	// ReplicatedAdapterServiceName is the Service in AdapterNamespace that RegisterAdapterReplicas
	// points the APIServices at.
	ReplicatedAdapterServiceName = "promadapter-replicas"
	// replicaServicePort is the Service's port the APIServices reference.
	replicaServicePort = 443
	replicaPortName    = "https"
)

// AggregatorRoutingArgs are the extra kube-apiserver flags (ClusterOptions.ExtraAPIServerArgs)
// that RegisterAdapterReplicas needs: the aggregator routes to endpoints, not to the ClusterIP.
var AggregatorRoutingArgs = []string{"--enable-aggregator-routing=true"}

// RegisterAdapterReplicas makes the aggregator balance the given group versions over adapters
// serving HTTPS on localhost at ports: it applies the namespace AdapterNamespace, a ClusterIP
// Service ReplicatedAdapterServiceName without selector, one EndpointSlice per port (see
// AddAdapterReplica) and one APIService per group version (insecureSkipTLSVerify,
// groupPriorityMinimum 100, versionPriority as RegisterAdapter sets it). The cluster must run
// with AggregatorRoutingArgs. Follow with WaitAPIServicesAvailable.
func (c *Cluster) RegisterAdapterReplicas(ctx context.Context, groups []APIServiceGroup, ports ...int) error {
	if len(groups) == 0 {
		return fmt.Errorf("registering the adapter replicas: no group versions given; pass e.g. testbed.AllAdapterGroups")
	}
	if len(ports) == 0 {
		return fmt.Errorf("registering the adapter replicas: no ports given")
	}
	service := corev1apply.Service(ReplicatedAdapterServiceName, AdapterNamespace).WithSpec(corev1apply.ServiceSpec().
		WithType(corev1.ServiceTypeClusterIP).
		WithPorts(corev1apply.ServicePort().WithName(replicaPortName).WithPort(replicaServicePort).WithProtocol(corev1.ProtocolTCP)))
	if err := c.applyAdapterService(ctx, service); err != nil {
		return err
	}
	for _, port := range ports {
		if err := c.AddAdapterReplica(ctx, port); err != nil {
			return err
		}
	}
	return c.applyAPIServices(ctx, groups, ReplicatedAdapterServiceName, replicaServicePort, nil)
}

// AddAdapterReplica adds the adapter serving HTTPS on 127.0.0.1:port to the endpoints of
// ReplicatedAdapterServiceName: it applies the ready EndpointSlice ReplicaEndpointSliceName(port).
// The aggregator sends requests to it once its informer has seen the slice.
func (c *Cluster) AddAdapterReplica(ctx context.Context, port int) error {
	if port <= 0 || port > 65535 {
		return fmt.Errorf("adding an adapter replica: port %d is not a TCP port", port)
	}
	name := ReplicaEndpointSliceName(port)
	slice := discoveryv1apply.EndpointSlice(name, AdapterNamespace).
		WithLabels(map[string]string{
			discoveryv1.LabelServiceName: ReplicatedAdapterServiceName,
			discoveryv1.LabelManagedBy:   fieldManager,
		}).
		WithAddressType(discoveryv1.AddressTypeFQDN).
		WithEndpoints(discoveryv1apply.Endpoint().
			WithAddresses("127.0.0.1").
			WithConditions(discoveryv1apply.EndpointConditions().WithReady(true).WithServing(true).WithTerminating(false))).
		WithPorts(discoveryv1apply.EndpointPort().WithName(replicaPortName).WithPort(int32(port)).WithProtocol(corev1.ProtocolTCP))
	apply := metav1.ApplyOptions{FieldManager: fieldManager, Force: true}
	if _, err := c.Client.DiscoveryV1().EndpointSlices(AdapterNamespace).Apply(ctx, slice, apply); err != nil {
		return fmt.Errorf("applying EndpointSlice %s/%s: %w", AdapterNamespace, name, err)
	}
	return nil
}

// RemoveAdapterReplica deletes the EndpointSlice of the adapter on port, as the endpoint
// controller does when a pod dies or stops being ready. It returns once kube-apiserver has
// deleted the object; the aggregator stops choosing that endpoint once its informer sees the
// deletion, a moment later. A slice already gone is not an error.
func (c *Cluster) RemoveAdapterReplica(ctx context.Context, port int) error {
	name := ReplicaEndpointSliceName(port)
	err := c.Client.DiscoveryV1().EndpointSlices(AdapterNamespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting EndpointSlice %s/%s: %w", AdapterNamespace, name, err)
	}
	return nil
}

// ReplicaEndpointSliceName is the EndpointSlice AddAdapterReplica applies for the adapter on port.
func ReplicaEndpointSliceName(port int) string {
	return ReplicatedAdapterServiceName + "-" + strconv.Itoa(port)
}
