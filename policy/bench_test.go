package policy

import (
	"fmt"
	"testing"
)

// BenchmarkAllocateRelease measures one allocation and its release on a
// machine where half of the CPUs are already held by earlier allocations.
// Targets (issue 2): under 20 µs per allocation at 512 CPUs, under 200 µs at 4096.
func BenchmarkAllocateRelease(b *testing.B) {
	machines := []struct {
		name string
		sh   shape
	}{
		{"2s2n16c2t-128cpu", shape{nodes: 4, cores: 16, threads: 2, nodesPerSocket: 2, l3: 1}},
		{"8n-512cpu", shape{nodes: 8, cores: 32, threads: 2, nodesPerSocket: 4, l3: 2}},
		{"32n-4096cpu", shape{nodes: 32, cores: 64, threads: 2, nodesPerSocket: 8, l3: 2}},
	}
	strategies := []struct {
		name string
		o    Options
	}{
		{"distributed-all", opts(Distributed, SpreadAll, FullCoresPrefer)},
		{"distributed-minimal", opts(Distributed, SpreadMinimal, FullCoresPrefer)},
		{"packed", opts(Packed, SpreadAll, FullCoresPrefer)},
	}
	for _, m := range machines {
		topo := m.sh.topo(b)
		for _, st := range strategies {
			b.Run(fmt.Sprintf("%s/%s", m.name, st.name), func(b *testing.B) {
				s := newState(b, topo, Config{MinSharedCPUs: 1})
				fillHalf(b, s)
				req := Request{CPUs: 16, Options: st.o}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := s.Allocate("bench", req); err != nil {
						b.Fatal(err)
					}
					s.Release("bench")
				}
			})
		}
	}
}

// fillHalf holds half of the machine's CPUs with allocations of mixed sizes,
// the way a busy node looks.
func fillHalf(b *testing.B, s *State) {
	b.Helper()
	half := s.Topology().Online.Count() / 2
	sizes := []int{1, 2, 3, 4, 6, 8, 12, 16}
	for i := 0; s.Held().Count() < half; i++ {
		n := min(sizes[i%len(sizes)], half-s.Held().Count())
		o := DefaultOptions()
		if i%3 == 0 {
			o.Mode = Packed
		}
		if _, err := s.Allocate(fmt.Sprintf("fill%d", i), Request{CPUs: n, Options: o}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLargeRequests repeats the research brief's cases where the
// kubelet's combinatorial search takes seconds or never ends (16 and 32
// NUMA nodes, all CPUs free, g = 2): one allocation + release per op.
func BenchmarkLargeRequests(b *testing.B) {
	cases := []struct {
		name string
		sh   shape
		cpus int
	}{
		{"16n-512cpu/256", shape{nodes: 16, cores: 16, threads: 2, nodesPerSocket: 4}, 256},
		{"32n-512cpu/64", shape{nodes: 32, cores: 8, threads: 2, nodesPerSocket: 8}, 64},
		{"32n-512cpu/384", shape{nodes: 32, cores: 8, threads: 2, nodesPerSocket: 8}, 384},
	}
	for _, c := range cases {
		topo := c.sh.topo(b)
		for _, spread := range []Spread{SpreadAll, SpreadMinimal} {
			b.Run(c.name+"/"+string(spread), func(b *testing.B) {
				s := newState(b, topo, Config{})
				req := Request{CPUs: c.cpus, Options: opts(Distributed, spread, FullCoresRequire)}
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					if _, err := s.Allocate("bench", req); err != nil {
						b.Fatal(err)
					}
					s.Release("bench")
				}
			})
		}
	}
}
