package policy

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/numaspread/numaspread/topology"
)

// nodeView is one candidate NUMA node as an allocation sees it.
type nodeView struct {
	node  *topology.Node
	free  int // free CPUs
	units int // free units: whole free cores, or free CPUs when the group size is 1
	take  int // CPUs this allocation takes from the node
	// takeUnits counts the units in take (the rest are single threads).
	takeUnits int
}

func (v *nodeView) left() int { return v.free - v.take }

// geometry is the unit arithmetic of one request.
type geometry struct {
	n       int // CPUs requested
	g       int // group size: threads per core, or 1 with full_cores = off
	units   int // ⌊n/g⌋
	singles int // n mod g
	require bool
}

func (s *State) geometry(req Request) (geometry, error) {
	g := s.topo.ThreadsPerCore
	if req.Options.FullCores == FullCoresOff {
		g = 1
	}
	geo := geometry{n: req.CPUs, g: g, units: req.CPUs / g, singles: req.CPUs % g,
		require: req.Options.FullCores == FullCoresRequire}
	if geo.require && geo.singles != 0 {
		return geo, fmt.Errorf("request of %d CPUs is not a multiple of the %d threads per core (full_cores = require)", req.CPUs, g)
	}
	return geo, nil
}

// nodeViews fills the scratch views for every node with managed CPUs. Its
// cost is one pass over the machine's cores.
func (s *State) nodeViews(free topology.Mask, g int) []nodeView {
	t := s.topo
	views := s.views[:0]
	for i := range t.Nodes {
		node := &t.Nodes[i]
		if !node.CPUs.Intersects(s.managed) {
			continue // CPU-less memory nodes and unmanaged nodes are never candidates
		}
		v := nodeView{node: node}
		for _, ci := range node.Cores {
			core := &t.Cores[ci]
			nfree := freeThreads(core, free)
			v.free += nfree
			if g == 1 {
				v.units += nfree
			} else if isWholeFree(t, core, nfree) {
				v.units++
			}
		}
		views = append(views, v)
	}
	s.views = views
	return views
}

// isWholeFree reports whether core c, nfree of whose threads are free, is a
// whole free core: it has the machine's full ThreadsPerCore threads (an
// efficiency core of a hybrid CPU never is) and all of them are free.
func isWholeFree(t *topology.Topology, c *topology.Core, nfree int) bool {
	return len(c.Threads) == t.ThreadsPerCore && nfree == t.ThreadsPerCore
}

func freeThreads(c *topology.Core, free topology.Mask) int {
	n := 0
	for _, th := range c.Threads {
		if free.Has(th) {
			n++
		}
	}
	return n
}

func (s *State) insufficient(free topology.Mask, n int, format string, args ...any) error {
	e := &InsufficientError{Requested: n, Free: s.freeByNode(free)}
	if format != "" {
		e.Reason = fmt.Sprintf(format, args...)
	}
	return e
}

// distributed spreads the request evenly across NUMA nodes (DESIGN.md,
// "The distributed policy, exactly"). It sets the share (take) of each view
// in s.views, for pickInNodes.
func (s *State) distributed(free topology.Mask, req Request) error {
	geo, err := s.geometry(req)
	if err != nil {
		return err
	}
	views := s.nodeViews(free, geo.g)
	chosen := chooseNodes(views, geo, req.Options)

	sumFree, sumUnits := 0, 0
	for _, v := range chosen {
		sumFree, sumUnits = sumFree+v.free, sumUnits+v.units
	}
	if sumFree < geo.n {
		if len(chosen) < len(views) {
			return s.insufficient(free, geo.n, "the %d NUMA nodes allowed (max_numa_nodes) have %d free", len(chosen), sumFree)
		}
		return s.insufficient(free, geo.n, "")
	}
	if geo.require && sumUnits < geo.units {
		return s.insufficient(free, geo.n, "full_cores = require needs %d whole free cores, there are %d", geo.units, sumUnits)
	}

	units := min(geo.units, sumUnits)
	waterFill(chosen, units, geo.g)
	// Units that whole cores cannot supply are taken as single threads.
	spreadSingles(chosen, geo.singles+(geo.units-units)*geo.g)
	return nil
}

