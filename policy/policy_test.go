package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/numaspread/numaspread/topology"
)

var (
	// 2 nodes × 4 cores × 2 threads: node 0 = 0-3,8-11, node 1 = 4-7,12-15.
	twoNode = shape{nodes: 2, cores: 4, threads: 2, nodesPerSocket: 1}
	// 4 nodes × 4 cores × 2 threads: node n = 4n..4n+3 ∪ 16+4n..16+4n+3.
	fourNode = shape{nodes: 4, cores: 4, threads: 2, nodesPerSocket: 2}
	// 1 node, 8 cores × 2 threads, 2 L3 caches of 4 cores.
	twoCache = shape{nodes: 1, cores: 8, threads: 2, l3: 2}
)

func TestAllocate(t *testing.T) {
	tests := []struct {
		name     string
		machine  shape
		busy     string // CPUs already held by someone else
		reserved string
		cpus     int
		opts     Options
		want     string
		wantMems string
	}{
		{name: "seed: 8 CPUs on 2 nodes, 2 whole cores each", machine: twoNode, cpus: 8,
			opts: DefaultOptions(), want: "0-1,4-5,8-9,12-13", wantMems: "0-1"},
		{name: "seed: packed gives one node", machine: twoNode, cpus: 8,
			opts: opts(Packed, SpreadAll, FullCoresPrefer), want: "0-3,8-11", wantMems: "0"},
		{name: "4 nodes: 2 CPUs on each", machine: fourNode, cpus: 8,
			opts: DefaultOptions(), want: "0,4,8,12,16,20,24,28", wantMems: "0-3"},
		{name: "4 nodes, spread minimal: one node holds it (KEP-2902 k=1)", machine: fourNode, cpus: 8,
			opts: opts(Distributed, SpreadMinimal, FullCoresPrefer), want: "0-3,16-19", wantMems: "0"},
		{name: "4 nodes, spread minimal: 12 CPUs need 2 nodes of 6", machine: fourNode, cpus: 12,
			opts: opts(Distributed, SpreadMinimal, FullCoresPrefer), want: "0-2,4-6,16-18,20-22", wantMems: "0-1"},
		{name: "minimal prefers the nodes with the most free units", machine: fourNode, cpus: 8, busy: "0,16,4,20",
			opts: opts(Distributed, SpreadMinimal, FullCoresPrefer), want: "8-11,24-27", wantMems: "2"},
		{name: "odd request: the single thread goes to the lower id on a tie", machine: twoNode, cpus: 5,
			opts: DefaultOptions(), want: "0-1,4,8,12", wantMems: "0-1"},
		{name: "max-min fairness: a short node takes what it can", machine: twoNode, cpus: 10, busy: "0-2,8-10",
			opts: DefaultOptions(), want: "3-7,11-15", wantMems: "0-1"},
		{name: "leftover unit goes to the node with most free CPUs left", machine: twoNode, cpus: 6, busy: "0,8",
			opts: DefaultOptions(), want: "1,4-5,9,12-13", wantMems: "0-1"},
		{name: "a single thread goes to the node with most free CPUs", machine: twoNode, cpus: 1, busy: "0",
			opts: DefaultOptions(), want: "4", wantMems: "1"},
		{name: "single thread comes from a partly used core", machine: twoNode, cpus: 1, busy: "0,4",
			opts: DefaultOptions(), want: "8", wantMems: "0"},
		{name: "single thread prefers the sibling of a busy thread", machine: twoNode, cpus: 2, busy: "0,4",
			opts: opts(Distributed, SpreadAll, FullCoresOff), want: "8,12", wantMems: "0-1"},
		{name: "full_cores off still takes whole cores", machine: twoNode, cpus: 4,
			opts: opts(Distributed, SpreadAll, FullCoresOff), want: "0,4,8,12", wantMems: "0-1"},
		{name: "prefer: whole cores short, singles fill in", machine: twoNode, cpus: 4, busy: "0-3,4-7",
			opts: DefaultOptions(), want: "8-9,12-13", wantMems: "0-1"},
		{name: "reserved CPUs are never exclusive", machine: twoNode, cpus: 8, reserved: "0,8",
			opts: DefaultOptions(), want: "1-2,4-5,9-10,12-13", wantMems: "0-1"},
		{name: "L3 best fit: a 2-core request goes into one cache", machine: twoCache, cpus: 4, busy: "0,8",
			opts: DefaultOptions(), want: "1-2,9-10", wantMems: "0"},
		{name: "L3 best fit: the fuller cache that still holds it", machine: twoCache, cpus: 6, busy: "4,12",
			opts: DefaultOptions(), want: "5-7,13-15", wantMems: "0"},
		{name: "max_numa_nodes caps the spread at the nodes with most free units", machine: fourNode, cpus: 8, busy: "0,16",
			opts: Options{Mode: Distributed, Spread: SpreadAll, MaxNUMANodes: 2, FullCores: FullCoresPrefer, Memory: MemoryLocal},
			want: "4-5,8-9,20-21,24-25", wantMems: "1-2"},
		{name: "memory all", machine: shape{nodes: 2, cores: 2, threads: 2, memOnly: 2}, cpus: 2,
			opts: Options{Mode: Packed, Spread: SpreadAll, FullCores: FullCoresPrefer, Memory: MemoryAll}, want: "0,4", wantMems: "0-3"},
		{name: "memory none", machine: twoNode, cpus: 2,
			opts: Options{Mode: Packed, Spread: SpreadAll, FullCores: FullCoresPrefer, Memory: MemoryNone}, want: "0,8", wantMems: ""},
		{name: "packed best fit: the fullest node that holds it", machine: twoNode, cpus: 4, busy: "4,12",
			opts: opts(Packed, SpreadAll, FullCoresPrefer), want: "5-6,13-14", wantMems: "1"},
		{name: "packed spill: fill the biggest, rest on best fit", machine: fourNode, cpus: 10, busy: "0,16",
			opts: opts(Packed, SpreadAll, FullCoresPrefer), want: "1,4-7,17,20-23", wantMems: "0-1"},
		{name: "packed require: whole cores only", machine: twoNode, cpus: 4, busy: "0,4",
			opts: opts(Packed, SpreadAll, FullCoresRequire), want: "1-2,9-10", wantMems: "0"},
		{name: "no SMT", machine: shape{nodes: 2, cores: 4, threads: 1}, cpus: 3,
			opts: DefaultOptions(), want: "0-1,4", wantMems: "0-1"},
		{name: "no SMT, L3 best fit: 4 CPUs in the cache that holds them", machine: shape{nodes: 1, cores: 8, threads: 1, l3: 2},
			busy: "0", cpus: 4, opts: DefaultOptions(), want: "4-7", wantMems: "0"},
		{name: "no SMT, L3 best fit: the fuller cache that still holds it", machine: shape{nodes: 1, cores: 8, threads: 1, l3: 2},
			busy: "4", cpus: 3, opts: DefaultOptions(), want: "5-7", wantMems: "0"},
		{name: "no SMT, L3: the biggest cache, then the best fit for the rest", machine: shape{nodes: 1, cores: 12, threads: 1, l3: 3},
			busy: "0-1,4", cpus: 6, opts: DefaultOptions(), want: "2-3,8-11", wantMems: "0"},
		{name: "L3 best fit holds the single thread too", machine: twoCache, cpus: 3, busy: "0-2,8-10,4,12,5",
			opts: DefaultOptions(), want: "6,13-14", wantMems: "0"},
		{name: "L3 best fit counts the split core (full_cores off)", machine: twoCache, cpus: 3, busy: "0-2,8-10",
			opts: opts(Distributed, SpreadAll, FullCoresOff), want: "4-5,12", wantMems: "0"},
		{name: "memory local: only the CPU nodes with memory", machine: shape{nodes: 2, cores: 4, threads: 2, noMemory: topology.NewMask(1)},
			cpus: 8, opts: DefaultOptions(), want: "0-1,4-5,8-9,12-13", wantMems: "0"},
		{name: "memory local on a memoryless node: the nearest with memory", machine: shape{nodes: 4, cores: 4, threads: 2, nodesPerSocket: 2, noMemory: topology.NewMask(3)},
			busy: "0-11", cpus: 6, opts: opts(Packed, SpreadAll, FullCoresPrefer), want: "12-14,28-30", wantMems: "2"},
		{name: "memory local: distance ties go to the lower id", machine: shape{nodes: 4, cores: 4, threads: 2, nodesPerSocket: 2, noMemory: topology.NewMask(2, 3)},
			busy: "0-11", cpus: 6, opts: opts(Packed, SpreadAll, FullCoresPrefer), want: "12-14,28-30", wantMems: "0"},
		{name: "memory local: a near memory-only node", machine: shape{nodes: 2, cores: 2, threads: 2, memOnly: 2, noMemory: topology.NewMask(0, 1)}, cpus: 2,
			opts: opts(Packed, SpreadAll, FullCoresPrefer), want: "0,4", wantMems: "2"},
		{name: "memory all: nodes without memory left out", machine: shape{nodes: 2, cores: 2, threads: 2, memOnly: 2, noMemory: topology.NewMask(1)}, cpus: 2,
			opts: Options{Mode: Packed, Spread: SpreadAll, FullCores: FullCoresPrefer, Memory: MemoryAll}, want: "0,4", wantMems: "0,2-3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo := tt.machine.topo(t)
			s := newState(t, topo, Config{Reserved: topology.MustParseMask(tt.reserved)})
			if tt.busy != "" {
				if err := s.Claim("busy", topology.MustParseMask(tt.busy)); err != nil {
					t.Fatal(err)
				}
			}
			a, err := s.Allocate("ctr", Request{CPUs: tt.cpus, Options: tt.opts})
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

func TestAllocateErrors(t *testing.T) {
	tests := []struct {
		name    string
		machine shape
		busy    string
		cfg     Config
		cpus    int
		opts    Options
		wantErr string
	}{
		{name: "too many", machine: twoNode, cpus: 17, opts: DefaultOptions(),
			wantErr: "cannot allocate 17 exclusive CPUs: 16 free (node 0: 8, node 1: 8)"},
		{name: "min_shared_cpus", machine: twoNode, cpus: 16, cfg: Config{MinSharedCPUs: 1}, opts: DefaultOptions(),
			wantErr: "16 free (node 0: 8, node 1: 8); it would leave 0 CPUs in the shared pool, below min_shared_cpus = 1"},
		{name: "require: not a multiple", machine: twoNode, cpus: 3, opts: opts(Distributed, SpreadAll, FullCoresRequire),
			wantErr: "not a multiple of the 2 threads per core"},
		{name: "require: whole cores lacking", machine: twoNode, cpus: 4, busy: "0-3,4-7",
			opts: opts(Distributed, SpreadAll, FullCoresRequire), wantErr: "needs 2 whole free cores, there are 0"},
		{name: "packed require: whole cores lacking", machine: twoNode, cpus: 4, busy: "0-3,4-7",
			opts: opts(Packed, SpreadAll, FullCoresRequire), wantErr: "needs 2 whole free cores"},
		{name: "max_numa_nodes too small", machine: fourNode, cpus: 10,
			opts:    Options{Mode: Distributed, Spread: SpreadAll, MaxNUMANodes: 1, FullCores: FullCoresPrefer, Memory: MemoryLocal},
			wantErr: "the 1 NUMA nodes allowed (max_numa_nodes) have 8 free"},
		{name: "zero CPUs", machine: twoNode, cpus: 0, opts: DefaultOptions(), wantErr: "must be at least 1"},
		{name: "bad option", machine: twoNode, cpus: 1, opts: Options{Mode: "spready"}, wantErr: `policy "spready" is not one of distributed, packed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newState(t, tt.machine.topo(t), tt.cfg)
			if tt.busy != "" {
				if err := s.Claim("busy", topology.MustParseMask(tt.busy)); err != nil {
					t.Fatal(err)
				}
			}
			before := s.Held()
			_, err := s.Allocate("ctr", Request{CPUs: tt.cpus, Options: tt.opts})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			if !s.Held().Equals(before) {
				t.Errorf("a failed allocation changed the state: held %s, was %s", s.Held(), before)
			}
		})
	}
}

func TestInsufficientErrorType(t *testing.T) {
	s := newState(t, twoNode.topo(t), Config{})
	_, err := s.Allocate("ctr", Request{CPUs: 99, Options: DefaultOptions()})
	var ie *InsufficientError
	if !errors.As(err, &ie) || ie.Requested != 99 || len(ie.Free) != 2 {
		t.Fatalf("err = %#v, want *InsufficientError for 99 with 2 nodes", err)
	}
}

func TestSharedPoolAndRelease(t *testing.T) {
	s := newState(t, twoNode.topo(t), Config{Reserved: topology.MustParseMask("0"), MinSharedCPUs: 1})
	if got := s.SharedPool().String(); got != "0-15" {
		t.Fatalf("initial pool %s", got)
	}
	a, err := s.Allocate("a", Request{CPUs: 4, Options: DefaultOptions()})
	if err != nil {
		t.Fatal(err)
	}
	if s.SharedPool().Intersects(a.CPUs) || s.SharedPool().Count() != 12 {
		t.Errorf("pool %s after allocating %s", s.SharedPool(), a.CPUs)
	}
	if !s.SharedPool().Has(0) {
		t.Error("reserved CPU 0 left the pool without strict_reserved")
	}
	if got := s.Release("a"); !got.Equals(a.CPUs) {
		t.Errorf("Release returned %s, want %s", got, a.CPUs)
	}
	if got := s.Release("a"); !got.IsEmpty() {
		t.Errorf("second Release returned %s", got)
	}
	if got := s.SharedPool().String(); got != "0-15" {
		t.Errorf("pool after release %s", got)
	}

	strict := newState(t, twoNode.topo(t), Config{Reserved: topology.MustParseMask("0,8"), StrictReserved: true})
	if got := strict.SharedPool().String(); got != "1-7,9-15" {
		t.Errorf("strict pool %s", got)
	}
}

func TestClaim(t *testing.T) {
	s := newState(t, twoNode.topo(t), Config{Reserved: topology.MustParseMask("15")})
	if err := s.Claim("old", topology.MustParseMask("0-1")); err != nil {
		t.Fatal(err)
	}
	var ce *ConflictError
	if err := s.Claim("young", topology.MustParseMask("1-2")); !errors.As(err, &ce) || ce.CPUs.String() != "1" || ce.Holders[0] != "old" {
		t.Fatalf("err = %v, want a conflict on CPU 1 with old", err)
	}
	if _, held := s.Owned("young"); held {
		t.Error("a failed claim was recorded")
	}
	if err := s.Claim("r", topology.MustParseMask("15")); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("claiming a reserved CPU: %v", err)
	}
	if err := s.Claim("x", topology.MustParseMask("99")); err == nil || !strings.Contains(err.Error(), "not managed") {
		t.Errorf("claiming a missing CPU: %v", err)
	}
}

func TestNewStateErrors(t *testing.T) {
	topo := twoNode.topo(t)
	for _, cfg := range []Config{
		{Managed: topology.MustParseMask("0-99")},
		{Managed: topology.MustParseMask("0-3"), Reserved: topology.MustParseMask("4")},
		{MinSharedCPUs: -1},
	} {
		if _, err := NewState(topo, cfg); err == nil {
			t.Errorf("NewState(%+v) succeeded", cfg)
		}
	}
}

func TestDeterministic(t *testing.T) {
	topo := fourNode.topo(t)
	var first []string
	for run := 0; run < 3; run++ {
		s := newState(t, topo, Config{})
		var got []string
		for i, n := range []int{3, 5, 2, 7, 1} {
			a, err := s.Allocate(string(rune('a'+i)), Request{CPUs: n, Options: DefaultOptions()})
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, a.CPUs.String())
		}
		if run == 0 {
			first = got
		} else if strings.Join(got, " ") != strings.Join(first, " ") {
			t.Fatalf("run %d gave %v, first run %v", run, got, first)
		}
	}
}

func TestAdoptKeepsAllocationsTheConfigNoLongerAllows(t *testing.T) {
	s := newState(t, twoNode.topo(t), Config{Reserved: topology.MustParseMask("0-1")})
	if err := s.Adopt("old", topology.MustParseMask("1,9")); err != nil {
		t.Fatalf("Adopt over a reserved CPU: %v", err)
	}
	if s.SharedPool().Has(1) || !s.Held().Has(9) {
		t.Errorf("pool %s held %s", s.SharedPool(), s.Held())
	}
	if err := s.Adopt("other", topology.MustParseMask("9")); err == nil {
		t.Error("Adopt of a held CPU succeeded")
	}
	if err := s.Adopt("gone", topology.MustParseMask("99")); err == nil {
		t.Error("Adopt of an offline CPU succeeded")
	}
	s.Release("old")
	if !s.SharedPool().Has(1) || !s.Held().IsEmpty() {
		t.Errorf("after release: pool %s held %s", s.SharedPool(), s.Held())
	}
}
