package churn

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/containerd/nri/pkg/api"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/plugin"
	"github.com/numaspread/numaspread/test/invariants"
	"github.com/numaspread/numaspread/test/mockruntime"
	"github.com/numaspread/numaspread/test/pluginproc"
	"github.com/numaspread/numaspread/topology"
	"github.com/numaspread/numaspread/topology/synth"
)

// Options configure one churn run.
type Options struct {
	Seed    int64
	Ops     int        // operations to perform
	Machine synth.Spec // the machine (default synth.SmallTwoNode())
	// MaxLive bounds the live containers (default: about 1.5 per managed
	// CPU, at most 1000).
	MaxLive int
	// Faults injects faults (plugin kills and restarts, runtime restarts,
	// tampered cpusets, offline CPUs, invalidating configurations) into
	// the churn, about one per FaultEvery operations (default 40).
	Faults     bool
	FaultEvery int
	// Binary runs the numaspread binary instead of an in-process plugin;
	// kills are SIGKILL, and configuration changes happen through
	// restarts (there is no in-process Reload to call).
	Binary string
	// WorkDir holds the binary's sysfs trees and configuration files.
	WorkDir string
	// Logf, if set, receives progress lines.
	Logf func(format string, args ...any)
	// Progress logs a line every Progress operations (0: never).
	Progress int
	// CrossCheckEvery compares the in-process plugin's own view (its
	// Snapshot) with the runtime's every so many operations (default 1).
	CrossCheckEvery int
	// Samples is how many RSS/goroutine samples to take over the run,
	// besides the one at the start (default 4).
	Samples int
	// Replay is the command that replays this run, for failure messages.
	Replay string
	// HeapProfiles, if set, is a directory where heap profiles are written
	// at the middle and the end of the run (heap-mid.pprof, heap-end.pprof;
	// compare them with go tool pprof -base).
	HeapProfiles string
	// Scale shapes the workload for many live containers: mostly small
	// Guaranteed requests and shared pods, and operations that fill the
	// node up to MaxLive and then hold it there.
	Scale bool
}

// Report is what a run did and measured.
type Report struct {
	Seed        int64
	Machine     string
	Ops         int            // operations performed
	Steps       int            // runtime steps checked by the invariant checker
	OpCounts    map[string]int // operations by kind
	FaultCounts map[string]int // faults by kind
	Outcomes    map[string]int // creation outcomes the model predicted and saw
	Syncs       int            // successful Synchronize steps
	Violations  int            // invariant violations (the run stops at the first)
	MaxLive     int            // the most live containers at once
	Samples     []Sample
	// Request latencies: the plugin's CreateContainer handler (its
	// Observer) and the runtime's CreateContainer round trip (adaptation →
	// ttRPC → plugin → reply, without the mock runtime's bookkeeping), for
	// creations while the plugin was connected: all of them, and split into
	// those that took exclusive CPUs (the pool shrinks: the reply carries an
	// update per shared container) and the others.
	CreateHandler, CreateRoundTrip       Latency
	HandlerExclusive, RoundTripExclusive Latency
	HandlerOther, RoundTripOther         Latency
	Duration                             time.Duration
}

// Sample is the process's memory and goroutines at one point of the run,
// after runtime.GC.
type Sample struct {
	Op         int
	Live       int   // live containers
	Pods       int   // pods in the runtime's model
	Containers int   // containers in the runtime's model (stopped ones included)
	RSS        int64 // VmRSS, bytes (after runtime.GC and debug.FreeOSMemory)
	HeapInuse  uint64
	Goroutines int
}

// Latency summarises durations.
type Latency struct {
	N             int
	P50, P99, Max time.Duration
}

func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d, machine %s: %d operations, %d checked steps, %d syncs, %d violations, at most %d live containers, %s\n",
		r.Seed, r.Machine, r.Ops, r.Steps, r.Syncs, r.Violations, r.MaxLive, r.Duration.Round(time.Millisecond))
	fmt.Fprintf(&b, "  operations: %s\n", counts(r.OpCounts))
	fmt.Fprintf(&b, "  faults:     %s\n", counts(r.FaultCounts))
	fmt.Fprintf(&b, "  creations:  %s\n", counts(r.Outcomes))
	for _, l := range []struct {
		name string
		l    Latency
	}{
		{"CreateContainer handler   ", r.CreateHandler}, {"  exclusive (pool change)", r.HandlerExclusive}, {"  other                  ", r.HandlerOther},
		{"CreateContainer round trip", r.CreateRoundTrip}, {"  exclusive (pool change)", r.RoundTripExclusive}, {"  other                  ", r.RoundTripOther},
	} {
		fmt.Fprintf(&b, "  %s n=%-6d p50=%-10v p99=%-10v max=%v\n", l.name, l.l.N, l.l.P50.Round(time.Microsecond), l.l.P99.Round(time.Microsecond), l.l.Max.Round(time.Microsecond))
	}
	for _, s := range r.Samples {
		fmt.Fprintf(&b, "  op %6d: live %4d (model: %4d pods, %4d containers), RSS %6.1f MiB, heap in use %6.1f MiB, goroutines %d\n",
			s.Op, s.Live, s.Pods, s.Containers, float64(s.RSS)/(1<<20), float64(s.HeapInuse)/(1<<20), s.Goroutines)
	}
	return b.String()
}

// TotalFaults is the number of faults injected.
func (r *Report) TotalFaults() int {
	n := 0
	for _, v := range r.FaultCounts {
		n += v
	}
	return n
}

func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// Failure is a run's first problem, with what is needed to replay it.
type Failure struct {
	Seed    int64
	Op      int
	Problem string
	Recent  []string // the last operations
	Steps   []string // the last runtime steps
	State   string   // the runtime's model, as the checker reads it
	Logs    string   // the tail of the plugin's logs
	Replay  string
}

func (f *Failure) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "churn seed %d, operation %d: %s\n", f.Seed, f.Op, f.Problem)
	if f.Replay != "" {
		fmt.Fprintf(&b, "replay: %s\n", f.Replay)
	}
	fmt.Fprintf(&b, "last operations:\n  %s\n", strings.Join(f.Recent, "\n  "))
	fmt.Fprintf(&b, "last runtime steps:\n  %s\n", strings.Join(f.Steps, "\n  "))
	if f.State != "" {
		fmt.Fprintf(&b, "state:\n%s", f.State)
	}
	if f.Logs != "" {
		fmt.Fprintf(&b, "plugin log tail:\n%s", f.Logs)
	}
	return b.String()
}

// Run performs one churn run. It returns the report, and a *Failure for
// the first invariant violation or wrong decision.
func Run(o Options) (rep *Report, err error) {
	r, err := newRunner(o)
	if err != nil {
		return nil, err
	}
	defer r.close()
	defer func() {
		if p := recover(); p != nil {
			if f, ok := p.(*Failure); ok {
				err = f
				rep = r.report()
				return
			}
			panic(p)
		}
	}()
	r.run()
	return r.report(), nil
}

// cState is what the driver knows of a container.
type cState int

const (
	cPending cState = iota // not created yet (or its creation failed)
	cLive                  // created or running (see the runtime for which)
	cStopped               // stopped (StopContainer relayed, or exited silently)
	cRemoved
	cFailed // its creation was rejected and the kubelet gave up (backed off)
)

type ctr struct {
	c     *mockruntime.Container
	pod   *podState
	state cState
	init  bool
}

