package churn

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/test/invariants"
	"github.com/numaspread/numaspread/test/mockruntime"
	"github.com/numaspread/numaspread/topology"
)

// The model predicts what the plugin must decide, from DESIGN.md's rules
// alone: whether a creation is rejected (bad annotation, not enough CPUs),
// runs exclusive or falls back to the shared pool; and what a Synchronize
// must keep, re-allocate or move to the pool. Which CPUs an allocation
// takes is the policy's business (its own tests pin that down); the model
// only needs to know whether an allocation of n CPUs can succeed, which
// follows from the counts of free CPUs.

// choice is what a pod's numaspread.io/ annotations ask for one container.
type choice struct {
	packed bool
	capK   int  // spread = a number of NUMA nodes: use at most that many; 0: no cap
	optOut bool // exclusive = false
	// badKey is the first annotation (in the order policy, spread,
	// exclusive) whose value is not allowed; creation must fail naming it.
	badKey string
}

const (
	annPolicy    = "numaspread.io/policy"
	annSpread    = "numaspread.io/spread"
	annExclusive = "numaspread.io/exclusive"
)

// choose reads the annotations as DESIGN.md describes them: the
// container-scoped key wins over the pod key.
func choose(ann map[string]string, name string, cfg config.Config) choice {
	ch := choice{packed: cfg.Policy.Mode == config.ModePacked}
	if !cfg.Policy.Annotations {
		return ch
	}
	lookup := func(key string) (string, string, bool) {
		if v, ok := ann[key+".container."+name]; ok {
			return key + ".container." + name, v, true
		}
		v, ok := ann[key]
		return key, v, ok
	}
	if k, v, ok := lookup(annPolicy); ok {
		switch v {
		case "packed":
			ch.packed = true
		case "distributed":
			ch.packed = false
		default:
			ch.badKey = k
			return ch
		}
	}
	if k, v, ok := lookup(annSpread); ok {
		switch v {
		case "all", "minimal":
			ch.capK = 0
		default:
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1<<16 {
				ch.badKey = k
				return ch
			}
			ch.capK = n
		}
	}
	if k, v, ok := lookup(annExclusive); ok {
		switch v {
		case "true":
		case "false":
			ch.optOut = true
		default:
			ch.badKey = k
			return ch
		}
	}
	return ch
}

// machine is the part of the checker's view the model computes with.
type machine struct {
	topo      *topology.Topology
	managed   topology.Mask
	reserved  topology.Mask
	strict    bool
	minShared int
	g         int // allocation unit: threads per core (1 with full_cores = off)
}

func newMachine(topo *topology.Topology, cfg config.Config) (machine, error) {
	res, err := cfg.Resolve(topo)
	if err != nil {
		return machine{}, err
	}
	g := topo.ThreadsPerCore
	if cfg.Policy.FullCores == config.FullCoresOff || g < 1 {
		g = 1
	}
	return machine{topo: topo, managed: res.Allowed, reserved: res.Reserved, strict: cfg.Policy.StrictReserved,
		minShared: cfg.Policy.MinSharedCPUs, g: g}, nil
}

// floor is the smallest shared pool an exclusive allocation may leave:
// min_shared_cpus, and never an empty pool (shared containers must run
// somewhere).
func (m machine) floor() int { return max(1, m.minShared) }

// pool is the shared pool given the exclusively held CPUs.
func (m machine) pool(held topology.Mask) topology.Mask {
	p := m.managed.Difference(held)
	if m.strict {
		p.SubtractInPlace(m.reserved)
	}
	return p
}

