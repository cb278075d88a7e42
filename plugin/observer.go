package plugin

import (
	"fmt"
	"time"

	"github.com/containerd/nri/pkg/api"
)

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

// request is one NRI request being handled, for the observer and for
// recoverPanic.
type request struct {
	event string
	start time.Time
	// What the request is about, for the panic message (built only then):
	// a container, or Synchronize's counts.
	pod          *api.PodSandbox
	ctr          *api.Container
	sync         bool
	npods, nctrs int
	// observed is set once the observer was told of the request (or was
	// being told when it panicked): a request is reported once.
	observed bool
}

// newRequest starts a container request.
func newRequest(event string, pod *api.PodSandbox, ctr *api.Container) request {
	return request{event: event, start: time.Now(), pod: pod, ctr: ctr}
}

// target names what the request is about.
func (r *request) target() string {
	if r.sync {
		return fmt.Sprintf("%d pods, %d containers", r.npods, r.nctrs)
	}
	return containerRef(r.pod, r.ctr)
}

// observe reports a finished request, once; the caller holds p.mu. Call it
// at the end of the handler's locked section, so that a panic before it is
// reported as an error by recoverPanic rather than as a success.
func (p *Plugin) observe(r *request, err error) {
	if r.observed {
		return
	}
	r.observed = true
	if p.observer != nil {
		p.observer.Request(r.event, time.Since(r.start), err)
	}
}

// observePanic reports a request that panicked before the observer was told
// of it, with the error it was answered with. The handler's lock is
// released by then; a panic in the observer is logged, not raised again.
func (p *Plugin) observePanic(r *request, err error) {
	if r.observed {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			p.log.WithField("request", r.event).Errorf("internal error (panic) reporting a failed request: %v", v)
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.observe(r, err)
}

func (p *Plugin) decided(outcome string) {
	if p.observer != nil {
		p.observer.Decision(outcome)
	}
}
