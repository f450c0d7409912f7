package testbed

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// clientQPS and clientBurst limit the requests per second of the cluster's clients.
const (
	clientQPS   = 100
	clientBurst = 200
)

// defaultStartTimeout bounds each start-up wait when the caller sets none.
const defaultStartTimeout = 90 * time.Second

// ClusterOptions configure StartCluster. The zero value is usable.
type ClusterOptions struct {
	// Bins are the binaries to run; when Bins.KubeAPIServer is empty, FindBins is called.
	Bins Bins
	// Dir holds the cluster's certificates, kubeconfig, etcd data and logs; it should be new or
	// empty (t.TempDir() is a good choice). When empty a temporary directory is created, and Stop
	// removes it (Cleanup keeps it when the test failed).
	Dir string
	// ExtraAPIServerArgs are appended to kube-apiserver's command line (a repeated flag wins).
	ExtraAPIServerArgs []string
	// StartTimeout bounds the wait for each component to become ready (etcd, kube-apiserver, and
	// later kube-controller-manager); 90 s when zero. The context passed to a start function can
	// only shorten it.
	StartTimeout time.Duration
}

// Cluster is a Kubernetes control plane on loopback: etcd and kube-apiserver with the aggregation
// layer on, and optionally kube-controller-manager. No kubelet runs, so Pods stay Pending and Nodes
// are plain objects a test creates.
//
// The cluster owns its processes; Stop (or Cleanup) ends them.
type Cluster struct {
	// Dir holds the certificates (Dir/pki), the admin kubeconfig, etcd's data and the logs
	// (Dir/logs/<component>.log).
	Dir string
	// Kubeconfig is the path of a kubeconfig for the admin user (O=system:masters), certificates
	// embedded.
	Kubeconfig string
	// URL is kube-apiserver's address, https://127.0.0.1:<port>.
	URL string
	// Certs are the cluster's certificate and key files.
	Certs ClusterCerts
	// RESTConfig, Client and Dynamic talk to the apiserver as admin, allowing 100 requests per
	// second (burst 200) rather than client-go's default 5.
	RESTConfig *rest.Config
	Client     kubernetes.Interface
	Dynamic    dynamic.Interface

	bins         Bins
	startTimeout time.Duration
	ownsDir      bool

	mu                       sync.Mutex
	processes                []*Process // in start order
	controllerManagerStarted bool       // set while one is starting or running
	stopped                  bool
}

// StartCluster starts etcd and kube-apiserver on free 127.0.0.1 ports with freshly generated
// certificates, and returns once the apiserver's /readyz answers "ok" (about 10 s).
//
// ctx bounds the start-up only: the processes run until Stop, whatever happens to ctx. On error
// everything started so far is stopped.
func StartCluster(ctx context.Context, opts ClusterOptions) (*Cluster, error) {
	bins := opts.Bins
	if bins.KubeAPIServer == "" {
		var err error
		if bins, err = FindBins(); err != nil {
			return nil, err
		}
	}
	c := &Cluster{Dir: opts.Dir, bins: bins, startTimeout: opts.StartTimeout}
	if c.startTimeout <= 0 {
		c.startTimeout = defaultStartTimeout
	}
	if c.Dir == "" {
		dir, err := os.MkdirTemp("", "testbed-cluster-")
		if err != nil {
			return nil, fmt.Errorf("creating the cluster's directory: %w", err)
		}
		c.Dir, c.ownsDir = dir, true
	}
	if err := c.start(ctx, opts.ExtraAPIServerArgs); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context, extraAPIServerArgs []string) error {
	certs, err := writeClusterCerts(filepath.Join(c.Dir, "pki"))
	if err != nil {
		return fmt.Errorf("generating the cluster's certificates: %w", err)
	}
	c.Certs = certs
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdPort, etcdPeerPort, apiserverPort := ports[0], ports[1], ports[2]

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	etcdPeerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeerPort)
	etcd, err := c.startProcess(ctx, "etcd", c.bins.Etcd,
		"--name=testbed",
		"--data-dir="+filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+etcdPeerURL,
		"--initial-advertise-peer-urls="+etcdPeerURL,
		"--initial-cluster=testbed="+etcdPeerURL,
		// A test cluster's data is thrown away; skipping fsync keeps start-up fast on busy disks.
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	err = readiness{
		component:   "etcd",
		expectation: "GET " + etcdURL + `/health to answer 200 with {"health":"true",…}`,
		timeout:     c.startTimeout,
		process:     etcd,
	}.wait(ctx, httpCheck(newHTTPClient(nil), etcdURL+"/health", bodyContains(`"health":"true"`)))
	if err != nil {
		return err
	}

	c.URL = "https://127.0.0.1:" + strconv.Itoa(apiserverPort)
	apiserverArgs := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(apiserverPort),
		"--cert-dir=" + filepath.Join(c.Dir, "apiserver"),
		"--tls-cert-file=" + certs.APIServerCert,
		"--tls-private-key-file=" + certs.APIServerKey,
		"--client-ca-file=" + certs.CACert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + certs.ServiceAccountPublicKey,
		"--service-account-signing-key-file=" + certs.ServiceAccountKey,
		"--authorization-mode=RBAC",
		// Only an allocation range for Service ClusterIPs; nothing routes to it.
		"--service-cluster-ip-range=10.0.0.0/24",
		// The "kubernetes" Service's Endpoints would hold the advertise address, and Endpoints may
		// not hold loopback addresses; nothing in a test cluster needs them.
		"--endpoint-reconciler-type=none",
		// The aggregation layer: the aggregator authenticates to extension apiservers with the
		// front-proxy client certificate and passes the user in these headers.
		"--requestheader-client-ca-file=" + certs.FrontProxyCACert,
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-username-headers=X-Remote-User",
		"--proxy-client-cert-file=" + certs.FrontProxyClientCert,
		"--proxy-client-key-file=" + certs.FrontProxyClientKey,
		"--profiling=false",
	}
	apiserver, err := c.startProcess(ctx, "kube-apiserver", c.bins.KubeAPIServer, append(apiserverArgs, extraAPIServerArgs...)...)
	if err != nil {
		return err
	}
	adminTLS, err := c.adminTLSConfig()
	if err != nil {
		return err
	}
	err = readiness{
		component:   "kube-apiserver",
		expectation: "GET " + c.URL + "/readyz (as admin) to answer 200 ok",
		timeout:     c.startTimeout,
		process:     apiserver,
	}.wait(ctx, httpCheck(newHTTPClient(adminTLS), c.URL+"/readyz", bodyIs("ok")))
	if err != nil {
		return err
	}

	c.Kubeconfig = filepath.Join(c.Dir, "admin.kubeconfig")
	if err := writeAdminKubeconfig(c.Kubeconfig, c.URL, certs); err != nil {
		return err
	}
	if c.RESTConfig, err = clientcmd.BuildConfigFromFlags("", c.Kubeconfig); err != nil {
		return fmt.Errorf("loading the admin kubeconfig %s: %w", c.Kubeconfig, err)
	}
	// Tests poll; client-go's default of 5 requests per second would throttle them.
	c.RESTConfig.QPS, c.RESTConfig.Burst = clientQPS, clientBurst
	if c.Client, err = kubernetes.NewForConfig(c.RESTConfig); err != nil {
		return fmt.Errorf("creating a Kubernetes client: %w", err)
	}
	if c.Dynamic, err = dynamic.NewForConfig(c.RESTConfig); err != nil {
		return fmt.Errorf("creating a dynamic Kubernetes client: %w", err)
	}
	return nil
}

