// Package invariants checks numaspread's promises on the mock runtime's
// model (test/mockruntime) after every step. It is deliberately independent
// of the plugin: it derives who is entitled to exclusive CPUs from the
// Kubernetes pod specs, the pod annotations and the configuration
// (DESIGN.md "Who gets what"), and the shared pool from the exclusive
// cpusets it sees in the runtime, never from the plugin's own state.
//
// The rules, for the live (created or running) containers of a snapshot:
//
// Safety, checked after every step, also while a fault is being repaired:
//
//   - S1: no CPU is in the cpusets of two containers that hold exclusive
//     CPUs;
//   - S2: no shared container's cpuset contains a CPU held exclusively;
//   - S3: an exclusive container holds exactly the CPUs it is entitled to
//     (its count; none reserved unless it was placed under an earlier
//     configuration, see Reconfigure).
//
// Convergence, checked after every step outside an open window (below):
//
//   - C1: every container has a cpuset.cpus, naming only managed CPUs;
//   - C2: cpuset.mems follows the memory setting (local: the NUMA nodes of
//     the container's CPUs);
//   - C3: every shared container (not entitled, opted out, or a declared
//     fallback) has exactly the shared pool = managed − exclusive CPUs
//     (− reserved with strict_reserved);
//   - C4: the shared pool is not empty and holds at least min_shared_cpus
//     CPUs (unless an exclusive container placed under an earlier
//     configuration keeps it smaller, until the next Synchronize).
//
// Windows. A test opens one when it causes a fault the plugin cannot see
// or cannot repair at once; only safety is checked while it is open:
//
//   - PluginDown: the plugin is gone (killed, or the runtime's connection
//     dropped). Containers created meanwhile have no cpuset, containers
//     stopped meanwhile leave the pool stale, cpusets may name CPUs that
//     went offline. The window closes at the next successful Synchronize
//     step: the state must then be valid at once ("converges within one
//     Synchronize").
//   - Settling: the plugin has changed the pool without a reply to carry
//     the change (RemoveContainer without StopContainer: it rides on the
//     next reply), or through unsolicited updates (a configuration reload)
//     that the runtime may apply after the reply to a later request.
//     Shared containers may lag the pool but never overlap exclusive CPUs
//     (S2; SettlingRacy tolerates, until the plugin has re-sent, overlaps
//     with CPUs made exclusive after the window opened). The test closes
//     it (TrySettle) once the model has converged, and fails if that
//     takes too long. A successful Synchronize closes it too.
//
// UncheckedUntilSync exempts single containers whose cpusets a test
// tampered with until the next Synchronize.
package invariants

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/test/mockruntime"
	"github.com/numaspread/numaspread/topology"
)

// Role is what the rules entitle a container to.
type Role int

// Roles.
const (
	Shared Role = iota
	Exclusive
)

func (r Role) String() string {
	if r == Exclusive {
		return "exclusive"
	}
	return "shared"
}

// Checker verifies the invariants on snapshots of the mock runtime's model.
// It is safe for concurrent use; install Check with mockruntime.WithCheck.
type Checker struct {
	mu sync.Mutex

	topo        *topology.Topology
	cfg         config.Config
	managed     topology.Mask
	reserved    topology.Mask
	strict      bool
	minShared   int
	memory      string
	annotations bool

	pods map[string]*mockruntime.Pod // by sandbox id, registered before RunPod

	down     bool
	settling bool
	// racy: the settling window also tolerates shared containers on CPUs
	// made exclusive after it opened (by containers not in settleBase).
	racy       bool
	settleBase map[string]bool
	// unchecked: containers exempt until the next successful Synchronize.
	unchecked map[string]bool
	// fallback: entitled containers the test expects in the shared pool
	// (by container id, to the pod id, so that ForgetPod drops them).
	fallback map[string]string
	// grandfathered: exclusive containers placed under an earlier
	// configuration; they may hold reserved CPUs and keep the pool below
	// min_shared_cpus until the next successful Synchronize.
	grandfathered map[string]bool
	// exited: containers that stopped without the plugin being told; it
	// still holds their CPUs until RemoveContainer or a Synchronize.
	exited map[string]bool
	// infer: recognise fallbacks by their cpusets (InferFallbacks);
	// inferred holds those recognised (id → their cpuset then).
	infer    bool
	inferred map[string]string

	last  Verdict                  // of the previous snapshot
	masks map[string]topology.Mask // parse cache
	syncs int                      // successful Synchronize steps judged
}

