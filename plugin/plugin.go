// Package plugin is numaspread's NRI plugin: it turns the runtime's pod and
// container events into policy requests (QoS class, CPU request,
// annotations) and the policy's answers into cpuset adjustments for the new
// container plus updates for every shared container whose cpuset changed.
//
// It is the only package that imports NRI. Handlers run under one mutex.
// The container handlers (Create, Stop, Remove, Update) do no I/O under it:
// they write their log lines once it is released, so every request returns
// in microseconds. Configure (reads sysfs), Synchronize and a reload, each
// once a connection or a configuration change, log as they go.
package plugin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	"github.com/sirupsen/logrus"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/policy"
	"github.com/numaspread/numaspread/topology"
)

// Plugin is the NRI plugin. Create it with New; connect it with Run.
type Plugin struct {
	mu   sync.Mutex
	topo *topology.Topology
	log  *logrus.Logger

	cfg      config.Config
	defaults policy.Options
	state    *policy.State
	ctrs     map[string]*container // by container id: running containers we placed
	seq      uint64                // creation order, for "older wins"
	synced   bool
	// gen counts the requests that may have changed cpusets, so that an
	// unsolicited update can tell whether a request overtook it.
	gen uint64

	observer Observer // nil: none; guarded by mu

	stubMu sync.Mutex // guards stub, which Run replaces on reconnects
	stub   stub.Stub

	inFlight atomic.Int32 // unsolicited update batches being sent
}

// container is what the plugin remembers of a running container.
type container struct {
	id, podID string
	ref       string // namespace/pod/container, for logs and errors
	seq       uint64
	exclusive bool   // holds exclusive CPUs in the policy state
	why       string // why a container is shared, for the decision log
	policy    string // the strategy that chose its CPUs ("" when shared)
	cpus      string // the cpuset.cpus we gave it
	mems      string // the cpuset.mems we gave it ("" when memory = none)
}

// New returns a plugin for the machine t configured by cfg. It fails when the
// configuration does not fit the machine.
func New(t *topology.Topology, cfg config.Config, log *logrus.Logger) (*Plugin, error) {
	if log == nil {
		log = logrus.New()
	}
	p := &Plugin{topo: t, log: log}
	if err := p.apply(cfg); err != nil {
		return nil, err
	}
	return p, nil
}

// apply installs a configuration with an empty policy state, and logs
// its warnings.
func (p *Plugin) apply(cfg config.Config) error {
	state, defaults, warnings, err := newPolicyState(p.topo, cfg)
	if err != nil {
		return err
	}
	p.cfg, p.state, p.defaults = cfg, state, defaults
	p.ctrs = map[string]*container{}
	p.logWarnings(cfg, warnings)
	return nil
}

// logWarnings logs the warnings of cfg.Resolve: settings that are valid
// but probably not what was meant.
func (p *Plugin) logWarnings(cfg config.Config, warnings []string) {
	for _, w := range warnings {
		e := logrus.NewEntry(p.log)
		if src := cfg.Source(); src != "" {
			e = e.WithField("config", src)
		}
		e.Warn(w)
	}
}

// newPolicyState resolves cfg on t and returns an empty policy state, the
// default placement options and Resolve's warnings.
func newPolicyState(t *topology.Topology, cfg config.Config) (*policy.State, policy.Options, []string, error) {
	res, err := cfg.Resolve(t)
	if err != nil {
		return nil, policy.Options{}, nil, err
	}
	pc := cfg.Policy
	opts := policy.Options{
		Mode: policy.Mode(pc.Mode), Spread: policy.Spread(pc.Spread), MaxNUMANodes: pc.MaxNUMANodes,
		FullCores: policy.FullCores(pc.FullCores), Memory: policy.Memory(pc.Memory),
	}
	if err := opts.Validate(); err != nil {
		return nil, opts, nil, err
	}
	state, err := policy.NewState(t, policy.Config{
		Managed: res.Allowed, Reserved: res.Reserved,
		StrictReserved: pc.StrictReserved, MinSharedCPUs: minShared(pc.MinSharedCPUs),
	})
	return state, opts, res.Warnings, err
}

