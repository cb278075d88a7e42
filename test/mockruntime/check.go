package mockruntime

import (
	"context"
	"fmt"
	"time"
)

// Step names one thing that changed (or tried to change) the model.
type Step struct {
	Seq int    // 1, 2, … in the order steps finished
	Op  string // "RunPod", "CreateContainer", "Synchronize", "UpdateContainers", …
	ID  string // the pod or container concerned, if any
	Err error  // the error the request returned, if any
}

func (s Step) String() string {
	out := fmt.Sprintf("#%d %s", s.Seq, s.Op)
	if s.ID != "" {
		out += " " + s.ID
	}
	if s.Err != nil {
		out += fmt.Sprintf(" (failed: %v)", s.Err)
	}
	return out
}

// CheckFunc inspects the model after a step and returns an error for a
// violated invariant. It runs with the runtime's NRI lock held, so it must
// only read the snapshot, never call the Runtime's request methods.
type CheckFunc func(Snapshot) error

// Violation is a CheckFunc error, with the step after which it happened.
type Violation struct {
	Step Step
	Err  error
}

func (v Violation) String() string { return fmt.Sprintf("after %v: %v", v.Step, v.Err) }

// Violations returns all recorded invariant violations.
func (r *Runtime) Violations() []Violation {
	r.checkMu.Lock()
	defer r.checkMu.Unlock()
	return append([]Violation(nil), r.violations...)
}

// TakeViolations returns the recorded violations and forgets them, for a
// test that provokes one on purpose.
func (r *Runtime) TakeViolations() []Violation {
	r.checkMu.Lock()
	defer r.checkMu.Unlock()
	v := r.violations
	r.violations = nil
	return v
}

// FailedUpdates returns the container updates the model could not apply
// (the most recent maxFailedUpdates, 256).
func (r *Runtime) FailedUpdates() []FailedUpdate {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]FailedUpdate(nil), r.failed...)
}

// Snapshot returns a copy of the model now.
func (r *Runtime) Snapshot() Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snapshotLocked(Step{Seq: r.steps, Op: "Snapshot"})
}

// Containers returns the containers in creation order, stopped ones
// included until removed.
func (r *Runtime) Containers() []ContainerInfo {
	return r.Snapshot().Containers
}

// Container returns one container's current view.
func (r *Runtime) Container(id string) (ContainerInfo, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.ctrs[id]
	if !ok {
		return ContainerInfo{}, false
	}
	return e.info(), true
}

// WaitFor blocks until cond holds for the model, re-checking after every
// change. It is how a test waits for an unsolicited update that a plugin
// sends from its own goroutine.
func (r *Runtime) WaitFor(ctx context.Context, cond func(Snapshot) bool) error {
	for {
		r.mu.Lock()
		s, ch := r.snapshotLocked(Step{Seq: r.steps, Op: "WaitFor"}), r.changed
		r.mu.Unlock()
		if cond(s) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("mockruntime: condition not met: %w", ctx.Err())
		}
	}
}

// notifyLocked wakes WaitFor and WaitForSync; the caller holds r.mu.
func (r *Runtime) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// step records that op finished and runs the checks on the model. The
// model is copied only when there are checks to run: at 1000 containers a
// copy costs about as much as the request itself.
func (r *Runtime) step(op, id string, err error) {
	checks := len(r.checks) // fixed at New

	r.mu.Lock()
	r.steps++
	st := Step{Seq: r.steps, Op: op, ID: id, Err: err}
	var s Snapshot
	if checks > 0 {
		s = r.snapshotLocked(st)
	}
	r.notifyLocked()
	r.mu.Unlock()
	if checks == 0 {
		return
	}

	r.checkMu.Lock()
	defer r.checkMu.Unlock()
	for _, fn := range r.checks {
		if verr := fn(s); verr != nil {
			r.violations = append(r.violations, Violation{Step: s.Step, Err: verr})
		}
	}
}

// maxFailedUpdates bounds the failed updates the runtime remembers, so that
// a long churn run does not grow without bound.
const maxFailedUpdates = 256

// recordFailedLocked remembers a failed update; the caller holds r.mu.
func (r *Runtime) recordFailedLocked(f FailedUpdate) {
	if len(r.failed) == maxFailedUpdates {
		r.failed = append(r.failed[:0], r.failed[1:]...)
	}
	r.failed = append(r.failed, f)
}

// Steps is the number of steps recorded so far.
func (r *Runtime) Steps() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.steps
}

// timed reports an adaptation call's duration to WithRoundTripObserver.
func (r *Runtime) timed(op string, start time.Time) {
	if r.roundTrip != nil {
		r.roundTrip(op, time.Since(start))
	}
}