// fits reports whether an exclusive allocation of n CPUs with the given
// choices can succeed while held are taken (full_cores = prefer or off).
func (m machine) fits(n int, ch choice, held topology.Mask) bool {
	free := m.managed.Difference(held)
	free.SubtractInPlace(m.reserved)
	if n < 1 || n > free.Count() {
		return false
	}
	// The CPUs come out of the pool: free ⊆ pool.
	if m.pool(held).Count()-n < m.floor() {
		return false
	}
	if ch.packed || ch.capK == 0 {
		return true
	}
	// DESIGN.md: spread capped at k nodes uses the k candidate nodes with
	// the most free units (whole free cores), ties to the lower id.
	type node struct{ id, units, free int }
	var nodes []node
	for i := range m.topo.Nodes {
		nd := &m.topo.Nodes[i]
		if !nd.CPUs.Intersects(m.managed) {
			continue
		}
		v := node{id: nd.ID}
		for _, ci := range nd.Cores {
			core := &m.topo.Cores[ci]
			nfree := 0
			for _, th := range core.Threads {
				if free.Has(th) {
					nfree++
				}
			}
			v.free += nfree
			if m.g == 1 {
				v.units += nfree
			} else if nfree == m.g && len(core.Threads) == m.g {
				v.units++
			}
		}
		nodes = append(nodes, v)
	}
	if ch.capK >= len(nodes) {
		return true
	}
	slices.SortStableFunc(nodes, func(a, b node) int {
		if a.units != b.units {
			return cmp.Compare(b.units, a.units)
		}
		return cmp.Compare(a.id, b.id)
	})
	sum := 0
	for _, v := range nodes[:ch.capK] {
		sum += v.free
	}
	return sum >= n
}

// outcome is the model's prediction for one CreateContainer.
type outcome int

const (
	outShared    outcome = iota // runs in the shared pool (not entitled, or opted out)
	outExclusive                // gets exactly its CPUs
	outFallback                 // entitled, too few CPUs, on_insufficient = shared
	outRejectAnnotation
	outRejectInsufficient
)

func (o outcome) String() string {
	return [...]string{"shared", "exclusive", "fallback", "reject(annotation)", "reject(insufficient)"}[o]
}

// predictCreate says what creating ci must do, given the exclusively held
// CPUs now (the checker's verdict on the runtime's model).
func predictCreate(m machine, cfg config.Config, chk *invariants.Checker, pod *mockruntime.Pod, ci mockruntime.ContainerInfo, held topology.Mask) (outcome, choice) {
	ch := choose(pod.Annotations, ci.Name, cfg)
	if ch.badKey != "" {
		return outRejectAnnotation, ch
	}
	n := chk.Entitlement(ci)
	if n == 0 {
		return outShared, ch
	}
	if m.fits(n, ch, held) {
		return outExclusive, ch
	}
	if cfg.Policy.OnInsufficient == config.InsufficientShared {
		return outFallback, ch
	}
	return outRejectInsufficient, ch
}

// syncPrediction is what a Synchronize must do with the live containers.
type syncPrediction struct {
	keep    map[string]string // entitled containers whose reported CPUs are kept: id → cpus
	pending []pending         // entitled containers to allocate afresh, in order
}

type pending struct {
	id string
	n  int
	ch choice
	// planned is the predicted outcome (outExclusive or outFallback);
	// certain is false when it depends on which CPUs an earlier
	// allocation of the same Synchronize takes (a capped spread).
	planned outcome
	certain bool
	why     string // why its reported CPUs were not kept
}

