package mockruntime_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"

	"github.com/numaspread/numaspread/test/mockruntime"
)

func cpus(t *testing.T, rt *mockruntime.Runtime, c *mockruntime.Container) string {
	t.Helper()
	info, ok := rt.Container(c.ID)
	if !ok {
		t.Fatalf("container %s not in the model", c.ID)
	}
	return info.Cpus + "/" + info.Mems
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestModelFollowsEveryUpdatePath(t *testing.T) {
	var ops []string
	rt := mockruntime.NewForTest(t, mockruntime.WithCheck(func(s mockruntime.Snapshot) error {
		ops = append(ops, s.Step.Op)
		return nil
	}))
	p := startPlugin(t, rt)

	pod := mockruntime.GuaranteedPod("web",
		mockruntime.ContainerSpec{Name: "a", CPURequestMilli: 1000},
		mockruntime.ContainerSpec{Name: "b", CPURequestMilli: 2000})
	a, b := pod.Container("a"), pod.Container("b")
	must(t, rt.RunPod(pod))

	// The adjustment lands on the new container.
	c, m, err := rt.CreateContainer(pod, a)
	must(t, err)
	if c != "1" || m != "0" {
		t.Fatalf("CreateContainer(a) = %q/%q, want 1/0", c, m)
	}
	must(t, rt.StartContainer(a))

	// The reply's update for another container lands too.
	_, _, err = rt.CreateContainer(pod, b)
	must(t, err)
	if got := cpus(t, rt, a); got != "0/0" {
		t.Errorf("a after creating b = %s, want 0/0", got)
	}
	if got := cpus(t, rt, b); got != "1/0" {
		t.Errorf("b = %s, want 1/0", got)
	}

	// StopContainer's updates land; the stopped container stays, stopped.
	must(t, rt.StopContainer(b))
	if got := cpus(t, rt, a); got != "0-1/0" {
		t.Errorf("a after stopping b = %s, want 0-1/0", got)
	}
	if info, _ := rt.Container(b.ID); info.State != api.ContainerState_CONTAINER_STOPPED {
		t.Errorf("b state = %v, want STOPPED", info.State)
	}

	// UpdateContainer: the plugin's value supersedes the CRI request's.
	must(t, rt.UpdateContainer(a, &api.LinuxResources{Cpu: &api.LinuxCPU{Cpus: "5"}}))
	if got := cpus(t, rt, a); got != "3/0" {
		t.Errorf("a after UpdateContainer = %s, want 3/0", got)
	}

	// Unsolicited updates land; unknown targets come back as failed.
	failed, err := p.stub.UpdateContainers([]*api.ContainerUpdate{
		cpusetUpdate(a.ID, "7"),
		cpusetUpdate("nope", "7"),
	})
	must(t, err)
	if len(failed) != 1 || failed[0].GetContainerId() != "nope" {
		t.Errorf("failed updates = %v, want just nope", failed)
	}
	if got := cpus(t, rt, a); got != "7/0" {
		t.Errorf("a after UpdateContainers = %s, want 7/0", got)
	}
	if f := rt.FailedUpdates(); len(f) != 1 || f[0].ContainerID != "nope" || f[0].Op != "UpdateContainers" {
		t.Errorf("FailedUpdates = %+v", f)
	}

	info, _ := rt.Container(a.ID)
	if got := info.Adjustment.GetLinux().GetResources().GetCpu().GetCpus(); got != "1" {
		t.Errorf("recorded adjustment cpus = %q, want 1", got)
	}

	must(t, rt.RemovePod(pod))
	if n := len(rt.Containers()); n != 0 {
		t.Errorf("%d containers left after RemovePod", n)
	}
	want := []string{"Synchronize(start)", "Synchronize", "RunPod", "CreateContainer", "StartContainer",
		"CreateContainer", "StopContainer", "UpdateContainer", "UpdateContainers",
		"StopContainer", "StopPod", "RemoveContainer", "RemoveContainer", "RemovePod"}
	if !reflect.DeepEqual(ops, want) {
		t.Errorf("steps seen by the check:\n got %v\nwant %v", ops, want)
	}
}

// TestUpdateContainerWithoutPlugin: with no plugin connected, nothing
// supersedes a CRI UpdateContainerResources: its resources land as asked,
// field by field (an empty field leaves the current value).
func TestUpdateContainerWithoutPlugin(t *testing.T) {
	rt := mockruntime.NewForTest(t)
	pod := mockruntime.BurstablePod("web", mockruntime.ContainerSpec{Name: "a", CPURequestMilli: 500})
	a := pod.Container("a")
	must(t, rt.RunPod(pod))
	c, m, err := rt.CreateContainer(pod, a)
	must(t, err)
	if c != "" || m != "" {
		t.Fatalf("CreateContainer with no plugin = %q/%q, want no cpuset", c, m)
	}
	must(t, rt.StartContainer(a))

	must(t, rt.UpdateContainer(a, &api.LinuxResources{Cpu: &api.LinuxCPU{Cpus: "5"}}))
	if got := cpus(t, rt, a); got != "5/" {
		t.Errorf("a after UpdateContainer(cpus 5) = %s, want 5/", got)
	}
	must(t, rt.UpdateContainer(a, &api.LinuxResources{Cpu: &api.LinuxCPU{Mems: "1"}}))
	if got := cpus(t, rt, a); got != "5/1" {
		t.Errorf("a after UpdateContainer(mems 1) = %s, want 5/1", got)
	}
	if f := rt.FailedUpdates(); len(f) != 0 {
		t.Errorf("FailedUpdates = %+v, want none", f)
	}
	// A stopped container takes no update.
	must(t, rt.StopContainer(a))
	if err := rt.UpdateContainer(a, &api.LinuxResources{Cpu: &api.LinuxCPU{Cpus: "6"}}); err == nil {
		t.Error("UpdateContainer of a stopped container succeeded")
	}
	if got := cpus(t, rt, a); got != "5/1" {
		t.Errorf("a after a refused update = %s, want 5/1", got)
	}
}

func TestSynchronizeSeesCurrentCpusets(t *testing.T) {
	rt := mockruntime.NewForTest(t)
	pod := mockruntime.BurstablePod("old", mockruntime.ContainerSpec{Name: "a", CPURequestMilli: 500})
	a := pod.Container("a")
	// Created before the plugin ever connected, with a kubelet-set cpuset.
	must(t, rt.InjectContainer(pod, a, "4-5", "1"))

	p := startPlugin(t, rt, cpusetUpdate(a.ID, "6"))
	if got, want := p.lastSync(t), map[string]string{a.ID: "4-5/1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Synchronize saw %v, want %v", got, want)
	}
	// Synchronize's returned update lands.
	if got := cpus(t, rt, a); got != "6/1" {
		t.Errorf("a after sync = %s, want 6/1", got)
	}
	if info, _ := rt.Container(a.ID); !info.Injected {
		t.Error("injected container not marked Injected")
	}
}

