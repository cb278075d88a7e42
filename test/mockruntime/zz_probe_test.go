package mockruntime_test

import (
	"context"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"

	"github.com/numaspread/numaspread/test/mockruntime"
)

type reentrant struct{ s stub.Stub; first string }

func (p *reentrant) CreateContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	if p.first == "" { p.first = c.Id } else { p.s.UpdateContainers([]*api.ContainerUpdate{cpusetUpdate(p.first, "5")}) }
	adj := &api.ContainerAdjustment{}
	adj.SetLinuxCPUSetCPUs("1")
	return adj, nil, nil
}

func TestProbeReentrant(t *testing.T) {
	rt := mockruntime.NewForTest(t, mockruntime.WithRequestTimeout(300*time.Millisecond))
	p := &reentrant{}
	s, _ := stub.New(p, stub.WithPluginName("re"), stub.WithPluginIdx("20"), stub.WithSocketPath(rt.SocketPath()))
	p.s = s
	must(t, s.Start(context.Background()))
	defer s.Stop()
	rt.MustWaitForSync(t, 2*time.Second)
	pod := mockruntime.BestEffortPod("x", mockruntime.ContainerSpec{Name: "a"}, mockruntime.ContainerSpec{Name: "b"})
	must(t, rt.RunPod(pod))
	c, _, err := rt.CreateContainer(pod, pod.Container("a"))
	t.Logf("a: %q %v", c, err)
	start := time.Now()
	c, _, err = rt.CreateContainer(pod, pod.Container("b"))
	t.Logf("b: %q %v after %v", c, err, time.Since(start))
	time.Sleep(100 * time.Millisecond)
	for _, ci := range rt.Containers() { t.Logf("%s %s", ci.ID, ci.Cpus) }
}
