package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"k8s.io/klog/v2"

	"github.com/promadapter/promadapter/pkg/backend"
	"github.com/promadapter/promadapter/pkg/config"
)

// Reloader keeps the Holder's snapshot in step with the config file: on a change of the file
// (or of the directory holding it: a mounted ConfigMap is updated by swapping a symlink, which
// a watch on the file itself never sees) and on SIGHUP, it loads and builds the new config
// beside the current one and swaps it in. A config that fails is logged with its file:line
// errors and counted; the current one keeps serving.
type Reloader struct {
	// File is the config file; "" is the embedded default, which never changes.
	File    string
	Builder *Builder
	Holder  *Holder
	// Relist is the discovery interval (--metrics-relist-interval).
	Relist time.Duration
	// Probe, when set, checks each backend of a new snapshot once before it is swapped in;
	// a backend that does not answer is logged and marked down, and the config still loads
	// (a backend may come up later).
	Probe func(ctx context.Context, s *Snapshot)
	// Debounce groups the burst of events one edit makes; 0 means 200 ms.
	Debounce time.Duration
	// DiscoveryTimeout bounds the discovery of changed rules before a swap; 0 means 10 s.
	DiscoveryTimeout time.Duration

	mu       sync.Mutex // serialises reloads
	digest   [32]byte   // of the file the current snapshot came from
	stopDisc context.CancelFunc
	// watching is closed once Run watches the file and SIGHUP (made by Init).
	watching chan struct{}
}

// Watching is closed once Run has set up its watches: changes after that are seen.
func (r *Reloader) Watching() <-chan struct{} { return r.watching }

// Loaded is a config read from File, not yet built.
type Loaded struct {
	Config *config.Config
	digest [32]byte
}

// Load reads and parses File (the embedded default when File is ""). The server reads the
// first config with it to learn what to set up (metrics.k8s.io needs informers), then Init.
func (r *Reloader) Load() (Loaded, error) {
	data, cfg, err := r.load()
	if err != nil {
		return Loaded{}, err
	}
	// The config's backends too, offline: their mistakes are the config's.
	if err := backend.Check(cfg.Backends); err != nil {
		return Loaded{}, fmt.Errorf("%s: %w", cfg.Source, err)
	}
	return Loaded{Config: cfg, digest: sha256.Sum256(data)}, nil
}

// Init builds the first snapshot from first, sets Holder and starts its discovery; Run then
// watches for changes. An error here is fatal: there is no previous config to keep serving.
func (r *Reloader) Init(ctx context.Context, first Loaded) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, err := r.Builder.Build(first.Config, nil)
	if err != nil {
		return err
	}
	r.Holder = NewHolder(s)
	r.digest = first.digest
	r.watching = make(chan struct{})
	r.startDiscovery(ctx, s)
	reloadMetrics.success.Set(1)
	reloadMetrics.timestamp.Set(float64(time.Now().Unix()))
	return nil
}

// load reads and parses File (the embedded default when File is "").
func (r *Reloader) load() ([]byte, *config.Config, error) {
	if r.File == "" {
		cfg, err := config.Load("")
		return nil, cfg, err
	}
	data, err := os.ReadFile(r.File)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the config file: %w; check the --config flag", err)
	}
	cfg, err := config.Parse(data, r.File)
	return data, cfg, err
}

// startDiscovery runs s's discovery loop (one pass at once, then every Relist) and stops the
// previous snapshot's.
func (r *Reloader) startDiscovery(ctx context.Context, s *Snapshot) {
	dctx, cancel := context.WithCancel(ctx)
	if r.stopDisc != nil {
		r.stopDisc()
	}
	r.stopDisc = cancel
	go func() {
		if err := s.Discoverer.RunOnce(dctx); err != nil && dctx.Err() == nil {
			klog.ErrorS(err, "discovery incomplete; retrying every --metrics-relist-interval")
		}
		s.Discoverer.Run(dctx, r.Relist)
	}()
}

func (r *Reloader) discoveryTimeout() time.Duration {
	if r.DiscoveryTimeout > 0 {
		return r.DiscoveryTimeout
	}
	return 10 * time.Second
}