func TestRuntimeRestart(t *testing.T) {
	rt := mockruntime.NewForTest(t)
	p := startPlugin(t, rt)
	pod := mockruntime.GuaranteedPod("db",
		mockruntime.ContainerSpec{Name: "a", CPURequestMilli: 1000},
		mockruntime.ContainerSpec{Name: "b", CPURequestMilli: 1000})
	a, b := pod.Container("a"), pod.Container("b")
	must(t, rt.RunPod(pod))
	_, _, err := rt.CreateContainer(pod, a)
	must(t, err)
	must(t, rt.StartContainer(a))

	rt.Stop()
	waitClosed(t, p) // the plugin sees the connection drop
	if _, _, err := rt.CreateContainer(pod, b); !errors.Is(err, mockruntime.ErrNotRunning) {
		t.Fatalf("CreateContainer while stopped: err = %v, want ErrNotRunning", err)
	}
	must(t, rt.Start())

	// The plugin reconnects (here: by hand) and is synchronized with the
	// containers that survived the restart, cpusets included.
	must(t, p.stub.Start(context.Background()))
	rt.MustWaitForSync(t, 5*time.Second)
	if got, want := p.lastSync(t), map[string]string{a.ID: "1/0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Synchronize after restart saw %v, want %v", got, want)
	}
	c, _, err := rt.CreateContainer(pod, b)
	must(t, err)
	if c != "1" || cpus(t, rt, a) != "0/0" {
		t.Errorf("after restart: b = %q, a = %s; want 1 and 0/0", c, cpus(t, rt, a))
	}

	// Restart() does both halves at once.
	must(t, rt.Restart())
	waitClosed(t, p)
}