// minShared is the smallest shared pool an exclusive allocation may leave:
// min_shared_cpus, but never 0. An empty pool cannot be written as a cpuset
// (an empty cpuset.cpus in an NRI update means "leave it as it is"), so the
// shared containers would keep running on the CPUs just handed out as
// exclusive.
func minShared(configured int) int { return max(1, configured) }

// Config returns the configuration in use.
func (p *Plugin) Config() config.Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}

// Configure is called by the runtime when the plugin registers. A
// pre-installed plugin receives its configuration text here.
func (p *Plugin) Configure(_ context.Context, text, runtime, version string) (api.EventMask, error) {
	p.log.WithFields(logrus.Fields{"runtime": runtime, "version": version}).Info("connected to the runtime")
	if text == "" {
		return 0, nil
	}
	cfg, err := config.Parse(config.ConfigureSource, []byte(text))
	if err != nil {
		return 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	oldTopo := p.topo
	if cfg.Topology.Sysfs != p.cfg.Topology.Sysfs {
		// The machine was discovered from p.cfg's sysfs before the runtime
		// connected; a pre-installed plugin (no flags) learns its sysfs
		// only from this text.
		t, err := topology.Discover(cfg.Topology.Sysfs)
		if err != nil {
			return 0, fmt.Errorf("configuration from the runtime: topology.sysfs: %w", err)
		}
		p.topo = t
	}
	if err := p.apply(cfg); err != nil {
		p.topo = oldTopo
		return 0, fmt.Errorf("configuration from the runtime: %w", err)
	}
	return 0, nil
}

// CreateContainer chooses the new container's CPUs and memory nodes.
func (p *Plugin) CreateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) (_ *api.ContainerAdjustment, _ []*api.ContainerUpdate, err error) {
	r := newRequest("CreateContainer", pod, ctr)
	defer p.recoverPanic(&r, &err, func() { p.dropUnrecorded(ctr.GetId()) })
	p.debugRequest("CreateContainer", pod, ctr)
	logs := logBuffer{log: p.log}
	defer logs.flush() // after a panic too; nothing left to write otherwise
	adj, updates, err := p.create(pod, ctr, &r, &logs)
	logs.flush()
	if err != nil {
		return nil, nil, err
	}
	p.debugReply("CreateContainer", pod, ctr, adj, updates)
	return adj, updates, nil
}

// create is CreateContainer under the plugin's lock; its log lines go to
// logs. It changes nothing when it fails or panics.
func (p *Plugin) create(pod *api.PodSandbox, ctr *api.Container, r *request, logs *logBuffer) (_ *api.ContainerAdjustment, _ []*api.ContainerUpdate, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()

	if old, ok := p.ctrs[ctr.GetId()]; ok {
		// A repeated create of a running container's id: decide from a
		// clean slate (its CPUs may be chosen again), but give the running
		// container its record and CPUs back unless the new one is made.
		held := p.state.Release(old.id)
		delete(p.ctrs, old.id)
		defer func() {
			if _, made := p.ctrs[old.id]; !made {
				p.reinstate(old, held, logs)
			}
		}()
	}

	c, outcome, err := p.place(pod, ctr, logs)
	p.decided(outcome)
	// Observed before anything is recorded: should the observer panic,
	// the clean-ups (reinstate above, dropUnrecorded in CreateContainer)
	// undo place's allocation and nothing is left behind.
	p.observe(r, err)
	if err != nil {
		logs.add(logrus.ErrorLevel, "container rejected", func() logrus.Fields {
			f := ctrFields(pod, ctr)
			f[logrus.ErrorKey] = err
			return f
		})
		return nil, nil, err
	}
	cpus, mems := p.sharedCPUSet()
	if !c.exclusive {
		c.cpus, c.mems = cpus, mems
	}
	adj := &api.ContainerAdjustment{}
	adj.SetLinuxCPUSetCPUs(c.cpus)
	if c.mems != "" {
		adj.SetLinuxCPUSetMems(c.mems)
	}
	updates := p.sharedUpdates(c.id, cpus, mems)
	c.seq = p.nextSeq()
	p.ctrs[c.id] = c
	p.gen++
	logs.add(logrus.InfoLevel, "container placed", func() logrus.Fields {
		f := ctrFields(pod, ctr)
		f["class"], f["policy"], f["cpus"], f["mems"], f["why"] = className(c.exclusive), c.policy, c.cpus, c.mems, c.why
		f["updates"], f["took"] = len(updates), time.Since(r.start).String()
		return f
	})
	return adj, updates, nil
}

