// Package synth generates the sysfs files of synthetic machines, laid out as
// a Linux kernel writes them, so that tests, benchmarks and the demo can run
// topology discovery and the policy on machines nobody has at hand: many
// NUMA nodes, sub-NUMA clustering, CPU-less memory nodes, offline CPUs.
//
// A Spec describes the machine; its methods render it as files (Files, FS,
// WriteDir, WriteTarGz) or discover it straight away (Topology). The presets
// in presets.go name the shapes the project tests against.
package synth

import (
	"fmt"
	"slices"

	"github.com/numaspread/numaspread/topology"
)

// Numbering says how the kernel numbers the CPUs (hardware threads).
type Numbering int

const (
	// SiblingsApart is Linux on Intel and AMD servers: the first thread of
	// every core, then the second thread of every core, so thread t of core
	// c is CPU c + t×cores. Cores are ordered by socket, then node, so a
	// node's CPUs are contiguous within each thread plane.
	SiblingsApart Numbering = iota
	// SiblingsAdjacent numbers a core's threads consecutively: core c holds
	// CPUs c×T … c×T+T−1 (desktops, many laptops and ARM servers).
	SiblingsAdjacent
	// Interleaved is what some firmware does with sub-NUMA clustering: node
	// n holds the CPUs ≡ n (mod nodes), node ids alternate between sockets
	// (node n is on socket n mod sockets), and thread t of a core is CPU
	// c + t×cores.
	Interleaved
)

// String names the scheme like the Go constant.
func (n Numbering) String() string {
	switch n {
	case SiblingsApart:
		return "SiblingsApart"
	case SiblingsAdjacent:
		return "SiblingsAdjacent"
	case Interleaved:
		return "Interleaved"
	}
	return fmt.Sprintf("Numbering(%d)", int(n))
}

// Spec describes a synthetic machine. Zero DiesPerSocket, NodesPerSocket,
// SocketsPerNode, ThreadsPerCore and L3PerNode mean 1, and zero memory sizes
// take the documented default, so a Spec lists only what matters (Sockets
// and CoresPerSocket must be set).
//
// The machine nests socket → NUMA node → L3 cache → core → thread. A socket's
// cores are split evenly, in order, into its nodes and into its dies (the two
// splits are independent); each node's share of a socket is split evenly into
// L3PerNode caches unless L3PerSocket.
type Spec struct {
	// Name is the preset's name; informational.
	Name string

	Sockets       int
	DiesPerSocket int
	// NodesPerSocket splits each socket into NUMA nodes (AMD NPS, Intel SNC).
	NodesPerSocket int
	// SocketsPerNode > 1 makes that many consecutive sockets share one NUMA
	// node (firmware interleaving memory across sockets); it needs
	// NodesPerSocket = 1 and a numbering other than Interleaved.
	SocketsPerNode int
	// CoresPerSocket counts every core of a socket, ECores included.
	CoresPerSocket int
	ThreadsPerCore int
	// ECores makes the last ECores cores of each socket single-threaded
	// (hybrid CPUs: SMT performance cores, then efficiency cores). It
	// needs SiblingsAdjacent numbering, as on real hybrid machines.
	ECores int

	// L3PerNode is the number of L3 caches in each node's share of a socket
	// (AMD: several CCXs per node).
	L3PerNode int
	// L3PerSocket gives each socket one L3 shared by all its nodes (Intel's
	// monolithic uncore with SNC).
	L3PerSocket bool
	// NoCache omits the cache folders (some VMs); NoCacheID omits the cache
	// id files (kernels before 5.x), so discovery must derive the ids.
	NoCache, NoCacheID bool
	// NoDieID omits die_id (kernels before 5.2).
	NoDieID bool

	Numbering Numbering

	// Offline is a cpulist of present CPUs that are offline.
	Offline string
	// ExtraPossible adds possible CPUs beyond the present ones (a VM's
	// empty hotplug slots): listed in cpu/possible and cpu/offline only.
	ExtraPossible int
	// Isolated is the cpulist of cpu/isolated (isolcpus=).
	Isolated string

	// MemoryOnlyNodes appends that many CPU-less nodes (CXL, HBM, PMEM)
	// after the CPU nodes; memory-only node i hangs off socket i mod Sockets.
	MemoryOnlyNodes int
	// NoNUMA omits the node folder, as a kernel without CONFIG_NUMA does.
	NoNUMA bool
	// MemoryPerNode is each CPU node's memory in bytes (default 16 GiB;
	// sysfs reports kB, so keep it a multiple of 1024).
	MemoryPerNode uint64
	// MemoryOnlyPerNode is each memory-only node's memory (default
	// 4×MemoryPerNode).
	MemoryOnlyPerNode uint64
}

