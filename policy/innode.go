package policy

import (
	"fmt"

	"github.com/numaspread/numaspread/topology"
)

// pickInNodes chooses the CPUs of each node's share (the take of each view
// in s.views, as a strategy set them). free is this allocation's private
// copy of the free set; CPUs taken are removed from it. A share is never
// more than the node's free CPUs (the strategies see to it), so an error
// here is a bug of the policy.
func (s *State) pickInNodes(free topology.Mask) (topology.Mask, error) {
	out := topology.MaskWithCapacity(s.topo.MaxCPU)
	for i := range s.views {
		if v := &s.views[i]; v.take > 0 {
			if err := s.pickInNode(v.node, v.take, free, &out); err != nil {
				return topology.Mask{}, err
			}
		}
	}
	return out, nil
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
//
// It fails, as an internal error, when the plan does not cover want: the
// node has too few free CPUs, or planCaches is wrong.
func (s *State) pickInNode(node *topology.Node, want int, free topology.Mask, out *topology.Mask) error {
	p := nodePicker{t: s.topo, free: free, out: out, want: want}
	threads := s.topo.ThreadsPerCore

	caches := s.cacheScratch[:0]
	wholeNode, partialNode := 0, 0
	for _, ci := range node.Caches {
		c := cacheFree{cache: ci}
		for _, k := range s.topo.Caches[ci].Cores {
			core := &s.topo.Cores[k]
			if nfree := freeThreads(core, free); isWholeFree(s.topo, core, nfree) {
				c.whole++
			} else {
				c.partial += nfree
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
	if p.want != 0 {
		return fmt.Errorf("internal error: node %d: the L3 plan took %d of its share of %d CPUs (%d free)",
			node.ID, want-p.want, want, wholeNode*threads+partialNode)
	}
	return nil
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
			break // the node cannot give it: pickInNode reports the shortfall
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
	return isWholeFree(p.t, c, freeThreads(c, p.free))
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

func (p *nodePicker) take(cpu int) {
	p.free.Clear(cpu)
	p.out.Set(cpu)
	p.want--
}
