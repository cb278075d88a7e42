// Package churn is numaspread's model-based churn test: a seeded random
// sequence of pod and container lifecycles (creates, starts, stops,
// removes, CRI updates, init containers, container restarts, annotation
// variants, configuration reloads) driven through the mock runtime
// (test/mockruntime, containerd's own NRI adaptation over a real socket)
// against the plugin, in-process or as the built binary, on synthetic
// machines from 16 to 512 CPUs, with faults injected: the plugin killed at
// random points (between requests or while one is in flight) and
// restarted, the runtime restarted, containers removed without a stop,
// cpusets the runtime reports that are empty, overlapping, garbage or name
// CPUs that went offline, and configurations that invalidate running
// allocations.
//
// After every runtime step the invariant checker (test/invariants) checks
// the runtime's model; around every operation a model of DESIGN.md's rules
// (model.go) predicts the plugin's decision (reject, exclusive, shared
// pool) and what each Synchronize must keep and re-allocate, and the
// in-process plugin's own view is compared with the runtime's. The first
// problem stops the run with the seed, the last operations and the state.
//
// Run drives one run; churn_test.go holds the tests (`make test-churn`,
// CHURN_SEED / CHURN_OPS to replay, CHURN_FULL=1 for the 100 000-operation
// scale run). See docs/reliability.md.
package churn
