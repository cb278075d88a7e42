package plugin

import (
	"fmt"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/topology"
)

// Reload applies a new configuration to new allocations. It changes nothing
// when cfg does not fit the machine, or would leave the shared pool empty
// given the running allocations. Running exclusive containers keep their
// CPUs until they stop, even where the new settings would not give them
// (reserved CPUs that now overlap, for instance); shared containers get the
// new shared pool through unsolicited updates (see sendUnsolicited for how
// a request that overtakes them is handled). It returns the changed keys.
func (p *Plugin) Reload(cfg config.Config) ([]string, error) {
	p.mu.Lock()
	state, defaults, warnings, err := newPolicyState(p.topo, cfg)
	if err != nil {
		p.mu.Unlock()
		return nil, err
	}
	var stranded []*container
	for _, c := range p.containersBySeq() {
		if !c.exclusive {
			continue
		}
		cpus, _ := topology.ParseMask(c.cpus)
		if err := state.Adopt(c.id, cpus); err != nil {
			// Cannot happen while the plugin's records are consistent; if it
			// does, the container is better off in the pool than stranded.
			p.log.WithField("container", c.ref).WithError(err).Error("cannot keep exclusive CPUs across reload: moving to the shared pool")
			stranded = append(stranded, c)
		}
	}
	// The running allocations stay, so the new settings (reserved CPUs kept
	// out of the pool with strict_reserved, fewer allowed CPUs) may leave
	// nothing for shared containers: such a configuration does not fit now.
	if pool := state.SharedPool(); pool.IsEmpty() {
		p.mu.Unlock()
		return nil, fmt.Errorf("the shared pool would be empty: running exclusive containers hold %s, the new configuration leaves no other CPU for shared containers (try again once some have stopped)", state.Held())
	}
	for _, c := range stranded {
		c.exclusive = false
	}
	changed := config.Diff(p.cfg, cfg)
	p.cfg, p.state, p.defaults = cfg, state, defaults
	cpus, mems := p.sharedCPUSet()
	updates := p.sharedUpdates("", cpus, mems)
	p.gen++
	gen := p.gen
	p.mu.Unlock()

	// The changed keys are the caller's to log (the reload watcher's
	// "configuration file reloaded" line).
	p.log.WithField("updates", len(updates)).Info("configuration reloaded")
	p.logWarnings(cfg, warnings)
	if len(updates) > 0 {
		p.sendUnsolicited(updates, gen)
	}
	return changed, nil
}
