package topology_test

import (
	"strings"
	"testing"

	"github.com/numaspread/numaspread/topology"
)

// TestNewRejectsSiblingsAcrossNodes checks that New itself, not only
// DiscoverFS, refuses a core whose threads are on different NUMA nodes: the
// policy hands out whole cores per node.
func TestNewRejectsSiblingsAcrossNodes(t *testing.T) {
	nodes := []topology.NodeInfo{{ID: 0}, {ID: 1}}
	tests := []struct {
		name     string
		siblings [2]string // of CPU 0 (node 0) and CPU 1 (node 1)
		want     string
	}{
		{"both lists", [2]string{"0-1", "0-1"}, "CPU 0 (node 0) and its thread sibling CPU 1 (node 1) are on different NUMA nodes"},
		{"second list only", [2]string{"0", "0-1"}, "CPU 1 (node 1) and its thread sibling CPU 0 (node 0) are on different NUMA nodes"},
		{"first list only", [2]string{"0-1", "1"}, "CPU 0 (node 0) and its thread sibling CPU 1 (node 1) are on different NUMA nodes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := topology.Machine{Nodes: nodes}
			for c, sib := range tt.siblings {
				m.CPUs = append(m.CPUs, topology.CPUInfo{ID: c, Node: c, L3: -1, Siblings: topology.MustParseMask(sib)})
			}
			topo, err := topology.New(m)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, %v; want an error containing %q", topo, err, tt.want)
			}
		})
	}
	// The same CPUs as siblings on one node, or as separate cores on two
	// nodes, are consistent.
	for _, m := range []topology.Machine{
		{Nodes: nodes, CPUs: []topology.CPUInfo{
			{ID: 0, Node: 0, L3: -1, Siblings: topology.MustParseMask("0-1")},
			{ID: 1, Node: 0, L3: -1, Siblings: topology.MustParseMask("0-1")}}},
		{Nodes: nodes, CPUs: []topology.CPUInfo{{ID: 0, Node: 0, L3: -1}, {ID: 1, Node: 1, L3: -1}}},
	} {
		topo, err := topology.New(m)
		if err != nil {
			t.Fatalf("New(%+v): %v", m, err)
		}
		for _, n := range topo.Nodes {
			if n.HasCPUs() && len(n.Cores) == 0 {
				t.Errorf("node %d has CPUs %s but no core", n.ID, n.CPUs)
			}
		}
	}
}
