package policy

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/numaspread/numaspread/topology"
)

// randomShape returns a random regular machine with some CPUs offline.
func randomShape(r *rand.Rand) shape {
	s := shape{
		nodes:          1 + r.IntN(6),
		cores:          1 + r.IntN(8),
		threads:        []int{1, 2, 2, 2, 4}[r.IntN(5)],
		l3:             1 + r.IntN(2),
		nodesPerSocket: 1 + r.IntN(2),
		memOnly:        r.IntN(2),
	}
	total := s.nodes * s.cores * s.threads
	for i := r.IntN(3); i > 0; i-- {
		if c := r.IntN(total); c != 0 { // keep CPU 0 so the machine is never empty
			s.offline.Set(c)
		}
	}
	if r.IntN(4) == 0 && s.nodes+s.memOnly > 1 { // a CPU node without memory (another node has some)
		s.noMemory.Set(r.IntN(s.nodes))
	}
	return s
}

func randomOptions(r *rand.Rand) Options {
	o := Options{
		Mode:      []Mode{Distributed, Distributed, Packed}[r.IntN(3)],
		Spread:    []Spread{SpreadAll, SpreadMinimal}[r.IntN(2)],
		FullCores: []FullCores{FullCoresPrefer, FullCoresRequire, FullCoresOff}[r.IntN(3)],
		Memory:    []Memory{MemoryLocal, MemoryAll, MemoryNone}[r.IntN(3)],
	}
	if r.IntN(4) == 0 {
		o.MaxNUMANodes = 1 + r.IntN(3)
	}
	return o
}

// TestPropertiesRandom runs random allocate/release sequences on random
// machines and checks the invariants of DESIGN.md after every step.
func TestPropertiesRandom(t *testing.T) {
	for seed := uint64(1); seed <= 300; seed++ {
		r := rand.New(rand.NewPCG(seed, 0x5eed))
		sh := randomShape(r)
		topo, err := topology.New(sh.machine())
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		var reserved topology.Mask
		if r.IntN(3) == 0 {
			reserved.Set(topo.Online.Last())
		}
		s, err := NewState(topo, Config{Reserved: reserved, MinSharedCPUs: r.IntN(2)})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		initialPool := s.SharedPool()
		owners := map[string]topology.Mask{}
		for step := 0; step < 60; step++ {
			where := fmt.Sprintf("seed %d step %d (machine %+v)", seed, step, sh)
			if len(owners) > 0 && r.IntN(3) == 0 {
				releaseRandom(t, r, s, owners, where)
			} else {
				allocateRandom(t, r, s, owners, where)
			}
			checkState(t, s, owners, where)
		}
		for o := range owners {
			s.Release(o)
		}
		if !s.Held().IsEmpty() || !s.SharedPool().Equals(initialPool) {
			t.Fatalf("seed %d: after releasing everything held=%s pool=%s, want none and %s", seed, s.Held(), s.SharedPool(), initialPool)
		}
	}
}

func releaseRandom(t *testing.T, r *rand.Rand, s *State, owners map[string]topology.Mask, where string) {
	names := s.Owners()
	o := names[r.IntN(len(names))]
	if got := s.Release(o); !got.Equals(owners[o]) {
		t.Fatalf("%s: Release(%s) = %s, want %s", where, o, got, owners[o])
	}
	delete(owners, o)
}

