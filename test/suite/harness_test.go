package suite

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/plugin"
	"github.com/numaspread/numaspread/test/invariants"
	"github.com/numaspread/numaspread/test/mockruntime"
	"github.com/numaspread/numaspread/test/pluginproc"
	"github.com/numaspread/numaspread/topology"
	"github.com/numaspread/numaspread/topology/synth"
)

// binDir holds the numaspread binary, built by the first binary-mode test
// (pluginproc.BuildBinary) and removed by TestMain.
var binDir string

func TestMain(m *testing.M) {
	// The NRI adaptation (the runtime side) logs through the standard
	// logrus logger; keep its chatter out of test output unless asked.
	if os.Getenv("SUITE_NRI_LOG") == "" {
		logrus.SetOutput(io.Discard)
	}
	dir, err := os.MkdirTemp("", "numaspread-suite-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// mode is how the plugin under test runs.
type mode string

const (
	// inProcess: plugin.New + Plugin.Run in a goroutine of the test.
	inProcess mode = "inprocess"
	// binary: the built numaspread binary, `numaspread run --socket …`.
	binary mode = "binary"
)

// bothModes runs fn as the subtests "inprocess" and "binary".
func bothModes(t *testing.T, fn func(t *testing.T, m mode)) {
	t.Helper()
	for _, m := range []mode{inProcess, binary} {
		t.Run(string(m), func(t *testing.T) {
			requireMode(t, m)
			fn(t, m)
		})
	}
}

// requireMode prepares mode m: binary mode builds the binary (once) and
// fails the test if that fails.
func requireMode(t testing.TB, m mode) {
	t.Helper()
	if m == binary {
		binaryPath(t)
	}
}

// binaryPath returns the numaspread binary, built on first use.
func binaryPath(t testing.TB) string {
	t.Helper()
	return pluginproc.BuildBinary(t, binDir)
}

// setup is a scenario's machine and configuration.
type setup struct {
	machine synth.Spec // default synth.SmallTwoNode()
	config  string     // TOML text of the configuration file; "" for defaults
	rtOpts  []mockruntime.Option
	// noPlugin leaves the plugin stopped; call startPlugin.
	noPlugin bool
	// logLevel of the plugin (default debug: logs are printed on failure only).
	logLevel string
	// bench: no invariant checks, and plugin logs discarded (benchmarks).
	bench bool
}

// env is one scenario's world: a synthetic machine, a configuration, a mock
// runtime with the invariant checker installed, and the plugin under test.
type env struct {
	t       testing.TB
	mode    mode
	spec    synth.Spec
	topo    *topology.Topology
	cfg     config.Config
	dir     string
	sysfs   string // the synthetic machine as a sysfs tree (binary mode)
	cfgFile string
	rt      *mockruntime.Runtime
	chk     *invariants.Checker

	logLevel string
	bench    bool
	plugin   *pluginproc.Proc
	starts   int
	logsMu   sync.Mutex
	logs     []func() string // one per plugin start
}

func newEnv(t testing.TB, m mode, s setup) *env {
	t.Helper()
	e := &env{t: t, mode: m, spec: s.machine, dir: t.TempDir(), logLevel: s.logLevel, bench: s.bench}
	if e.spec.Name == "" {
		e.spec = synth.SmallTwoNode()
	}
	if e.logLevel == "" {
		e.logLevel = "debug"
	}
	var err error
	if e.topo, err = e.spec.Topology(); err != nil {
		t.Fatalf("machine %s: %v", e.spec.Name, err)
	}
	e.cfgFile = filepath.Join(e.dir, "config.toml")
	if err := os.WriteFile(e.cfgFile, []byte(s.config), 0o644); err != nil {
		t.Fatal(err)
	}
	if e.cfg, err = config.Parse(e.cfgFile, []byte(s.config)); err != nil {
		t.Fatalf("scenario config: %v", err)
	}
	if e.chk, err = invariants.New(e.topo, e.cfg); err != nil {
		t.Fatalf("scenario config: %v", err)
	}
	if m == binary {
		e.sysfs = filepath.Join(e.dir, "sysfs")
		if err := e.spec.WriteDir(e.sysfs); err != nil {
			t.Fatalf("writing machine %s: %v", e.spec.Name, err)
		}
	}
	opts := append([]mockruntime.Option(nil), s.rtOpts...)
	if !s.bench {
		opts = append(opts, mockruntime.WithCheck(e.chk.Check))
	}
	e.rt = mockruntime.NewForTest(t, opts...)
	// Runs after the plugin is stopped (cleanups run last-in first-out)
	// and before the runtime reports leftover violations.
	t.Cleanup(func() {
		if t.Failed() || len(e.rt.Violations()) > 0 {
			t.Logf("plugin logs (%s mode):\n%s", e.mode, e.pluginLogs())
		}
	})
	if !s.noPlugin {
		e.startPlugin()
	}
	return e
}

// startPlugin starts a fresh plugin (a new process, or a new plugin.Plugin
// with empty state) and waits until the runtime has synchronized it.
func (e *env) startPlugin() {
	e.t.Helper()
	e.starts++
	switch e.mode {
	case inProcess:
		e.plugin = e.startInProcess(nil)
	case binary:
		e.plugin = e.startBinary()
	}
	e.waitSync("start")
}

// waitSync waits for the plugin's next Synchronize (and registration),
// failing at once if the plugin exits.
func (e *env) waitSync(why string) time.Duration {
	e.t.Helper()
	start := time.Now()
	if err := e.plugin.WaitSync(e.rt, 15*time.Second); err != nil {
		e.fatalf("%s: plugin did not synchronize: %v", why, err)
	}
	took := time.Since(start)
	e.verify()
	return took
}

// killPlugin stops the plugin abruptly (SIGKILL; in-process: its context
// is cancelled and its connection dropped) and opens the checker's outage
// window until the next successful Synchronize.
func (e *env) killPlugin() {
	e.t.Helper()
	e.chk.PluginDown()
	e.plugin.Kill()
}

// startInProcess runs a new plugin.Plugin in a goroutine; onConnected, if
// set, is its RunOptions.OnConnected.
func (e *env) startInProcess(onConnected func()) *pluginproc.Proc {
	e.t.Helper()
	logs := &pluginproc.Logs{}
	o := pluginproc.Options{Level: e.logLevel, Logs: logs, RunOptions: plugin.RunOptions{
		Socket:     e.rt.SocketPath(),
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		OnConnected: onConnected,
	}}
	if e.bench {
		o.Logs = io.Discard
	}
	pr, err := pluginproc.Start(e.topo, e.cfg, o)
	if err != nil {
		e.t.Fatal(err)
	}
	e.addLogs(logs.String)
	e.t.Cleanup(pr.Kill)
	return pr
}

func (e *env) startBinary() *pluginproc.Proc {
	e.t.Helper()
	logFile := filepath.Join(e.dir, fmt.Sprintf("plugin-%d.log", e.starts))
	out := &pluginproc.Logs{}
	pr, err := pluginproc.Binary(binaryPath(e.t), pluginproc.BinaryArgs(pluginproc.BinaryOptions{
		Socket: e.rt.SocketPath(), Sysfs: e.sysfs, Config: e.cfgFile, Level: e.logLevel, LogFile: logFile,
	}), out)
	if err != nil {
		e.t.Fatal(err)
	}
	e.addLogs(func() string {
		b, _ := os.ReadFile(logFile)
		return fmt.Sprintf("$ %s\n%s%s", pr.Cmd, out.String(), b)
	})
	e.t.Cleanup(pr.Kill)
	return pr
}

func (e *env) addLogs(fn func() string) {
	e.logsMu.Lock()
	defer e.logsMu.Unlock()
	e.logs = append(e.logs, fn)
}

func (e *env) pluginLogs() string {
	e.logsMu.Lock()
	defer e.logsMu.Unlock()
	var b strings.Builder
	for i, fn := range e.logs {
		fmt.Fprintf(&b, "--- plugin instance %d ---\n%s", i+1, fn())
	}
	return b.String()
}

// fatalf fails the test with the message and the runtime's current model.
func (e *env) fatalf(format string, args ...any) {
	e.t.Helper()
	e.t.Fatalf(format+"\n%s", append(args, e.describe())...)
}

func (e *env) describe() string {
	s := e.rt.Snapshot()
	return e.chk.Describe(s, e.chk.Judge(s))
}

// verify fails the test at once if a step since the last call violated an
// invariant.
func (e *env) verify() {
	e.t.Helper()
	vs := e.rt.TakeViolations()
	if len(vs) == 0 {
		return
	}
	var b strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&b, "%v\n", v)
	}
	e.t.Fatalf("invariant violated:\n%s", b.String())
}

