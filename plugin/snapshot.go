package plugin

import "github.com/numaspread/numaspread/topology"

// Snapshot is the plugin's view of the node at one instant.
type Snapshot struct {
	Containers []ContainerState // oldest first
	Shared     topology.Mask    // the shared pool
	Reserved   topology.Mask
	Managed    topology.Mask
	Synced     bool
}

// ContainerState is one running container as the plugin placed it.
type ContainerState struct {
	ID        string
	PodID     string
	Name      string // namespace/pod/container
	Exclusive bool
	Policy    string // the strategy that chose its CPUs ("" when shared)
	CPUs      string
	Mems      string
}

// Snapshot returns the current allocations.
func (p *Plugin) Snapshot() Snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Snapshot{Shared: p.state.SharedPool(), Reserved: p.state.Reserved(), Managed: p.state.Managed(), Synced: p.synced}
	for _, c := range p.containersBySeq() {
		s.Containers = append(s.Containers, ContainerState{ID: c.id, PodID: c.podID, Name: c.ref, Exclusive: c.exclusive, Policy: c.policy, CPUs: c.cpus, Mems: c.mems})
	}
	return s
}
