package policy

import (
	"github.com/numaspread/numaspread/topology"
)

// pickInNodes chooses each node's share of CPUs. free is this allocation's
// private copy of the free set; CPUs taken are removed from it.
func (s *State) pickInNodes(free topology.Mask, nodes []*nodeView) topology.Mask {
	out := topology.MaskWithCapacity(s.topo.MaxCPU)
	for _, v := range nodes {
		if v.take > 0 {
			s.pickInNode(v.node, v.take, free, &out)
		}
	}
	return out
}

// nodePicker takes CPUs of one node for one allocation.
type nodePicker struct {
	t    *topology.Topology
	node *topology.Node
	free topology.Mask // shared with the caller: taken CPUs are cleared
	out  *topology.Mask
	used []int // caches (indexes into t.Caches) this allocation took from
	want int   // CPUs still to take
}

// pickInNode takes want CPUs of node, core by core (DESIGN.md step 4): whole
// free cores while a core's worth is left, packed into as few L3 caches as
// possible (best fit first); then single threads, from partly used cores
// first so that whole cores stay whole; lowest CPU ids break ties.
func (s *State) pickInNode(node *topology.Node, want int, free topology.Mask, out *topology.Mask) {
	p := nodePicker{t: s.topo, node: node, free: free, out: out, want: want}
	threads := s.topo.ThreadsPerCore
	if threads > 1 {
		p.takeWholeCores(want / threads)
	}
	// Single threads: partly used cores (in caches we use, then anywhere),
	// then whole cores (in caches we use, then anywhere).
	p.takeThreads(false, true)
	p.takeThreads(false, false)
	p.takeThreads(true, true)
	p.takeThreads(true, false)
}

func (p *nodePicker) isWhole(c *topology.Core) bool {
	if len(c.Threads) != p.t.ThreadsPerCore {
		return false
	}
	for _, th := range c.Threads {
		if !p.free.Has(th) {
			return false
		}
	}
	return true
}

func (p *nodePicker) wholeIn(cache int) int {
	n := 0
	for _, ci := range p.t.Caches[cache].Cores {
		if p.isWhole(&p.t.Cores[ci]) {
			n++
		}
	}
	return n
}

// takeWholeCores takes up to n whole free cores, choosing caches by best fit:
// the cache with the fewest whole cores that still holds the rest; failing
// that, the cache with the most, and again.
func (p *nodePicker) takeWholeCores(n int) {
	caches := p.node.Caches
	counts := make([]int, len(caches))
	for i, c := range caches {
		counts[i] = p.wholeIn(c)
	}
	for n > 0 {
		fit, biggest := -1, -1
		for i, cnt := range counts {
			if cnt >= n && (fit < 0 || cnt < counts[fit]) {
				fit = i
			}
			if cnt > 0 && (biggest < 0 || cnt > counts[biggest]) {
				biggest = i
			}
		}
		pick := fit
		if pick < 0 {
			pick = biggest
		}
		if pick < 0 {
			return // no whole cores left: the rest comes as single threads
		}
		took := p.takeWholeFrom(caches[pick], n)
		counts[pick] -= took
		n -= took
	}
}

func (p *nodePicker) takeWholeFrom(cache, n int) int {
	took := 0
	for _, ci := range p.t.Caches[cache].Cores {
		if took == n {
			break
		}
		c := &p.t.Cores[ci]
		if p.isWhole(c) {
			for _, th := range c.Threads {
				p.take(th)
			}
			took++
		}
	}
	if took > 0 {
		p.markUsed(cache)
	}
	return took
}

// takeThreads takes free threads core by core, from whole or partly used
// cores, in used caches only or anywhere, until want is met.
func (p *nodePicker) takeThreads(whole, usedCachesOnly bool) {
	for _, ci := range p.node.Cores {
		if p.want == 0 {
			return
		}
		c := &p.t.Cores[ci]
		if p.isWhole(c) != whole || (usedCachesOnly && !p.isUsed(c.L3)) {
			continue
		}
		for _, th := range c.Threads {
			if p.want > 0 && p.free.Has(th) {
				p.take(th)
				p.markUsed(c.L3)
			}
		}
	}
}

func (p *nodePicker) take(cpu int) {
	p.free.Clear(cpu)
	p.out.Set(cpu)
	p.want--
}

func (p *nodePicker) isUsed(cache int) bool {
	for _, u := range p.used {
		if u == cache {
			return true
		}
	}
	return false
}

func (p *nodePicker) markUsed(cache int) {
	if !p.isUsed(cache) {
		p.used = append(p.used, cache)
	}
}