// runPod starts a pod (registering it with the checker first).
func (e *env) runPod(p *mockruntime.Pod) *mockruntime.Pod {
	e.t.Helper()
	e.chk.AddPod(p)
	if err := e.rt.RunPod(p); err != nil {
		e.fatalf("RunPod %s: %v", p.ID, err)
	}
	e.verify()
	return p
}

// create creates a container, which must succeed, and returns its view.
func (e *env) create(p *mockruntime.Pod, name string) mockruntime.ContainerInfo {
	e.t.Helper()
	c := p.Container(name)
	if _, _, err := e.rt.CreateContainer(p, c); err != nil {
		e.fatalf("CreateContainer %s: %v", c.ID, err)
	}
	e.verify()
	return e.ctr(c.ID)
}

// run creates and starts a container.
func (e *env) run(p *mockruntime.Pod, name string) mockruntime.ContainerInfo {
	e.t.Helper()
	e.create(p, name)
	c := p.Container(name)
	if err := e.rt.StartContainer(c); err != nil {
		e.fatalf("StartContainer %s: %v", c.ID, err)
	}
	e.verify()
	return e.ctr(c.ID)
}

// launch runs a pod and all its containers, init containers first (each
// stopped before the next container starts, as the kubelet does).
func (e *env) launch(p *mockruntime.Pod) *mockruntime.Pod {
	e.t.Helper()
	e.runPod(p)
	for _, c := range p.Containers() {
		e.run(p, c.Spec.Name)
		if c.Spec.Init {
			e.stop(p, c.Spec.Name)
		}
	}
	return p
}

