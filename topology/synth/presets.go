package synth

import "strings"

// Desktop is a 1-socket, 1-node desktop: 8 cores × 2 threads = 16 CPUs,
// siblings adjacent (0-1, 2-3, …), one L3.
func Desktop() Spec {
	return Spec{Name: "Desktop", Sockets: 1, CoresPerSocket: 8, ThreadsPerCore: 2, Numbering: SiblingsAdjacent}
}

// Hybrid is a hybrid laptop CPU like the real desktop-16cpu capture (Intel
// Alder Lake): 4 performance cores × 2 threads (CPUs 0-7, siblings
// adjacent) and 8 single-threaded efficiency cores (CPUs 8-15) = 12 cores,
// 16 CPUs, 1 node, one L3.
func Hybrid() Spec {
	return Spec{Name: "Hybrid", Sockets: 1, CoresPerSocket: 12, ECores: 8, ThreadsPerCore: 2, Numbering: SiblingsAdjacent}
}

// TwoSocket is a classic 2-socket server, one node per socket: 2 × 16 cores ×
// 2 threads = 64 CPUs; node n holds CPUs 16n…16n+15 and their siblings +32.
func TwoSocket() Spec {
	return Spec{Name: "TwoSocket", Sockets: 2, CoresPerSocket: 16, ThreadsPerCore: 2}
}

// TwoSocketTwoNode is 2 sockets × 2 nodes × 16 cores × 2 threads = 128 CPUs,
// node CPUs contiguous per thread plane (node n: 16n…16n+15 and +64), one
// L3 per node. The benchmarks' machine.
func TwoSocketTwoNode() Spec {
	return Spec{Name: "TwoSocketTwoNode", Sockets: 2, NodesPerSocket: 2, CoresPerSocket: 32, ThreadsPerCore: 2}
}

// SNC is an Intel server with sub-NUMA clustering numbered like the real
// 112-CPU capture: 2 sockets × 2 nodes × 8 cores × 2 threads = 64 CPUs, node
// n holds CPUs ≡ n (mod 4), nodes 0 and 2 on socket 0, siblings c and c+32,
// one L3 per socket spanning both its nodes, CPUs 4-7 and 36-39 isolated.
func SNC() Spec {
	return Spec{Name: "SNC", Sockets: 2, NodesPerSocket: 2, CoresPerSocket: 16, ThreadsPerCore: 2,
		Numbering: Interleaved, L3PerSocket: true, Isolated: "4-7,36-39"}
}

// SharedNode is 2 sockets that firmware presents as one NUMA node (memory
// interleaved across sockets): 2 × 8 cores × 2 threads = 32 CPUs, node 0
// holds them all, one L3 per socket (two caches in the node).
func SharedNode() Spec {
	return Spec{Name: "SharedNode", Sockets: 2, SocketsPerNode: 2, CoresPerSocket: 8, ThreadsPerCore: 2}
}

// AMDLike is an AMD EPYC in NPS4 mode: 1 socket × 4 nodes × 8 cores × 2
// threads = 64 CPUs, siblings c and c+32, 2 L3 caches (CCXs) of 4 cores per
// node.
func AMDLike() Spec {
	return Spec{Name: "AMDLike", Sockets: 1, NodesPerSocket: 4, CoresPerSocket: 32, ThreadsPerCore: 2, L3PerNode: 2}
}

// EightNode512 is 2 sockets × 4 nodes × 32 cores × 2 threads = 512 CPUs,
// siblings c and c+256, 2 L3 caches per node.
func EightNode512() Spec {
	return Spec{Name: "EightNode512", Sockets: 2, NodesPerSocket: 4, CoresPerSocket: 128, ThreadsPerCore: 2, L3PerNode: 2}
}

// ThirtyTwoNode4096 is the largest machine the project tests: 4 sockets × 8
// nodes × 64 cores × 2 threads = 4096 present CPUs, siblings c and c+2048,
// 4 L3 caches per node. CPUs 4032-4095 are offline: the second threads of
// node 31's 64 cores, which therefore have one online thread each.
func ThirtyTwoNode4096() Spec {
	return Spec{Name: "ThirtyTwoNode4096", Sockets: 4, NodesPerSocket: 8, CoresPerSocket: 512, ThreadsPerCore: 2,
		L3PerNode: 4, Offline: "4032-4095"}
}

// MemoryOnly is a 2-socket server (one node each, 8 cores × 2 threads, 32
// CPUs) with 2 CPU-less CXL memory nodes: node 2 near socket 0, node 3 near
// socket 1.
func MemoryOnly() Spec {
	return Spec{Name: "MemoryOnly", Sockets: 2, CoresPerSocket: 8, ThreadsPerCore: 2, MemoryOnlyNodes: 2}
}

// NoNUMA is a small VM whose kernel has no NUMA support (no node folder):
// 4 cores × 2 threads = 8 CPUs, siblings adjacent, and 8 more possible CPUs
// (8-15) in empty hotplug slots.
func NoNUMA() Spec {
	return Spec{Name: "NoNUMA", Sockets: 1, CoresPerSocket: 4, ThreadsPerCore: 2, Numbering: SiblingsAdjacent,
		NoNUMA: true, ExtraPossible: 8}
}

// NoSMT is 2 sockets × 2 nodes × 8 cores with SMT off: 32 CPUs, 8 per node.
func NoSMT() Spec {
	return Spec{Name: "NoSMT", Sockets: 2, NodesPerSocket: 2, CoresPerSocket: 16, ThreadsPerCore: 1}
}

// SmallTwoNode is the design's seed example: 2 nodes (one per socket) × 4
// cores × 2 threads = 16 CPUs; node 0 holds 0-3,8-11, node 1 holds
// 4-7,12-15; siblings c and c+8.
func SmallTwoNode() Spec {
	return Spec{Name: "SmallTwoNode", Sockets: 2, CoresPerSocket: 4, ThreadsPerCore: 2}
}

// FourNode is the demo's machine: 2 sockets × 2 nodes × 4 cores × 2 threads
// = 32 CPUs; node n holds 4n…4n+3 and their siblings +16.
func FourNode() Spec {
	return Spec{Name: "FourNode", Sockets: 2, NodesPerSocket: 2, CoresPerSocket: 8, ThreadsPerCore: 2}
}

// Presets returns every preset, smallest machines first.
func Presets() []Spec {
	return []Spec{
		NoNUMA(), Desktop(), Hybrid(), SmallTwoNode(), FourNode(), SharedNode(), MemoryOnly(), NoSMT(),
		TwoSocket(), SNC(), AMDLike(), TwoSocketTwoNode(), EightNode512(), ThirtyTwoNode4096(),
	}
}

// Preset returns the preset with the given name (case-insensitive).
func Preset(name string) (Spec, bool) {
	for _, s := range Presets() {
		if strings.EqualFold(s.Name, name) {
			return s, true
		}
	}
	return Spec{}, false
}
