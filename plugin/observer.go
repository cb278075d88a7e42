package plugin

import "time"

// Observer is told what the plugin does; the metrics package implements it.
// Its methods run on the request path, under the plugin's lock: they must be
// fast and must not call back into the plugin.
type Observer interface {
	// Request reports one handled NRI request; event is the NRI name, e.g.
	// "CreateContainer".
	Request(event string, took time.Duration, err error)
	// Decision reports the outcome of placing one container: one of the
	// Outcome constants.
	Decision(outcome string)
}

// Outcomes of placing a container, as Observer.Decision reports them.
const (
	OutcomeExclusive          = "exclusive"           // got exclusive CPUs
	OutcomeShared             = "shared"              // not entitled (or opted out): shared pool
	OutcomeFallbackShared     = "fallback_shared"     // entitled, too few CPUs, on_insufficient = shared
	OutcomeRejectInsufficient = "reject_insufficient" // entitled, too few CPUs: creation failed
	OutcomeRejectAnnotation   = "reject_annotation"   // a bad annotation value: creation failed
	OutcomeRejectOther        = "reject_other"        // any other error (full_cores = require, …)
)

// SetObserver installs o (nil removes it). Call it before Run.
func (p *Plugin) SetObserver(o Observer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.observer = o
}

// observe reports a finished request; use it as
// defer p.observe("CreateContainer", time.Now(), &err).
func (p *Plugin) observe(event string, start time.Time, err *error) {
	if p.observer != nil {
		p.observer.Request(event, time.Since(start), *err)
	}
}

func (p *Plugin) decided(outcome string) {
	if p.observer != nil {
		p.observer.Decision(outcome)
	}
}

// observeLocked is observe for handlers that do not hold the lock.
func (p *Plugin) observeLocked(event string, start time.Time, err *error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.observe(event, start, err)
}