// StartControllerManager starts kube-controller-manager against the cluster, as admin, without
// leader election, and returns once its /healthz answers "ok".
//
// controllers are the names passed to --controllers, e.g. "horizontalpodautoscaling",
// "deployment", "replicaset", "serviceaccount", "serviceaccount-token"; nil or empty means "*"
// (all controllers enabled by default). hpaSync sets --horizontal-pod-autoscaler-sync-period when
// positive (the default is 15 s). extraArgs are appended to the command line, e.g.
// "--horizontal-pod-autoscaler-downscale-stabilization=0s".
//
// ctx bounds the start-up only; the process runs until the cluster stops. A cluster runs at most
// one controller manager.
func (c *Cluster) StartControllerManager(ctx context.Context, controllers []string, hpaSync time.Duration, extraArgs ...string) error {
	c.mu.Lock()
	running := c.controllerManagerStarted
	c.controllerManagerStarted = true
	c.mu.Unlock()
	if running {
		return errors.New("kube-controller-manager is already running in this cluster; stop the cluster to start another")
	}
	err := c.startControllerManager(ctx, controllers, hpaSync, extraArgs)
	if err != nil {
		// Leave the cluster free to try again; a failed process stays in Processes, stopped.
		c.mu.Lock()
		c.controllerManagerStarted = false
		c.mu.Unlock()
	}
	return err
}

func (c *Cluster) startControllerManager(ctx context.Context, controllers []string, hpaSync time.Duration, extraArgs []string) error {
	adminTLS, err := c.adminTLSConfig()
	if err != nil {
		return err
	}
	port, err := FreePort()
	if err != nil {
		return err
	}
	if len(controllers) == 0 {
		controllers = []string{"*"}
	}
	args := []string{
		"--kubeconfig=" + c.Kubeconfig,
		"--authentication-kubeconfig=" + c.Kubeconfig,
		"--authorization-kubeconfig=" + c.Kubeconfig,
		"--client-ca-file=" + c.Certs.CACert,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + filepath.Join(c.Dir, "controller-manager"),
		"--tls-cert-file=" + c.Certs.ControllerManagerCert,
		"--tls-private-key-file=" + c.Certs.ControllerManagerKey,
		"--controllers=" + strings.Join(controllers, ","),
		"--leader-elect=false",
		"--service-account-private-key-file=" + c.Certs.ServiceAccountKey,
		"--root-ca-file=" + c.Certs.CACert,
		"--profiling=false",
	}
	if hpaSync > 0 {
		args = append(args, "--horizontal-pod-autoscaler-sync-period="+hpaSync.String())
	}
	manager, err := c.startProcess(ctx, "kube-controller-manager", c.bins.KubeControllerManager, append(args, extraArgs...)...)
	if err != nil {
		return err
	}
	healthz := "https://127.0.0.1:" + strconv.Itoa(port) + "/healthz"
	err = readiness{
		component:   "kube-controller-manager",
		expectation: "GET " + healthz + " (as admin) to answer 200 ok",
		timeout:     c.startTimeout,
		process:     manager,
	}.wait(ctx, httpCheck(newHTTPClient(adminTLS), healthz, bodyIs("ok")))
	if err != nil {
		manager.Stop()
		return err
	}
	return nil
}