// chooseNodes returns the nodes the request may use, ascending by id.
// It reorders views.
func chooseNodes(views []nodeView, geo geometry, o Options) []*nodeView {
	byUnits := func(tieFree bool) {
		slices.SortStableFunc(views, func(a, b nodeView) int {
			if a.units != b.units {
				return cmp.Compare(b.units, a.units)
			}
			if tieFree && a.free != b.free {
				return cmp.Compare(b.free, a.free)
			}
			return cmp.Compare(a.node.ID, b.node.ID)
		})
	}
	limit := len(views)
	if o.MaxNUMANodes > 0 && o.MaxNUMANodes < limit {
		limit = o.MaxNUMANodes
	}
	k := limit
	if o.Spread == SpreadMinimal {
		byUnits(true)
		k = minimalNodes(views[:limit], geo)
	} else if limit < len(views) {
		byUnits(false)
	}
	chosen := make([]*nodeView, k)
	for i := range chosen {
		chosen[i] = &views[i]
	}
	slices.SortFunc(chosen, func(a, b *nodeView) int { return cmp.Compare(a.node.ID, b.node.ID) })
	return chosen
}

// minimalNodes returns the smallest k for which the first k views (sorted by
// free units, most first) each hold at least ⌊u/k⌋ units, that is the k-th
// does, and together hold the request; len(views) when no k does (spread
// over all of them).
func minimalNodes(views []nodeView, geo geometry) int {
	sumUnits, sumFree := 0, 0
	for k := 1; k <= len(views); k++ {
		v := &views[k-1]
		sumUnits, sumFree = sumUnits+v.units, sumFree+v.free
		if v.units >= geo.units/k && sumUnits >= geo.units && sumFree >= geo.n {
			return k
		}
	}
	return len(views)
}

// waterFill gives each node min(its free units, level), with the level as
// high as total needs (max-min fairness). Units left over by integer
// division go to the nodes with the most free CPUs left, ties to the lower id.
// total must not exceed the nodes' free units.
func waterFill(nodes []*nodeView, total, g int) {
	order := append([]*nodeView(nil), nodes...)
	slices.SortStableFunc(order, func(a, b *nodeView) int { return cmp.Compare(a.units, b.units) })
	remaining, left := total, len(order)
	for i, v := range order {
		share := remaining / left
		if v.units <= share {
			v.takeUnits = v.units
			remaining -= v.units
			left--
			continue
		}
		rest := order[i:]
		for _, w := range rest {
			w.takeUnits = share
		}
		remaining -= share * left
		slices.SortStableFunc(rest, func(a, b *nodeView) int {
			if la, lb := a.free-g*share, b.free-g*share; la != lb {
				return cmp.Compare(lb, la)
			}
			return cmp.Compare(a.node.ID, b.node.ID)
		})
		for j := 0; j < remaining; j++ {
			rest[j].takeUnits++
		}
		break
	}
	for _, v := range nodes {
		v.take = v.takeUnits * g
	}
}

// spreadSingles gives single threads one at a time to the node with the most
// free CPUs left, ties to the lower id. nodes is ascending by id.
func spreadSingles(nodes []*nodeView, singles int) {
	for ; singles > 0; singles-- {
		var best *nodeView
		for _, v := range nodes {
			if v.left() > 0 && (best == nil || v.left() > best.left()) {
				best = v
			}
		}
		if best == nil {
			return // capacity was checked by the caller
		}
		best.take++
	}
}

// packed puts the request on as few nodes as possible: the best-fitting node
// that holds it, otherwise whole nodes (most free first) and the rest on the
// best fit (DESIGN.md, "The packed policy"). It sets the share (take) of
// each view in s.views, for pickInNodes.
func (s *State) packed(free topology.Mask, req Request) error {
	geo, err := s.geometry(req)
	if err != nil {
		return err
	}
	views := s.nodeViews(free, geo.g)
	capacity := func(v *nodeView) int {
		if geo.require {
			return v.units * geo.g
		}
		return v.free
	}
	// bestFit is the node with the fewest free CPUs that still holds want.
	bestFit := func(want int) *nodeView {
		var best *nodeView
		for i := range views {
			v := &views[i]
			if v.take == 0 && capacity(v) >= want && (best == nil || v.free < best.free) {
				best = v
			}
		}
		return best
	}
	rest := geo.n
	for rest > 0 {
		if v := bestFit(rest); v != nil {
			v.take = rest
			rest = 0
			break
		}
		var biggest *nodeView
		for i := range views {
			v := &views[i]
			if v.take == 0 && capacity(v) > 0 && (biggest == nil || v.free > biggest.free) {
				biggest = v
			}
		}
		if biggest == nil {
			break
		}
		biggest.take = capacity(biggest)
		rest -= biggest.take
	}
	if rest > 0 {
		if geo.require {
			return s.insufficient(free, geo.n, "full_cores = require needs %d whole free cores", geo.units)
		}
		return s.insufficient(free, geo.n, "")
	}
	return nil
}
