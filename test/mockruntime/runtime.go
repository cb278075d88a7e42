package mockruntime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
)

// ErrNotRunning is returned by requests while the runtime is stopped.
var ErrNotRunning = errors.New("mockruntime: runtime is not running")

// Runtime is a mock container runtime around adaptation.Adaptation.
// All methods are safe for concurrent use.
type Runtime struct {
	cfg     config
	dir     string
	socket  string // what external plugins dial (the proxy)
	backend string // the adaptation's own socket

	// life guards nri and px. Requests hold it for reading, so Stop waits
	// for them.
	life     sync.RWMutex
	nri      *adaptation.Adaptation
	px       *proxy
	starting atomic.Bool // Start is inside adaptation.Start: its sync is not a plugin connecting

	// nriMu is containerd's NRI lock: held by every request, by
	// Synchronize and by unsolicited updates. Taken after BlockPluginSync.
	nriMu sync.Mutex

	mu       sync.Mutex // the model; innermost lock
	pods     map[string]*podEntry
	ctrs     map[string]*ctrEntry
	podOrder []*podEntry // the pods, in creation order (by seq)
	ctrOrder []*ctrEntry // the containers, in creation order (by seq)
	seq      int
	lastTime int64
	steps    int
	failed   []FailedUpdate // the most recent maxFailedUpdates
	changed  chan struct{}
	shuffle  *rand.Rand
	syncErrs []error // external plugin syncs WaitForSync has not returned for yet, in order

	checks     []CheckFunc // fixed at New
	checkMu    sync.Mutex  // serializes the checks; guards violations
	violations []Violation

	// roundTrip, if set, is told how long each adaptation call took.
	roundTrip func(op string, took time.Duration)
}

// New prepares a runtime in a fresh short temp directory (unix socket paths
// are limited to ~108 bytes, which t.TempDir() easily exceeds). Call Start
// to begin serving and Close to clean up.
func New(opts ...Option) (*Runtime, error) {
	var cfg config
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "nri-")
	if err != nil {
		return nil, err
	}
	r := &Runtime{
		cfg:     cfg,
		dir:     dir,
		socket:  filepath.Join(dir, "nri.sock"),
		backend: filepath.Join(dir, "rt.sock"),
		pods:    map[string]*podEntry{},
		ctrs:    map[string]*ctrEntry{},
		changed: make(chan struct{}),
		checks:  append([]CheckFunc(nil), cfg.checks...),

		roundTrip: cfg.roundTrip,
	}
	if cfg.shuffleSeed != nil {
		r.shuffle = rand.New(rand.NewSource(*cfg.shuffleSeed))
	}
	if err := r.installPlugins(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return r, nil
}

// SocketPath is the NRI socket external plugins connect to.
func (r *Runtime) SocketPath() string { return r.socket }

// Node returns the node properties NRI objects are built with.
func (r *Runtime) Node() Node { return r.cfg.node }

func (r *Runtime) pluginDir() string { return filepath.Join(r.dir, "plugins") }
func (r *Runtime) confDir() string   { return filepath.Join(r.dir, "conf.d") }