// reinstate puts back the record of a running container, and its exclusive
// CPUs, after a repeated create of its id failed; held is what it held.
func (p *Plugin) reinstate(old *container, held topology.Mask, logs *logBuffer) {
	p.state.Release(old.id) // whatever a panicking attempt recorded
	if old.exclusive {
		if err := p.state.Adopt(old.id, held); err != nil {
			// Cannot happen: nothing took the CPUs since they were released.
			// The pool is better for the container than CPUs nobody holds.
			logs.add(logrus.ErrorLevel, "cannot give a running container its exclusive CPUs back after a failed repeated create: moving it to the shared pool",
				func() logrus.Fields { return logrus.Fields{"container": old.ref, logrus.ErrorKey: err} })
			old.exclusive, old.policy = false, ""
		}
	}
	p.ctrs[old.id] = old
}

// place decides where a container without a record goes and records
// exclusive CPUs in the policy state. It changes nothing when it fails.
// outcome is one of the Outcome constants. A shared container's cpus and
// mems are left empty: the caller gives it the shared pool. Its log lines
// go to logs.
func (p *Plugin) place(pod *api.PodSandbox, ctr *api.Container, logs *logBuffer) (c *container, outcome string, err error) {
	ref := containerRef(pod, ctr)
	c = &container{id: ctr.GetId(), podID: pod.GetId(), ref: ref}
	w := inferWorkload(pod, ctr)
	c.why = w.why
	opts, optOut := p.defaults, false
	if p.cfg.Policy.Annotations {
		if opts, optOut, err = annotationChoices(pod.GetAnnotations(), ctr.GetName(), p.defaults); err != nil {
			return nil, OutcomeRejectAnnotation, fmt.Errorf("container %s: %w", ref, err)
		}
		if logs.enabled(logrus.WarnLevel) {
			if unknown := unknownAnnotations(pod.GetAnnotations()); len(unknown) > 0 {
				logs.add(logrus.WarnLevel, fmt.Sprintf("ignoring unknown annotations %v", unknown), func() logrus.Fields { return ctrFields(pod, ctr) })
			}
		}
	}
	outcome = OutcomeShared
	if w.exclusive > 0 && !optOut {
		a, err := p.state.Allocate(c.id, policy.Request{CPUs: w.exclusive, Options: opts})
		if err == nil {
			c.exclusive, c.policy, c.cpus, c.mems = true, string(opts.Mode), a.CPUs.String(), a.Mems.String()
			return c, OutcomeExclusive, nil
		}
		var short *policy.InsufficientError
		if !errors.As(err, &short) {
			return nil, OutcomeRejectOther, fmt.Errorf("container %s (Guaranteed, %d CPUs, policy %s): %w", ref, w.exclusive, opts.Mode, err)
		}
		if p.cfg.Policy.OnInsufficient != config.InsufficientShared {
			return nil, OutcomeRejectInsufficient, fmt.Errorf("container %s (Guaranteed, %d CPUs, policy %s): %w", ref, w.exclusive, opts.Mode, err)
		}
		logs.add(logrus.WarnLevel, "not enough CPUs: running in the shared pool (on_insufficient = shared)", func() logrus.Fields {
			f := ctrFields(pod, ctr)
			f[logrus.ErrorKey] = err
			return f
		})
		outcome, c.why = OutcomeFallbackShared, "not enough free CPUs (on_insufficient = shared)"
	} else if optOut && w.exclusive > 0 {
		c.why = "opted out by annotation " + annotationExclusive
	}
	return c, outcome, nil
}

