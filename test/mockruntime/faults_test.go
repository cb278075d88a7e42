package mockruntime_test

import (
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"

	"github.com/numaspread/numaspread/test/mockruntime"
)

// ExitContainer stops a container without telling plugins; a later
// RemoveContainer relays only the removal.
func TestExitThenRemoveRelaysNoStop(t *testing.T) {
	var ops []string
	rt := mockruntime.NewForTest(t, mockruntime.WithCheck(func(s mockruntime.Snapshot) error {
		ops = append(ops, s.Step.Op)
		return nil
	}))
	p := startPlugin(t, rt)
	pod := mockruntime.BurstablePod("web", mockruntime.ContainerSpec{Name: "a", CPURequestMilli: 500}, mockruntime.ContainerSpec{Name: "b", CPURequestMilli: 500})
	a, b := pod.Container("a"), pod.Container("b")
	must(t, rt.RunPod(pod))
	for _, c := range []*mockruntime.Container{a, b} {
		if _, _, err := rt.CreateContainer(pod, c); err != nil {
			t.Fatal(err)
		}
	}
	must(t, rt.ExitContainer(b))
	if info, _ := rt.Container(b.ID); info.State != api.ContainerState_CONTAINER_STOPPED {
		t.Fatalf("b is %v after ExitContainer", info.State)
	}
	must(t, rt.RemoveContainer(b))
	// The fake plugin widens a to 0-1 on any StopContainer of b: it got none.
	if got := cpus(t, rt, a); got != "0/0" {
		t.Errorf("a = %s: a StopContainer reached the plugin", got)
	}
	want := []string{"Synchronize(start)", "Synchronize", "RunPod", "CreateContainer", "CreateContainer", "ExitContainer", "RemoveContainer"}
	if !reflect.DeepEqual(ops, want) {
		t.Errorf("steps %v, want %v", ops, want)
	}
	_ = p
}

// SetCPUSet writes exactly what it is given, also while the runtime is
// stopped, and Synchronize reports it.
func TestSetCPUSetIsReportedAtSynchronize(t *testing.T) {
	rt := mockruntime.NewForTest(t)
	pod := mockruntime.BurstablePod("web", mockruntime.ContainerSpec{Name: "a", CPURequestMilli: 500})
	a := pod.Container("a")
	must(t, rt.InjectContainer(pod, a, "4-5", "1"))
	rt.Stop()
	must(t, rt.SetCPUSet(a, "", "")) // works while stopped; "" clears
	if got := cpus(t, rt, a); got != "/" {
		t.Fatalf("a = %s, want cleared", got)
	}
	must(t, rt.SetCPUSet(a, "999", "7"))
	must(t, rt.Start())
	p := startPlugin(t, rt)
	if got := p.lastSync(t); got[a.ID] != "999/7" {
		t.Errorf("Synchronize saw %v", got)
	}
	if err := rt.SetCPUSet(mockruntime.BestEffortPod("x", mockruntime.ContainerSpec{Name: "y"}).Container("y"), "1", ""); err == nil {
		t.Error("SetCPUSet of an unknown container succeeded")
	}
}

// The model keeps creation order through removals without sorting, and
// the round-trip observer sees each relayed request.
func TestOrderAndRoundTrips(t *testing.T) {
	var mu sync.Mutex
	trips := map[string]int{}
	rt := mockruntime.NewForTest(t, mockruntime.WithRoundTripObserver(func(op string, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if d <= 0 {
			t.Errorf("%s took %v", op, d)
		}
		trips[op]++
	}))
	startPlugin(t, rt)
	var pods []*mockruntime.Pod
	for _, name := range []string{"p0", "p1", "p2", "p3", "p4"} {
		p := mockruntime.BestEffortPod(name, mockruntime.ContainerSpec{Name: "c"})
		must(t, rt.RunPod(p))
		if _, _, err := rt.CreateContainer(p, p.Container("c")); err != nil {
			t.Fatal(err)
		}
		pods = append(pods, p)
	}
	must(t, rt.RemovePod(pods[1]))
	must(t, rt.RemovePod(pods[3]))
	late := mockruntime.BestEffortPod("late", mockruntime.ContainerSpec{Name: "c"})
	must(t, rt.InjectContainer(late, late.Container("c"), "", ""))
	var ids []string
	for _, c := range rt.Snapshot().Containers {
		ids = append(ids, c.ID)
	}
	if want := []string{"p0.c", "p2.c", "p4.c", "late.c"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("containers %v, want %v", ids, want)
	}
	var pids []string
	for _, p := range rt.Snapshot().Pods {
		pids = append(pids, p.ID)
	}
	if want := []string{"p0", "p2", "p4", "late"}; !reflect.DeepEqual(pids, want) {
		t.Errorf("pods %v, want %v", pids, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if trips["CreateContainer"] != 5 || trips["StopContainer"] != 2 || trips["RemoveContainer"] != 2 {
		t.Errorf("round trips %v", trips)
	}
}