func allocateRandom(t *testing.T, r *rand.Rand, s *State, owners map[string]topology.Mask, where string) {
	topo := s.Topology()
	n := 1 + r.IntN(max(1, topo.Online.Count()/3))
	o := randomOptions(r)
	free := s.Free()
	before := nodeStats(topo, free)
	name := fmt.Sprintf("c%d", len(owners)+r.IntN(1<<20))
	a, err := s.Allocate(name, Request{CPUs: n, Options: o})
	if err != nil {
		checkNoInternalError(t, err, where)
		if free.Count() >= n && o.FullCores != FullCoresRequire && o.MaxNUMANodes == 0 && s.SharedPool().Count()-n >= s.minShare {
			t.Fatalf("%s: %d CPUs with %+v failed with %d free: %v", where, n, o, free.Count(), err)
		}
		return
	}
	owners[name] = a.CPUs
	where = fmt.Sprintf("%s: %d CPUs %+v → %s", where, n, o, a.CPUs)
	if a.CPUs.Count() != n {
		t.Fatalf("%s: got %d CPUs", where, a.CPUs.Count())
	}
	if !a.CPUs.IsSubsetOf(free) {
		t.Fatalf("%s: CPUs %s were not free", where, a.CPUs.Difference(free))
	}
	if a.CPUs.Intersects(s.Reserved()) {
		t.Fatalf("%s: reserved CPUs handed out", where)
	}
	g := topo.ThreadsPerCore
	wholeOnly := o.FullCores == FullCoresRequire ||
		(o.FullCores == FullCoresPrefer && n%g == 0 && totalUnits(before) >= n/g && o.Mode == Distributed && o.Spread == SpreadAll && o.MaxNUMANodes == 0)
	if wholeOnly && !isWholeCores(topo, a.CPUs) {
		t.Fatalf("%s: not whole cores", where)
	}
	checkKeepsCoresWhole(t, topo, free, a.CPUs, where)
	checkFewestCaches(t, topo, free, a.CPUs, where)
	if o.Mode == Distributed && o.Spread == SpreadAll && o.MaxNUMANodes == 0 {
		checkBalance(t, topo, before, a.CPUs, o.FullCores == FullCoresOff, where)
	}
	var wantMems topology.Mask // empty with memory = none
	switch o.Memory {
	case MemoryLocal:
		wantMems = s.Mems(a.CPUs, o.Memory)
		checkLocalMems(t, topo, a.CPUs, wantMems, where)
	case MemoryAll: // every node with memory, whatever the CPUs
		for _, n := range topo.Nodes {
			if n.HasMemory() {
				wantMems.Set(n.ID)
			}
		}
	}
	if !a.Mems.Equals(wantMems) {
		t.Fatalf("%s: mems %s, want %s", where, a.Mems, wantMems)
	}
}

// checkNoInternalError fails on the errors that are bugs of the policy, not
// answers to a request it cannot meet.
func checkNoInternalError(t *testing.T, err error, where string) {
	t.Helper()
	if strings.HasPrefix(err.Error(), "internal error") {
		t.Fatalf("%s: %v", where, err)
	}
}

// nodeStat is a node's free CPUs and free whole cores before an allocation.
type nodeStat struct{ free, units int }

func nodeStats(topo *topology.Topology, free topology.Mask) map[int]nodeStat {
	out := map[int]nodeStat{}
	for _, n := range topo.Nodes {
		if !n.HasCPUs() {
			continue
		}
		st := nodeStat{free: free.CountAnd(n.CPUs)}
		for _, ci := range n.Cores {
			c := topo.Cores[ci]
			if len(c.Threads) == topo.ThreadsPerCore && c.Mask.IsSubsetOf(free) {
				st.units++
			}
		}
		out[n.ID] = st
	}
	return out
}

func totalUnits(st map[int]nodeStat) int {
	u := 0
	for _, s := range st {
		u += s.units
	}
	return u
}

func isWholeCores(topo *topology.Topology, cpus topology.Mask) bool {
	ok := true
	cpus.ForEach(func(c int) bool {
		core := topo.CoreOf(c)
		ok = len(core.Threads) == topo.ThreadsPerCore && core.Mask.IsSubsetOf(cpus)
		return ok
	})
	return ok
}

// checkBalance checks max-min fairness: a node that could have taken more
// took at most one unit less than any other node.
func checkBalance(t *testing.T, topo *topology.Topology, before map[int]nodeStat, cpus topology.Mask, singleThreads bool, where string) {
	t.Helper()
	took := map[int]int{} // units (whole cores, or CPUs with full_cores = off) per node
	for id := range before {
		if singleThreads {
			took[id] = cpus.CountAnd(topo.Node(id).CPUs)
			continue
		}
		for _, ci := range topo.Node(id).Cores {
			c := topo.Cores[ci]
			if len(c.Threads) == topo.ThreadsPerCore && c.Mask.IsSubsetOf(cpus) {
				took[id]++
			}
		}
	}
	most := 0
	for _, u := range took {
		most = max(most, u)
	}
	for id, st := range before {
		capacity := st.units
		if singleThreads {
			capacity = st.free
		}
		if took[id] < capacity && took[id] < most-1 {
			t.Fatalf("%s: node %d took %d units with %d free, another node took %d (per node %v)", where, id, took[id], capacity, most, took)
		}
	}
}