// New returns a checker for the machine topo under cfg.
func New(topo *topology.Topology, cfg config.Config) (*Checker, error) {
	c := &Checker{
		pods: map[string]*mockruntime.Pod{}, unchecked: map[string]bool{}, fallback: map[string]string{},
		grandfathered: map[string]bool{}, exited: map[string]bool{}, inferred: map[string]string{},
		masks: map[string]topology.Mask{},
	}
	if err := c.configure(topo, cfg); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Checker) configure(topo *topology.Topology, cfg config.Config) error {
	pc := cfg.Policy
	managed := topo.Online.Difference(topo.Isolated)
	if pc.AllowedCPUs != "" {
		m, err := topology.ParseMask(pc.AllowedCPUs)
		if err != nil {
			return fmt.Errorf("allowed_cpus: %w", err)
		}
		managed = m.Intersection(topo.Online)
	}
	reserved, err := topology.ParseMask(pc.ReservedCPUs)
	if err != nil {
		return fmt.Errorf("reserved_cpus: %w", err)
	}
	c.topo, c.cfg, c.managed, c.reserved = topo, cfg, managed, reserved
	c.strict, c.minShared, c.memory, c.annotations = pc.StrictReserved, pc.MinSharedCPUs, pc.Memory, pc.Annotations
	return nil
}

// AddPod registers a pod (its annotations decide opt-outs). Call it before RunPod.
func (c *Checker) AddPod(p *mockruntime.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pods[p.ID] = p
}

// ForgetPod drops a removed pod and the expectations about its
// containers, so that a long run stays small.
func (c *Checker) ForgetPod(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pods, id)
	for ctr, pod := range c.fallback {
		if pod == id {
			delete(c.fallback, ctr)
		}
	}
}

// PluginDown opens the outage window; the next successful Synchronize closes it.
func (c *Checker) PluginDown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = true
}

// Down reports whether the outage window is open.
func (c *Checker) Down() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.down
}

// Settling opens the window in which shared containers may lag the pool
// (a change the plugin holds back until its next reply). Settle closes it.
func (c *Checker) Settling() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.settling = true
}

// SettlingRacy opens the settling window for a change the plugin sends as
// unsolicited updates (a reload): those may be overtaken by a request's
// reply and applied after it, so shared containers may, until the plugin
// re-sends, also hold CPUs that containers made exclusive after this call.
// CPUs held exclusively before it stay off limits (S2).
func (c *Checker) SettlingRacy() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.settling || !c.racy {
		c.settleBase = map[string]bool{}
		for id := range c.last.Exclusive {
			c.settleBase[id] = true
		}
	}
	c.settling, c.racy = true, true
}

// Settle closes the settling window.
func (c *Checker) Settle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.settling, c.racy, c.settleBase = false, false, nil
}

// TrySettle closes the settling window if the snapshot passes every
// check with it closed, and reports whether it did.
func (c *Checker) TrySettle(s mockruntime.Snapshot) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	settling, racy := c.settling, c.racy
	c.settling, c.racy = false, false
	v := c.judgeLocked(s)
	if len(v.Problems) > 0 {
		c.settling, c.racy = settling, racy
		return false
	}
	c.settleBase = nil
	return true
}

// IsSettling reports whether the settling window is open.
func (c *Checker) IsSettling() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.settling
}

// UncheckedUntilSync exempts a container until the next successful Synchronize.
func (c *Checker) UncheckedUntilSync(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unchecked[id] = true
}

// ExpectFallback declares that an entitled container runs in the shared
// pool because there were not enough CPUs; ExpectExclusive undoes it (a
// Synchronize that found CPUs for it).
func (c *Checker) ExpectFallback(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fallback[id] = podOf(id)
}

// podOf guesses a container's pod id from the mock runtime's naming
// (pod.name[.attempt]); ForgetPod uses it.
func podOf(id string) string {
	i := strings.LastIndex(id, ".")
	if i < 0 {
		return id
	}
	pod, last := id[:i], id[i+1:]
	if _, err := strconv.Atoi(last); err == nil {
		if j := strings.LastIndex(pod, "."); j >= 0 {
			return pod[:j]
		}
	}
	return pod
}

// InferFallbacks makes the checker recognise fallbacks (entitled
// containers in the shared pool) by their cpusets, besides those declared
// with ExpectFallback; see Judge for how. Verdict.Fallbacks lists them;
// whether each was legitimate (there were not enough CPUs) is for the
// caller's model.
func (c *Checker) InferFallbacks() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.infer = true
}

