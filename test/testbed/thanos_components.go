// Starting Thanos' sidecars and querier, and waiting for the querier to see every store.

package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Grace periods of zero make the thanos processes exit at once on SIGTERM (the default waits
// up to 2 minutes for in-flight requests), so StopStore takes effect immediately.
var thanosNoGrace = []string{"--http-grace-period=0s", "--grpc-grace-period=0s"}

func (th *Thanos) startSidecar(ctx context.Context, bin string, i int, store *ThanosStore, timeout time.Duration) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	store.GRPCAddress = "127.0.0.1:" + strconv.Itoa(ports[0])
	store.HTTPURL = "http://127.0.0.1:" + strconv.Itoa(ports[1])
	name := "thanos-sidecar-" + strconv.Itoa(i)
	args := append([]string{"sidecar",
		"--prometheus.url=" + store.Prometheus.URL,
		"--tsdb.path=" + store.Prometheus.DataDir,
		"--grpc-address=" + store.GRPCAddress,
		"--http-address=" + strings.TrimPrefix(store.HTTPURL, "http://"),
	}, thanosNoGrace...)
	store.sidecar, err = StartProcess(context.WithoutCancel(ctx), name, filepath.Join(th.Dir, name+".log"), bin, args...)
	if err != nil {
		return err
	}
	// Ready once the sidecar has read the replica's external labels from Prometheus.
	return readiness{
		component:   name,
		expectation: "GET " + store.HTTPURL + "/-/ready to answer 200",
		timeout:     timeout,
		process:     store.sidecar,
	}.wait(ctx, httpCheck(newHTTPClient(nil), store.HTTPURL+"/-/ready", func(string) bool { return true }))
}

func (th *Thanos) startQuerier(ctx context.Context, bin string, tenancy bool, timeout time.Duration) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	th.URL = "http://127.0.0.1:" + strconv.Itoa(ports[0])
	endpoints, err := th.endpointConfig()
	if err != nil {
		return err
	}
	args := append([]string{"query",
		"--http-address=" + strings.TrimPrefix(th.URL, "http://"),
		"--grpc-address=127.0.0.1:" + strconv.Itoa(ports[1]),
		"--endpoint.sd-config=" + string(endpoints),
		"--query.replica-label=" + ThanosReplicaLabel,
	}, thanosNoGrace...)
	if tenancy {
		args = append(args,
			"--query.enforce-tenancy",
			"--query.tenant-header="+ThanosTenantHeader,
			"--query.tenant-label-name="+ThanosTenantLabel)
	}
	th.querier, err = StartProcess(context.WithoutCancel(ctx), "thanos-query", filepath.Join(th.Dir, "thanos-query.log"), bin, args...)
	if err != nil {
		return err
	}
	client := newHTTPClient(nil)
	err = readiness{
		component:   "thanos-query",
		expectation: "GET " + th.URL + "/-/ready to answer 200",
		timeout:     timeout,
		process:     th.querier,
	}.wait(ctx, httpCheck(client, th.URL+"/-/ready", func(string) bool { return true }))
	if err != nil {
		return err
	}
	addresses := make([]string, len(th.Stores))
	for i, s := range th.Stores {
		addresses[i] = s.GRPCAddress
	}
	// The querier's first calls to the sidecars are what make a broken sidecar fail: stop
	// waiting as soon as one exits, and say why.
	waitCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	for _, s := range th.Stores {
		go func() {
			select {
			case <-s.sidecar.Done():
				cancel(&exitedError{process: s.sidecar})
			case <-waitCtx.Done():
			}
		}()
	}
	err = readiness{
		component: "thanos-query",
		expectation: fmt.Sprintf("GET %s/api/v1/stores to list the sidecars %s, each without error and with its replica label",
			th.URL, strings.Join(addresses, ", ")),
		timeout: timeout,
		process: th.querier,
	}.wait(waitCtx, th.storesCheck(client))
	var exited *exitedError
	if err != nil && errors.As(context.Cause(waitCtx), &exited) {
		return exited
	}
	return err
}

