package mockruntime_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"

	"github.com/numaspread/numaspread/test/mockruntime"
)

// fakePlugin is the smallest cpuset plugin that exercises every path the
// model must follow: every new container gets cpus "1" mems "0"; the second
// container created also moves the first to "0"; stopping any later
// container widens the first to "0-1"; UpdateContainer pins the target to
// "3"; Synchronize returns whatever syncUpdates holds.
type fakePlugin struct {
	stub   stub.Stub
	closed chan struct{}
	syncs  chan []*api.Container

	mu          sync.Mutex
	created     []string
	syncUpdates []*api.ContainerUpdate
	createDelay time.Duration
}

func cpusetUpdate(id, cpus string) *api.ContainerUpdate {
	u := &api.ContainerUpdate{}
	u.SetContainerId(id)
	u.SetLinuxCPUSetCPUs(cpus)
	return u
}

func (p *fakePlugin) Synchronize(_ context.Context, _ []*api.PodSandbox, ctrs []*api.Container) ([]*api.ContainerUpdate, error) {
	p.syncs <- ctrs
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.syncUpdates, nil
}

func (p *fakePlugin) CreateContainer(_ context.Context, _ *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	time.Sleep(p.createDelay)
	adj := &api.ContainerAdjustment{}
	adj.SetLinuxCPUSetCPUs("1")
	adj.SetLinuxCPUSetMems("0")
	var updates []*api.ContainerUpdate
	if len(p.created) == 1 {
		updates = append(updates, cpusetUpdate(p.created[0], "0"))
	}
	p.created = append(p.created, ctr.GetId())
	return adj, updates, nil
}

func (p *fakePlugin) StopContainer(_ context.Context, _ *api.PodSandbox, ctr *api.Container) ([]*api.ContainerUpdate, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.created) == 0 || p.created[0] == ctr.GetId() {
		return nil, nil
	}
	return []*api.ContainerUpdate{cpusetUpdate(p.created[0], "0-1")}, nil
}

func (p *fakePlugin) UpdateContainer(_ context.Context, _ *api.PodSandbox, ctr *api.Container, _ *api.LinuxResources) ([]*api.ContainerUpdate, error) {
	return []*api.ContainerUpdate{cpusetUpdate(ctr.GetId(), "3")}, nil
}

// startPlugin connects a fakePlugin to rt and waits until it is registered.
func startPlugin(t *testing.T, rt *mockruntime.Runtime, syncUpdates ...*api.ContainerUpdate) *fakePlugin {
	t.Helper()
	p := &fakePlugin{
		closed:      make(chan struct{}, 1),
		syncs:       make(chan []*api.Container, 10),
		syncUpdates: syncUpdates,
	}
	s, err := stub.New(p,
		stub.WithPluginName("fake"),
		stub.WithPluginIdx("10"),
		stub.WithSocketPath(rt.SocketPath()),
		stub.WithOnClose(func() { p.closed <- struct{}{} }),
	)
	if err != nil {
		t.Fatal(err)
	}
	p.stub = s
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	rt.MustWaitForSync(t, 5*time.Second)
	return p
}

// lastSync returns the containers the plugin saw in its latest Synchronize
// (as id → "cpus/mems"), dropping older ones.
func (p *fakePlugin) lastSync(t *testing.T) map[string]string {
	t.Helper()
	var ctrs []*api.Container
	select {
	case ctrs = <-p.syncs:
	case <-time.After(5 * time.Second):
		t.Fatal("plugin saw no Synchronize")
	}
	for len(p.syncs) > 0 {
		ctrs = <-p.syncs
	}
	out := map[string]string{}
	for _, c := range ctrs {
		cpu := c.GetLinux().GetResources().GetCpu()
		out[c.GetId()] = cpu.GetCpus() + "/" + cpu.GetMems()
	}
	return out
}

func waitClosed(t *testing.T, p *fakePlugin) {
	t.Helper()
	select {
	case <-p.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("plugin connection was not closed")
	}
}