// sharedCPUSet returns the shared pool's cpuset.cpus and cpuset.mems.
func (p *Plugin) sharedCPUSet() (cpus, mems string) {
	pool := p.state.SharedPool()
	return pool.String(), p.state.Mems(pool, p.defaults.Memory).String()
}

// sharedUpdates returns an update for every shared container (other than
// except) whose cpuset differs from the shared pool (cpus and mems, as
// sharedCPUSet returns them), and records the change.
func (p *Plugin) sharedUpdates(except, cpus, mems string) []*api.ContainerUpdate {
	var stale []*container
	for _, c := range p.ctrs {
		if !c.exclusive && c.id != except && (c.cpus != cpus || c.mems != mems) {
			stale = append(stale, c)
		}
	}
	if len(stale) == 0 {
		return nil
	}
	sortBySeq(stale)
	// Every shared container gets the same resources: build them once and
	// share them between the updates, which are only read (marshalled) later.
	linux := cpusetUpdate(&container{cpus: cpus, mems: mems}).Linux
	out := make([]*api.ContainerUpdate, len(stale))
	updates := make([]api.ContainerUpdate, len(stale))
	for i, c := range stale {
		c.cpus, c.mems = cpus, mems
		updates[i] = api.ContainerUpdate{ContainerId: c.id, Linux: linux, IgnoreFailure: true}
		out[i] = &updates[i]
	}
	return out
}

func cpusetUpdate(c *container) *api.ContainerUpdate {
	u := &api.ContainerUpdate{}
	u.SetContainerId(c.id)
	u.SetLinuxCPUSetCPUs(c.cpus)
	if c.mems != "" {
		u.SetLinuxCPUSetMems(c.mems)
	}
	// A container that is stopping concurrently must not fail the request.
	u.SetIgnoreFailure()
	return u
}

// StopContainer releases the container's CPUs (so an init container hands
// them on) and grows the shared pool.
func (p *Plugin) StopContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) (_ []*api.ContainerUpdate, err error) {
	r := newRequest("StopContainer", pod, ctr)
	defer p.recoverPanic(&r, &err)
	p.debugRequest("StopContainer", pod, ctr)
	logs := logBuffer{log: p.log}
	defer logs.flush()
	updates := func() []*api.ContainerUpdate {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.release(pod, ctr, "stopped", &logs)
		// Even when the container was not ours: the reply carries the pool
		// changes earlier RemoveContainer requests held back.
		p.gen++
		cpus, mems := p.sharedCPUSet()
		updates := p.sharedUpdates("", cpus, mems)
		p.observe(&r, nil)
		return updates
	}()
	logs.flush()
	p.debugReply("StopContainer", pod, ctr, nil, updates)
	return updates, nil
}

// RemoveContainer is StopContainer for runtimes that skip the stop; it is
// idempotent. Its reply cannot carry updates, and an unsolicited update
// could reach the runtime after the reply to a later request and undo it
// (give shared containers CPUs allocated in between), so the pool's growth
// waits for the next reply: CreateContainer, StopContainer,
// UpdateContainer or Synchronize. Until then shared containers keep a part
// of the pool, which is safe.
func (p *Plugin) RemoveContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) (err error) {
	r := newRequest("RemoveContainer", pod, ctr)
	defer p.recoverPanic(&r, &err)
	logs := logBuffer{log: p.log}
	defer logs.flush()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.release(pod, ctr, "removed", &logs) {
		p.gen++
	}
	p.observe(&r, nil)
	return nil
}

// release forgets a container and frees its exclusive CPUs; the shared
// containers' records are left as they are, so that the next
// sharedUpdates reports them. It reports whether the container was ours;
// the caller bumps p.gen then. The caller holds p.mu; the log line goes to
// logs.
func (p *Plugin) release(pod *api.PodSandbox, ctr *api.Container, why string, logs *logBuffer) bool {
	c, ok := p.ctrs[ctr.GetId()]
	if !ok {
		return false
	}
	p.forget(c)
	if c.exclusive {
		logs.add(logrus.InfoLevel, "container "+why+": exclusive CPUs released", func() logrus.Fields {
			f := ctrFields(pod, ctr)
			f["cpus"] = c.cpus
			return f
		})
	}
	return true
}