// createFails creates a container that must be rejected and returns the error.
func (e *env) createFails(p *mockruntime.Pod, name string) error {
	e.t.Helper()
	c := p.Container(name)
	cpus, mems, err := e.rt.CreateContainer(p, c)
	if err == nil {
		e.fatalf("CreateContainer %s succeeded (cpus %q mems %q), want an error", c.ID, cpus, mems)
	}
	e.verify()
	if _, ok := e.rt.Container(c.ID); ok {
		e.fatalf("a rejected container %s is in the runtime", c.ID)
	}
	return err
}

func (e *env) stop(p *mockruntime.Pod, name string) {
	e.t.Helper()
	if err := e.rt.StopContainer(p.Container(name)); err != nil {
		e.fatalf("StopContainer %s: %v", p.Container(name).ID, err)
	}
	e.verify()
}

func (e *env) remove(p *mockruntime.Pod, name string) {
	e.t.Helper()
	if err := e.rt.RemoveContainer(p.Container(name)); err != nil {
		e.fatalf("RemoveContainer %s: %v", p.Container(name).ID, err)
	}
	e.verify()
}

// ctr returns a container's current view.
func (e *env) ctr(id string) mockruntime.ContainerInfo {
	e.t.Helper()
	c, ok := e.rt.Container(id)
	if !ok {
		e.fatalf("no container %s in the runtime", id)
	}
	return c
}

// pool is the shared pool as the checker derives it from the model now.
func (e *env) pool() topology.Mask {
	return e.chk.Judge(e.rt.Snapshot()).Pool
}

// reserved is the configuration's reserved CPUs.
func (e *env) reserved() topology.Mask {
	return mask(e.t, e.cfg.Policy.ReservedCPUs)
}

// expect checks a container's cpuset (mems "" is not checked).
func (e *env) expect(id, cpus, mems string) {
	e.t.Helper()
	c := e.ctr(id)
	if !invariants.SameCPUs(c.Cpus, cpus) || (mems != "" && !invariants.SameCPUs(c.Mems, mems)) {
		e.fatalf("%s: cpus %q mems %q, want cpus %q mems %q", id, c.Cpus, c.Mems, cpus, mems)
	}
}

// expectShared checks that a container's cpuset is the shared pool.
func (e *env) expectShared(id string) {
	e.t.Helper()
	if c, p := e.ctr(id), e.pool(); !mask(e.t, c.Cpus).Equals(p) {
		e.fatalf("%s: cpus %q, want the shared pool %s", id, c.Cpus, p)
	}
}

// perNode counts a cpuset's CPUs on each NUMA node.
func (e *env) perNode(cpus string) map[int]int {
	out := map[int]int{}
	mask(e.t, cpus).ForEach(func(c int) bool {
		out[e.topo.NodeOf(c)]++
		return true
	})
	return out
}

func mask(t testing.TB, s string) topology.Mask {
	t.Helper()
	m, err := topology.ParseMask(s)
	if err != nil {
		t.Fatalf("cpulist %q: %v", s, err)
	}
	return m
}

// Pods as the kubelet would build them. Every pod has one container "app".

func guaranteedPod(name string, cpus int) *mockruntime.Pod {
	return mockruntime.GuaranteedPod(name, mockruntime.ContainerSpec{Name: "app", CPURequestMilli: int64(cpus) * 1000})
}

func burstablePod(name string) *mockruntime.Pod {
	return mockruntime.BurstablePod(name, mockruntime.ContainerSpec{Name: "app", CPURequestMilli: 500, CPULimitMilli: 2000})
}

func bestEffortPod(name string) *mockruntime.Pod {
	return mockruntime.BestEffortPod(name, mockruntime.ContainerSpec{Name: "app"})
}

func equalCounts(a, b map[int]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
