package suite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/plugin"
	"github.com/numaspread/numaspread/test/mockruntime"
	"github.com/numaspread/numaspread/test/pluginproc"
	"github.com/numaspread/numaspread/topology/synth"
)

// bareRuntime is the least a runtime does around NRI: containerd's
// adaptation, a map of containers whose cpusets follow the replies, and
// nothing else. The mock runtime also snapshots and sorts its whole model
// after every step (for its invariant hooks); at 1000 containers that
// bookkeeping, and the garbage it makes, outweighs NRI and the plugin. These
// benchmarks leave it out to show what a real runtime would pay.
type bareRuntime struct {
	a      *adaptation.Adaptation
	node   mockruntime.Node
	socket string

	mu   sync.Mutex
	pods map[string]*api.PodSandbox
	ctrs map[string]*api.Container
}

func newBareRuntime(b *testing.B) *bareRuntime {
	b.Helper()
	dir, err := os.MkdirTemp("", "nri-bare-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	r := &bareRuntime{pods: map[string]*api.PodSandbox{}, ctrs: map[string]*api.Container{},
		socket: filepath.Join(dir, "nri.sock")}
	sync := func(ctx context.Context, cb adaptation.SyncCB) error {
		r.mu.Lock()
		pods := make([]*api.PodSandbox, 0, len(r.pods))
		for _, p := range r.pods {
			pods = append(pods, p)
		}
		ctrs := make([]*api.Container, 0, len(r.ctrs))
		for _, c := range r.ctrs {
			ctrs = append(ctrs, c)
		}
		r.mu.Unlock()
		updates, err := cb(ctx, pods, ctrs)
		if err == nil {
			r.apply(updates)
		}
		return err
	}
	update := func(_ context.Context, updates []*api.ContainerUpdate) ([]*api.ContainerUpdate, error) {
		r.apply(updates)
		return nil, nil
	}
	r.a, err = adaptation.New("bare", "v0.0.0", sync, update,
		adaptation.WithPluginPath(filepath.Join(dir, "plugins")),
		adaptation.WithPluginConfigPath(filepath.Join(dir, "conf.d")),
		adaptation.WithSocketPath(r.socket))
	if err != nil {
		b.Fatal(err)
	}
	if err := r.a.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(r.a.Stop)
	return r
}

func (r *bareRuntime) apply(updates []*api.ContainerUpdate) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, u := range updates {
		if c := r.ctrs[u.GetContainerId()]; c != nil {
			setCPUSet(c, u.GetLinux().GetResources().GetCpu())
		}
	}
}

func setCPUSet(c *api.Container, cpu *api.LinuxCPU) {
	if cpu.GetCpus() != "" {
		c.Linux.Resources.Cpu.Cpus = cpu.GetCpus()
	}
	if cpu.GetMems() != "" {
		c.Linux.Resources.Cpu.Mems = cpu.GetMems()
	}
}

// create relays CreateContainer and records the container, as containerd does.
func (r *bareRuntime) create(ctx context.Context, p *mockruntime.Pod) (*api.PodSandbox, *api.Container, error) {
	sb := p.Sandbox(r.node)
	c := p.Container("app").NRI(r.node)
	c.CreatedAt = time.Now().UnixNano()
	rpl, err := r.a.CreateContainer(ctx, &api.CreateContainerRequest{Pod: sb, Container: c})
	if err != nil {
		return nil, nil, err
	}
	r.apply(rpl.GetUpdate())
	setCPUSet(c, rpl.GetAdjust().GetLinux().GetResources().GetCpu())
	r.mu.Lock()
	r.pods[sb.Id], r.ctrs[c.Id] = sb, c
	r.mu.Unlock()
	return sb, c, nil
}

// remove relays StopContainer and RemoveContainer.
func (r *bareRuntime) remove(ctx context.Context, sb *api.PodSandbox, c *api.Container) error {
	c.State = api.ContainerState_CONTAINER_STOPPED
	rpl, err := r.a.StopContainer(ctx, &api.StopContainerRequest{Pod: sb, Container: c})
	if err != nil {
		return err
	}
	r.apply(rpl.GetUpdate())
	r.mu.Lock()
	delete(r.ctrs, c.Id)
	delete(r.pods, sb.Id)
	r.mu.Unlock()
	return r.a.RemoveContainer(ctx, &api.RemoveContainerRequest{Pod: sb, Container: c})
}