// ExpectExclusive undoes ExpectFallback.
func (c *Checker) ExpectExclusive(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.fallback, id)
}

// Exited declares that a container stopped without the plugin being told
// (mockruntime.ExitContainer): its CPUs count as held until it is removed
// or the next Synchronize.
func (c *Checker) Exited(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.exited[id] = true
}

// Reconfigure installs a new configuration, as a reload or a restart with
// another file does. Exclusive containers of the last snapshot are
// grandfathered until the next successful Synchronize: they may keep CPUs
// the new configuration reserves.
func (c *Checker) Reconfigure(cfg config.Config) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.configure(c.topo, cfg); err != nil {
		return err
	}
	for id := range c.last.Exclusive {
		c.grandfathered[id] = true
	}
	return nil
}

// SetMachine installs another machine (the plugin restarts where CPUs went
// offline or came back); only valid while the outage window is open.
func (c *Checker) SetMachine(topo *topology.Topology) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.down {
		return errors.New("invariants: SetMachine outside an outage window")
	}
	return c.configure(topo, c.cfg)
}

// Machine returns the machine and configuration the checker applies.
func (c *Checker) Machine() (*topology.Topology, config.Config) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.topo, c.cfg
}

// Syncs returns the number of successful Synchronize steps judged so far.
func (c *Checker) Syncs() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.syncs
}

// Entitlement is the number of exclusive CPUs the rules give a container
// (0: shared): its pod is Guaranteed, its CPU request is a whole number
// equal to its limit, and no numaspread.io/exclusive annotation (container
// key first) says "false". It ignores ExpectFallback.
func (c *Checker) Entitlement(ci mockruntime.ContainerInfo) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entitlementLocked(ci)
}

func (c *Checker) entitlementLocked(ci mockruntime.ContainerInfo) int {
	s := ci.Spec
	if ci.QoS != mockruntime.Guaranteed || s.CPURequestMilli <= 0 || s.CPURequestMilli != s.CPULimitMilli ||
		s.CPURequestMilli%1000 != 0 {
		return 0
	}
	if pod := c.pods[ci.PodID]; pod != nil && c.annotations {
		v, ok := pod.Annotations["numaspread.io/exclusive.container."+ci.Name]
		if !ok {
			v = pod.Annotations["numaspread.io/exclusive"]
		}
		if v == "false" {
			return 0
		}
	}
	return int(s.CPURequestMilli / 1000)
}

func (c *Checker) roleOf(ci mockruntime.ContainerInfo) (Role, int) {
	n := c.entitlementLocked(ci)
	if _, fb := c.fallback[ci.ID]; n == 0 || fb {
		return Shared, 0
	}
	return Exclusive, n
}

// Verdict is the checker's reading of one snapshot.
type Verdict struct {
	Step mockruntime.Step
	// Pool is managed − exclusive cpusets (− reserved when strict).
	Pool topology.Mask
	// Held is every CPU held exclusively (by live exclusive containers and
	// by exited ones the plugin was not told about).
	Held topology.Mask
	// Exclusive maps each live exclusive container with a cpuset to it.
	Exclusive map[string]topology.Mask
	Roles     map[string]Role
	// Fallbacks are the entitled containers that run in the shared pool
	// (declared with ExpectFallback, or recognised with InferFallbacks).
	Fallbacks []string
	Problems  []string
	Window    bool // a window was open: only safety was checked
}

// Judge reads a snapshot. A successful Synchronize step first closes the
// outage window and ends every exemption that lasts until one.
func (c *Checker) Judge(s mockruntime.Snapshot) Verdict {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.judgeLocked(s)
}