func checkState(t *testing.T, s *State, owners map[string]topology.Mask, where string) {
	t.Helper()
	var union topology.Mask
	total := 0
	for o, m := range owners {
		if union.Intersects(m) {
			t.Fatalf("%s: CPUs %s of %s held twice", where, union.Intersection(m), o)
		}
		union.UnionInPlace(m)
		total += m.Count()
		if got, _ := s.Owned(o); !got.Equals(m) {
			t.Fatalf("%s: %s holds %s, model says %s", where, o, got, m)
		}
	}
	if !s.Held().Equals(union) || union.Count() != total {
		t.Fatalf("%s: held %s, owners hold %s", where, s.Held(), union)
	}
	if s.SharedPool().Intersects(union) || s.SharedPool().Count() < s.minShare {
		t.Fatalf("%s: shared pool %s", where, s.SharedPool())
	}
}

// checkKeepsCoresWhole checks that no whole free core was split while a
// partly used core of the same node still had a free thread to give.
func checkKeepsCoresWhole(t *testing.T, topo *topology.Topology, free, cpus topology.Mask, where string) {
	t.Helper()
	for _, n := range topo.Nodes {
		split, partialLeft := -1, -1
		for _, ci := range n.Cores {
			c := topo.Cores[ci]
			whole := len(c.Threads) == topo.ThreadsPerCore && c.Mask.IsSubsetOf(free)
			taken := c.Mask.CountAnd(cpus)
			if whole && taken > 0 && taken < len(c.Threads) {
				split = ci
			}
			if !whole && c.Mask.CountAnd(free) > taken {
				partialLeft = ci
			}
		}
		if split >= 0 && partialLeft >= 0 {
			t.Fatalf("%s: split whole core %v while core %v had a free thread", where, topo.Cores[split].Threads, topo.Cores[partialLeft].Threads)
		}
	}
}

// TestFewestCachesRandom checks the L3 rule of DESIGN.md step 4 on random
// machines with up to 5 L3 caches per node, random busy CPUs and random
// options (the property test's machines have at most 2 caches per node).
func TestFewestCachesRandom(t *testing.T) {
	for seed := uint64(1); seed <= 3000; seed++ {
		r := rand.New(rand.NewPCG(seed, 0x13))
		sh := randomShape(r)
		sh.l3 = 1 + r.IntN(5)
		sh.cores = 2 + r.IntN(12)
		topo, err := topology.New(sh.machine())
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		s := newState(t, topo, Config{})
		var busy topology.Mask
		wholeBusy := r.IntN(2) == 0 // busy whole cores only: every share is whole cores
		topo.Online.ForEach(func(c int) bool {
			if r.IntN(4) == 0 {
				if wholeBusy {
					busy.UnionInPlace(topo.CoreOf(c).Mask)
				} else {
					busy.Set(c)
				}
			}
			return true
		})
		if !busy.IsEmpty() {
			if err := s.Claim("busy", busy); err != nil {
				t.Fatal(err)
			}
		}
		free := s.Free()
		n := 1 + r.IntN(max(1, free.Count()))
		o := randomOptions(r)
		a, err := s.Plan(Request{CPUs: n, Options: o})
		if err != nil {
			checkNoInternalError(t, err, fmt.Sprintf("seed %d (machine %+v): %d CPUs %+v", seed, sh, n, o))
			continue
		}
		checkFewestCaches(t, topo, free, a.CPUs, fmt.Sprintf("seed %d (machine %+v): %d CPUs %+v → %s", seed, sh, n, o, a.CPUs))
	}
}

