package topology

import "strconv"

// Summary is the machine as `numaspread topology --json` and the plugin's
// /state endpoint print it. CPU sets are Linux cpulist strings.
type Summary struct {
	Online         string        `json:"online"`
	Offline        string        `json:"offline"`
	Isolated       string        `json:"isolated"`
	ThreadsPerCore int           `json:"threadsPerCore"`
	Cores          int           `json:"cores"`
	Sockets        []int         `json:"sockets"`
	Nodes          []NodeSummary `json:"nodes"`
	CPUs           []CPUSummary  `json:"cpus,omitempty"`
}

// NodeSummary is one NUMA node in a Summary.
type NodeSummary struct {
	ID          int    `json:"id"`
	CPUs        string `json:"cpus"`
	Cores       int    `json:"cores"`
	L3Caches    int    `json:"l3Caches"`
	Sockets     []int  `json:"sockets"`
	MemoryBytes uint64 `json:"memoryBytes"`
	// NoMemory marks a node whose meminfo says MemTotal 0 (Node.HasMemory
	// false): the kernel rejects it in cpuset.mems.
	NoMemory  bool           `json:"noMemory,omitempty"`
	Distances map[string]int `json:"distances,omitempty"`
}

// CPUSummary is one online CPU in a Summary.
type CPUSummary struct {
	ID       int    `json:"id"`
	Node     int    `json:"node"`
	Socket   int    `json:"socket"`
	Die      int    `json:"die"`
	Core     int    `json:"core"` // kernel core_id
	L3       int    `json:"l3"`   // kernel cache id, -1 when unknown
	Siblings string `json:"siblings"`
	Isolated bool   `json:"isolated,omitempty"`
}

// Summarize describes t for people and JSON consumers.
func Summarize(t *Topology) Summary {
	s := Summary{
		Online: t.Online.String(), Offline: t.Offline.String(), Isolated: t.Isolated.String(),
		ThreadsPerCore: t.ThreadsPerCore, Cores: len(t.Cores), Sockets: t.Sockets(),
	}
	for _, n := range t.Nodes {
		ns := NodeSummary{ID: n.ID, CPUs: n.CPUs.String(), Cores: len(n.Cores), L3Caches: len(n.Caches),
			Sockets: append([]int{}, n.Sockets...), MemoryBytes: n.MemoryBytes, NoMemory: !n.HasMemory()}
		if n.Distances != nil {
			ns.Distances = make(map[string]int, len(n.Distances))
			for id, d := range n.Distances {
				ns.Distances[strconv.Itoa(id)] = d
			}
		}
		s.Nodes = append(s.Nodes, ns)
	}
	t.Online.ForEach(func(c int) bool {
		core := t.CoreOf(c)
		l3 := -1
		if core.L3 >= 0 {
			l3 = t.Caches[core.L3].ID
		}
		s.CPUs = append(s.CPUs, CPUSummary{ID: c, Node: t.NodeOf(c), Socket: core.Socket, Die: core.Die,
			Core: core.ID, L3: l3, Siblings: core.Mask.String(), Isolated: t.Isolated.Has(c)})
		return true
	})
	return s
}