type podState struct {
	pod  *mockruntime.Pod
	ctrs []*ctr
}

type runner struct {
	o    Options
	rng  *rand.Rand
	rt   *mockruntime.Runtime
	chk  *invariants.Checker
	base synth.Spec
	spec synth.Spec
	topo *topology.Topology

	cfgText string
	cfg     config.Config
	m       machine

	pl      *pluginproc.Proc
	logs    *pluginproc.Logs
	bin     *binaryHost
	rtDown  bool
	nextPod int

	pods   []*podState
	podMap map[string]*mockruntime.Pod // by sandbox id, for the model

	op       int
	recent   []string
	stepsMu  sync.Mutex
	steps    []string // the last runtime steps, for failure reports
	opShared int      // r.op, for recordStep (runs on the runtime's goroutines)
	settling int      // operations since the settling window opened

	rep     Report
	started time.Time

	latMu     sync.Mutex
	handler   reservoir
	roundTrip reservoir
	// by kind: [0] exclusive (the pool changes), [1] other
	handlerBy, roundTripBy [2]reservoir
	lastOutcome            string // the plugin's last Decision
	creating               int    // the kind of the creation in flight
	measuring              bool
}

// reservoir keeps a uniform sample of at most reservoirSize durations
// (Vitter's algorithm R), so that a long run measures in constant memory.
type reservoir struct {
	seen int
	ds   []time.Duration
	rng  *rand.Rand
}

const reservoirSize = 20000

func (s *reservoir) add(d time.Duration) {
	s.seen++
	if len(s.ds) < reservoirSize {
		s.ds = append(s.ds, d)
		return
	}
	if s.rng == nil {
		s.rng = rand.New(rand.NewSource(1))
	}
	if i := s.rng.Intn(s.seen); i < reservoirSize {
		s.ds[i] = d
	}
}

func (s *reservoir) summary() Latency {
	l := summarise(s.ds)
	l.N = s.seen
	return l
}

func newRunner(o Options) (*runner, error) {
	if o.Machine.Name == "" {
		o.Machine = synth.SmallTwoNode()
	}
	if o.FaultEvery <= 0 {
		o.FaultEvery = 40
	}
	if o.CrossCheckEvery <= 0 {
		o.CrossCheckEvery = 1
	}
	if o.Samples <= 0 {
		o.Samples = 4
	}
	r := &runner{
		o: o, rng: rand.New(rand.NewSource(o.Seed)), base: o.Machine, spec: o.Machine,
		podMap: map[string]*mockruntime.Pod{}, logs: &pluginproc.Logs{Max: 64 << 10},
	}
	r.rep = Report{Seed: o.Seed, Machine: o.Machine.Name, OpCounts: map[string]int{}, FaultCounts: map[string]int{}, Outcomes: map[string]int{}}
	var err error
	if r.topo, err = r.spec.Topology(); err != nil {
		return nil, err
	}
	if r.o.MaxLive <= 0 {
		r.o.MaxLive = min(1000, max(12, r.topo.Online.Count()*3/2))
	}
	for {
		r.cfgText = r.randomConfig(false)
		if r.cfg, err = config.Parse("churn.toml", []byte(r.cfgText)); err != nil {
			return nil, err
		}
		if r.m, err = newMachine(r.topo, r.cfg); err == nil {
			break
		}
	}
	if r.chk, err = invariants.New(r.topo, r.cfg); err != nil {
		return nil, err
	}
	r.chk.InferFallbacks()
	if o.Binary != "" {
		if o.WorkDir == "" {
			return nil, errors.New("churn: Binary needs WorkDir")
		}
		r.bin = &binaryHost{binary: o.Binary, dir: o.WorkDir}
	}
	r.rt, err = mockruntime.New(
		mockruntime.WithCheck(r.chk.Check),
		mockruntime.WithCheck(r.recordStep),
		mockruntime.WithShuffledSync(o.Seed),
		mockruntime.WithRoundTripObserver(r.observeRoundTrip),
	)
	if err != nil {
		return nil, err
	}
	if err := r.rt.Start(); err != nil {
		r.rt.Close()
		return nil, err
	}
	return r, nil
}

func (r *runner) close() {
	if r.pl != nil {
		r.pl.Kill()
	}
	r.rt.Close()
}

func (r *runner) logf(format string, args ...any) {
	if r.o.Logf != nil {
		r.o.Logf(format, args...)
	}
}

// fail stops the run with a Failure.
func (r *runner) fail(format string, args ...any) {
	f := &Failure{Seed: r.o.Seed, Op: r.op, Problem: fmt.Sprintf(format, args...), Recent: append([]string(nil), r.recent...), Replay: r.o.Replay}
	r.stepsMu.Lock()
	f.Steps = append([]string(nil), r.steps...)
	r.stepsMu.Unlock()
	s := r.rt.Snapshot()
	f.State = r.chk.Describe(s, r.chk.Judge(s))
	if r.logs != nil {
		l := r.logs.String()
		if len(l) > 12<<10 {
			l = "…" + l[len(l)-12<<10:]
		}
		f.Logs = l
	}
	r.rep.Violations++
	panic(f)
}

// recordStep keeps the last runtime steps (a CheckFunc).
func (r *runner) recordStep(s mockruntime.Snapshot) error {
	line := s.Step.String()
	if len(line) > 200 {
		line = line[:200] + "…"
	}
	r.stepsMu.Lock()
	r.steps = append(r.steps, fmt.Sprintf("%s (during op %d)", line, r.opShared))
	if len(r.steps) > 30 {
		r.steps = r.steps[1:]
	}
	r.stepsMu.Unlock()
	return nil
}

// note records an operation for the failure report.
func (r *runner) note(format string, args ...any) {
	line := fmt.Sprintf("#%d ", r.op) + fmt.Sprintf(format, args...)
	if len(line) > 300 {
		line = line[:300] + "…"
	}
	r.recent = append(r.recent, line)
	if len(r.recent) > 40 {
		r.recent = r.recent[1:]
	}
}

func (r *runner) report() *Report {
	rep := r.rep
	rep.Steps = r.rt.Steps()
	rep.Syncs = r.chk.Syncs()
	r.latMu.Lock()
	rep.CreateHandler, rep.CreateRoundTrip = r.handler.summary(), r.roundTrip.summary()
	rep.HandlerExclusive, rep.HandlerOther = r.handlerBy[0].summary(), r.handlerBy[1].summary()
	rep.RoundTripExclusive, rep.RoundTripOther = r.roundTripBy[0].summary(), r.roundTripBy[1].summary()
	r.latMu.Unlock()
	rep.Duration = time.Since(r.started)
	return &rep
}

// The plugin's Observer (in-process) and the runtime's round-trip timer.

type observer struct{ r *runner }

func (o observer) Request(event string, took time.Duration, _ error) {
	if event != "CreateContainer" {
		return
	}
	o.r.latMu.Lock()
	if o.r.measuring {
		o.r.handler.add(took)
		o.r.handlerBy[kindOf(o.r.lastOutcome)].add(took)
	}
	o.r.latMu.Unlock()
}

// Decision comes just before Request for the same CreateContainer.
func (o observer) Decision(outcome string) {
	o.r.latMu.Lock()
	o.r.lastOutcome = outcome
	o.r.latMu.Unlock()
}

func kindOf(outcome string) int {
	if outcome == plugin.OutcomeExclusive {
		return 0
	}
	return 1
}

