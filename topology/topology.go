// Package topology is the machine model: which CPUs exist, how they group into
// cores, L3 (uncore) caches, dies, sockets and NUMA nodes, how much memory each
// node has and how far nodes are from each other. It is read once from sysfs
// (Discover) and then answers the policy's questions from precomputed indexes,
// without rescanning the machine.
//
// The package imports nothing else of the project.
package topology

import (
	"fmt"
	"slices"
	"sort"
)

// CPUInfo is what discovery learns about one online CPU.
type CPUInfo struct {
	ID     int
	CoreID int // core_id as the kernel reports it (unique only within a socket and die)
	Socket int // physical_package_id
	Die    int // die_id; 0 when the kernel does not report dies
	Node   int // NUMA node id
	// L3 is the id of the CPU's last-level (L3) cache, unique per machine, or
	// -1 when the kernel does not report one.
	L3 int
	// Siblings are the thread siblings of the CPU (its own id included), as
	// thread_siblings_list or core_cpus_list says; empty means "only itself".
	Siblings Mask
}

// NodeInfo is what discovery learns about one NUMA node.
type NodeInfo struct {
	ID          int
	MemoryBytes uint64
	// MemoryKnown says MemoryBytes was read (the node's meminfo has a
	// MemTotal line), so that 0 means a node without memory. When it is
	// false, a node with CPUs and MemoryBytes 0 counts as having memory
	// (a kernel without NUMA support has no node meminfo).
	MemoryKnown bool
	// Distances to every node, indexed like the node list in sysfs
	// (ascending node id); nil when unknown.
	Distances []int
}

// Machine is the raw input of New: everything discovery read.
type Machine struct {
	CPUs     []CPUInfo // online CPUs
	Offline  Mask      // CPUs that exist (possible/present) but are offline
	Isolated Mask      // isolcpus= CPUs
	Nodes    []NodeInfo
}

// Core is one physical core: the hardware threads that share it.
type Core struct {
	Index   int   // position in Topology.Cores
	ID      int   // kernel core_id
	Socket  int   // physical package
	Die     int   // die within the package
	Node    int   // NUMA node id (of its first thread)
	L3      int   // index into Topology.Caches, or -1
	Threads []int // online thread CPU ids, ascending
	Mask    Mask  // the same threads as a Mask
}

// Cache is one L3 (uncore) cache group as seen from one NUMA node: the cores
// of that node that share it. A cache shared by two nodes appears once per node.
type Cache struct {
	Index int   // position in Topology.Caches
	ID    int   // kernel cache id (-1 when unknown)
	Node  int   // NUMA node id
	Cores []int // indexes into Topology.Cores, ascending by first thread
	Mask  Mask
}

// Node is one NUMA node.
type Node struct {
	ID          int
	CPUs        Mask  // online CPUs; empty for memory-only (CXL/HBM/PMEM) nodes
	Cores       []int // indexes into Topology.Cores, ascending by first thread
	Caches      []int // indexes into Topology.Caches, ascending by first CPU
	Sockets     []int // physical packages with CPUs on this node, ascending
	MemoryBytes uint64
	MemoryKnown bool        // see NodeInfo.MemoryKnown
	Distances   map[int]int // distance to each node id; nil when unknown
}

// HasCPUs reports whether the node has online CPUs (is a candidate for CPUs).
func (n *Node) HasCPUs() bool { return !n.CPUs.IsEmpty() }

// HasMemory reports whether the node has memory, that is whether the kernel
// accepts it in cpuset.mems: MemTotal > 0, or, when its meminfo is unknown,
// whether it has CPUs.
func (n *Node) HasMemory() bool {
	return n.MemoryBytes > 0 || (!n.MemoryKnown && n.HasCPUs())
}

// Topology is the machine model. Build it with New (or Discover); do not
// modify it afterwards: the policy shares it between allocations.
type Topology struct {
	Online   Mask
	Offline  Mask
	Isolated Mask
	Cores    []Core
	Caches   []Cache
	Nodes    []Node // ascending by ID
	// ThreadsPerCore is the most online threads any core has (1 without SMT).
	ThreadsPerCore int
	// MaxCPU is one more than the highest CPU id known (online or offline).
	MaxCPU int

	coreOf    []int // CPU id → index into Cores, -1 when not online
	nodeOf    []int // CPU id → NUMA node id, -1 when not online
	nodeIndex map[int]int
	memNodes  Mask // ids of the nodes with memory (Node.HasMemory)
}

// CoreOf returns the core that holds cpu, or nil when cpu is not online.
func (t *Topology) CoreOf(cpu int) *Core {
	if cpu < 0 || cpu >= len(t.coreOf) || t.coreOf[cpu] < 0 {
		return nil
	}
	return &t.Cores[t.coreOf[cpu]]
}