// Run reloads on SIGHUP and on changes of File's directory until ctx ends.
func (r *Reloader) Run(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var events <-chan fsnotify.Event
	var errs <-chan error
	if r.File != "" {
		w, err := fsnotify.NewWatcher()
		if err != nil {
			return fmt.Errorf("watching the config file: %w", err)
		}
		defer w.Close()
		if err := w.Add(filepath.Dir(r.File)); err != nil {
			return fmt.Errorf("watching the directory of the config file %s: %w", r.File, err)
		}
		events, errs = w.Events, w.Errors
	}
	close(r.watching)
	debounce := r.Debounce
	if debounce <= 0 {
		debounce = 200 * time.Millisecond
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			klog.InfoS("SIGHUP: reloading the config", "file", r.File)
			_ = r.Reload(ctx, true)
		case <-events:
			timer.Reset(debounce)
		case err := <-errs:
			klog.ErrorS(err, "watching the config file", "file", r.File)
		case <-timer.C:
			_ = r.Reload(ctx, false)
		}
	}
}

// Reload loads File and, if it differs from the current config (or force), builds and swaps
// in the new snapshot. The error is the reason a config was refused; the old one still serves.
func (r *Reloader) Reload(ctx context.Context, force bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	started := time.Now()
	data, cfg, err := r.load()
	if err == nil && r.File != "" && len(bytes.TrimSpace(data)) == 0 {
		// Valid at start (no rules), but at reload almost always a write caught half-way (a
		// truncate before the write): dropping every rule on that would be an outage.
		err = fmt.Errorf("%s is empty (a write in progress?): not reloading; replace the file in one step (write a new file and rename it over, as kubectl and the kubelet do)", r.File)
	}
	if err != nil {
		return r.refuse(err)
	}
	digest := sha256.Sum256(data)
	if !force && bytes.Equal(digest[:], r.digest[:]) {
		// A touch, the ConfigMap's symlink swap of identical content, or an edit reverted to
		// the config that serves: nothing to build, and the file is good again.
		reloadMetrics.success.Set(1)
		return nil
	}
	prev := r.Holder.Load()
	next, err := r.Builder.Build(cfg, prev)
	if err != nil {
		return r.refuse(err)
	}
	if r.Probe != nil {
		r.Probe(ctx, next)
	}
	// Discover edited and new rules before serving them; bounded, since a backend that is
	// down must not hold a reload forever (their metrics then appear with the next pass).
	dctx, cancel := context.WithTimeout(ctx, r.discoveryTimeout())
	if err := next.DiscoverChanged(dctx); err != nil {
		klog.ErrorS(err, "Discovery of the new config's changed rules is incomplete; it retries every --metrics-relist-interval")
	}
	cancel()
	r.Holder.swap(next)
	r.digest = digest
	r.startDiscovery(ctx, next)
	// Requests that loaded prev finish on it; its idle connections are closed, and the
	// metrics of backends the new config dropped are deleted.
	prev.Backends.Forget(next.Backends)
	prev.Backends.Close()
	for _, w := range cfg.Warnings {
		klog.InfoS("Config warning", "warning", w.String())
	}
	reloadMetrics.success.Set(1)
	reloadMetrics.timestamp.Set(float64(time.Now().Unix()))
	reloadMetrics.reloads.WithLabelValues("success").Inc()
	klog.InfoS("Config reloaded", "file", r.File, "customRules", len(next.Custom), "externalRules", len(next.External),
		"backends", next.Backends.Names(), "took", time.Since(started).Round(time.Millisecond))
	return nil
}

// refuse logs and counts a config that was not loaded.
func (r *Reloader) refuse(err error) error {
	reloadMetrics.success.Set(0)
	reloadMetrics.reloads.WithLabelValues("failure").Inc()
	var cerr *config.Error
	if errors.As(err, &cerr) {
		for _, p := range cerr.Problems {
			klog.ErrorS(nil, "Config reload refused; the previous config keeps serving", "problem", p.String())
		}
	} else {
		klog.ErrorS(err, "Config reload refused; the previous config keeps serving", "file", r.File)
	}
	return err
}

// ProbeBackends asks each backend of s for vector(1) once, concurrently, within a few
// seconds, so a wrong URL or refused credentials is one clear log line when a config loads.
// A backend that fails is left in (it may come up later); its up metric says it is down.
func ProbeBackends(ctx context.Context, s *Snapshot) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, name := range s.Backends.Names() {
		b, _ := s.Backends.Get(name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := b.Lister()
			if err == nil {
				_, err = c.Query(ctx, "vector(1)", time.Time{})
			}
			if err != nil {
				klog.ErrorS(nil, "Backend does not answer; rules using it fail until it does", "backend", name, "err", err.Error())
			}
		}()
	}
	wg.Wait()
}