// checkFewestCaches checks the L3 rule of DESIGN.md step 4 for each node's
// share. The share is fixed by the core rules: w = min(⌊take/T⌋, whole free
// cores) whole cores, then single threads from partly used cores, then from
// one more whole core. Where a best fit exists it is used:
//   - a share that one cache can hold uses one cache;
//   - a share of whole cores only (any share with one thread per core) uses
//     the fewest caches that hold it.
//
// (Shares that mix whole cores and single threads are placed greedily,
// which may use one cache more than the fewest possible.)
func checkFewestCaches(t *testing.T, topo *topology.Topology, free, cpus topology.Mask, where string) {
	t.Helper()
	for i := range topo.Nodes {
		node := &topo.Nodes[i]
		if !cpus.Intersects(node.CPUs) {
			continue
		}
		used, least, wholeOnly := cacheUse(topo, node, free, cpus)
		if used > least && (least == 1 || wholeOnly) {
			t.Fatalf("%s: node %d: %s uses %d L3 caches, %d can hold it (free %s)",
				where, node.ID, cpus.Intersection(node.CPUs), used, least, free.Intersection(node.CPUs))
		}
	}
}

// cacheUse returns how many L3 caches of node the allocation cpus uses, the
// fewest that could hold its share under the core rules (by trying every
// set of caches), and whether the share is whole cores only.
func cacheUse(topo *topology.Topology, node *topology.Node, free, cpus topology.Mask) (used, least int, wholeOnly bool) {
	g := topo.ThreadsPerCore
	var whole, partial []int // per cache: whole free cores, free threads of other cores
	allWhole, allPartial := 0, 0
	for _, ci := range node.Caches {
		c := &topo.Caches[ci]
		w, p := 0, 0
		for _, k := range c.Cores {
			core := &topo.Cores[k]
			if len(core.Threads) == g && core.Mask.IsSubsetOf(free) {
				w++
			} else {
				p += core.Mask.CountAnd(free)
			}
		}
		whole, partial = append(whole, w), append(partial, p)
		allWhole, allPartial = allWhole+w, allPartial+p
		if c.Mask.Intersects(cpus) {
			used++
		}
	}
	take := cpus.CountAnd(node.CPUs)
	w := min(take/g, allWhole)
	singles := take - w*g
	fromPartial := min(singles, allPartial)
	split := singles > fromPartial // all partly used threads, and part of one more whole core
	least = len(whole)
	for set := 1; set < 1<<len(whole); set++ {
		sw, sp := 0, 0
		for i := range whole {
			if set&(1<<i) != 0 {
				sw, sp = sw+whole[i], sp+partial[i]
			}
		}
		holds := sw >= w && sp >= fromPartial
		if split {
			holds = sw > w && sp == allPartial
		}
		if holds {
			least = min(least, bits.OnesCount(uint(set)))
		}
	}
	return used, least, singles == 0
}

// checkLocalMems checks memory = local: the nodes of the CPUs that have
// memory; when none has, the nearest node with memory to each of them.
func checkLocalMems(t *testing.T, topo *topology.Topology, cpus, mems topology.Mask, where string) {
	t.Helper()
	withMemory := topo.MemoryNodes()
	if !mems.IsSubsetOf(withMemory) || mems.IsEmpty() {
		t.Fatalf("%s: mems %s, nodes with memory %s", where, mems, withMemory)
	}
	nodes := topo.NodesOf(cpus)
	if local := nodes.Intersection(withMemory); !local.IsEmpty() {
		if !mems.Equals(local) {
			t.Fatalf("%s: mems %s, want the CPUs' nodes with memory %s", where, mems, local)
		}
		return
	}
	var want topology.Mask // each node's nearest node with memory, ties to the lower id
	nodes.ForEach(func(n int) bool {
		d := topo.Node(n).Distances
		nearest := -1
		withMemory.ForEach(func(m int) bool {
			if nearest < 0 || d[m] < d[nearest] {
				nearest = m
			}
			return true
		})
		want.Set(nearest)
		return true
	})
	if !mems.Equals(want) {
		t.Fatalf("%s: mems %s, want %s: the nearest nodes with memory to the CPUs' nodes %s", where, mems, want, nodes)
	}
}