// Distances the generator writes, as ACPI SLIT tables commonly have them.
const (
	DistanceLocal        = 10 // a node to itself
	DistanceSameSocket   = 12 // two nodes of one socket
	DistanceRemoteSocket = 21 // nodes on different sockets
	DistanceNearMemory   = 17 // a CPU node to a memory-only node of its socket
	DistanceFarMemory    = 28 // to any other memory-only node, and between them
)

// core is one generated core.
type core struct {
	socket, die, node, l3, coreID int
	cpus                          []int // present threads, ascending thread number
}

// machine is a Spec worked out into cores, nodes and CPU sets.
type machine struct {
	spec                Spec // with defaults applied
	cores               []core
	present             int // CPUs 0..present-1 exist
	possible            int
	cpuNodes            int
	online              topology.Mask
	isolated            topology.Mask
	nodeSockets         [][]int // CPU node id → its sockets
	memSocket           []int   // memory-only node index → its socket
	l3Count, coresTotal int
}

func (s Spec) withDefaults() Spec {
	one := func(v *int) {
		if *v == 0 {
			*v = 1
		}
	}
	one(&s.DiesPerSocket)
	one(&s.NodesPerSocket)
	one(&s.SocketsPerNode)
	one(&s.ThreadsPerCore)
	one(&s.L3PerNode)
	if s.MemoryPerNode == 0 {
		s.MemoryPerNode = 16 << 30
	}
	if s.MemoryOnlyPerNode == 0 {
		s.MemoryOnlyPerNode = 4 * s.MemoryPerNode
	}
	return s
}

// check rejects specs the generator cannot lay out evenly.
func (s Spec) check() error {
	switch {
	case s.Sockets < 1 || s.CoresPerSocket < 1:
		return fmt.Errorf("need at least one socket and one core per socket")
	case s.DiesPerSocket < 1 || s.NodesPerSocket < 1 || s.SocketsPerNode < 1 ||
		s.ThreadsPerCore < 1 || s.L3PerNode < 1 || s.ECores < 0 ||
		s.ExtraPossible < 0 || s.MemoryOnlyNodes < 0:
		return fmt.Errorf("counts must not be negative")
	case s.ThreadsPerCore > 8:
		return fmt.Errorf("%d threads per core is more than any CPU has", s.ThreadsPerCore)
	case s.CoresPerSocket%s.NodesPerSocket != 0:
		return fmt.Errorf("%d cores per socket do not split into %d nodes", s.CoresPerSocket, s.NodesPerSocket)
	case s.CoresPerSocket%s.DiesPerSocket != 0:
		return fmt.Errorf("%d cores per socket do not split into %d dies", s.CoresPerSocket, s.DiesPerSocket)
	case (s.CoresPerSocket/s.NodesPerSocket)%s.L3PerNode != 0:
		return fmt.Errorf("%d cores per node do not split into %d L3 caches", s.CoresPerSocket/s.NodesPerSocket, s.L3PerNode)
	case s.L3PerSocket && s.L3PerNode > 1:
		return fmt.Errorf("L3PerSocket and L3PerNode > 1 contradict each other")
	case s.SocketsPerNode > 1 && (s.NodesPerSocket > 1 || s.Sockets%s.SocketsPerNode != 0 || s.Numbering == Interleaved):
		return fmt.Errorf("SocketsPerNode %d needs one node per socket, a multiple of it in sockets and no Interleaved numbering", s.SocketsPerNode)
	case s.ECores > 0 && (s.ECores > s.CoresPerSocket || s.Numbering != SiblingsAdjacent):
		return fmt.Errorf("ECores needs SiblingsAdjacent numbering and at most CoresPerSocket cores")
	case s.Numbering < SiblingsApart || s.Numbering > Interleaved:
		return fmt.Errorf("unknown numbering %v", s.Numbering)
	case s.NoNUMA && s.MemoryOnlyNodes > 0:
		return fmt.Errorf("memory-only nodes need NUMA")
	case s.Sockets*s.CoresPerSocket*s.ThreadsPerCore+s.ExtraPossible > topology.MaxCPUID:
		return fmt.Errorf("more than %d CPUs", topology.MaxCPUID)
	}
	return nil
}

