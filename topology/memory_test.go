package topology_test

import (
	"testing"

	"github.com/numaspread/numaspread/topology"
	"github.com/numaspread/numaspread/topology/synth"
)

// memMachine is 4 nodes of 2 single-thread CPUs each (node n: CPUs 2n, 2n+1)
// and a CPU-less memory node 4. mem gives each node's MemTotal in GiB (0:
// no memory, -1: meminfo unknown); dist is the distance table, nil when
// unknown.
func memMachine(t *testing.T, mem [5]int, dist [][]int) *topology.Topology {
	t.Helper()
	var m topology.Machine
	for c := 0; c < 8; c++ {
		m.CPUs = append(m.CPUs, topology.CPUInfo{ID: c, CoreID: c, Node: c / 2, L3: c / 2})
	}
	for n, gib := range mem {
		ni := topology.NodeInfo{ID: n, MemoryBytes: uint64(max(gib, 0)) << 30, MemoryKnown: gib >= 0}
		if dist != nil {
			ni.Distances = dist[n]
		}
		m.Nodes = append(m.Nodes, ni)
	}
	topo, err := topology.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func TestMemoryNodes(t *testing.T) {
	// Nodes 0-1 on socket 0, nodes 2-3 on socket 1, node 4 near socket 1.
	dist := [][]int{
		{10, 12, 21, 21, 28},
		{12, 10, 21, 21, 28},
		{21, 21, 10, 12, 17},
		{21, 21, 12, 10, 17},
		{28, 28, 17, 17, 10},
	}
	// An equal-distance table: ties go to the lower id.
	flat := [][]int{
		{10, 20, 20, 20, 20},
		{20, 10, 20, 20, 20},
		{20, 20, 10, 20, 20},
		{20, 20, 20, 10, 20},
		{20, 20, 20, 20, 10},
	}
	tests := []struct {
		name    string
		mem     [5]int
		dist    [][]int
		cpus    string
		wantAll string // MemoryNodes
		want    string // LocalMemoryNodes(cpus)
	}{
		{"every node has memory", [5]int{1, 1, 1, 1, 4}, dist, "0,2", "0-4", "0-1"},
		{"the CPU nodes with memory only", [5]int{1, 0, 1, 1, 4}, dist, "0-3", "0,2-4", "0"},
		{"a memoryless node: the nearest with memory", [5]int{1, 0, 1, 1, 4}, dist, "2-3", "0,2-4", "0"},
		{"memoryless on socket 1: its neighbour", [5]int{1, 1, 1, 0, 4}, dist, "6-7", "0-2,4", "2"},
		{"socket 1 memoryless: the near memory-only node", [5]int{1, 1, 0, 0, 4}, dist, "4-7", "0-1,4", "4"},
		{"each memoryless node its nearest", [5]int{1, 0, 0, 1, 0}, dist, "2-5", "0,3", "0,3"},
		{"ties to the lower id", [5]int{0, 0, 1, 1, 4}, flat, "0-1", "2-4", "2"},
		{"unknown distances: every node with memory", [5]int{1, 0, 1, 1, 4}, nil, "2", "0,2-4", "0,2-4"},
		{"unknown meminfo: a node with CPUs has memory", [5]int{-1, 0, -1, -1, 4}, dist, "0-1,4", "0,2-4", "0,2"},
		{"unknown meminfo, no CPUs: no memory", [5]int{1, 1, 1, 1, -1}, dist, "0", "0-3", "0"},
		{"no CPUs", [5]int{1, 1, 1, 1, 4}, dist, "", "0-4", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo := memMachine(t, tt.mem, tt.dist)
			if got := topo.MemoryNodes().String(); got != tt.wantAll {
				t.Errorf("MemoryNodes = %s, want %s", got, tt.wantAll)
			}
			if got := topo.LocalMemoryNodes(topology.MustParseMask(tt.cpus)).String(); got != tt.want {
				t.Errorf("LocalMemoryNodes(%s) = %s, want %s", tt.cpus, got, tt.want)
			}
		})
	}
}

func TestMemoryNodesSynth(t *testing.T) {
	for _, tt := range []struct {
		spec    synth.Spec
		wantAll string
	}{
		{synth.NoNUMA(), "0"},       // no node folder: memory unknown, node 0 has CPUs
		{synth.MemoryOnly(), "0-3"}, // CPU nodes and CXL nodes all have memory
		{synth.FourNode(), "0-3"},
	} {
		topo := tt.spec.MustTopology()
		if got := topo.MemoryNodes().String(); got != tt.wantAll {
			t.Errorf("%s: MemoryNodes = %s, want %s", tt.spec.Name, got, tt.wantAll)
		}
		if got, want := topo.LocalMemoryNodes(topo.Online).String(), topo.NodesOf(topo.Online).String(); got != want {
			t.Errorf("%s: LocalMemoryNodes(all CPUs) = %s, want %s", tt.spec.Name, got, want)
		}
	}
}
