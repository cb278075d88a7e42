package policy

import (
	"testing"

	"github.com/numaspread/numaspread/topology"
)

// shape describes a regular machine for tests: nodes × cores × threads, with
// Linux-Intel numbering (thread t of core c is CPU c + t·totalCores, node
// CPUs contiguous in each thread plane) and l3 caches per node.
type shape struct {
	nodes, cores, threads, l3 int
	nodesPerSocket            int
	memOnly                   int           // CPU-less memory nodes appended after the others
	offline                   topology.Mask // CPUs left out of the machine
	noMemory                  topology.Mask // ids of nodes whose meminfo says MemTotal 0
}

func (s shape) machine() topology.Machine {
	total := s.nodes * s.cores
	var m topology.Machine
	l3 := max(s.l3, 1)
	nps := max(s.nodesPerSocket, 1)
	for n := 0; n < s.nodes; n++ {
		for c := 0; c < s.cores; c++ {
			core := n*s.cores + c
			var sib topology.Mask
			for t := 0; t < s.threads; t++ {
				sib.Set(core + t*total)
			}
			for t := 0; t < s.threads; t++ {
				if s.offline.Has(core + t*total) {
					m.Offline.Set(core + t*total)
					continue
				}
				m.CPUs = append(m.CPUs, topology.CPUInfo{
					ID: core + t*total, CoreID: c, Socket: n / nps, Node: n,
					L3: n*l3 + c*l3/s.cores, Siblings: sib,
				})
			}
		}
	}
	for n := 0; n < s.nodes+s.memOnly; n++ {
		ni := topology.NodeInfo{ID: n, MemoryBytes: 1 << 30, MemoryKnown: true}
		if s.noMemory.Has(n) {
			ni.MemoryBytes = 0
		}
		for o := 0; o < s.nodes+s.memOnly; o++ {
			ni.Distances = append(ni.Distances, s.distance(n, o))
		}
		m.Nodes = append(m.Nodes, ni)
	}
	return m
}

// distance is the SLIT distance between nodes a and b, as topology/synth
// writes it: 10 local, 12 within a socket, 21 across sockets; memory-only
// node i hangs off socket i mod sockets (17 from there, 28 otherwise).
func (s shape) distance(a, b int) int {
	nps := max(s.nodesPerSocket, 1)
	sockets := (s.nodes + nps - 1) / nps
	socket := func(n int) int {
		if n < s.nodes {
			return n / nps
		}
		return (n - s.nodes) % sockets
	}
	switch {
	case a == b:
		return 10
	case a >= s.nodes && b >= s.nodes:
		return 28
	case a >= s.nodes || b >= s.nodes:
		if socket(a) == socket(b) {
			return 17
		}
		return 28
	case socket(a) == socket(b):
		return 12
	}
	return 21
}

func (s shape) topo(t testing.TB) *topology.Topology {
	t.Helper()
	topo, err := topology.New(s.machine())
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func newState(t testing.TB, topo *topology.Topology, cfg Config) *State {
	t.Helper()
	s, err := NewState(topo, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func opts(mode Mode, spread Spread, fc FullCores) Options {
	o := DefaultOptions()
	o.Mode, o.Spread, o.FullCores = mode, spread, fc
	return o
}