func (c *Checker) judgeLocked(s mockruntime.Snapshot) Verdict {
	if s.Step.Op == "Synchronize" && s.Step.Err == nil {
		// The plugin rebuilt everything and sent every cpuset.
		c.down, c.settling, c.racy, c.settleBase = false, false, false, nil
		clear(c.unchecked)
		clear(c.grandfathered)
		clear(c.exited)
		c.syncs++
	}
	window := c.down || c.settling
	v := Verdict{Step: s.Step, Roles: map[string]Role{}, Exclusive: map[string]topology.Mask{}, Window: window}
	fail := func(format string, args ...any) { v.Problems = append(v.Problems, fmt.Sprintf(format, args...)) }

	// Pass 1: parse the cpusets of live containers and give each its role.
	type entry struct {
		ci   mockruntime.ContainerInfo
		n    int // entitlement
		role Role
		cpus topology.Mask
		ok   bool // cpus parsed and non-empty
	}
	var live []*entry
	var exitedHeld []*entry
	grandfathered := false // a container placed under an earlier configuration holds CPUs
	present := make(map[string]bool, len(s.Containers))
	for _, ci := range s.Containers {
		present[ci.ID] = true
		if !ci.Live() {
			// The plugin still holds an exited container's CPUs.
			if c.exited[ci.ID] && c.inferred[ci.ID] == "" {
				if r, n := c.roleOf(ci); r == Exclusive && n > 0 && ci.Cpus != "" {
					if cpus, err := c.parse(ci.Cpus); err == nil && cpus.Count() == n {
						exitedHeld = append(exitedHeld, &entry{ci: ci, n: n, role: Exclusive, cpus: cpus, ok: true})
						grandfathered = grandfathered || c.grandfathered[ci.ID]
					}
				}
			}
			continue
		}
		e := &entry{ci: ci}
		e.role, e.n = c.roleOf(ci)
		if e.role == Shared {
			e.n = c.entitlementLocked(ci)
		}
		if c.infer && e.role == Exclusive && window && c.inferred[ci.ID] != "" {
			e.role = Shared
		}
		v.Roles[ci.ID] = e.role
		live = append(live, e)
		if c.unchecked[ci.ID] {
			continue
		}
		if ci.Cpus == "" {
			if !c.down {
				fail("C1: %s (%s): no cpuset.cpus", ci.ID, e.role)
			}
			continue
		}
		cpus, err := c.parse(ci.Cpus)
		if err != nil {
			fail("C1: %s: cpuset.cpus %q: %v", ci.ID, ci.Cpus, err)
			continue
		}
		e.cpus, e.ok = cpus, true
	}
	c.prune(present)

	// Pass 2 (InferFallbacks): recognise the entitled containers that run
	// in the pool. Exclusive cpusets are disjoint from each other and from
	// the pool, so the pool is the cpuset the not-entitled shared
	// containers have (the most common one; not in a window, where they may
	// lag), or else a cpuset two entitled containers share: an entitled
	// container with it is a fallback, any other is exclusive. Failing
	// both, an entitled container is a fallback when its cpuset cannot be
	// an exclusive one (not its count of CPUs), or when it was recognised
	// as one before with the same cpuset. (The sets alone cannot tell a
	// lone fallback from the exclusive containers: each is the complement
	// of the others. A fallback whose pool happens to have exactly its
	// count, with no other shared container, must be declared with
	// ExpectFallback.) Fallbacks recognised before keep their role in a
	// window.
	if c.infer {
		var cands []*entry
		sharedSets, entSets := map[string]int{}, map[string]int{}
		for _, e := range live {
			if !e.ok || c.unchecked[e.ci.ID] {
				continue
			}
			// The runtime's strings: the plugin writes them normalised, and
			// formatting a mask per container per step costs too much.
			if e.n == 0 {
				sharedSets[e.ci.Cpus]++
				continue
			}
			if _, declared := c.fallback[e.ci.ID]; declared || window && c.inferred[e.ci.ID] != "" {
				continue
			}
			cands = append(cands, e)
			entSets[e.ci.Cpus]++
		}
		pool := ""
		if !window {
			pool = mostCommon(sharedSets, 1)
		}
		if pool == "" {
			pool = mostCommon(entSets, 2)
		}
		for _, e := range cands {
			set := e.ci.Cpus
			var fb bool
			switch {
			case pool != "":
				fb = set == pool
			case window && sharedSets[set] > 0:
				// Shared containers may lag in a window, but a cpuset
				// equal to one of theirs is a pool, never exclusive CPUs.
				fb = true
			default:
				fb = e.cpus.Count() != e.n || c.inferred[e.ci.ID] == set
			}
			if fb {
				e.role = Shared
				c.inferred[e.ci.ID] = set
			} else {
				e.role = Exclusive
				delete(c.inferred, e.ci.ID)
			}
			v.Roles[e.ci.ID] = e.role
		}
	}

	// Pass 3: the checks.
	type holding struct {
		id   string
		cpus topology.Mask
	}
	var holders []holding
	holderOf := func(cpu int) string {
		for _, h := range holders {
			if h.cpus.Has(cpu) {
				return h.id
			}
		}
		return ""
	}
	hold := func(id string, cpus topology.Mask) {
		if cpus.Intersects(v.Held) {
			for _, cpu := range cpus.Intersection(v.Held).Slice() {
				fail("S1: CPU %d held exclusively by both %s and %s", cpu, holderOf(cpu), id)
			}
		}
		holders = append(holders, holding{id, cpus})
		v.Held.UnionInPlace(cpus)
	}
	for _, e := range exitedHeld {
		hold(e.ci.ID, e.cpus)
	}
	type sharedCtr struct {
		ci   mockruntime.ContainerInfo
		cpus topology.Mask
	}
	var shared []sharedCtr
	for _, e := range live {
		ci, cpus := e.ci, e.cpus
		if e.role == Shared && e.n > 0 {
			v.Fallbacks = append(v.Fallbacks, ci.ID)
		}
		if !e.ok {
			continue
		}
		if !c.down {
			if !cpus.IsSubsetOf(c.managed) {
				fail("C1: %s: cpus %s include CPUs numaspread does not manage (%s)", ci.ID, cpus, cpus.Difference(c.managed))
			}
			c.checkMems(ci, cpus, fail)
		}
		if e.role == Shared {
			shared = append(shared, sharedCtr{ci, cpus})
			continue
		}
		if got := cpus.Count(); got != e.n {
			fail("S3: %s: exclusive container holds %d CPUs (%s), wants %d", ci.ID, got, cpus, e.n)
		}
		if c.grandfathered[ci.ID] {
			grandfathered = true
		} else if cpus.Intersects(c.reserved) {
			fail("S3: %s: exclusive cpus %s include reserved CPUs %s", ci.ID, cpus, cpus.Intersection(c.reserved))
		}
		hold(ci.ID, cpus)
		v.Exclusive[ci.ID] = cpus
	}

	v.Pool = c.managed.Difference(v.Held)
	if c.strict {
		v.Pool.SubtractInPlace(c.reserved)
	}
	if !window {
		switch {
		case v.Pool.IsEmpty():
			fail("C4: the shared pool is empty")
		case v.Pool.Count() < c.minShared && !grandfathered:
			fail("C4: the shared pool %s has %d CPUs, below min_shared_cpus = %d", v.Pool, v.Pool.Count(), c.minShared)
		}
	}
	for _, sc := range shared {
		overlap := sc.cpus.Intersection(v.Held)
		if !overlap.IsEmpty() && window && c.racy {
			// Tolerate CPUs of containers made exclusive since the window opened.
			for _, cpu := range overlap.Slice() {
				if !c.settleBase[holderOf(cpu)] {
					overlap.Clear(cpu)
				}
			}
		}
		switch {
		case !overlap.IsEmpty():
			fail("S2: %s: shared container has cpus %s, which include exclusive CPUs %s", sc.ci.ID, sc.ci.Cpus, overlap)
		case !window && !sc.cpus.Equals(v.Pool):
			fail("C3: %s: shared container has cpus %s, the shared pool is %s", sc.ci.ID, sc.ci.Cpus, v.Pool)
		}
	}
	c.last = v
	return v
}

