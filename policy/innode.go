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

// cacheFree is what one L3 cache of a node can give to one allocation.
type cacheFree struct {
	cache   int // index into Topology.Caches
	whole   int // whole free cores
	partial int // free threads of cores that are not whole (partly used, or short of threads)
	// What the plan takes from it: whole-core slots (the last slot of the
	// plan may be split) and threads of partly used cores.
	takeWhole, takePartial int
	picked                 bool
}

// nodePicker takes CPUs of one node for one allocation.
type nodePicker struct {
	t    *topology.Topology
	node *topology.Node
	free topology.Mask // shared with the caller: taken CPUs are cleared
	out  *topology.Mask
	want int // CPUs still to take
}

// pickInNode takes want CPUs of node, core by core (DESIGN.md step 4), for
// any number of threads per core (with one thread per core every free CPU
// is a whole core):
//
//   - the share is w whole free cores (as many as it has a core's worth
//     for and the node has), then single threads: from partly used cores
//     first, so that whole cores stay whole, and only when those run out
//     from one more whole core;
//   - the caches that supply it are chosen best fit first: the cache with
//     the fewest free whole cores (then partly used threads) that holds the
//     whole rest; failing that, the cache that holds the most of the rest,
//     and again; ties to the lower CPU ids;
//   - inside a cache, the lowest CPU ids.
func (s *State) pickInNode(node *topology.Node, want int, free topology.Mask, out *topology.Mask) {
	p := nodePicker{t: s.topo, node: node, free: free, out: out, want: want}
	threads := max(s.topo.ThreadsPerCore, 1)

	caches := s.cacheScratch[:0]
	wholeNode, partialNode := 0, 0
	for _, ci := range node.Caches {
		c := cacheFree{cache: ci}
		for _, k := range s.topo.Caches[ci].Cores {
			core := &s.topo.Cores[k]
			if p.isWhole(core) {
				c.whole++
			} else {
				c.partial += freeThreads(core, free)
			}
		}
		wholeNode, partialNode = wholeNode+c.whole, partialNode+c.partial
		caches = append(caches, c)
	}
	s.cacheScratch = caches

	wholeCores := min(want/threads, wholeNode)
	singles := want - wholeCores*threads
	fromPartial := min(singles, partialNode)
	split := singles - fromPartial // threads of one more whole core (0 < split < threads)
	slots := wholeCores
	if split > 0 {
		slots++
	}
	last := planCaches(caches, slots, fromPartial, threads)
	for i := range caches {
		c := &caches[i]
		// The partly used threads first: the split core must not count as one.
		p.takePartial(c.cache, c.takePartial)
		lastThreads := threads
		if i == last && split > 0 {
			lastThreads = split
		}
		p.takeWhole(c.cache, c.takeWhole, lastThreads)
	}
	// The plan covers the share whenever the counts above are right; this
	// is a safety net that keeps want exact whatever happens.
	p.takeThreads(false)
	p.takeThreads(true)
}

// planCaches sets, best fit first, how many whole-core slots and threads of
// partly used cores each cache gives, and returns the index of the cache
// picked last among those that give whole cores (-1 when none does): the
// plan's last slot, split when the share ends with a part of a core. caches
// is in the node's order (ascending by first CPU), so ties go to lower ids.
func planCaches(caches []cacheFree, slots, partial, threads int) int {
	last := -1
	for slots > 0 || partial > 0 {
		fit, most, mostCover := -1, -1, 0
		for i := range caches {
			c := &caches[i]
			if c.picked {
				continue
			}
			if c.whole >= slots && c.partial >= partial {
				if fit < 0 || c.whole < caches[fit].whole ||
					(c.whole == caches[fit].whole && c.partial < caches[fit].partial) {
					fit = i
				}
			}
			if cover := min(c.whole, slots)*threads + min(c.partial, partial); cover > mostCover {
				most, mostCover = i, cover
			}
		}
		pick := fit
		if pick < 0 {
			pick = most
		}
		if pick < 0 {
			break // the node cannot give it: the safety net takes what is left
		}
		c := &caches[pick]
		c.picked = true
		c.takeWhole, c.takePartial = min(c.whole, slots), min(c.partial, partial)
		slots, partial = slots-c.takeWhole, partial-c.takePartial
		if c.takeWhole > 0 {
			last = pick
		}
	}
	return last
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

// takeWhole takes n whole free cores of cache, lowest ids first, and of
// the last of them only its lastThreads lowest threads.
func (p *nodePicker) takeWhole(cache, n, lastThreads int) {
	for _, ci := range p.t.Caches[cache].Cores {
		if n == 0 {
			return
		}
		c := &p.t.Cores[ci]
		if !p.isWhole(c) {
			continue
		}
		n--
		threads := c.Threads
		if n == 0 {
			threads = threads[:lastThreads]
		}
		for _, th := range threads {
			p.take(th)
		}
	}
}

// takePartial takes n free threads of cache's cores that are not whole,
// lowest ids first.
func (p *nodePicker) takePartial(cache, n int) {
	for _, ci := range p.t.Caches[cache].Cores {
		if n == 0 {
			return
		}
		c := &p.t.Cores[ci]
		if p.isWhole(c) {
			continue
		}
		for _, th := range c.Threads {
			if n > 0 && p.free.Has(th) {
				p.take(th)
				n--
			}
		}
	}
}

// takeThreads takes free threads of whole or of partly used cores, lowest
// ids first, until want is met.
func (p *nodePicker) takeThreads(whole bool) {
	for _, ci := range p.node.Cores {
		if p.want == 0 {
			return
		}
		c := &p.t.Cores[ci]
		if p.isWhole(c) != whole {
			continue
		}
		for _, th := range c.Threads {
			if p.want > 0 && p.free.Has(th) {
				p.take(th)
			}
		}
	}
}

func (p *nodePicker) take(cpu int) {
	p.free.Clear(cpu)
	p.out.Set(cpu)
	p.want--
}