// NodeOf returns the NUMA node id of cpu, or -1 when cpu is not online.
func (t *Topology) NodeOf(cpu int) int {
	if cpu < 0 || cpu >= len(t.nodeOf) {
		return -1
	}
	return t.nodeOf[cpu]
}

// Node returns the node with the given id, or nil.
func (t *Topology) Node(id int) *Node {
	i, ok := t.nodeIndex[id]
	if !ok {
		return nil
	}
	return &t.Nodes[i]
}

// NodesOf returns the ids of the NUMA nodes that hold CPUs of m, as a Mask of node ids.
func (t *Topology) NodesOf(m Mask) Mask {
	var nodes Mask
	m.ForEach(func(c int) bool {
		if n := t.NodeOf(c); n >= 0 {
			nodes.Set(n)
		}
		return true
	})
	return nodes
}

// MemoryNodes returns the ids of the nodes that have memory (Node.HasMemory),
// as a Mask.
func (t *Topology) MemoryNodes() Mask { return t.memNodes.Clone() }

// LocalMemoryNodes returns the memory nodes for a container that runs on
// cpus, as a Mask of node ids: the nodes of cpus that have memory; when none
// of them has, each one's nearest node with memory by the distance table
// (ties to the lower id), or every node with memory when a node's distances
// are unknown. With no CPUs, or no node with memory at all, it returns the
// nodes of cpus.
func (t *Topology) LocalMemoryNodes(cpus Mask) Mask {
	nodes := t.NodesOf(cpus)
	if nodes.IsSubsetOf(t.memNodes) {
		return nodes // the usual case: every node of the CPUs has memory
	}
	if nodes.Intersects(t.memNodes) {
		nodes.IntersectInPlace(t.memNodes)
		return nodes
	}
	if t.memNodes.IsEmpty() {
		return nodes
	}
	var out Mask
	nodes.ForEach(func(id int) bool {
		if near, ok := t.nearestMemoryNode(id); ok {
			out.Set(near)
		} else {
			out.UnionInPlace(t.memNodes)
		}
		return true
	})
	return out
}

// nearestMemoryNode returns the node with memory nearest to node id by the
// distance table, ties to the lower id; false when the distances are unknown.
func (t *Topology) nearestMemoryNode(id int) (int, bool) {
	n := t.Node(id)
	if n == nil || n.Distances == nil {
		return 0, false
	}
	best, bestDist := -1, 0
	t.memNodes.ForEach(func(m int) bool { // ascending ids: ties keep the lower
		if d, ok := n.Distances[m]; ok && (best < 0 || d < bestDist) {
			best, bestDist = m, d
		}
		return true
	})
	return best, best >= 0
}

