package plugin

import "github.com/numaspread/numaspread/topology"

// Topology returns the machine the plugin allocates on. It can change once,
// when a pre-installed plugin's Configure names another sysfs.
func (p *Plugin) Topology() *topology.Topology {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.topo
}
