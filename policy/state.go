package policy

import (
	"fmt"
	"sort"

	"github.com/numaspread/numaspread/topology"
)

// Config is the node-wide setup of a State.
type Config struct {
	// Managed are the CPUs numaspread hands out (exclusively or as the shared
	// pool). Empty means all online CPUs that are not isolated.
	Managed topology.Mask
	// Reserved CPUs are never handed out exclusively.
	Reserved topology.Mask
	// StrictReserved keeps the reserved CPUs out of the shared pool too.
	StrictReserved bool
	// MinSharedCPUs is the smallest shared pool an exclusive allocation may leave.
	MinSharedCPUs int
}

// State is who holds which CPUs exclusively. It is not safe for concurrent
// use: the plugin serialises calls (NRI serialises requests anyway).
type State struct {
	topo     *topology.Topology
	managed  topology.Mask
	reserved topology.Mask
	strict   bool
	minShare int

	held   topology.Mask
	owners map[string]topology.Mask

	// Scratch space reused across allocations: the per-node views and the
	// per-cache counts. (The request path still builds machine-sized masks
	// per call: the free set, the shared pool, the chosen CPUs and
	// Allocate's copy of them.)
	views        []nodeView
	cacheScratch []cacheFree
}

// Request is one exclusive allocation.
type Request struct {
	CPUs    int
	Options Options
}

// NodeShare is how many CPUs an allocation took from one NUMA node.
type NodeShare struct {
	Node int
	CPUs int
}

// Allocation is the policy's answer.
type Allocation struct {
	CPUs topology.Mask
	// Mems are NUMA node ids (as a Mask); empty with Memory = none.
	Mems    topology.Mask
	PerNode []NodeShare // ascending by node id, nodes with CPUs only
}

// NewState returns an empty state for the machine.
func NewState(t *topology.Topology, cfg Config) (*State, error) {
	managed := cfg.Managed.Clone()
	if managed.IsEmpty() {
		managed = t.Online.Difference(t.Isolated)
	}
	if !managed.IsSubsetOf(t.Online) {
		return nil, fmt.Errorf("managed CPUs %s are not online (online: %s)", managed.Difference(t.Online), t.Online)
	}
	if managed.IsEmpty() {
		return nil, fmt.Errorf("no CPUs to manage (online %s, isolated %s)", t.Online, t.Isolated)
	}
	if !cfg.Reserved.IsSubsetOf(managed) {
		return nil, fmt.Errorf("reserved CPUs %s are not managed CPUs (managed: %s)", cfg.Reserved.Difference(managed), managed)
	}
	if cfg.MinSharedCPUs < 0 {
		return nil, fmt.Errorf("min_shared_cpus %d is negative", cfg.MinSharedCPUs)
	}
	return &State{
		topo:     t,
		managed:  managed,
		reserved: cfg.Reserved.Clone(),
		strict:   cfg.StrictReserved,
		minShare: cfg.MinSharedCPUs,
		held:     topology.MaskWithCapacity(t.MaxCPU),
		owners:   map[string]topology.Mask{},
		views:    make([]nodeView, 0, len(t.Nodes)),
	}, nil
}

// Topology returns the machine the state allocates on.
func (s *State) Topology() *topology.Topology { return s.topo }

// Managed returns the CPUs the state hands out.
func (s *State) Managed() topology.Mask { return s.managed.Clone() }

// Reserved returns the reserved CPUs.
func (s *State) Reserved() topology.Mask { return s.reserved.Clone() }

// Held returns every exclusively held CPU.
func (s *State) Held() topology.Mask { return s.held.Clone() }

// Free returns the CPUs an exclusive allocation may take now.
func (s *State) Free() topology.Mask {
	f := s.managed.Difference(s.held)
	f.SubtractInPlace(s.reserved)
	return f
}

// SharedPool returns the CPUs of containers without exclusive CPUs:
// managed − exclusive (− reserved with strict_reserved).
func (s *State) SharedPool() topology.Mask {
	p := s.managed.Difference(s.held)
	if s.strict {
		p.SubtractInPlace(s.reserved)
	}
	return p
}

// Owned returns the CPUs owner holds exclusively and whether it holds any.
func (s *State) Owned(owner string) (topology.Mask, bool) {
	m, ok := s.owners[owner]
	return m.Clone(), ok
}

// Owners returns the owners with exclusive CPUs, sorted.
func (s *State) Owners() []string {
	out := make([]string, 0, len(s.owners))
	for o := range s.owners {
		out = append(out, o)
	}
	sort.Strings(out)
	return out
}

// Allocate chooses CPUs for owner and records them as held. An owner that
// already holds CPUs must release them first.
func (s *State) Allocate(owner string, req Request) (Allocation, error) {
	if _, ok := s.owners[owner]; ok {
		return Allocation{}, fmt.Errorf("%s already holds CPUs %s", owner, s.owners[owner])
	}
	a, err := s.Plan(req)
	if err != nil {
		return Allocation{}, err
	}
	s.owners[owner] = a.CPUs.Clone()
	s.held.UnionInPlace(a.CPUs)
	return a, nil
}