func (r *runner) observeRoundTrip(op string, took time.Duration) {
	if op != "CreateContainer" {
		return
	}
	r.latMu.Lock()
	if r.measuring {
		r.roundTrip.add(took)
		r.roundTripBy[r.creating].add(took)
	}
	r.latMu.Unlock()
}

func summarise(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(p int) time.Duration { return s[min(len(s)-1, (len(s)*p+99)/100-1)] }
	return Latency{N: len(s), P50: at(50), P99: at(99), Max: s[len(s)-1]}
}

// run is the main loop.
func (r *runner) run() {
	r.started = time.Now()
	r.startPlugin()
	r.sample()
	every := max(1, r.o.Ops/r.o.Samples)
	for r.op = 1; r.op <= r.o.Ops; r.op++ {
		r.stepsMu.Lock()
		r.opShared = r.op
		r.stepsMu.Unlock()
		r.setMeasuring(!r.chk.Down())
		r.oneOp()
		r.afterOp()
		if r.op%every == 0 {
			r.sample()
		}
		if r.o.HeapProfiles != "" && r.op == r.o.Ops/2 {
			r.heapProfile("heap-mid.pprof")
		}
		if r.o.Progress > 0 && r.op%r.o.Progress == 0 {
			r.logf("op %d: %d live, %d faults, %s", r.op, r.liveCount(), r.rep.TotalFaults(), time.Since(r.started).Round(time.Millisecond))
		}
	}
	r.op = r.o.Ops
	r.setMeasuring(false)
	// End in a converged state: repair any open window and check once more.
	if r.chk.Down() {
		r.restartPlugin("final")
	}
	r.settle(true)
	r.afterOp()
	r.leakCheck()
	if r.o.HeapProfiles != "" {
		r.heapProfile("heap-end.pprof")
	}
}

