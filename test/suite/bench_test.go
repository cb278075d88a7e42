package suite

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/sirupsen/logrus"

	"github.com/numaspread/numaspread/plugin"
	"github.com/numaspread/numaspread/test/mockruntime"
	"github.com/numaspread/numaspread/topology/synth"
)

// The benchmarks run the in-process plugin on EightNode512 (512 CPUs, 8
// nodes) with n live containers: n/2 exclusive Guaranteed containers of 1
// CPU and n/2 shared Burstable ones. Invariant checks are off and plugin
// logs (level info) are discarded. Benchmark* go through the mock runtime;
// BenchmarkAdaptation* (bench_adaptation_test.go) through a bare
// adaptation, without the mock runtime's bookkeeping.
//
// docs/performance.md gives their figures, from
//
//	go test ./test/suite/ -run '^$' -bench 'CreateContainer|Synchronize' -benchtime 300x -count 3

// populate starts the plugin and n live containers, exclusive ones first
// (so that setup does not pay for pool updates), and returns their pods.
func populate(b *testing.B, n int) (*env, []*mockruntime.Pod) {
	b.Helper()
	e := newEnv(b, inProcess, setup{machine: synth.EightNode512(), logLevel: "info", bench: true})
	var pods []*mockruntime.Pod
	for i := range n {
		var p *mockruntime.Pod
		if i < n/2 {
			p = guaranteedPod(fmt.Sprintf("excl-%d", i), 1)
		} else {
			p = burstablePod(fmt.Sprintf("shared-%d", i))
		}
		pods = append(pods, e.launch(p))
	}
	return e, pods
}

// BenchmarkCreateContainer: the CreateContainer round trip through the
// mock runtime (CRI request → adaptation → ttRPC → plugin → reply applied
// to the model) for a Guaranteed 2-CPU container, then its stop + removal,
// with 0, 100 and 1000 live containers; and the same for a BestEffort
// container. With shared containers live, each exclusive create and stop
// carries one cpuset update per shared container (the pool changes).
//
// Metrics: create-* is the round trip as the CRI caller sees it;
// handler-create-* is the plugin's CreateContainer handler alone (its
// Observer); stop+remove-* the removal round trip; model-step-* what a
// copy of the mock runtime's model costs (made after every step only when
// invariant checks are installed, which benchmarks do not do; a real
// runtime does not pay it).
func BenchmarkCreateContainer(b *testing.B) {
	kinds := []struct {
		name string
		pod  func(name string) *mockruntime.Pod
	}{
		// The benchmark of the issue: the pool shrinks and grows.
		{"guaranteed-2cpu", func(name string) *mockruntime.Pod { return guaranteedPod(name, 2) }},
		// For comparison: a shared container changes no other container.
		{"besteffort", bestEffortPod},
	}
	for _, live := range []int{0, 100, 1000} {
		b.Run(fmt.Sprintf("live=%d", live), func(b *testing.B) {
			e, _ := populate(b, live)
			for _, kind := range kinds {
				b.Run(kind.name, func(b *testing.B) {
					obs := &requestTimes{}
					e.plugin.Plugin.SetObserver(obs)
					defer e.plugin.Plugin.SetObserver(nil)
					var create, remove, model []time.Duration
					i := 0
					for b.Loop() {
						p := kind.pod(fmt.Sprintf("bench-%s-%d", kind.name, i))
						c := p.Container("app")
						i++
						if err := e.rt.RunPod(p); err != nil {
							b.Fatal(err)
						}
						t0 := time.Now()
						cpus, _, err := e.rt.CreateContainer(p, c)
						t1 := time.Now()
						if err != nil || cpus == "" {
							b.Fatalf("CreateContainer: cpus %q, %v", cpus, err)
						}
						if err := e.rt.RemoveContainer(c); err != nil {
							b.Fatal(err)
						}
						t2 := time.Now()
						e.rt.Snapshot() // the copy a step makes when checks are installed
						t3 := time.Now()
						if err := e.rt.RemovePod(p); err != nil {
							b.Fatal(err)
						}
						create, remove, model = append(create, t1.Sub(t0)), append(remove, t2.Sub(t1)), append(model, t3.Sub(t2))
					}
					reportPercentiles(b, "create", create)
					reportPercentiles(b, "handler-create", obs.get("CreateContainer"))
					reportPercentiles(b, "stop+remove", remove)
					b.ReportMetric(us(percentile(model, 50)), "model-step-p50-µs")
				})
			}
		})
	}
}