// Plan chooses CPUs for req without recording them.
func (s *State) Plan(req Request) (Allocation, error) {
	if err := req.Options.Validate(); err != nil {
		return Allocation{}, err
	}
	if req.CPUs < 1 {
		return Allocation{}, fmt.Errorf("request of %d CPUs: must be at least 1", req.CPUs)
	}
	free := s.Free()
	var err error
	if req.Options.Mode == Packed {
		err = s.packed(free, req)
	} else {
		err = s.distributed(free, req)
	}
	if err != nil {
		return Allocation{}, err
	}
	// The strategy's errors come first. The CPUs about to be picked are
	// req.CPUs free CPUs, and the free CPUs are all in the shared pool.
	if left := s.SharedPool().Count() - req.CPUs; left < s.minShare {
		return Allocation{}, s.insufficient(free, req.CPUs,
			"it would leave %d CPUs in the shared pool, below min_shared_cpus = %d", left, s.minShare)
	}
	cpus, err := s.pickInNodes(free)
	if err != nil {
		return Allocation{}, err
	}
	return s.allocation(cpus, req.Options.Memory), nil
}

// Release returns owner's CPUs to the free set. It is idempotent: releasing
// an owner that holds nothing is a no-op that returns an empty mask.
func (s *State) Release(owner string) topology.Mask {
	m, ok := s.owners[owner]
	if !ok {
		return topology.Mask{}
	}
	delete(s.owners, owner)
	s.held.SubtractInPlace(m)
	return m
}

// Claim records cpus as held by owner without choosing them, as when state
// is rebuilt from the cpusets a runtime reports. It fails, changing nothing,
// when a CPU is not managed, is reserved, or is held by another owner.
func (s *State) Claim(owner string, cpus topology.Mask) error {
	if _, ok := s.owners[owner]; ok {
		return fmt.Errorf("%s already holds CPUs %s", owner, s.owners[owner])
	}
	if cpus.IsEmpty() {
		return fmt.Errorf("%s: empty claim", owner)
	}
	if bad := cpus.Difference(s.managed); !bad.IsEmpty() {
		return fmt.Errorf("%s claims CPUs %s that are not managed (managed: %s)", owner, bad, s.managed)
	}
	if bad := cpus.Intersection(s.reserved); !bad.IsEmpty() {
		return fmt.Errorf("%s claims reserved CPUs %s", owner, bad)
	}
	if bad := cpus.Intersection(s.held); !bad.IsEmpty() {
		return &ConflictError{Owner: owner, CPUs: bad, Holders: s.holdersOf(bad)}
	}
	s.owners[owner] = cpus.Clone()
	s.held.UnionInPlace(cpus)
	return nil
}

// Adopt records cpus as held by owner even where the current configuration
// would not hand them out (reserved or unmanaged but online CPUs): a running
// container keeps its CPUs across a configuration change until it stops.
// It fails, changing nothing, when a CPU is offline or held by another owner.
func (s *State) Adopt(owner string, cpus topology.Mask) error {
	if _, ok := s.owners[owner]; ok {
		return fmt.Errorf("%s already holds CPUs %s", owner, s.owners[owner])
	}
	if bad := cpus.Difference(s.topo.Online); !bad.IsEmpty() {
		return fmt.Errorf("%s claims CPUs %s that are not online", owner, bad)
	}
	if bad := cpus.Intersection(s.held); !bad.IsEmpty() {
		return &ConflictError{Owner: owner, CPUs: bad, Holders: s.holdersOf(bad)}
	}
	s.owners[owner] = cpus.Clone()
	s.held.UnionInPlace(cpus)
	return nil
}

// Mems returns the memory nodes for a set of CPUs (an allocation, or the
// shared pool) under the memory setting: with local, the nodes of the CPUs
// that have memory, or the nearest nodes with memory when none of them has
// (topology.LocalMemoryNodes); with all, every node with memory. The kernel
// rejects a node without memory in cpuset.mems.
func (s *State) Mems(cpus topology.Mask, mem Memory) topology.Mask {
	switch mem {
	case MemoryNone:
		return topology.Mask{}
	case MemoryAll:
		return s.topo.MemoryNodes()
	}
	return s.topo.LocalMemoryNodes(cpus)
}

func (s *State) allocation(cpus topology.Mask, mem Memory) Allocation {
	a := Allocation{CPUs: cpus, Mems: s.Mems(cpus, mem)}
	for i := range s.topo.Nodes {
		n := &s.topo.Nodes[i]
		if c := cpus.CountAnd(n.CPUs); c > 0 {
			a.PerNode = append(a.PerNode, NodeShare{Node: n.ID, CPUs: c})
		}
	}
	return a
}

func (s *State) holdersOf(cpus topology.Mask) []string {
	var out []string
	for _, o := range s.Owners() {
		if s.owners[o].Intersects(cpus) {
			out = append(out, o)
		}
	}
	return out
}

func (s *State) freeByNode(free topology.Mask) []NodeShare {
	var out []NodeShare
	for i := range s.topo.Nodes {
		n := &s.topo.Nodes[i]
		if n.HasCPUs() {
			out = append(out, NodeShare{Node: n.ID, CPUs: free.CountAnd(n.CPUs)})
		}
	}
	return out
}