// startProcess starts a component of the cluster with its log in Dir/logs and records it for Stop.
func (c *Cluster) startProcess(ctx context.Context, name, bin string, args ...string) (*Process, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil, fmt.Errorf("starting %s: the cluster has been stopped", name)
	}
	p, err := StartProcess(context.WithoutCancel(ctx), name, filepath.Join(c.Dir, "logs", name+".log"), bin, args...)
	if err != nil {
		return nil, err
	}
	c.processes = append(c.processes, p)
	return p, nil
}

// Processes returns the cluster's processes in the order they were started.
func (c *Cluster) Processes() []*Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Process(nil), c.processes...)
}

// Stop stops every process the cluster started, newest first, and removes Dir if StartCluster
// created it. It is safe to call more than once.
func (c *Cluster) Stop() { c.stop(false) }

func (c *Cluster) stop(keepDir bool) {
	c.mu.Lock()
	c.stopped = true
	processes := append([]*Process(nil), c.processes...)
	c.mu.Unlock()
	for i := len(processes) - 1; i >= 0; i-- {
		processes[i].Stop()
	}
	if c.ownsDir && !keepDir {
		_ = os.RemoveAll(c.Dir)
	}
}

// Cleanup registers Stop with t. When the test has failed by then, it first logs the last lines of
// every component's log, and keeps Dir if StartCluster created it.
func (c *Cluster) Cleanup(t testing.TB) {
	t.Helper()
	t.Cleanup(func() {
		failed := t.Failed()
		if failed {
			for _, p := range c.Processes() {
				t.Logf("%s log %s, last lines:\n%s", p.Name, p.LogPath, p.LogTail(logTailLines))
			}
			if c.ownsDir {
				t.Logf("keeping the cluster's directory %s for inspection", c.Dir)
			}
		}
		c.stop(failed)
	})
}

// Kubectl runs kubectl with the admin kubeconfig and returns its standard output. The error
// includes the full command line and kubectl's standard error.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (string, error) {
	return c.KubectlWithInput(ctx, nil, args...)
}

// KubectlWithInput is Kubectl with stdin as kubectl's standard input, e.g. for "apply -f -".
func (c *Cluster) KubectlWithInput(ctx context.Context, stdin []byte, args ...string) (string, error) {
	return runCommand(ctx, stdin, c.bins.Kubectl, append([]string{"--kubeconfig=" + c.Kubeconfig}, args...)...)
}

// adminTLSConfig trusts the cluster CA and presents the admin client certificate.
func (c *Cluster) adminTLSConfig() (*tls.Config, error) {
	caPEM, err := os.ReadFile(c.Certs.CACert)
	if err != nil {
		return nil, fmt.Errorf("reading the cluster CA: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s holds no PEM certificate", c.Certs.CACert)
	}
	admin, err := tls.LoadX509KeyPair(c.Certs.AdminCert, c.Certs.AdminKey)
	if err != nil {
		return nil, fmt.Errorf("loading the admin client certificate: %w", err)
	}
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{admin}, MinVersion: tls.VersionTLS12}, nil
}

// writeAdminKubeconfig writes a kubeconfig for the admin user with the certificates embedded, so it
// stays usable wherever it is copied.
func writeAdminKubeconfig(path, serverURL string, certs ClusterCerts) error {
	read := func(file string) ([]byte, error) {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("writing the admin kubeconfig: %w", err)
		}
		return data, nil
	}
	caData, err := read(certs.CACert)
	if err != nil {
		return err
	}
	certData, err := read(certs.AdminCert)
	if err != nil {
		return err
	}
	keyData, err := read(certs.AdminKey)
	if err != nil {
		return err
	}
	config := clientcmdapi.NewConfig()
	config.Clusters["testbed"] = &clientcmdapi.Cluster{Server: serverURL, CertificateAuthorityData: caData}
	config.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: certData, ClientKeyData: keyData}
	config.Contexts["testbed"] = &clientcmdapi.Context{Cluster: "testbed", AuthInfo: "admin"}
	config.CurrentContext = "testbed"
	if err := clientcmd.WriteToFile(*config, path); err != nil {
		return fmt.Errorf("writing the admin kubeconfig %s: %w", path, err)
	}
	return nil
}