// SameCPUs reports whether two cpulists name the same CPUs (false when
// either does not parse).
func SameCPUs(a, b string) bool {
	ma, err1 := topology.ParseMask(a)
	mb, err2 := topology.ParseMask(b)
	return err1 == nil && err2 == nil && ma.Equals(mb)
}

// mostCommon returns the key with the highest count (at least min; ties
// to the smaller key), or "".
func mostCommon(m map[string]int, min int) string {
	best, n := "", 0
	for k, c := range m {
		if c >= min && (c > n || c == n && k < best) {
			best, n = k, c
		}
	}
	return best
}

// prune forgets exemptions of containers that left the model (fallback
// expectations may be declared before the container exists: ForgetPod
// drops those).
func (c *Checker) prune(present map[string]bool) {
	for _, m := range []map[string]bool{c.unchecked, c.grandfathered, c.exited} {
		for id := range m {
			if !present[id] {
				delete(m, id)
			}
		}
	}
	for id := range c.inferred {
		if !present[id] {
			delete(c.inferred, id)
		}
	}
}

// parse parses a cpulist through a cache: shared containers all carry the
// same long pool string.
func (c *Checker) parse(s string) (topology.Mask, error) {
	if m, ok := c.masks[s]; ok {
		return m, nil
	}
	m, err := topology.ParseMask(s)
	if err != nil {
		return m, err
	}
	if len(c.masks) >= 256 {
		clear(c.masks)
	}
	c.masks[s] = m
	return m, nil
}

