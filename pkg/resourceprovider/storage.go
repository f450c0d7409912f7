package resourceprovider

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/metrics/pkg/apis/metrics"
)

// podStorage serves pods.metrics.k8s.io (PodMetrics, namespaced, read-only). It works with
// the internal metrics types; the apiserver converts them to the requested version.
type podStorage struct{ src Source }

var (
	_ rest.Storage              = (*podStorage)(nil)
	_ rest.Getter               = (*podStorage)(nil)
	_ rest.Lister               = (*podStorage)(nil)
	_ rest.Scoper               = (*podStorage)(nil)
	_ rest.KindProvider         = (*podStorage)(nil)
	_ rest.SingularNameProvider = (*podStorage)(nil)
)

func (s *podStorage) New() runtime.Object     { return &metrics.PodMetrics{} }
func (s *podStorage) NewList() runtime.Object { return &metrics.PodMetricsList{} }
func (s *podStorage) Destroy()                {}
func (s *podStorage) Kind() string            { return "PodMetrics" }
func (s *podStorage) NamespaceScoped() bool   { return true }
func (s *podStorage) GetSingularName() string { return "pod" }

// Get serves one pod's metrics: 404 with the reason when the pod has none.
func (s *podStorage) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	namespace := genericapirequest.NamespaceValue(ctx)
	if namespace == "" {
		return nil, apierrors.NewBadRequest("a pod's metrics are read within its namespace: /apis/metrics.k8s.io/v1beta1/namespaces/NAMESPACE/pods/NAME")
	}
	return s.src.Current().getPodMetrics(ctx, namespace, name)
}

// List serves the metrics of the request's namespace (all namespaces when it has none),
// filtered by the label and field selectors (metadata.name, metadata.namespace).
func (s *podStorage) List(ctx context.Context, options *metainternalversion.ListOptions) (runtime.Object, error) {
	namespace := genericapirequest.NamespaceValue(ctx)
	if options == nil {
		return s.src.Current().listPodMetrics(ctx, namespace, nil, nil)
	}
	return s.src.Current().listPodMetrics(ctx, namespace, options.LabelSelector, options.FieldSelector)
}

// ConvertToTable renders PodMetrics as `kubectl get podmetrics` shows them.
func (s *podStorage) ConvertToTable(_ context.Context, object runtime.Object, tableOptions runtime.Object) (*metav1.Table, error) {
	var items []metrics.PodMetrics
	switch o := object.(type) {
	case *metrics.PodMetricsList:
		items = o.Items
	case *metrics.PodMetrics:
		items = []metrics.PodMetrics{*o}
	default:
		return nil, fmt.Errorf("cannot show a %T as a table of pod metrics", object)
	}
	table := &metav1.Table{Rows: make([]metav1.TableRow, 0, len(items))}
	for i := range items {
		pm := &items[i]
		var cpu, memory resource.Quantity
		for _, c := range pm.Containers {
			cpu.Add(c.Usage[corev1.ResourceCPU])
			memory.Add(c.Usage[corev1.ResourceMemory])
		}
		table.Rows = append(table.Rows, metav1.TableRow{
			Cells:  []interface{}{pm.Name, cpuCell(cpu), memoryCell(memory), windowCell(pm.Window), timestampCell(pm.Timestamp)},
			Object: runtime.RawExtension{Object: pm},
		})
	}
	addColumns(table, tableOptions, "pod")
	return table, nil
}

// nodeStorage serves nodes.metrics.k8s.io (NodeMetrics, cluster-scoped, read-only).
type nodeStorage struct{ src Source }

var (
	_ rest.Storage              = (*nodeStorage)(nil)
	_ rest.Getter               = (*nodeStorage)(nil)
	_ rest.Lister               = (*nodeStorage)(nil)
	_ rest.Scoper               = (*nodeStorage)(nil)
	_ rest.KindProvider         = (*nodeStorage)(nil)
	_ rest.SingularNameProvider = (*nodeStorage)(nil)
)