// requestTimes is a plugin.Observer that records how long each handler took.
type requestTimes struct {
	mu sync.Mutex
	d  map[string][]time.Duration
}

func (r *requestTimes) Request(event string, took time.Duration, _ error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.d == nil {
		r.d = map[string][]time.Duration{}
	}
	r.d[event] = append(r.d[event], took)
}

func (r *requestTimes) Decision(string) {}

func (r *requestTimes) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.d)
}

func (r *requestTimes) get(event string) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.d[event])
}

// BenchmarkSynchronize: a fresh plugin synchronizing with 1000 live
// containers (500 exclusive whose CPUs it must claim back, 500 shared).
//
//   - handler: Plugin.Synchronize itself, called with the pods and
//     containers the runtime would send.
//   - runtime: through the runtime, from the moment a new plugin has
//     registered (Configure done) until the runtime has applied its
//     Synchronize reply and registered it; plus the whole reconnect (dial,
//     register, configure, synchronize).
func BenchmarkSynchronize(b *testing.B) {
	e, pods := populate(b, 1000)
	b.Run("handler", func(b *testing.B) {
		sbs, ctrs := syncRequest(b, e, pods)
		log := logrus.New()
		log.SetOutput(io.Discard)
		var took []time.Duration
		for b.Loop() {
			b.StopTimer()
			p, err := plugin.New(e.topo, e.cfg, log) // a fresh plugin, with empty state
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			start := time.Now()
			updates, err := p.Synchronize(context.Background(), sbs, ctrs)
			took = append(took, time.Since(start))
			if err != nil || len(updates) != 0 {
				b.Fatalf("Synchronize: %d updates, %v", len(updates), err)
			}
		}
		b.ReportMetric(ms(percentile(took, 50)), "sync-p50-ms")
		b.ReportMetric(ms(percentile(took, 99)), "sync-p99-ms")
	})
	b.Run("runtime", func(b *testing.B) {
		var syncs, reconnects []time.Duration
		for b.Loop() {
			b.StopTimer()
			e.killPlugin()
			connected := make(chan time.Time, 1)
			b.StartTimer()
			start := time.Now()
			e.plugin = e.startInProcess(func() { connected <- time.Now() })
			e.waitSync("benchmark")
			done := time.Now()
			reconnects = append(reconnects, done.Sub(start))
			syncs = append(syncs, done.Sub(<-connected))
		}
		b.ReportMetric(ms(percentile(syncs, 50)), "sync-p50-ms")
		b.ReportMetric(ms(percentile(syncs, 99)), "sync-p99-ms")
		b.ReportMetric(ms(percentile(reconnects, 50)), "reconnect-p50-ms")
	})
}

// syncRequest builds the pods and containers a runtime hands to
// Synchronize: the live ones, with their current cpusets.
func syncRequest(b *testing.B, e *env, pods []*mockruntime.Pod) ([]*api.PodSandbox, []*api.Container) {
	b.Helper()
	node := e.rt.Node()
	var sbs []*api.PodSandbox
	var ctrs []*api.Container
	for _, p := range pods {
		sbs = append(sbs, p.Sandbox(node))
		c := p.Container("app")
		info, ok := e.rt.Container(c.ID)
		if !ok {
			b.Fatalf("no container %s", c.ID)
		}
		nc := c.NRI(node)
		nc.State = api.ContainerState_CONTAINER_RUNNING
		nc.CreatedAt = int64(info.Seq)
		nc.Linux.Resources.Cpu.Cpus, nc.Linux.Resources.Cpu.Mems = info.Cpus, info.Mems
		ctrs = append(ctrs, nc)
	}
	return sbs, ctrs
}

func reportPercentiles(b *testing.B, what string, ds []time.Duration) {
	b.ReportMetric(us(percentile(ds, 50)), what+"-p50-µs")
	b.ReportMetric(us(percentile(ds, 99)), what+"-p99-µs")
}

// percentile returns the p-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := (p*len(s) + 99) / 100 // ceil(p/100 × n), 1-based
	return s[max(rank, 1)-1]
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