// checkMems applies the memory rule: local → the nodes of the container's
// CPUs that have memory (for CPU nodes without memory, the nearest nodes
// with memory: topology owns that distance rule); all → every node with
// memory; none → untouched (empty).
func (c *Checker) checkMems(ci mockruntime.ContainerInfo, cpus topology.Mask, fail func(string, ...any)) {
	var want topology.Mask
	switch c.memory {
	case config.MemoryLocal:
		want = c.topo.LocalMemoryNodes(cpus)
	case config.MemoryAll:
		want = c.topo.MemoryNodes()
	case config.MemoryNone:
		if ci.Mems != "" {
			fail("C2: %s: memory = none, but cpuset.mems is %q", ci.ID, ci.Mems)
		}
		return
	}
	got, err := c.parse(ci.Mems)
	if err != nil || !got.Equals(want) {
		fail("C2: %s: cpuset.mems %q, want %q (memory = %s, cpus %s)", ci.ID, ci.Mems, want, c.memory, cpus)
	}
}

// Check is the mockruntime.CheckFunc: Judge, with the problems and a
// description of the snapshot as the error.
func (c *Checker) Check(s mockruntime.Snapshot) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.judgeLocked(s)
	if len(v.Problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(v.Problems, "; ") + "\n" + c.describeLocked(s, v))
}

// Describe prints a snapshot for failure messages: the step, the pool the
// checker expects, and every container with its role and cpuset.
func (c *Checker) Describe(s mockruntime.Snapshot, v Verdict) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.describeLocked(s, v)
}

// maxDescribed bounds the containers Describe lists.
const maxDescribed = 60

func (c *Checker) describeLocked(s mockruntime.Snapshot, v Verdict) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  snapshot after %v\n", s.Step)
	fmt.Fprintf(&b, "  machine online %s, managed %s, reserved %q (strict %v), min_shared %d, windows: down=%v settling=%v\n",
		c.topo.Online, c.managed, c.reserved.String(), c.strict, c.minShared, c.down, c.settling)
	fmt.Fprintf(&b, "  expected shared pool %s (%d CPUs)\n", v.Pool, v.Pool.Count())
	width := 0
	for _, ci := range s.Containers {
		width = max(width, len(ci.ID))
	}
	ctrs := s.Containers
	if len(ctrs) > maxDescribed {
		// The ones a problem names first, then the newest.
		named := func(id string) bool {
			for _, p := range v.Problems {
				if strings.Contains(p, id+":") || strings.Contains(p, id+" ") || strings.HasSuffix(p, id) {
					return true
				}
			}
			return false
		}
		var pick []mockruntime.ContainerInfo
		for _, ci := range ctrs {
			if named(ci.ID) {
				pick = append(pick, ci)
			}
		}
		for i := len(ctrs) - 1; i >= 0 && len(pick) < maxDescribed; i-- {
			if !named(ctrs[i].ID) {
				pick = append(pick, ctrs[i])
			}
		}
		sort.Slice(pick, func(i, j int) bool { return pick[i].Seq < pick[j].Seq })
		fmt.Fprintf(&b, "  (%d of %d containers)\n", len(pick), len(ctrs))
		ctrs = pick
	}
	for _, ci := range ctrs {
		r := "-"
		if rr, ok := v.Roles[ci.ID]; ok {
			r = rr.String()
		}
		var flags []string
		for name, m := range map[string]map[string]bool{"unchecked": c.unchecked, "grandfathered": c.grandfathered, "exited": c.exited} {
			if m[ci.ID] {
				flags = append(flags, name)
			}
		}
		if _, ok := c.fallback[ci.ID]; ok || c.inferred[ci.ID] != "" {
			flags = append(flags, "fallback")
		}
		sort.Strings(flags)
		state := strings.TrimPrefix(ci.State.String(), "CONTAINER_")
		fmt.Fprintf(&b, "  %-*s %-10s %6dm %-8s %-9s cpus=%-24q mems=%q %s\n",
			width, ci.ID, ci.QoS, ci.Spec.CPURequestMilli, state, r, ci.Cpus, ci.Mems, strings.Join(flags, ","))
	}
	return b.String()
}
