package metrics

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/numaspread/numaspread/plugin"
	"github.com/numaspread/numaspread/topology"
)

// State is the running plugin as /state serves it and `numaspread status`
// draws it. CPU sets are Linux cpulist strings. The topology carries the
// per-CPU list, so that a remote client can rebuild the machine (Machine)
// without its sysfs.
type State struct {
	Version string `json:"version"`
	// Synced is true when the plugin is registered with the runtime and has
	// synchronized; Ready adds that the last config reload did not fail.
	Synced     bool             `json:"synced"`
	Ready      bool             `json:"ready"`
	NotReady   string           `json:"notReady,omitempty"` // why not, when not Ready
	LastReload *ReloadStatus    `json:"lastReload,omitempty"`
	Topology   topology.Summary `json:"topology"`
	Managed    string           `json:"managed"`  // the CPUs numaspread manages
	Reserved   string           `json:"reserved"` // reserved_cpus
	Shared     SharedPool       `json:"shared"`
	Nodes      []NodeState      `json:"nodes"`
	Containers []Container      `json:"containers"` // oldest first
}

// ReloadStatus is the outcome of the last configuration reload.
type ReloadStatus struct {
	Time    time.Time `json:"time"`
	OK      bool      `json:"ok"`
	Error   string    `json:"error,omitempty"`
	Changed []string  `json:"changed,omitempty"` // "policy.spread: all → minimal"
}

// SharedPool is the shared pool: the managed CPUs no container holds
// exclusively (without the reserved ones when strict_reserved).
type SharedPool struct {
	CPUs  string `json:"cpus"`
	Count int    `json:"count"`
}

// NodeState counts one NUMA node's online CPUs; the four counts add up to
// them. The metrics of the same names come from the same numbers.
type NodeState struct {
	ID int `json:"id"`
	// Exclusive CPUs are held by containers.
	Exclusive int `json:"exclusive"`
	// Free CPUs are managed, not reserved and not held: what exclusive
	// requests can still get (they serve the shared pool meanwhile).
	Free int `json:"free"`
	// Reserved CPUs (reserved_cpus) not held by a container.
	Reserved int `json:"reserved"`
	// Unmanaged CPUs are online but outside the managed set (isolated or
	// left out of allowed_cpus).
	Unmanaged int `json:"unmanaged"`
}

// Container is one running container as the plugin placed it.
type Container struct {
	ID        string `json:"id"`
	PodID     string `json:"podId"`
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	Name      string `json:"name"`
	Class     string `json:"class"`            // "exclusive" or "shared"
	Policy    string `json:"policy,omitempty"` // the strategy that chose exclusive CPUs
	CPUs      string `json:"cpus"`
	Mems      string `json:"mems"`
}

// Classes of containers, as State and the containers metric name them.
const (
	ClassExclusive = "exclusive"
	ClassShared    = "shared"
)

// nodeCounts computes the per-node counts of a snapshot.
func nodeCounts(t *topology.Topology, s plugin.Snapshot, held topology.Mask) []NodeState {
	out := make([]NodeState, 0, len(t.Nodes))
	for _, n := range t.Nodes {
		if !n.HasCPUs() {
			continue
		}
		ns := NodeState{ID: n.ID}
		ns.Exclusive = n.CPUs.CountAnd(held)
		rest := n.CPUs.Difference(held)
		ns.Reserved = rest.CountAnd(s.Reserved)
		rest.SubtractInPlace(s.Reserved)
		ns.Free = rest.CountAnd(s.Managed)
		ns.Unmanaged = rest.Count() - ns.Free
		out = append(out, ns)
	}
	return out
}

// heldCPUs is the union of the exclusive containers' CPUs.
func heldCPUs(s plugin.Snapshot) topology.Mask {
	var held topology.Mask
	for _, c := range s.Containers {
		if c.Exclusive {
			m, err := topology.ParseMask(c.CPUs)
			if err == nil {
				held.UnionInPlace(m)
			}
		}
	}
	return held
}

// buildState assembles a State from one snapshot.
func buildState(t *topology.Topology, sum topology.Summary, s plugin.Snapshot) State {
	st := State{
		Version:    Version,
		Synced:     s.Synced,
		Topology:   sum,
		Managed:    s.Managed.String(),
		Reserved:   s.Reserved.String(),
		Shared:     SharedPool{CPUs: s.Shared.String(), Count: s.Shared.Count()},
		Nodes:      nodeCounts(t, s, heldCPUs(s)),
		Containers: make([]Container, 0, len(s.Containers)),
	}
	for _, c := range s.Containers {
		ns, pod, name := splitRef(c.Name)
		class := ClassShared
		if c.Exclusive {
			class = ClassExclusive
		}
		st.Containers = append(st.Containers, Container{
			ID: c.ID, PodID: c.PodID, Namespace: ns, Pod: pod, Name: name,
			Class: class, Policy: c.Policy, CPUs: c.CPUs, Mems: c.Mems,
		})
	}
	return st
}

// splitRef splits the plugin's "namespace/pod/container" reference. None of
// the three may contain a slash in Kubernetes.
func splitRef(ref string) (ns, pod, name string) {
	parts := strings.SplitN(ref, "/", 3)
	switch len(parts) {
	case 3:
		return parts[0], parts[1], parts[2]
	case 2:
		return "", parts[0], parts[1]
	}
	return "", "", ref
}

// Ref is the container's "namespace/pod/container" name.
func (c Container) Ref() string { return c.Namespace + "/" + c.Pod + "/" + c.Name }

// Machine rebuilds the topology from the State's summary (which must carry
// the per-CPU list), so that a client can draw the map without the plugin's
// sysfs.
func (s *State) Machine() (*topology.Topology, error) {
	sum := s.Topology
	if len(sum.CPUs) == 0 {
		return nil, fmt.Errorf("the state has no per-CPU topology")
	}
	var m topology.Machine
	var err error
	if m.Offline, err = topology.ParseMask(sum.Offline); err != nil {
		return nil, fmt.Errorf("offline CPUs: %w", err)
	}
	if m.Isolated, err = topology.ParseMask(sum.Isolated); err != nil {
		return nil, fmt.Errorf("isolated CPUs: %w", err)
	}
	ids := make([]int, 0, len(sum.Nodes))
	for _, n := range sum.Nodes {
		ids = append(ids, n.ID)
	}
	sort.Ints(ids)
	for _, n := range sum.Nodes {
		// A summary says a node has no memory (NoMemory) only when its
		// meminfo was read; bytes > 0 were read too.
		ni := topology.NodeInfo{ID: n.ID, MemoryBytes: n.MemoryBytes, MemoryKnown: n.MemoryBytes > 0 || n.NoMemory}
		if len(n.Distances) == len(ids) {
			for _, id := range ids {
				ni.Distances = append(ni.Distances, n.Distances[strconv.Itoa(id)])
			}
		}
		m.Nodes = append(m.Nodes, ni)
	}
	for _, c := range sum.CPUs {
		sib, err := topology.ParseMask(c.Siblings)
		if err != nil {
			return nil, fmt.Errorf("CPU %d siblings: %w", c.ID, err)
		}
		m.CPUs = append(m.CPUs, topology.CPUInfo{ID: c.ID, CoreID: c.Core, Socket: c.Socket, Die: c.Die,
			Node: c.Node, L3: c.L3, Siblings: sib})
	}
	return topology.New(m)
}
