// Package policy is numaspread's allocation engine: it decides which CPUs and
// memory nodes a container gets. It keeps the state of exclusive allocations,
// reserved and managed CPUs, implements the distributed and packed strategies
// and derives the shared pool.
//
// The package is pure: no NRI, no I/O, no clocks, no randomness. The same
// topology, state and request always give the same CPUs.
package policy

import (
	"fmt"
	"strconv"
)

// Mode is the allocation strategy.
type Mode string

// Strategies.
const (
	Distributed Mode = "distributed" // spread evenly across NUMA nodes
	Packed      Mode = "packed"      // as few NUMA nodes as possible
)

// Spread says how many NUMA nodes the distributed strategy uses.
type Spread string

// Spreads.
const (
	SpreadAll     Spread = "all"     // every candidate node (capped by MaxNUMANodes)
	SpreadMinimal Spread = "minimal" // the fewest nodes that hold the request evenly (KEP-2902)
)

// FullCores says whether allocations come in whole physical cores.
type FullCores string

// Full-core settings.
const (
	FullCoresPrefer  FullCores = "prefer"  // whole cores when they exist, single threads otherwise
	FullCoresRequire FullCores = "require" // whole cores or fail
	FullCoresOff     FullCores = "off"     // count single threads as units
)

// Memory says which memory nodes a container gets.
type Memory string

// Memory settings.
const (
	MemoryLocal Memory = "local" // the nodes that hold the container's CPUs and have memory (else the nearest with memory)
	MemoryAll   Memory = "all"   // every node with memory
	MemoryNone  Memory = "none"  // leave cpuset.mems alone
)

// Options are the per-request strategy settings. The node's configuration
// gives the defaults; annotations may override Mode, Spread and MaxNUMANodes.
type Options struct {
	Mode         Mode
	Spread       Spread
	MaxNUMANodes int // 0: no cap
	FullCores    FullCores
	Memory       Memory
}

// DefaultOptions are the documented defaults.
func DefaultOptions() Options {
	return Options{Mode: Distributed, Spread: SpreadAll, FullCores: FullCoresPrefer, Memory: MemoryLocal}
}

// Validate reports the first setting that is not one of its allowed values,
// with the parsers' message prefixed by the setting's name.
func (o Options) Validate() error {
	if _, err := ParseMode(string(o.Mode)); err != nil {
		return fmt.Errorf("policy %w", err)
	}
	if _, err := parseSpread(string(o.Spread)); err != nil {
		return fmt.Errorf("spread %w", err)
	}
	if _, err := ParseFullCores(string(o.FullCores)); err != nil {
		return fmt.Errorf("full_cores %w", err)
	}
	if _, err := ParseMemory(string(o.Memory)); err != nil {
		return fmt.Errorf("memory %w", err)
	}
	if o.MaxNUMANodes < 0 {
		return fmt.Errorf("max_numa_nodes %d is negative", o.MaxNUMANodes)
	}
	return nil
}

// ParseMode parses a strategy name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Distributed, Packed:
		return m, nil
	}
	return "", fmt.Errorf("%q is not one of distributed, packed", s)
}

// parseSpread parses a spread name (ApplySpread also takes a number).
func parseSpread(s string) (Spread, error) {
	switch sp := Spread(s); sp {
	case SpreadAll, SpreadMinimal:
		return sp, nil
	}
	return "", fmt.Errorf("%q is not one of all, minimal", s)
}

// ParseFullCores parses a full_cores value.
func ParseFullCores(s string) (FullCores, error) {
	switch f := FullCores(s); f {
	case FullCoresPrefer, FullCoresRequire, FullCoresOff:
		return f, nil
	}
	return "", fmt.Errorf("%q is not one of prefer, require, off", s)
}

// ParseMemory parses a memory value.
func ParseMemory(s string) (Memory, error) {
	switch m := Memory(s); m {
	case MemoryLocal, MemoryAll, MemoryNone:
		return m, nil
	}
	return "", fmt.Errorf("%q is not one of local, all, none", s)
}

// ApplySpread applies a spread value as the annotation writes it: "all" or
// "minimal" keep the configured MaxNUMANodes, and a positive number N is
// spread all capped at N nodes, or at the configured cap when that is
// lower: a pod may ask for fewer nodes than max_numa_nodes, never more.
func (o *Options) ApplySpread(s string) error {
	if sp, err := parseSpread(s); err == nil {
		o.Spread = sp
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1<<16 {
		return fmt.Errorf("%q is not one of all, minimal, or a number of NUMA nodes ≥ 1", s)
	}
	if o.MaxNUMANodes > 0 {
		n = min(n, o.MaxNUMANodes)
	}
	o.Spread, o.MaxNUMANodes = SpreadAll, n
	return nil
}