func (r *runner) heapProfile(name string) {
	runtime.GC()
	f, err := os.Create(filepath.Join(r.o.HeapProfiles, name))
	if err != nil {
		r.fail("heap profile: %v", err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		r.fail("heap profile: %v", err)
	}
}

func (r *runner) setMeasuring(on bool) {
	r.latMu.Lock()
	r.measuring = on
	r.latMu.Unlock()
}

// sample records memory and goroutines.
func (r *runner) sample() {
	s := takeSample()
	r.fillSample(&s)
	r.rep.Samples = append(r.rep.Samples, s)
}

func (r *runner) fillSample(s *Sample) {
	snap := r.rt.Snapshot()
	s.Op, s.Live, s.Pods, s.Containers = r.op, r.liveCount(), len(snap.Pods), len(snap.Containers)
}

// leakCheck compares the last sample with the first: goroutines must come
// back to where they were (allowing for connection goroutines of a
// plugin that restarted), the heap must not have grown without bound.
func (r *runner) leakCheck() {
	if len(r.rep.Samples) < 2 {
		return
	}
	first := r.rep.Samples[0]
	deadline := time.Now().Add(3 * time.Second)
	for {
		last := takeSample()
		r.fillSample(&last)
		if last.Goroutines <= first.Goroutines+goroutineSlack || time.Now().After(deadline) {
			r.rep.Samples = append(r.rep.Samples, last)
			if last.Goroutines > first.Goroutines+goroutineSlack {
				r.fail("goroutine leak: %d goroutines at the start, %d at the end", first.Goroutines, last.Goroutines)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// goroutineSlack allows for goroutines that legitimately differ between two
// quiet moments (a reconnect's timer, the GC's workers).
const goroutineSlack = 8

func (r *runner) liveCount() int {
	n := 0
	for _, p := range r.pods {
		for _, c := range p.ctrs {
			if c.state == cLive {
				n++
			}
		}
	}
	return n
}

// afterOp checks what happened since the last operation.
func (r *runner) afterOp() {
	if vs := r.rt.TakeViolations(); len(vs) > 0 {
		var b strings.Builder
		for i, v := range vs {
			if i == 3 {
				fmt.Fprintf(&b, "(%d more)\n", len(vs)-3)
				break
			}
			fmt.Fprintf(&b, "%v\n", v)
		}
		r.fail("invariant violated:\n%s", b.String())
	}
	if live := r.liveCount(); live > r.rep.MaxLive {
		r.rep.MaxLive = live
	}
	if r.chk.IsSettling() {
		r.settling++
		r.settle(r.settling > 5)
	}
	if !r.chk.Down() && !r.chk.IsSettling() && r.pl != nil && r.pl.Plugin != nil && r.op%r.o.CrossCheckEvery == 0 {
		r.crossCheck()
	}
}

// settle closes the settling window once the model has converged. Pool
// changes the plugin held back ride on its next reply, and unsolicited
// ones land within a round trip (or are re-sent once); with wait, a
// request that carries replies (an UpdateContainer) is made and the model
// must then converge within 2 s.
func (r *runner) settle(wait bool) {
	if !r.chk.IsSettling() {
		return
	}
	// The plugin's unsolicited sends (and re-sends) must be over first: an
	// overtaken one may still be on its way.
	quiet := func() bool { return r.pl == nil || r.pl.Plugin == nil || r.pl.Plugin.UnsolicitedInFlight() == 0 }
	if !wait {
		if quiet() && r.chk.TrySettle(r.rt.Snapshot()) {
			r.settling = 0
		}
		return
	}
	for deadline := time.Now().Add(2 * time.Second); !quiet(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			r.fail("the plugin's unsolicited updates are still in flight after 2 s")
		}
	}
	if c := r.pick(cLive, nil); c != nil && !r.chk.Down() {
		r.note("UpdateContainer %s (to carry held-back pool changes)", c.c.ID)
		if err := r.rt.UpdateContainer(c.c, nil); err != nil {
			r.fail("UpdateContainer %s: %v", c.c.ID, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.rt.WaitFor(ctx, r.chk.TrySettle); err != nil {
		r.fail("the shared containers did not converge to the pool (settling for %d operations)", r.settling)
	}
	r.settling = 0
}

// crossCheck compares the plugin's own view with the runtime's: the same
// containers (the plugin keeps exited ones until RemoveContainer) with the
// same cpusets, and the same shared pool. A difference is a leak or a lost
// update even when the runtime's state happens to be valid.
func (r *runner) crossCheck() {
	ps := r.pl.Plugin.Snapshot()
	s := r.rt.Snapshot()
	v := r.chk.Judge(s)
	if !ps.Synced {
		r.fail("plugin view: not synchronized while connected")
	}
	if !ps.Shared.Equals(v.Pool) {
		r.fail("plugin view: shared pool %s, the runtime's model says %s", ps.Shared, v.Pool)
	}
	seen := map[string]bool{}
	for _, pc := range ps.Containers {
		seen[pc.ID] = true
		ci, ok := s.Container(pc.ID)
		if !ok {
			r.fail("plugin view: %s is not in the runtime (leaked record)", pc.ID)
		}
		if !ci.Live() {
			continue // exited without the plugin being told
		}
		if !invariants.SameCPUs(ci.Cpus, pc.CPUs) {
			r.fail("plugin view: %s has cpus %q, the runtime says %q", pc.ID, pc.CPUs, ci.Cpus)
		}
	}
	for _, ci := range s.Live() {
		if !seen[ci.ID] {
			r.fail("plugin view: live container %s is unknown to the plugin", ci.ID)
		}
	}
}

// startPlugin starts a plugin on the current machine and configuration and
// waits for its Synchronize.
func (r *runner) startPlugin() {
	var err error
	if r.bin != nil {
		r.pl, err = r.bin.start(r.rt.SocketPath(), r.spec, r.cfgText, r.logs)
	} else {
		r.pl, err = startInProcess(r.rt.SocketPath(), r.topo, r.cfg, observer{r}, r.logs)
	}
	if err != nil {
		r.fail("starting the plugin: %v", err)
	}
	r.waitSync("plugin start")
}

func (r *runner) waitSync(why string) {
	if err := r.pl.WaitSync(r.rt, 20*time.Second); err != nil {
		r.fail("%s: the plugin did not synchronize: %v", why, err)
	}
}

// prepareSync predicts what the next Synchronize must do and tells the
// checker: containers it must move are exempt until it, and from it on the
// predicted fallbacks are in the pool (uncertain ones are recognised by
// their cpusets).
//
// With raced, requests will run between now and the Synchronize (which
// may come before, between or after them): nothing is declared, the
// checker recognises fallbacks by itself.
func (r *runner) prepareSync(raced bool) syncPrediction {
	pre := r.rt.Snapshot()
	pr := predictSync(r.m, r.cfg, r.chk, r.podMap, pre)
	for id := range pr.keep {
		r.chk.ExpectExclusive(id)
	}
	for _, p := range pr.pending {
		r.chk.UncheckedUntilSync(p.id)
		if !raced && p.certain && p.planned == outFallback {
			r.chk.ExpectFallback(p.id)
		} else {
			r.chk.ExpectExclusive(p.id)
		}
	}
	return pr
}

// restartPlugin repairs an outage: predict what the Synchronize must do,
// start the plugin (or the runtime), wait for it, verify the prediction.
func (r *runner) restartPlugin(why string) {
	pr := r.prepareSync(false)
	if r.pl == nil {
		r.startPlugin()
	} else {
		r.waitSync(why)
	}
	post := r.rt.Snapshot()
	v := r.chk.Judge(post)
	if probs := pr.verify(r.m, v, post); len(probs) > 0 {
		r.fail("Synchronize after %s: %s", why, strings.Join(probs, "; "))
	}
	r.note("%s: synchronized (%d kept, %d to allocate, %d fallbacks)", why, len(pr.keep), len(pr.pending), len(v.Fallbacks))
}

// ---------------------------------------------------------------------
// Operations.

// oneOp picks and performs one operation.
func (r *runner) oneOp() {
	if r.o.Faults && r.rng.Intn(r.o.FaultEvery) == 0 {
		r.fault()
		return
	}
	live := r.liveCount()
	full := live >= r.o.MaxLive
	type choiceW struct {
		w  int
		fn func() bool
	}
	ops := []choiceW{
		{ifElse(full, 0, 10), r.opRunPod},
		{ifElse(full, 2, 22), r.opCreate},
		{14, r.opStart},
		{ifElse(full, 18, 7), r.opStop},
		{ifElse(full, 10, 5), r.opRemove},
		{ifElse(full, 8, 3), r.opRemovePod},
		{3, r.opRestartContainer},
		{5, r.opUpdate},
		{2, r.opExit},
		{ifElse(r.bin == nil, 1, 0), r.opReload},
	}
	if r.o.Scale {
		// Fill up to MaxLive, then churn around it: as many stops and
		// removals as creations.
		growing := live < r.o.MaxLive*97/100
		dead := 0
		for _, ps := range r.pods {
			if deadPod(ps) {
				dead++
			}
		}
		ops = []choiceW{
			{ifElse(dead > 0, 8, 0), r.opRemovePod}, // the kubelet's pod garbage collection
			{ifElse(full, 0, ifElse(growing, 12, 6)), r.opRunPod},
			{ifElse(full, 2, ifElse(growing, 30, 18)), r.opCreate},
			{14, r.opStart},
			{ifElse(growing, 2, 12), r.opStop},
			{ifElse(growing, 2, 9), r.opRemove},
			{ifElse(growing, 2, 6), r.opRemovePod},
			{3, r.opRestartContainer},
			{5, r.opUpdate},
			{1, r.opExit},
			{ifElse(r.bin == nil, 1, 0), r.opReload},
		}
	}
	total := 0
	for _, c := range ops {
		total += c.w
	}
	for range 20 { // an operation may find nothing to do
		n := r.rng.Intn(total)
		for _, c := range ops {
			if n < c.w {
				if c.fn() {
					return
				}
				break
			}
			n -= c.w
		}
	}
	r.opRunPod()
}

// ifElse is c ? a : b.
func ifElse[T any](c bool, a, b T) T {
	if c {
		return a
	}
	return b
}

func (r *runner) count(op string) { r.rep.OpCounts[op]++; r.rep.Ops++ }

// pick returns a random container in state st (nil if none), optionally
// filtered (filters may use r.state, which is cheap).
func (r *runner) pick(st cState, ok func(*ctr) bool) *ctr {
	var cands []*ctr
	for _, p := range r.pods {
		for _, c := range p.ctrs {
			if c.state == st && (ok == nil || ok(c)) {
				cands = append(cands, c)
			}
		}
	}
	if len(cands) == 0 {
		return nil
	}
	return cands[r.rng.Intn(len(cands))]
}

func (r *runner) opRunPod() bool {
	p := r.randomPod()
	ps := &podState{pod: p}
	for _, c := range p.Containers() {
		ps.ctrs = append(ps.ctrs, &ctr{c: c, pod: ps, init: c.Spec.Init})
	}
	r.chk.AddPod(p)
	r.podMap[p.ID] = p
	r.note("RunPod %s (%s, %d containers, annotations %s)", p.ID, p.QoS, len(ps.ctrs), shortAnn(p.Annotations))
	if err := r.rt.RunPod(p); err != nil {
		r.fail("RunPod %s: %v", p.ID, err)
	}
	r.pods = append(r.pods, ps)
	r.count("RunPod")
	return true
}

// creatable: the kubelet creates init containers one by one, each after
// the previous one stopped, and app containers after every init container.
func creatable(c *ctr) bool {
	for _, o := range c.pod.ctrs {
		if o == c {
			return true
		}
		if o.init && o.state != cStopped && o.state != cRemoved {
			return false // an init container before it has not completed
		}
	}
	return true
}

func (r *runner) opCreate() bool {
	c := r.pick(cPending, creatable)
	if c == nil {
		return false
	}
	r.create(c)
	return true
}

// create creates a container and checks the plugin's decision against the
// model's prediction.
func (r *runner) create(c *ctr) {
	r.count("CreateContainer")
	pod := c.pod.pod
	ci := mockruntime.ContainerInfo{ID: c.c.ID, PodID: pod.ID, Name: c.c.Spec.Name, QoS: pod.QoS, Spec: c.c.Spec}
	down := r.chk.Down()
	var want outcome
	if !down {
		v := r.chk.Judge(r.rt.Snapshot())
		want, _ = predictCreate(r.m, r.cfg, r.chk, pod, ci, v.Held)
	}
	r.note("CreateContainer %s (%s %dm, predicted %s)", c.c.ID, pod.QoS, c.c.Spec.CPURequestMilli, ifElse(down, "plugin down", want.String()))
	if !down && want == outFallback {
		r.chk.ExpectFallback(c.c.ID)
	}
	r.latMu.Lock()
	r.creating = ifElse(want == outExclusive, 0, 1)
	r.latMu.Unlock()
	cpus, _, err := r.rt.CreateContainer(pod, c.c)
	if err == nil {
		c.state = cLive
	} else if r.rng.Intn(4) > 0 {
		c.state = cFailed // the kubelet backs off; a quarter are retried later
	}
	ref := pod.Namespace + "/" + pod.Name + "/" + c.c.Spec.Name
	if down {
		// The plugin may still (or already) answer: a rejection that names
		// the container is its decision.
		if err != nil && !errors.Is(err, mockruntime.ErrNotRunning) && !strings.Contains(err.Error(), ref) {
			r.fail("CreateContainer %s while the plugin is down: %v", c.c.ID, err)
		}
		return
	}
	r.rep.Outcomes[want.String()]++
	switch want {
	case outRejectAnnotation, outRejectInsufficient:
		if err == nil {
			r.fail("CreateContainer %s succeeded (cpus %q), the model expects %s", c.c.ID, cpus, want)
		}
		msg := err.Error()
		if !strings.Contains(msg, ref) {
			r.fail("CreateContainer %s: error does not name the container %s: %v", c.c.ID, ref, err)
		}
		if len(msg) > 2000 {
			r.fail("CreateContainer %s: error of %d bytes", c.c.ID, len(msg))
		}
		if want == outRejectAnnotation {
			ch := choose(pod.Annotations, c.c.Spec.Name, r.cfg)
			if !strings.Contains(msg, ch.badKey) {
				r.fail("CreateContainer %s: error does not name the annotation %s: %v", c.c.ID, ch.badKey, err)
			}
		} else if !strings.Contains(msg, "cannot allocate") {
			r.fail("CreateContainer %s: rejection is not about CPUs: %v", c.c.ID, err)
		}
		return
	}
	if err != nil {
		r.fail("CreateContainer %s failed, the model expects %s: %v", c.c.ID, want, err)
	}
	v := r.chk.Judge(r.rt.Snapshot())
	_, excl := v.Exclusive[c.c.ID]
	fb := slices.Contains(v.Fallbacks, c.c.ID)
	switch {
	case want == outExclusive && !excl:
		r.fail("CreateContainer %s: expected exclusive CPUs, got cpus %q (fallback %v)", c.c.ID, cpus, fb)
	case want == outFallback && !fb:
		r.fail("CreateContainer %s: expected the shared pool (fallback), got cpus %q", c.c.ID, cpus)
	case want == outShared && excl:
		r.fail("CreateContainer %s: expected the shared pool, got exclusive cpus %q", c.c.ID, cpus)
	}
}

func (r *runner) opStart() bool {
	c := r.pick(cLive, func(c *ctr) bool { return r.state(c) == api.ContainerState_CONTAINER_CREATED })
	if c == nil {
		return false
	}
	r.count("StartContainer")
	r.note("StartContainer %s", c.c.ID)
	if err := r.rt.StartContainer(c.c); err != nil {
		r.fail("StartContainer %s: %v", c.c.ID, err)
	}
	return true
}

// state is the runtime's state of a container.
func (r *runner) state(c *ctr) api.ContainerState {
	ci, ok := r.rt.Container(c.c.ID)
	if !ok {
		return api.ContainerState_CONTAINER_UNKNOWN
	}
	return ci.State
}

func (r *runner) opStop() bool {
	// Init containers finish first.
	c := r.pick(cLive, func(c *ctr) bool { return c.init && r.state(c) == api.ContainerState_CONTAINER_RUNNING })
	if c == nil {
		c = r.pick(cLive, nil)
	}
	if c == nil {
		return false
	}
	r.stop(c)
	return true
}

func (r *runner) stop(c *ctr) {
	r.count("StopContainer")
	r.note("StopContainer %s", c.c.ID)
	if err := r.rt.StopContainer(c.c); err != nil {
		r.fail("StopContainer %s: %v", c.c.ID, err)
	}
	c.state = cStopped
}

func (r *runner) opRemove() bool {
	c := r.pick(cStopped, nil)
	if c == nil {
		return false
	}
	r.remove(c)
	return true
}

func (r *runner) remove(c *ctr) {
	r.count("RemoveContainer")
	r.note("RemoveContainer %s", c.c.ID)
	r.expectRelease(c)
	if err := r.rt.RemoveContainer(c.c); err != nil {
		r.fail("RemoveContainer %s: %v", c.c.ID, err)
	}
	c.state = cRemoved
}

// expectRelease opens the settling window when removing c makes the plugin
// release CPUs without a reply to carry the pool's growth: c exited without
// StopContainer and held exclusive CPUs.
func (r *runner) expectRelease(c *ctr) {
	if r.chk.Down() {
		return
	}
	ci, ok := r.rt.Container(c.c.ID)
	if ok && !ci.Live() && r.chk.Entitlement(ci) > 0 && ci.Cpus != "" {
		r.chk.Settling()
	}
}

func (r *runner) opRemovePod() bool {
	if len(r.pods) == 0 {
		return false
	}
	i := r.rng.Intn(len(r.pods))
	// Mostly a pod with nothing left running, as the kubelet
	// garbage-collects finished pods.
	if r.rng.Intn(5) > 0 {
		for j, ps := range r.pods {
			if deadPod(ps) {
				i = j
				break
			}
		}
	}
	ps := r.pods[i]
	r.count("RemovePod")
	r.note("RemovePod %s", ps.pod.ID)
	for _, c := range ps.ctrs {
		if c.state == cStopped {
			r.expectRelease(c)
		}
	}
	if err := r.rt.RemovePod(ps.pod); err != nil {
		r.fail("RemovePod %s: %v", ps.pod.ID, err)
	}
	r.pods = append(r.pods[:i], r.pods[i+1:]...)
	for _, c := range ps.ctrs {
		c.state = cRemoved
	}
	r.chk.ForgetPod(ps.pod.ID)
	delete(r.podMap, ps.pod.ID)
	return true
}

// deadPod reports whether nothing of a pod runs or waits to be created.
func deadPod(ps *podState) bool {
	for _, c := range ps.ctrs {
		if c.state == cLive {
			return false
		}
	}
	return true
}

// opRestartContainer is the kubelet restarting a container: a new attempt
// with the same pod and name (a new ID). Half the time the new attempt is
// created before the old one is stopped, as after a kubelet restart that
// lost track of the old one.
func (r *runner) opRestartContainer() bool {
	c := r.pick(cLive, func(c *ctr) bool { return !c.init })
	if c == nil {
		return false
	}
	overlap := r.rng.Intn(2) == 0
	r.count(ifElse(overlap, "RestartContainer(overlapping)", "RestartContainer"))
	nc := &ctr{c: c.pod.pod.AddContainer(c.c.Spec), pod: c.pod}
	c.pod.ctrs = append(c.pod.ctrs, nc)
	r.note("restart %s as %s (overlapping %v)", c.c.ID, nc.c.ID, overlap)
	if overlap {
		r.create(nc)
	}
	r.stop(c)
	r.remove(c)
	if !overlap {
		r.create(nc)
	}
	if nc.state == cLive {
		if err := r.rt.StartContainer(nc.c); err != nil {
			r.fail("StartContainer %s: %v", nc.c.ID, err)
		}
	}
	return true
}

// opUpdate relays a CRI UpdateContainerResources: the kubelet's own values,
// a CPU manager that writes cpusets, or a memory change. The plugin owns
// cpusets: the container must keep its own.
func (r *runner) opUpdate() bool {
	c := r.pick(cLive, nil)
	if c == nil {
		return false
	}
	r.count("UpdateContainer")
	before, _ := r.rt.Container(c.c.ID)
	spec := c.c.Spec
	res := &api.LinuxResources{Cpu: &api.LinuxCPU{
		Shares: api.UInt64(mockruntime.CPUShares(spec.CPURequestMilli)),
		Period: api.UInt64(uint64(mockruntime.QuotaPeriod)),
	}}
	if q := mockruntime.CPUQuota(spec.CPULimitMilli); q > 0 {
		res.Cpu.Quota = api.Int64(q)
	}
	kind := r.rng.Intn(3)
	switch kind {
	case 0: // a CPU manager's cpuset
		res.Cpu.Cpus = r.topo.Online.String()
		res.Cpu.Mems = "0"
	case 1: // a memory resize
		res.Memory = &api.LinuxMemory{Limit: api.Int64(int64(256+r.rng.Intn(1024)) << 20)}
	}
	r.note("UpdateContainer %s (kind %d)", c.c.ID, kind)
	if err := r.rt.UpdateContainer(c.c, res); err != nil {
		r.fail("UpdateContainer %s: %v", c.c.ID, err)
	}
	if r.chk.Down() {
		if kind == 0 {
			// Without the plugin the runtime applies the request's cpuset:
			// the next Synchronize must repair it.
			r.chk.UncheckedUntilSync(c.c.ID)
		}
		return true
	}
	if after, _ := r.rt.Container(c.c.ID); !r.chk.IsSettling() && !invariants.SameCPUs(after.Cpus, before.Cpus) {
		r.fail("UpdateContainer %s: cpus %q became %q", c.c.ID, before.Cpus, after.Cpus)
	}
	return true
}

// opExit is a container that exits by itself: no StopContainer reaches the
// plugin; RemoveContainer will, later.
func (r *runner) opExit() bool {
	c := r.pick(cLive, func(c *ctr) bool { return r.state(c) == api.ContainerState_CONTAINER_RUNNING })
	if c == nil {
		return false
	}
	r.count("ExitContainer")
	r.note("ExitContainer %s (no StopContainer)", c.c.ID)
	if !r.chk.Down() {
		r.chk.Exited(c.c.ID)
	}
	if err := r.rt.ExitContainer(c.c); err != nil {
		r.fail("ExitContainer %s: %v", c.c.ID, err)
	}
	c.state = cStopped
	if r.rng.Intn(2) == 0 {
		r.remove(c)
	}
	return true
}

// opReload applies another configuration with Plugin.Reload (in-process).
func (r *runner) opReload() bool {
	if r.chk.Down() || r.pl == nil || r.pl.Plugin == nil {
		return false
	}
	r.reload(r.randomConfig(r.rng.Intn(3) == 0))
	return true
}

func (r *runner) reload(text string) {
	r.count("Reload")
	cfg, err := config.Parse("churn.toml", []byte(text))
	if err != nil {
		r.fail("generated configuration does not parse: %v\n%s", err, text)
	}
	_, resolveErr := cfg.Resolve(r.topo)
	if resolveErr == nil {
		// Running allocations stay: a configuration under which they leave
		// the shared pool empty does not fit either.
		if m, err := newMachine(r.topo, cfg); err == nil && m.pool(r.chk.Judge(r.rt.Snapshot()).Held).IsEmpty() {
			resolveErr = errors.New("the shared pool would be empty")
		}
	}
	r.note("Reload %s", oneLine(text))
	if resolveErr == nil {
		// The plugin's unsolicited updates may land before Reload returns:
		// the checker must know the new rules first.
		if err := r.chk.Reconfigure(cfg); err != nil {
			r.fail("checker: %v", err)
		}
		r.chk.SettlingRacy()
	}
	_, err = r.pl.Plugin.Reload(cfg)
	switch {
	case resolveErr != nil && err == nil:
		r.fail("Reload accepted a configuration that does not fit the machine (%v)", resolveErr)
	case resolveErr == nil && err != nil:
		r.fail("Reload rejected a valid configuration: %v", err)
	case err != nil:
		return
	}
	r.cfg, r.cfgText = cfg, text
	if r.m, err = newMachine(r.topo, cfg); err != nil {
		r.fail("model: %v", err)
	}
	if r.rng.Intn(2) == 0 {
		r.settle(true)
	}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// ---------------------------------------------------------------------
// Faults.

func (r *runner) fault() {
	// A reload's unsolicited updates still in flight when the runtime
	// restarts would, in the mock, still be applied after the restart (in
	// a real runtime they die with its process): let them land first.
	if r.chk.IsSettling() {
		r.settle(true)
	}
	switch k := r.rng.Intn(10); {
	case k < 4:
		r.faultKillPlugin()
	case k < 6:
		r.faultRuntimeRestart()
	case k < 8:
		r.faultRemoveWithoutStop()
	default:
		r.faultInvalidatingConfig()
	}
}

func (r *runner) countFault(kind string) { r.rep.FaultCounts[kind]++ }

// kill kills the plugin (the outage window opens first).
func (r *runner) kill() {
	r.chk.PluginDown()
	r.pl.Kill()
	r.pl = nil
}

// faultKillPlugin kills the plugin, between requests or while one is in
// flight; while it is down, containers come and go, cpusets get tampered
// with, and the machine or the configuration may change; then a fresh
// plugin starts and must repair everything in its Synchronize.
func (r *runner) faultKillPlugin() {
	midRequest := r.rng.Intn(3) == 0
	r.countFault(ifElse(midRequest, "kill-plugin(mid-request)", "kill-plugin"))
	r.note("kill the plugin (mid-request %v)", midRequest)
	if midRequest {
		r.chk.PluginDown()
		pl := r.pl
		delay := time.Duration(r.rng.Intn(400)) * time.Microsecond
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(delay)
			pl.Kill()
		}()
		for range 3 {
			r.oneRegularOp()
		}
		wg.Wait()
		r.pl = nil
	} else {
		r.kill()
	}
	r.duringOutage()
	if r.rng.Intn(3) == 0 {
		r.changeMachine()
	}
	if r.rng.Intn(4) == 0 {
		r.changeConfigDown()
	}
	r.restartPlugin("plugin restart")
}

// oneRegularOp performs a lifecycle operation (no fault, no reload).
func (r *runner) oneRegularOp() {
	for range 20 {
		var ok bool
		switch r.rng.Intn(6) {
		case 0:
			ok = r.opRunPod()
		case 1, 2:
			ok = r.opCreate()
		case 3:
			ok = r.opStop()
		case 4:
			ok = r.opRemove()
		case 5:
			ok = r.opStart()
		}
		if ok {
			return
		}
	}
}

// duringOutage does what happens on a node while the plugin is away:
// lifecycle operations, and cpusets the next Synchronize must repair.
func (r *runner) duringOutage() {
	for range r.rng.Intn(6) {
		r.oneRegularOp()
	}
	for range r.rng.Intn(3) {
		r.tamper()
	}
}

// tamper makes the runtime report a cpuset the plugin never gave: empty,
// another container's exclusive CPUs, CPUs that do not exist, garbage; or
// injects a container behind the plugin's back with such a cpuset.
func (r *runner) tamper() {
	s := r.rt.Snapshot()
	live := s.Live()
	var excl []mockruntime.ContainerInfo
	for _, ci := range live {
		if r.chk.Entitlement(ci) > 0 && ci.Cpus != "" {
			excl = append(excl, ci)
		}
	}
	bogus := []string{
		"",
		fmt.Sprintf("%d-%d", r.topo.MaxCPU+1, r.topo.MaxCPU+2),
		"0-",
		"ÿ",
		fmt.Sprintf("%d", 1<<20),
	}
	var cpus string
	if len(excl) > 0 && r.rng.Intn(2) == 0 {
		cpus = excl[r.rng.Intn(len(excl))].Cpus // overlapping
	} else {
		cpus = bogus[r.rng.Intn(len(bogus))]
	}
	if len(live) > 0 && r.rng.Intn(3) != 0 {
		ci := live[r.rng.Intn(len(live))]
		c := r.find(ci.ID)
		if c == nil {
			return
		}
		r.countFault("tampered-cpuset")
		r.note("SetCPUSet %s %q (was %q)", ci.ID, cpus, ci.Cpus)
		r.chk.UncheckedUntilSync(ci.ID)
		if err := r.rt.SetCPUSet(c.c, cpus, ""); err != nil {
			r.fail("SetCPUSet: %v", err)
		}
		return
	}
	// A Guaranteed container created behind the plugin's back.
	r.countFault("injected-container")
	n := 1 + r.rng.Intn(max(1, min(4, r.m.managed.Count()/4)))
	p := mockruntime.GuaranteedPod(fmt.Sprintf("inj%d", r.nextPod), mockruntime.ContainerSpec{Name: "app", CPURequestMilli: int64(n) * 1000})
	r.nextPod++
	ps := &podState{pod: p}
	c := &ctr{c: p.Container("app"), pod: ps, state: cLive}
	ps.ctrs = []*ctr{c}
	r.chk.AddPod(p)
	r.podMap[p.ID] = p
	r.chk.UncheckedUntilSync(c.c.ID)
	r.note("InjectContainer %s (%d CPUs) with cpus %q", c.c.ID, n, cpus)
	if err := r.rt.InjectContainer(p, c.c, cpus, ""); err != nil {
		r.fail("InjectContainer: %v", err)
	}
	r.pods = append(r.pods, ps)
}

func (r *runner) find(id string) *ctr {
	for _, p := range r.pods {
		for _, c := range p.ctrs {
			if c.c.ID == id {
				return c
			}
		}
	}
	return nil
}

// changeMachine restarts on the same machine with other CPUs offline (or
// all back online): the runtime still reports cpusets naming CPUs that
// are gone.
func (r *runner) changeMachine() {
	spec := r.base
	if r.spec.Offline == "" {
		// Take a few CPUs offline: never CPU 0, never a reserved one.
		var offline topology.Mask
		for range 1 + r.rng.Intn(3) {
			cpu := 1 + r.rng.Intn(r.topo.Online.Count()-1)
			if !r.m.reserved.Has(cpu) {
				offline.Set(cpu)
			}
		}
		if offline.IsEmpty() {
			return
		}
		spec.Offline = offline.String()
	}
	topo, err := spec.Topology()
	if err != nil {
		r.fail("machine %s with CPUs %q offline: %v", spec.Name, spec.Offline, err)
	}
	m, err := newMachine(topo, r.cfg)
	if err != nil {
		return // the configuration does not fit: keep the machine
	}
	r.countFault(ifElse(spec.Offline != "", "cpus-offline", "cpus-online"))
	r.note("the machine now has CPUs %q offline", spec.Offline)
	r.spec, r.topo, r.m = spec, topo, m
	if err := r.chk.SetMachine(topo); err != nil {
		r.fail("checker: %v", err)
	}
}

// changeConfigDown switches the configuration while the plugin is down
// (the restart reads another file): often one whose reserved CPUs overlap
// running exclusive containers.
func (r *runner) changeConfigDown() {
	text := r.randomConfig(true)
	cfg, err := config.Parse("churn.toml", []byte(text))
	if err != nil {
		r.fail("generated configuration does not parse: %v\n%s", err, text)
	}
	m, err := newMachine(r.topo, cfg)
	if err != nil {
		return
	}
	r.countFault("config-change-at-restart")
	r.note("the restart reads another configuration: %s", oneLine(text))
	if err := r.chk.Reconfigure(cfg); err != nil {
		r.fail("checker: %v", err)
	}
	r.cfg, r.cfgText, r.m = cfg, text, m
}

// faultRuntimeRestart drops the runtime's connection (the runtime stops,
// as in a crash or upgrade) and restores it; the plugin reconnects by
// itself and synchronizes.
func (r *runner) faultRuntimeRestart() {
	r.countFault("runtime-restart")
	r.note("runtime restart")
	r.chk.PluginDown()
	r.rt.Stop()
	r.rtDown = true
	// While it is down, requests fail; containers may exit.
	ghost := mockruntime.BestEffortPod("ghost", mockruntime.ContainerSpec{Name: "app"})
	if err := r.rt.RunPod(ghost); !errors.Is(err, mockruntime.ErrNotRunning) {
		r.fail("RunPod while the runtime is stopped: %v, want ErrNotRunning", err)
	}
	if c := r.pick(cLive, nil); c != nil {
		if r.rng.Intn(2) == 0 {
			r.note("ExitContainer %s while the runtime is down", c.c.ID)
			if err := r.rt.ExitContainer(c.c); err != nil {
				r.fail("ExitContainer: %v", err)
			}
			c.state = cStopped
		}
	}
	if r.rng.Intn(3) == 0 {
		r.tamper()
	}
	// Requests before the plugin has reconnected proceed without it (or
	// reach it, if it was quick): the prediction then no longer holds, and
	// only the invariants are checked.
	raced := r.rng.Intn(2) == 0
	pr := r.prepareSync(raced)
	if err := r.rt.Start(); err != nil {
		r.fail("runtime start: %v", err)
	}
	r.rtDown = false
	if raced {
		for range 1 + r.rng.Intn(3) {
			r.oneRegularOp()
		}
	}
	r.waitSync("runtime restart")
	post := r.rt.Snapshot()
	v := r.chk.Judge(post)
	if probs := pr.verify(r.m, v, post); len(probs) > 0 && !raced {
		r.fail("Synchronize after runtime restart: %s", strings.Join(probs, "; "))
	}
}

// faultRemoveWithoutStop: a running exclusive container exits and is
// removed; the plugin hears only RemoveContainer.
func (r *runner) faultRemoveWithoutStop() {
	c := r.pick(cLive, func(c *ctr) bool {
		ci, ok := r.rt.Container(c.c.ID)
		return ok && ci.State == api.ContainerState_CONTAINER_RUNNING && r.chk.Entitlement(ci) > 0
	})
	if c == nil {
		return
	}
	r.countFault("remove-without-stop")
	r.note("ExitContainer %s, then RemoveContainer without StopContainer", c.c.ID)
	if !r.chk.Down() {
		r.chk.Exited(c.c.ID)
	}
	if err := r.rt.ExitContainer(c.c); err != nil {
		r.fail("ExitContainer: %v", err)
	}
	c.state = cStopped
	r.remove(c)
}

// faultInvalidatingConfig reserves CPUs that running exclusive containers
// hold: with Reload they keep them (grandfathered) until the next
// Synchronize; a restart with that configuration must re-allocate them.
func (r *runner) faultInvalidatingConfig() {
	if r.bin != nil || r.pl == nil || r.pl.Plugin == nil || r.chk.Down() {
		r.countFault("kill-plugin(new config)")
		r.kill()
		r.changeConfigDown()
		r.restartPlugin("restart with another configuration")
		return
	}
	r.countFault("reload(invalidating)")
	r.reload(r.randomConfig(true))
	if r.rng.Intn(2) == 0 {
		r.countFault("kill-plugin(after reload)")
		r.note("restart with the reloaded configuration")
		r.settle(true)
		r.kill()
		r.restartPlugin("restart after reload")
	}
}

// ---------------------------------------------------------------------
// Generators.

// randomConfig returns a configuration file: the policy keys a reload may
// change. With invalidating, reserved_cpus overlaps a running exclusive
// container when there is one.
func (r *runner) randomConfig(invalidating bool) string {
	var b strings.Builder
	b.WriteString("[policy]\n")
	if r.rng.Intn(3) == 0 {
		b.WriteString("mode = \"packed\"\n")
	}
	if r.rng.Intn(4) == 0 {
		b.WriteString("spread = \"minimal\"\n")
	}
	online := r.topo.Online
	var reserved topology.Mask
	if invalidating && r.chk != nil {
		s := r.rt.Snapshot()
		v := r.chk.Judge(s)
		ids := make([]string, 0, len(v.Exclusive))
		for id := range v.Exclusive {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		if len(ids) > 0 {
			cpus := v.Exclusive[ids[r.rng.Intn(len(ids))]]
			reserved.Set(cpus.First())
		}
	}
	if r.rng.Intn(2) == 0 || !reserved.IsEmpty() {
		for range 1 + r.rng.Intn(2) {
			reserved.Set(online.Slice()[r.rng.Intn(online.Count())])
		}
	}
	if !reserved.IsEmpty() {
		fmt.Fprintf(&b, "reserved_cpus = %q\n", reserved.String())
		if r.rng.Intn(3) == 0 {
			b.WriteString("strict_reserved = true\n")
		}
	}
	minShared := -1
	switch r.rng.Intn(6) {
	case 0:
		minShared = 0
	case 1:
		minShared = 2
	case 2:
		minShared = 1 + r.rng.Intn(max(1, online.Count()/4))
	}
	if r.rng.Intn(20) == 0 {
		minShared = online.Count() + 1 // does not fit: more than the pool can ever hold
	}
	if minShared >= 0 {
		fmt.Fprintf(&b, "min_shared_cpus = %d\n", minShared)
	}
	if r.rng.Intn(3) == 0 {
		b.WriteString("on_insufficient = \"shared\"\n")
	}
	if r.rng.Intn(8) == 0 {
		b.WriteString("full_cores = \"off\"\n")
	}
	return b.String()
}

// Annotation values: valid ones, and hostile ones that must fail the
// container with a clear message.
var (
	badPolicy    = []string{"spready", "", "PACKED", "ünïcødé", strings.Repeat("p", 100_000)}
	badSpread    = []string{"0", "-3", "banana", "99999999999999999999", "１", strings.Repeat("9", 4096)}
	badExclusive = []string{"maybe", "no", "", "FALSE", "ⅿ"}
)

// randomPod builds a pod like a kubelet would, with random QoS, sizes,
// init containers and annotation variants.
func (r *runner) randomPod() *mockruntime.Pod {
	name := fmt.Sprintf("p%d", r.nextPod)
	r.nextPod++
	managed := r.m.managed.Count()
	cpuCount := func() int64 {
		if r.o.Scale {
			switch k := r.rng.Intn(100); {
			case k < 80:
				return 1
			case k < 95:
				return 2
			default:
				return int64(3 + r.rng.Intn(6))
			}
		}
		switch k := r.rng.Intn(100); {
		case k < 70:
			return int64(1 + r.rng.Intn(max(2, managed/16)))
		case k < 95:
			return int64(1 + r.rng.Intn(max(2, managed/4)))
		default:
			return int64(1 + r.rng.Intn(managed))
		}
	}
	var qos mockruntime.QoSClass
	guaranteed := ifElse(r.o.Scale, 30, 45)
	switch k := r.rng.Intn(100); {
	case k < guaranteed:
		qos = mockruntime.Guaranteed
	case k < guaranteed+35:
		qos = mockruntime.Burstable
	default:
		qos = mockruntime.BestEffort
	}
	var specs []mockruntime.ContainerSpec
	spec := func(cname string, init bool) mockruntime.ContainerSpec {
		s := mockruntime.ContainerSpec{Name: cname, Init: init}
		switch qos {
		case mockruntime.Guaranteed:
			if r.rng.Intn(7) == 0 {
				s.CPURequestMilli = 1000*cpuCount() + 500 // fractional: shared
			} else {
				s.CPURequestMilli = 1000 * cpuCount()
			}
		case mockruntime.Burstable:
			s.CPURequestMilli = int64(100 + r.rng.Intn(1900))
			if r.rng.Intn(2) == 0 {
				s.CPULimitMilli = s.CPURequestMilli + int64(r.rng.Intn(2000))
			}
		}
		return s
	}
	if r.rng.Intn(5) == 0 {
		specs = append(specs, spec("init", true))
		if r.rng.Intn(3) == 0 {
			specs = append(specs, spec("init2", true))
		}
	}
	names := []string{"app", "side", "ünï"}
	for i := range 1 + r.rng.Intn(3) {
		specs = append(specs, spec(names[i], false))
	}
	p := mockruntime.NewPod(qos, name, specs...)
	if r.rng.Intn(5) == 0 {
		p.WithNamespace([]string{"team-a", "kube-system", "ns-ü"}[r.rng.Intn(3)])
	}
	// Annotation variants.
	if r.rng.Intn(10) < 3 {
		target := func(key string) string {
			if r.rng.Intn(2) == 0 {
				return key
			}
			return key + ".container." + specs[r.rng.Intn(len(specs))].Name
		}
		for range 1 + r.rng.Intn(2) {
			switch r.rng.Intn(4) {
			case 0:
				p.WithAnnotation(target(annPolicy), []string{"packed", "distributed"}[r.rng.Intn(2)])
			case 1:
				nodes := max(1, len(r.topo.Nodes))
				v := []string{"all", "minimal", fmt.Sprint(1 + r.rng.Intn(nodes))}[r.rng.Intn(3)]
				p.WithAnnotation(target(annSpread), v)
			case 2:
				p.WithAnnotation(target(annExclusive), []string{"false", "true"}[r.rng.Intn(2)])
			case 3:
				p.WithAnnotation("numaspread.io/unknown-key", "typo")
			}
		}
		if r.rng.Intn(6) == 0 {
			switch r.rng.Intn(3) {
			case 0:
				p.WithAnnotation(target(annPolicy), badPolicy[r.rng.Intn(len(badPolicy))])
			case 1:
				p.WithAnnotation(target(annSpread), badSpread[r.rng.Intn(len(badSpread))])
			case 2:
				p.WithAnnotation(target(annExclusive), badExclusive[r.rng.Intn(len(badExclusive))])
			}
		}
	}
	return p
}

func shortAnn(m map[string]string) string {
	var parts []string
	for k, v := range m {
		if !strings.HasPrefix(k, "numaspread.io/") {
			continue
		}
		if len(v) > 20 {
			v = fmt.Sprintf("%s…(%d bytes)", v[:10], len(v))
		}
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}

// rssBytes reads VmRSS from /proc/self/status (0 when unavailable).
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}