// dropUnrecorded releases CPUs the policy holds for a container the plugin
// did not record, as after a panic between the two.
func (p *Plugin) dropUnrecorded(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.ctrs[id]; !ok {
		p.state.Release(id)
	}
}

func (p *Plugin) forget(c *container) {
	if c.exclusive {
		p.state.Release(c.id)
	}
	delete(p.ctrs, c.id)
}

// UpdateContainer re-asserts our cpuset over whatever the update asked for,
// since numaspread owns cpusets on this node.
func (p *Plugin) UpdateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container, _ *api.LinuxResources) (_ []*api.ContainerUpdate, err error) {
	r := newRequest("UpdateContainer", pod, ctr)
	defer p.recoverPanic(&r, &err)
	p.debugRequest("UpdateContainer", pod, ctr)
	updates := func() []*api.ContainerUpdate {
		p.mu.Lock()
		defer p.mu.Unlock()
		c, ok := p.ctrs[ctr.GetId()]
		if !ok {
			p.observe(&r, nil)
			return nil
		}
		// The reply also carries pool changes held back since the last reply.
		p.gen++
		cpus, mems := p.sharedCPUSet()
		updates := p.sharedUpdates(c.id, cpus, mems)
		if !c.exclusive {
			c.cpus, c.mems = cpus, mems
		}
		updates = append(updates, cpusetUpdate(c))
		p.observe(&r, nil)
		return updates
	}()
	p.debugReply("UpdateContainer", pod, ctr, nil, updates)
	return updates, nil
}

// logBuffer holds log lines built under p.mu, to be written once it is
// released: with a log file every line is a write, which must not
// serialise the requests. Make it as logBuffer{log: p.log}.
type logBuffer struct {
	log   *logrus.Logger
	lines []logLine
}

type logLine struct {
	entry *logrus.Entry
	level logrus.Level
	msg   string
}

// enabled reports whether the logger writes lines of level.
func (b *logBuffer) enabled(level logrus.Level) bool { return b.log.IsLevelEnabled(level) }

// add buffers a line of level with the fields that fields builds. Nothing
// is built (fields is not called) when the logger drops the level: the
// request path pays for the lines it writes only.
func (b *logBuffer) add(level logrus.Level, msg string, fields func() logrus.Fields) {
	if !b.log.IsLevelEnabled(level) {
		return
	}
	b.lines = append(b.lines, logLine{b.log.WithFields(fields()), level, msg})
}

// flush writes the buffered lines, in order, and empties the buffer.
func (b *logBuffer) flush() {
	for _, l := range b.lines {
		l.entry.Log(l.level, l.msg)
	}
	b.lines = nil
}

func (p *Plugin) nextSeq() uint64 {
	p.seq++
	return p.seq
}

// containersBySeq returns every recorded container, oldest first.
func (p *Plugin) containersBySeq() []*container {
	cs := make([]*container, 0, len(p.ctrs))
	for _, c := range p.ctrs {
		cs = append(cs, c)
	}
	sortBySeq(cs)
	return cs
}

// sortBySeq orders containers oldest first, so that replies are deterministic.
func sortBySeq(cs []*container) {
	slices.SortFunc(cs, func(a, b *container) int { return cmp.Compare(a.seq, b.seq) })
}

func containerRef(pod *api.PodSandbox, ctr *api.Container) string {
	return pod.GetNamespace() + "/" + pod.GetName() + "/" + ctr.GetName()
}

func ctrFields(pod *api.PodSandbox, ctr *api.Container) logrus.Fields {
	return logrus.Fields{"pod": pod.GetNamespace() + "/" + pod.GetName(), "container": ctr.GetName()}
}

func className(exclusive bool) string {
	if exclusive {
		return "exclusive"
	}
	return "shared"
}