func (r *Runtime) installPlugins() error {
	for _, p := range r.cfg.preinstalled {
		name := p.idx + "-" + p.name
		if err := copyExecutable(p.binary, filepath.Join(r.pluginDir(), name)); err != nil {
			return fmt.Errorf("pre-installing %s: %w", name, err)
		}
		if p.config == "" {
			continue
		}
		if err := os.MkdirAll(r.confDir(), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(r.confDir(), name+".conf"), []byte(p.config), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// copyExecutable copies rather than links: the adaptation opens the file
// to sniff for WASM, and the source may be a go test build artefact that
// disappears.
func copyExecutable(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Start creates a fresh adaptation, launches and synchronizes the
// pre-installed plugins, and opens the socket for external ones. After a
// Stop it models the runtime coming back: the model (pods, containers,
// cpusets) survives, as containerd restores its state from disk.
func (r *Runtime) Start() error {
	r.life.Lock()
	defer r.life.Unlock()
	if r.nri != nil {
		return errors.New("mockruntime: already running")
	}
	if r.cfg.requestTimeout > 0 {
		adaptation.SetPluginRequestTimeout(r.cfg.requestTimeout)
	}
	// The runtime name and version plugins see in Configure.
	a, err := adaptation.New("mockruntime", "v0.0.0", r.synchronize, r.update,
		adaptation.WithPluginPath(r.pluginDir()),
		adaptation.WithPluginConfigPath(r.confDir()),
		adaptation.WithSocketPath(r.backend))
	if err != nil {
		return err
	}
	r.starting.Store(true)
	err = a.Start()
	r.starting.Store(false)
	if err != nil {
		a.Stop()
		return err
	}
	// The proxy opens only now, so no external plugin can connect while
	// the start-time sync runs: every later sync is a plugin connecting.
	px, err := listenProxy(r.socket, r.backend)
	if err != nil {
		a.Stop()
		return err
	}
	r.nri, r.px = a, px
	return nil
}

// Stop shuts the runtime down as a crash or restart would look to plugins:
// the socket disappears, external plugins' connections are cut (their
// stub.WithOnClose fires), pre-installed plugins are killed. Requests fail
// with ErrNotRunning until Start.
func (r *Runtime) Stop() {
	r.life.Lock()
	defer r.life.Unlock()
	if r.nri == nil {
		return
	}
	r.px.Close()
	r.nri.Stop()
	r.nri, r.px = nil, nil
}

// Restart is Stop then Start. External plugins must reconnect by
// themselves (and are then synchronized with the surviving containers);
// wait for that with WaitForSync.
func (r *Runtime) Restart() error {
	r.Stop()
	return r.Start()
}

// Close stops the runtime, restores NRI's process-wide request timeout if
// this runtime changed it, and removes the temp directory.
func (r *Runtime) Close() error {
	r.Stop()
	if r.cfg.requestTimeout > 0 {
		adaptation.SetPluginRequestTimeout(adaptation.DefaultPluginRequestTimeout)
	}
	return os.RemoveAll(r.dir)
}

// synchronize is the adaptation's SyncFn, called at Start for the
// pre-installed plugins and once per external plugin that connects.
func (r *Runtime) synchronize(ctx context.Context, cb adaptation.SyncCB) error {
	external := !r.starting.Load()
	r.nriMu.Lock()
	defer r.nriMu.Unlock()

	r.mu.Lock()
	pods, ctrs := r.syncStateLocked()
	r.mu.Unlock()

	updates, err := cb(ctx, pods, ctrs)

	r.mu.Lock()
	if err == nil {
		// containerd applies sync updates and ignores their failures.
		r.applyUpdatesLocked("Synchronize", updates)
	}
	if external {
		r.syncErrs = append(r.syncErrs, err)
	}
	r.mu.Unlock()

	op := "Synchronize"
	if !external {
		op = "Synchronize(start)"
	}
	r.step(op, "", err)
	return err
}

// update is the adaptation's UpdateFn: unsolicited updates from a plugin.
func (r *Runtime) update(_ context.Context, updates []*adaptation.ContainerUpdate) ([]*adaptation.ContainerUpdate, error) {
	r.nriMu.Lock()
	defer r.nriMu.Unlock()
	r.mu.Lock()
	failed := r.applyUpdatesLocked("UpdateContainers", updates)
	r.mu.Unlock()
	r.step("UpdateContainers", "", nil)
	return failed, nil
}

// WaitForSync waits until an external plugin has connected and been
// synchronized, then until it is registered, so the next request reaches
// it. Each plugin connection satisfies one call, whether it happened before
// or after the call; the sync that Start itself runs does not count. It
// returns the plugin's Synchronize error, if any.
func (r *Runtime) WaitForSync(ctx context.Context) error {
	r.mu.Lock()
	for len(r.syncErrs) == 0 {
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("mockruntime: no plugin synchronized: %w", ctx.Err())
		}
		r.mu.Lock()
	}
	err := r.syncErrs[0]
	r.syncErrs = r.syncErrs[1:]
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("mockruntime: plugin synchronization failed: %w", err)
	}

	// The plugin joins the adaptation's list only after the sync callback
	// has returned, still under the sync write lock: taking the read side
	// is the barrier.
	r.life.RLock()
	defer r.life.RUnlock()
	if r.nri == nil {
		return ErrNotRunning
	}
	r.nri.BlockPluginSync().Unblock()
	return nil
}

// request runs one CRI-level operation the way containerd does: plugin
// sync blocked, NRI lock held, then records the step and runs the checks.
func (r *Runtime) request(op, id string, fn func(context.Context, *adaptation.Adaptation) error) error {
	r.life.RLock()
	defer r.life.RUnlock()
	if r.nri == nil {
		return ErrNotRunning
	}
	b := r.nri.BlockPluginSync()
	defer b.Unblock()
	r.nriMu.Lock()
	defer r.nriMu.Unlock()
	err := fn(context.Background(), r.nri)
	r.step(op, id, err)
	return err
}

// nextLocked hands out a creation sequence number and a strictly
// increasing timestamp (CreatedAt), so "older" is always well defined.
func (r *Runtime) nextLocked() (int, int64) {
	r.seq++
	now := time.Now().UnixNano()
	if now <= r.lastTime {
		now = r.lastTime + 1
	}
	r.lastTime = now
	return r.seq, now
}