func (s *nodeStorage) New() runtime.Object     { return &metrics.NodeMetrics{} }
func (s *nodeStorage) NewList() runtime.Object { return &metrics.NodeMetricsList{} }
func (s *nodeStorage) Destroy()                {}
func (s *nodeStorage) Kind() string            { return "NodeMetrics" }
func (s *nodeStorage) NamespaceScoped() bool   { return false }
func (s *nodeStorage) GetSingularName() string { return "node" }

// Get serves one node's metrics: 404 with the reason when it has none.
func (s *nodeStorage) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	return s.src.Current().getNodeMetrics(ctx, name)
}

// List serves the metrics of all nodes, filtered by the label and field selectors
// (metadata.name).
func (s *nodeStorage) List(ctx context.Context, options *metainternalversion.ListOptions) (runtime.Object, error) {
	if options == nil {
		return s.src.Current().listNodeMetrics(ctx, nil, nil)
	}
	return s.src.Current().listNodeMetrics(ctx, options.LabelSelector, options.FieldSelector)
}

// ConvertToTable renders NodeMetrics as `kubectl get nodemetrics` shows them.
func (s *nodeStorage) ConvertToTable(_ context.Context, object runtime.Object, tableOptions runtime.Object) (*metav1.Table, error) {
	var items []metrics.NodeMetrics
	switch o := object.(type) {
	case *metrics.NodeMetricsList:
		items = o.Items
	case *metrics.NodeMetrics:
		items = []metrics.NodeMetrics{*o}
	default:
		return nil, fmt.Errorf("cannot show a %T as a table of node metrics", object)
	}
	table := &metav1.Table{Rows: make([]metav1.TableRow, 0, len(items))}
	for i := range items {
		nm := &items[i]
		table.Rows = append(table.Rows, metav1.TableRow{
			Cells:  []interface{}{nm.Name, cpuCell(nm.Usage[corev1.ResourceCPU]), memoryCell(nm.Usage[corev1.ResourceMemory]), windowCell(nm.Window), timestampCell(nm.Timestamp)},
			Object: runtime.RawExtension{Object: nm},
		})
	}
	addColumns(table, tableOptions, "node")
	return table, nil
}

// addColumns adds the column definitions unless the client asked for no headers.
func addColumns(table *metav1.Table, tableOptions runtime.Object, kind string) {
	if opts, ok := tableOptions.(*metav1.TableOptions); ok && opts.NoHeaders {
		return
	}
	table.ColumnDefinitions = []metav1.TableColumnDefinition{
		{Name: "Name", Type: "string", Format: "name", Description: "Name of the " + kind + "."},
		{Name: "CPU", Type: "string", Description: "CPU usage in millicores (rounded up), the average rate over the window; the object holds nanocore precision."},
		{Name: "Memory", Type: "string", Description: "Memory working set in MiB (rounded down), as kubectl top shows it; the object holds bytes."},
		{Name: "Window", Type: "string", Description: "The span the usage covers, ending at the timestamp."},
		{Name: "Timestamp", Type: "string", Format: "date-time", Priority: 1, Description: "When Prometheus evaluated the usage (the end of the window)."},
	}
}

// cpuCell shows cpu like kubectl top: whole millicores.
func cpuCell(q resource.Quantity) string { return fmt.Sprintf("%dm", q.MilliValue()) }

// memoryCell shows memory like kubectl top: whole MiB.
func memoryCell(q resource.Quantity) string { return fmt.Sprintf("%dMi", q.Value()/(1<<20)) }

func windowCell(d metav1.Duration) string { return model.Duration(d.Duration).String() }

func timestampCell(t metav1.Time) string { return t.UTC().Format(time.RFC3339) }

// notFound is a 404 whose message says why the object has no metrics.
func notFound(gr schema.GroupResource, name, why string) error {
	err := apierrors.NewNotFound(gr, name)
	err.ErrStatus.Message += ": " + why
	return err
}