// Sockets returns the physical package ids, ascending.
func (t *Topology) Sockets() []int {
	seen := map[int]bool{}
	var out []int
	for i := range t.Cores {
		if s := t.Cores[i].Socket; !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Ints(out)
	return out
}

// New builds the model and its indexes from what discovery read. It checks
// the data for consistency (duplicate CPUs, CPUs on unknown nodes, siblings
// that disagree, thread siblings on different NUMA nodes) so that the policy
// can trust it.
func New(m Machine) (*Topology, error) {
	t := &Topology{Offline: m.Offline.Clone(), Isolated: m.Isolated.Clone(), nodeIndex: map[int]int{}}
	cpus := append([]CPUInfo(nil), m.CPUs...)
	sort.Slice(cpus, func(i, j int) bool { return cpus[i].ID < cpus[j].ID })
	for i, c := range cpus {
		if c.ID < 0 || c.ID >= MaxCPUID {
			return nil, fmt.Errorf("CPU id %d is out of range", c.ID)
		}
		if i > 0 && cpus[i-1].ID == c.ID {
			return nil, fmt.Errorf("CPU %d is listed twice", c.ID)
		}
		t.Online.Set(c.ID)
	}
	if len(cpus) == 0 {
		return nil, fmt.Errorf("no online CPUs")
	}
	t.Offline.SubtractInPlace(t.Online)
	t.MaxCPU = max(cpus[len(cpus)-1].ID+1, t.Offline.Last()+1)

	nodes := append([]NodeInfo(nil), m.Nodes...)
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	for i, n := range nodes {
		if _, dup := t.nodeIndex[n.ID]; dup {
			return nil, fmt.Errorf("NUMA node %d is listed twice", n.ID)
		}
		t.nodeIndex[n.ID] = i
		node := Node{ID: n.ID, MemoryBytes: n.MemoryBytes, MemoryKnown: n.MemoryKnown}
		if len(n.Distances) == len(nodes) {
			node.Distances = make(map[int]int, len(nodes))
			for j, d := range n.Distances {
				node.Distances[nodes[j].ID] = d
			}
		}
		t.Nodes = append(t.Nodes, node)
	}

	t.coreOf = make([]int, t.MaxCPU)
	t.nodeOf = make([]int, t.MaxCPU)
	for i := range t.coreOf {
		t.coreOf[i], t.nodeOf[i] = -1, -1
	}
	for _, c := range cpus {
		ni, ok := t.nodeIndex[c.Node]
		if !ok {
			return nil, fmt.Errorf("CPU %d is on NUMA node %d, which does not exist", c.ID, c.Node)
		}
		t.nodeOf[c.ID] = c.Node
		t.Nodes[ni].CPUs.Set(c.ID)
	}
	for i := range t.Nodes {
		if t.Nodes[i].HasMemory() {
			t.memNodes.Set(t.Nodes[i].ID)
		}
	}
	if err := t.buildCores(cpus); err != nil {
		return nil, err
	}
	t.buildCaches(cpus)
	return t, nil
}

// siblingNodesError says that thread siblings are on different NUMA nodes:
// the policy hands out whole cores per node, so a core must live on one
// node. DiscoverFS adds the sysfs folder of CPU.
type siblingNodesError struct {
	CPU, Node, Sibling, SiblingNode int
}

func (e *siblingNodesError) Error() string {
	return fmt.Sprintf("CPU %d (node %d) and its thread sibling CPU %d (node %d) are on different NUMA nodes",
		e.CPU, e.Node, e.Sibling, e.SiblingNode)
}

// buildCores groups the online CPUs into cores by their sibling lists.
// First, every CPU's online siblings must be on its node (those of CPUs that
// an earlier sibling list places too), so that each core lives on one node.
func (t *Topology) buildCores(cpus []CPUInfo) error {
	for _, c := range cpus {
		var err error
		c.Siblings.ForEach(func(s int) bool {
			if t.Online.Has(s) && t.nodeOf[s] != c.Node {
				err = &siblingNodesError{CPU: c.ID, Node: c.Node, Sibling: s, SiblingNode: t.nodeOf[s]}
				return false
			}
			return true
		})
		if err != nil {
			return err
		}
	}
	for _, c := range cpus {
		if t.coreOf[c.ID] >= 0 {
			continue
		}
		threads := c.Siblings.Intersection(t.Online)
		threads.Set(c.ID)
		core := Core{Index: len(t.Cores), ID: c.CoreID, Socket: c.Socket, Die: c.Die, Node: c.Node, L3: -1, Mask: threads}
		var err error
		threads.ForEach(func(s int) bool {
			if t.coreOf[s] >= 0 {
				err = fmt.Errorf("CPU %d is a thread sibling of CPU %d and of CPU %d, which are not siblings of each other",
					s, c.ID, t.Cores[t.coreOf[s]].Threads[0])
				return false
			}
			t.coreOf[s] = core.Index
			core.Threads = append(core.Threads, s)
			return true
		})
		if err != nil {
			return err
		}
		t.ThreadsPerCore = max(t.ThreadsPerCore, len(core.Threads))
		t.Cores = append(t.Cores, core)
		ni := t.nodeIndex[c.Node]
		t.Nodes[ni].Cores = append(t.Nodes[ni].Cores, core.Index)
		if !slices.Contains(t.Nodes[ni].Sockets, c.Socket) {
			t.Nodes[ni].Sockets = append(t.Nodes[ni].Sockets, c.Socket)
			sort.Ints(t.Nodes[ni].Sockets)
		}
	}
	return nil
}

// buildCaches groups each node's cores by the L3 cache of their first thread.
// Cores without a known L3 share one pseudo-cache per node, so that the
// policy can treat "fewest caches" uniformly.
func (t *Topology) buildCaches(cpus []CPUInfo) {
	l3 := make(map[int]int, len(cpus))
	for _, c := range cpus {
		l3[c.ID] = c.L3
	}
	for ni := range t.Nodes {
		node := &t.Nodes[ni]
		local := map[int]int{} // cache id → index into t.Caches
		for _, ci := range node.Cores {
			core := &t.Cores[ci]
			id := l3[core.Threads[0]]
			idx, ok := local[id]
			if !ok {
				idx = len(t.Caches)
				local[id] = idx
				t.Caches = append(t.Caches, Cache{Index: idx, ID: id, Node: node.ID})
				node.Caches = append(node.Caches, idx)
			}
			core.L3 = idx
			t.Caches[idx].Cores = append(t.Caches[idx].Cores, ci)
			t.Caches[idx].Mask.UnionInPlace(core.Mask)
		}
	}
}