// exitedError is a sidecar that exited while the querier was connecting to it.
type exitedError struct{ process *Process }

func (e *exitedError) Error() string {
	_, exitErr := e.process.Exited()
	log := e.process.LogTail(500)
	panicked := ""
	for _, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, "panic: ") {
			panicked = ": " + strconv.Quote(line)
			break
		}
	}
	if panicked != "" && strings.Contains(log, "nonPoolingCodec") {
		// Thanos casts Prometheus' labels to its own protobuf type unsafely, which holds only
		// for Prometheus' slicelabels implementation; Prometheus 3 defaults to stringlabels, and
		// the codec then reads garbage sizes.
		panicked += fmt.Sprintf(" in the gRPC codec: the thanos binary was built without `-tags slicelabels` "+
			"(Thanos' own builds use -tags netgo,slicelabels); rebuild it with them (test/tools/deps.sh keeps a binary "+
			"already in its cache: delete %s first)", e.process.Args[0])
	}
	return fmt.Sprintf("%s exited (%s) while thanos-query connected to it%s; %s", e.process.Name, exitStatus(exitErr), panicked, e.process.describeLog())
}

// endpointConfig renders the querier's --endpoint.sd-config: every sidecar, strict (see
// StartThanos). The --endpoint-strict flag says the same but is deprecated in v0.42.
func (th *Thanos) endpointConfig() ([]byte, error) {
	type endpoint struct {
		Address string `yaml:"address"`
		Strict  bool   `yaml:"strict"`
	}
	var config struct {
		Endpoints []endpoint `yaml:"endpoints"`
	}
	for _, s := range th.Stores {
		config.Endpoints = append(config.Endpoints, endpoint{Address: s.GRPCAddress, Strict: true})
	}
	out, err := yaml.Marshal(config)
	if err != nil {
		return nil, fmt.Errorf("thanos-query: rendering the endpoint configuration: %w", err)
	}
	return out, nil
}

// storesCheck is ready when the querier's /api/v1/stores lists every sidecar, its last health
// check without error and its label sets holding replica="<index>": the querier then fans
// queries out to every replica.
func (th *Thanos) storesCheck(client *http.Client) func(ctx context.Context) (bool, string) {
	return func(ctx context.Context) (bool, string) {
		reqCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, th.URL+"/api/v1/stores", nil)
		if err != nil {
			return false, err.Error()
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Sprintf("%s: %q", resp.Status, truncate(string(body), 1000))
		}
		var answer struct {
			Data map[string][]struct {
				Name      string              `json:"name"`
				LastError *string             `json:"lastError"`
				LabelSets []map[string]string `json:"labelSets"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &answer); err != nil {
			return false, fmt.Sprintf("decoding %q: %v", truncate(string(body), 1000), err)
		}
		var problems []string
		for i, s := range th.Stores {
			found := false
			for _, stores := range answer.Data {
				for _, st := range stores {
					if st.Name != s.GRPCAddress {
						continue
					}
					found = true
					replica := strconv.Itoa(i)
					hasReplica := false
					for _, set := range st.LabelSets {
						hasReplica = hasReplica || set[ThanosReplicaLabel] == replica
					}
					switch {
					case st.LastError != nil:
						problems = append(problems, fmt.Sprintf("%s: last error %q", s.GRPCAddress, *st.LastError))
					case !hasReplica:
						problems = append(problems, fmt.Sprintf("%s: label sets %v lack %s=%q", s.GRPCAddress, st.LabelSets, ThanosReplicaLabel, replica))
					}
				}
			}
			if !found {
				problems = append(problems, s.GRPCAddress+" is not listed")
			}
		}
		if len(problems) > 0 {
			return false, strings.Join(problems, "; ")
		}
		return true, ""
	}
}