func TestKilledPluginIsDroppedAndContainerGetsNoCpuset(t *testing.T) {
	rt := mockruntime.NewForTest(t)
	p := startPlugin(t, rt)
	pod := mockruntime.BestEffortPod("batch",
		mockruntime.ContainerSpec{Name: "a"}, mockruntime.ContainerSpec{Name: "b"})
	a, b := pod.Container("a"), pod.Container("b")
	must(t, rt.RunPod(pod))
	_, _, err := rt.CreateContainer(pod, a)
	must(t, err)

	p.stub.Stop()
	c, m, err := rt.CreateContainer(pod, b)
	must(t, err)
	if c != "" || m != "" {
		t.Errorf("created while the plugin was down: cpuset %q/%q, want none", c, m)
	}
	if info, _ := rt.Container(b.ID); info.Adjustment != nil {
		t.Errorf("adjustment %v, want nil", info.Adjustment)
	}

	// A new plugin sees that container without a cpuset, to repair it.
	q := startPlugin(t, rt)
	if got, want := q.lastSync(t), map[string]string{a.ID: "1/0", b.ID: "/"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Synchronize saw %v, want %v", got, want)
	}
}

func TestRequestTimeoutDropsSlowPlugin(t *testing.T) {
	rt := mockruntime.NewForTest(t, mockruntime.WithRequestTimeout(200*time.Millisecond))
	p := startPlugin(t, rt)
	p.mu.Lock()
	p.createDelay = 400 * time.Millisecond
	p.mu.Unlock()
	pod := mockruntime.BurstablePod("slow", mockruntime.ContainerSpec{Name: "a", CPURequestMilli: 100})
	must(t, rt.RunPod(pod))
	c, _, err := rt.CreateContainer(pod, pod.Container("a"))
	if err != nil || c != "" {
		t.Fatalf("CreateContainer with a timed-out plugin = %q, %v; want no cpuset, no error", c, err)
	}
	waitClosed(t, p)
}

func TestCheckViolationsAreRecorded(t *testing.T) {
	rt, err := mockruntime.New(mockruntime.WithCheck(func(s mockruntime.Snapshot) error {
		if len(s.Containers) > 0 {
			return fmt.Errorf("%d containers", len(s.Containers))
		}
		return nil
	}))
	must(t, err)
	defer rt.Close()
	must(t, rt.Start())
	pod := mockruntime.BestEffortPod("x", mockruntime.ContainerSpec{Name: "a"})
	must(t, rt.RunPod(pod))
	_, _, err = rt.CreateContainer(pod, pod.Container("a"))
	must(t, err)
	v := rt.TakeViolations()
	if len(v) != 1 || v[0].Step.Op != "CreateContainer" || v[0].Step.ID != "x.a" {
		t.Fatalf("violations = %v", v)
	}
	if len(rt.Violations()) != 0 {
		t.Error("TakeViolations did not clear")
	}
}

func TestWaitForUnsolicitedUpdate(t *testing.T) {
	rt := mockruntime.NewForTest(t)
	p := startPlugin(t, rt)
	pod := mockruntime.BestEffortPod("x", mockruntime.ContainerSpec{Name: "a"})
	a := pod.Container("a")
	must(t, rt.RunPod(pod))
	_, _, err := rt.CreateContainer(pod, a)
	must(t, err)

	// As a plugin should: from its own goroutine, not inside a handler.
	go func() { _, _ = p.stub.UpdateContainers([]*api.ContainerUpdate{cpusetUpdate(a.ID, "2-3")}) }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	must(t, rt.WaitFor(ctx, func(s mockruntime.Snapshot) bool {
		c, _ := s.Container(a.ID)
		return c.Cpus == "2-3"
	}))
}

func TestConcurrentRequests(t *testing.T) {
	rt := mockruntime.NewForTest(t)
	startPlugin(t, rt)
	var pods []*mockruntime.Pod
	for i := range 8 {
		pod := mockruntime.BurstablePod(fmt.Sprintf("p%d", i),
			mockruntime.ContainerSpec{Name: "a", CPURequestMilli: 100},
			mockruntime.ContainerSpec{Name: "b", CPURequestMilli: 100})
		pods = append(pods, pod)
	}
	errs := make(chan error, len(pods))
	for _, pod := range pods {
		go func() {
			errs <- func() error {
				if err := rt.RunPod(pod); err != nil {
					return err
				}
				for _, c := range pod.Containers() {
					if _, _, err := rt.CreateContainer(pod, c); err != nil {
						return err
					}
					if err := rt.StartContainer(c); err != nil {
						return err
					}
				}
				return rt.RemovePod(pod)
			}()
		}()
	}
	for range pods {
		must(t, <-errs)
	}
	if n := len(rt.Snapshot().Pods); n != 0 {
		t.Errorf("%d pods left", n)
	}
}