// predictSync applies DESIGN.md "Behaviour under trouble" to the runtime's
// model just before a Synchronize: the runtime is the source of truth;
// oldest first, an entitled container keeps the CPUs it reports when they
// are exactly its count, managed, not reserved, not claimed by an older
// container, not the cpuset a shared container reports (then it ran in the
// pool), and leave the shared pool its floor; the others are allocated
// afresh afterwards, in the same order, or stay in the pool when that
// cannot be done (a running container is never failed). A bad annotation
// on a running container means the defaults.
func predictSync(m machine, cfg config.Config, chk *invariants.Checker, pods map[string]*mockruntime.Pod, s mockruntime.Snapshot) syncPrediction {
	pr := syncPrediction{keep: map[string]string{}}
	var held topology.Mask
	// What containers without exclusive CPUs report is the old pool: an
	// entitled container that reports the same ran in it.
	poolSets := map[string]bool{}
	for _, ci := range s.Live() {
		if chk.Entitlement(ci) == 0 {
			if m, err := topology.ParseMask(ci.Cpus); err == nil && !m.IsEmpty() {
				poolSets[m.String()] = true
			}
		}
	}
	for _, ci := range s.Live() { // creation order = CreatedAt order
		n := chk.Entitlement(ci)
		if n == 0 {
			continue
		}
		var ann map[string]string
		if p := pods[ci.PodID]; p != nil {
			ann = p.Annotations
		}
		ch := choose(ann, ci.Name, cfg)
		if ch.badKey != "" {
			ch = choice{packed: cfg.Policy.Mode == config.ModePacked}
		}
		reported, err := topology.ParseMask(ci.Cpus)
		why := ""
		switch {
		case err != nil:
			why = "unparsable"
		case reported.Count() != n:
			why = fmt.Sprintf("%d CPUs", reported.Count())
		case poolSets[reported.String()]:
			why = "the pool"
		case !reported.IsSubsetOf(m.managed):
			why = "unmanaged"
		case reported.Intersects(m.reserved):
			why = "reserved"
		case reported.Intersects(held):
			why = "claimed by an older container"
		case m.pool(held.Union(reported)).Count() < m.floor():
			why = "pool floor"
		}
		if why == "" {
			held.UnionInPlace(reported)
			pr.keep[ci.ID] = ci.Cpus
			continue
		}
		pr.pending = append(pr.pending, pending{id: ci.ID, n: n, ch: ch, why: fmt.Sprintf("reported %q: %s", ci.Cpus, why)})
	}
	// Plan the allocations: for uncapped requests only the count of held
	// CPUs matters, so hold the lowest free ones.
	allocated, certain := false, true
	for i := range pr.pending {
		p := &pr.pending[i]
		// A capped spread after another allocation depends on which CPUs
		// that one took; everything after an uncertain outcome depends on
		// how many.
		certain = certain && (!allocated || p.ch.packed || p.ch.capK == 0)
		p.certain = certain
		if !m.fits(p.n, p.ch, held) {
			p.planned = outFallback
			continue
		}
		p.planned, allocated = outExclusive, true
		free := m.managed.Difference(held)
		free.SubtractInPlace(m.reserved)
		k := 0
		free.ForEach(func(cpu int) bool {
			held.Set(cpu)
			k++
			return k < p.n
		})
	}
	return pr
}

// verify checks the state right after the Synchronize against the
// prediction: kept containers still have their CPUs; each pending one, in
// order, got exclusive CPUs exactly when they could be had given what the
// kept ones and the pending ones before it hold (which CPUs those took is
// read from the state, so the check is exact for capped spreads too).
func (pr syncPrediction) verify(m machine, v invariants.Verdict, s mockruntime.Snapshot) []string {
	var problems []string
	var held topology.Mask
	for id, want := range pr.keep {
		ci, ok := s.Container(id)
		if !ok || !ci.Live() {
			continue
		}
		if !invariants.SameCPUs(ci.Cpus, want) {
			problems = append(problems, fmt.Sprintf("%s reported valid CPUs %s at Synchronize, which were not kept (now %q)", id, want, ci.Cpus))
		}
		if cpus, ok := v.Exclusive[id]; ok {
			held.UnionInPlace(cpus)
		}
	}
	for _, p := range pr.pending {
		fits := m.fits(p.n, p.ch, held)
		cpus, exclusive := v.Exclusive[p.id]
		switch {
		case exclusive:
			if !fits {
				problems = append(problems, fmt.Sprintf("%s got %d exclusive CPUs (%s) at Synchronize that were not free (its %s)", p.id, p.n, cpus, p.why))
			}
			held.UnionInPlace(cpus)
		case fits:
			problems = append(problems, fmt.Sprintf("%s (%d CPUs) left in the shared pool at Synchronize although its CPUs were free (its %s)", p.id, p.n, p.why))
		}
	}
	return problems
}