// connect runs a fresh in-process plugin (observed by obs, if not nil)
// against the runtime and waits until it is synchronized and registered; it
// returns the plugin, a stop function, and the time from registration
// (Configure done) to that point.
func (r *bareRuntime) connect(b *testing.B, cfg config.Config, obs plugin.Observer) (*plugin.Plugin, func(), time.Duration) {
	b.Helper()
	connected := make(chan time.Time, 1)
	pr, err := pluginproc.Start(synth.EightNode512().MustTopology(), cfg, pluginproc.Options{Observer: obs,
		RunOptions: plugin.RunOptions{Socket: r.socket, OnConnected: func() { connected <- time.Now() }}})
	if err != nil {
		b.Fatal(err)
	}
	p, stop := pr.Plugin, pr.Kill
	deadline := time.Now().Add(15 * time.Second)
	for !p.Synced() {
		if time.Now().After(deadline) {
			stop()
			b.Fatal("the plugin did not synchronize")
		}
		time.Sleep(50 * time.Microsecond)
	}
	// The runtime holds its sync lock from before the plugin's Synchronize
	// until the plugin is registered: taking it is the barrier.
	r.a.BlockPluginSync().Unblock()
	return p, stop, time.Since(<-connected)
}

func (r *bareRuntime) populate(b *testing.B, n int) {
	b.Helper()
	ctx := context.Background()
	for i := range n {
		p := guaranteedPod(fmt.Sprintf("excl-%d", i), 1)
		if i >= n/2 {
			p = burstablePod(fmt.Sprintf("shared-%d", i))
		}
		if _, c, err := r.create(ctx, p); err != nil || c.Linux.Resources.Cpu.Cpus == "" {
			b.Fatalf("creating live container %d: %v", i, err)
		}
	}
}

// BenchmarkAdaptationCreateContainer is BenchmarkCreateContainer against
// bareRuntime: create-* is the CreateContainer round trip as containerd's
// CRI code would see it (adaptation, ttRPC over the socket, the plugin, the
// updates applied to the container map).
func BenchmarkAdaptationCreateContainer(b *testing.B) {
	kinds := []struct {
		name string
		pod  func(name string) *mockruntime.Pod
	}{
		{"guaranteed-2cpu", func(name string) *mockruntime.Pod { return guaranteedPod(name, 2) }},
		{"besteffort", bestEffortPod},
	}
	for _, live := range []int{0, 100, 1000} {
		b.Run(fmt.Sprintf("live=%d", live), func(b *testing.B) {
			r := newBareRuntime(b)
			obs := &requestTimes{}
			_, stop, _ := r.connect(b, config.Default(), obs)
			defer stop()
			r.populate(b, live)
			for _, kind := range kinds {
				b.Run(kind.name, func(b *testing.B) {
					obs.reset()
					ctx := context.Background()
					var create, remove []time.Duration
					i := 0
					for b.Loop() {
						pod := kind.pod(fmt.Sprintf("bench-%s-%d", kind.name, i))
						i++
						t0 := time.Now()
						sb, c, err := r.create(ctx, pod)
						t1 := time.Now()
						if err != nil || c.Linux.Resources.Cpu.Cpus == "" {
							b.Fatalf("CreateContainer: %v", err)
						}
						if err := r.remove(ctx, sb, c); err != nil {
							b.Fatal(err)
						}
						create, remove = append(create, t1.Sub(t0)), append(remove, time.Since(t1))
					}
					reportPercentiles(b, "create", create)
					reportPercentiles(b, "handler-create", obs.get("CreateContainer"))
					reportPercentiles(b, "stop+remove", remove)
				})
			}
		})
	}
}

// BenchmarkAdaptationSynchronize: a fresh plugin connecting to bareRuntime
// with 1000 live containers, from registration to synchronized and
// registered (sync-*), and the plugin's own Synchronize handler (handler-*).
func BenchmarkAdaptationSynchronize(b *testing.B) {
	r := newBareRuntime(b)
	_, stop, _ := r.connect(b, config.Default(), nil)
	r.populate(b, 1000)
	stop()
	obs := &requestTimes{}
	var syncs []time.Duration
	for b.Loop() {
		_, stop, took := r.connect(b, config.Default(), obs)
		b.StopTimer()
		stop()
		b.StartTimer()
		syncs = append(syncs, took)
	}
	b.ReportMetric(ms(percentile(syncs, 50)), "sync-p50-ms")
	b.ReportMetric(ms(percentile(syncs, 99)), "sync-p99-ms")
	b.ReportMetric(ms(percentile(obs.get("Synchronize"), 50)), "handler-p50-ms")
	b.ReportMetric(ms(percentile(obs.get("Synchronize"), 99)), "handler-p99-ms")
}
