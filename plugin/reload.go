package plugin

import (
	"github.com/sirupsen/logrus"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/topology"
)

// Reload applies a new configuration to new allocations. It changes nothing
// when cfg does not fit the machine. Running exclusive containers keep their
// CPUs until they stop, even where the new settings would not give them
// (reserved CPUs that now overlap, for instance); shared containers get the
// new shared pool through unsolicited updates. It returns the changed keys.
func (p *Plugin) Reload(cfg config.Config) ([]string, error) {
	p.mu.Lock()
	state, defaults, err := newPolicyState(p.topo, cfg)
	if err != nil {
		p.mu.Unlock()
		return nil, err
	}
	for _, c := range p.containersBySeq() {
		if !c.exclusive {
			continue
		}
		cpus, _ := topology.ParseMask(c.cpus)
		if err := state.Adopt(c.id, cpus); err != nil {
			// Cannot happen while the plugin's records are consistent; if it
			// does, the container is better off in the pool than stranded.
			p.log.WithField("container", c.ref).WithError(err).Error("cannot keep exclusive CPUs across reload: moving to the shared pool")
			c.exclusive = false
		}
	}
	changed := config.Diff(p.cfg, cfg)
	p.cfg, p.state, p.defaults = cfg, state, defaults
	updates := p.sharedUpdates("")
	p.mu.Unlock()

	p.log.WithFields(logrus.Fields{"changed": changed, "updates": len(updates)}).Info("configuration reloaded")
	if len(updates) > 0 {
		p.sendUnsolicited(updates)
	}
	return changed, nil
}
