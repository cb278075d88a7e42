package policy

import (
	"strings"
	"testing"

	"github.com/numaspread/numaspread/topology"
	"github.com/numaspread/numaspread/topology/synth"
)

// TestAllocatePresets runs the in-node L3 rule and the spread annotation on
// the synthetic machines of topology/synth, discovered from their sysfs files.
func TestAllocatePresets(t *testing.T) {
	noSMT2L3 := synth.NoSMT() // 4 nodes × 8 CPUs (node n: 8n…8n+7), here in 2 L3 caches of 4
	noSMT2L3.L3PerNode = 2
	// AMDLike: 4 nodes × 8 cores × 2 threads, siblings c and c+32, node n:
	// 8n…8n+7 and +32, 2 L3 caches (CCXs) of 4 cores per node.
	spread := func(capped int, annotation string) Options {
		o := DefaultOptions()
		o.MaxNUMANodes = capped
		if err := o.ApplySpread(annotation); err != nil {
			t.Fatal(err)
		}
		return o
	}
	tests := []struct {
		name     string
		spec     synth.Spec
		busy     string
		cpus     int
		opts     Options
		want     string
		wantMems string
		wantErr  string
	}{
		{name: "NoSMT: the node's share in one L3 cache", spec: noSMT2L3, busy: "1-3", cpus: 8,
			opts: DefaultOptions(), want: "4-5,8-9,16-17,24-25", wantMems: "0-3"},
		{name: "NoSMT packed: the cache that holds the request", spec: noSMT2L3, busy: "0", cpus: 4,
			opts: opts(Packed, SpreadAll, FullCoresPrefer), want: "4-7", wantMems: "0"},
		{name: "NoSMT packed: the fuller cache that holds it", spec: noSMT2L3, busy: "4", cpus: 3,
			opts: opts(Packed, SpreadAll, FullCoresPrefer), want: "5-7", wantMems: "0"},
		{name: "NoSMT, full_cores off: the same", spec: noSMT2L3, busy: "0", cpus: 4,
			opts: opts(Packed, SpreadAll, FullCoresOff), want: "4-7", wantMems: "0"},
		{name: "AMDLike, full_cores off: whole core and split core in one CCX", spec: synth.AMDLike(), busy: "0-2,32-34", cpus: 3,
			opts: opts(Packed, SpreadAll, FullCoresOff), want: "4-5,36", wantMems: "0"},
		{name: "AMDLike: the single thread from a partly used core of the same CCX", spec: synth.AMDLike(), busy: "0-2,32-34,4,36,5", cpus: 3,
			opts: opts(Packed, SpreadAll, FullCoresPrefer), want: "6,37-38", wantMems: "0"},
		{name: "FourNode, max_numa_nodes 2, annotation all: still 2 nodes", spec: synth.FourNode(), cpus: 8,
			opts: spread(2, "all"), want: "0-1,4-5,16-17,20-21", wantMems: "0-1"},
		{name: "FourNode, max_numa_nodes 2, annotation minimal: the cap holds", spec: synth.FourNode(), cpus: 20,
			opts: spread(2, "minimal"), wantErr: "the 2 NUMA nodes allowed (max_numa_nodes) have 16 free"},
		{name: "FourNode, annotation 3: capped at 3 nodes", spec: synth.FourNode(), cpus: 8,
			opts: spread(0, "3"), want: "0-1,4,8,16-17,20,24", wantMems: "0-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newState(t, tt.spec.MustTopology(), Config{})
			if tt.busy != "" {
				if err := s.Claim("busy", topology.MustParseMask(tt.busy)); err != nil {
					t.Fatal(err)
				}
			}
			a, err := s.Allocate("ctr", Request{CPUs: tt.cpus, Options: tt.opts})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v (cpus %s), want it to contain %q", err, a.CPUs, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Allocate: %v", err)
			}
			if got := a.CPUs.String(); got != tt.want {
				t.Errorf("cpus = %s, want %s (per node %v)", got, tt.want, a.PerNode)
			}
			if got := a.Mems.String(); got != tt.wantMems {
				t.Errorf("mems = %q, want %q", got, tt.wantMems)
			}
		})
	}
}

func TestApplySpread(t *testing.T) {
	for _, tt := range []struct {
		configured int // max_numa_nodes
		value      string
		wantSpread Spread
		wantMax    int
	}{
		{0, "all", SpreadAll, 0},
		{2, "all", SpreadAll, 2},
		{2, "minimal", SpreadMinimal, 2},
		{2, "3", SpreadAll, 2}, // never above the configured cap
		{3, "2", SpreadAll, 2},
		{0, "1", SpreadAll, 1},
		{0, "5", SpreadAll, 5},
	} {
		o := DefaultOptions()
		o.Spread, o.MaxNUMANodes = SpreadMinimal, tt.configured
		if tt.value == "minimal" {
			o.Spread = SpreadAll
		}
		if err := o.ApplySpread(tt.value); err != nil || o.Spread != tt.wantSpread || o.MaxNUMANodes != tt.wantMax {
			t.Errorf("max_numa_nodes %d, spread %q: got %s capped at %d (err %v), want %s capped at %d",
				tt.configured, tt.value, o.Spread, o.MaxNUMANodes, err, tt.wantSpread, tt.wantMax)
		}
	}
	for _, bad := range []string{"", "0", "-1", "some", "99999999"} {
		o := DefaultOptions()
		if err := o.ApplySpread(bad); err == nil {
			t.Errorf("ApplySpread(%q) succeeded", bad)
		}
	}
}

// TestMemsOfSharedPool: shared containers get the memory nodes of the
// shared pool's CPUs under the same rule as exclusive ones.
func TestMemsOfSharedPool(t *testing.T) {
	// Node 1 has CPUs but no memory.
	s := newState(t, shape{nodes: 2, cores: 4, threads: 2, noMemory: topology.NewMask(1)}.topo(t), Config{})
	if got := s.Mems(s.SharedPool(), MemoryLocal).String(); got != "0" {
		t.Errorf("pool %s: mems %s, want 0", s.SharedPool(), got)
	}
	if _, err := s.Allocate("a", Request{CPUs: 8, Options: opts(Packed, SpreadAll, FullCoresPrefer)}); err != nil {
		t.Fatal(err)
	}
	// Only node 1's CPUs are left in the pool: memory from node 0, its nearest.
	if got := s.Mems(s.SharedPool(), MemoryLocal).String(); got != "0" {
		t.Errorf("pool %s: mems %s, want 0", s.SharedPool(), got)
	}
	if got := s.Mems(s.SharedPool(), MemoryAll).String(); got != "0" {
		t.Errorf("memory all: %s, want 0", got)
	}
}