// build works the Spec out.
func (s Spec) build() (*machine, error) {
	s = s.withDefaults()
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("synthetic machine %q: %w", s.Name, err)
	}
	m := &machine{spec: s, coresTotal: s.Sockets * s.CoresPerSocket}
	perNode := s.CoresPerSocket / s.NodesPerSocket // cores in a node's share of a socket
	perDie := s.CoresPerSocket / s.DiesPerSocket
	perL3 := perNode / s.L3PerNode
	if s.SocketsPerNode > 1 {
		m.cpuNodes = s.Sockets / s.SocketsPerNode
	} else {
		m.cpuNodes = s.Sockets * s.NodesPerSocket
	}
	m.nodeSockets = make([][]int, m.cpuNodes)
	next := 0 // next CPU id, for SiblingsAdjacent
	for sock := 0; sock < s.Sockets; sock++ {
		for j := 0; j < s.CoresPerSocket; j++ {
			k, jn := j/perNode, j%perNode // node within the socket, core within that node
			c := core{socket: sock, die: j / perDie, coreID: j}
			switch {
			case s.Numbering == Interleaved:
				c.node = k*s.Sockets + sock
			case s.SocketsPerNode > 1:
				c.node = sock / s.SocketsPerNode
			default:
				c.node = sock*s.NodesPerSocket + k
			}
			if s.L3PerSocket {
				c.l3 = sock
			} else {
				c.l3 = (sock*s.NodesPerSocket+k)*s.L3PerNode + jn/perL3
			}
			threads := s.ThreadsPerCore
			if j >= s.CoresPerSocket-s.ECores {
				threads = 1
			}
			g := len(m.cores) // global core index
			for t := 0; t < threads; t++ {
				var cpu int
				switch s.Numbering {
				case SiblingsApart:
					cpu = t*m.coresTotal + g
				case SiblingsAdjacent:
					cpu = next
					next++
				case Interleaved:
					cpu = t*m.coresTotal + jn*m.cpuNodes + c.node
				}
				c.cpus = append(c.cpus, cpu)
			}
			m.present += threads
			if !slices.Contains(m.nodeSockets[c.node], sock) {
				m.nodeSockets[c.node] = append(m.nodeSockets[c.node], sock)
			}
			m.cores = append(m.cores, c)
		}
	}
	if s.L3PerSocket {
		m.l3Count = s.Sockets
	} else {
		m.l3Count = s.Sockets * s.NodesPerSocket * s.L3PerNode
	}
	m.possible = m.present + s.ExtraPossible
	for i := 0; i < s.MemoryOnlyNodes; i++ {
		m.memSocket = append(m.memSocket, i%s.Sockets)
	}
	return m, m.cpuSets()
}

// cpuSets works out the online and isolated sets, checking Offline.
func (m *machine) cpuSets() error {
	s := m.spec
	present := topology.NewMaskRange(0, m.present-1)
	off, err := topology.ParseMask(s.Offline)
	if err != nil {
		return fmt.Errorf("synthetic machine %q: Offline: %w", s.Name, err)
	}
	if !off.IsSubsetOf(present) {
		return fmt.Errorf("synthetic machine %q: Offline %s is not within the present CPUs 0-%d", s.Name, off, m.present-1)
	}
	if m.isolated, err = topology.ParseMask(s.Isolated); err != nil {
		return fmt.Errorf("synthetic machine %q: Isolated: %w", s.Name, err)
	}
	m.online = present.Difference(off)
	if m.online.IsEmpty() {
		return fmt.Errorf("synthetic machine %q: every CPU is offline", s.Name)
	}
	return nil
}

// distance returns the SLIT distance between two node ids (CPU nodes first,
// then memory-only nodes).
func (m *machine) distance(a, b int) int {
	if a == b {
		return DistanceLocal
	}
	if a >= m.cpuNodes && b >= m.cpuNodes {
		return DistanceFarMemory
	}
	if a >= m.cpuNodes {
		a, b = b, a
	}
	if b >= m.cpuNodes { // a CPU node, b memory-only
		if slices.Contains(m.nodeSockets[a], m.memSocket[b-m.cpuNodes]) {
			return DistanceNearMemory
		}
		return DistanceFarMemory
	}
	for _, s := range m.nodeSockets[a] {
		if slices.Contains(m.nodeSockets[b], s) {
			return DistanceSameSocket
		}
	}
	return DistanceRemoteSocket
}
