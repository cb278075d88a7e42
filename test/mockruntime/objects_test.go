package mockruntime_test

import (
	"strings"
	"testing"

	"github.com/containerd/nri/pkg/api"

	"github.com/numaspread/numaspread/test/mockruntime"
)

func TestKubeletArithmetic(t *testing.T) {
	for _, tc := range []struct {
		milli  int64
		shares uint64
		quota  int64
	}{
		{0, 2, 0},
		{1, 2, 1000},
		{100, 102, 10000},
		{1500, 1536, 150000},
		{4000, 4096, 400000},
		{1000000, 262144, 100000000},
	} {
		if got := mockruntime.CPUShares(tc.milli); got != tc.shares {
			t.Errorf("CPUShares(%d) = %d, want %d", tc.milli, got, tc.shares)
		}
		if got := mockruntime.CPUQuota(tc.milli); got != tc.quota {
			t.Errorf("CPUQuota(%d) = %d, want %d", tc.milli, got, tc.quota)
		}
	}
	const gib = 1 << 30
	for _, tc := range []struct {
		qos      mockruntime.QoSClass
		mem, cap int64
		want     int
	}{
		{mockruntime.Guaranteed, gib, 64 * gib, -997},
		{mockruntime.BestEffort, 0, 64 * gib, 1000},
		{mockruntime.Burstable, 0, 64 * gib, 999},
		{mockruntime.Burstable, 32 * gib, 64 * gib, 500},
		{mockruntime.Burstable, 64 * gib, 64 * gib, 3},
	} {
		if got := mockruntime.OOMScoreAdj(tc.qos, tc.mem, tc.cap); got != tc.want {
			t.Errorf("OOMScoreAdj(%s, %d, %d) = %d, want %d", tc.qos, tc.mem, tc.cap, got, tc.want)
		}
	}
}

func TestGuaranteedPodAsContainerdReportsIt(t *testing.T) {
	pod := mockruntime.GuaranteedPod("db",
		mockruntime.ContainerSpec{Name: "init", CPURequestMilli: 4000, Init: true},
		mockruntime.ContainerSpec{Name: "main", CPURequestMilli: 1500, MemoryLimit: 1 << 30},
		mockruntime.ContainerSpec{Name: "side", CPULimitMilli: 1000}).
		WithAnnotation("numaspread.io/policy", "packed")
	n := mockruntime.Node{}

	sb := pod.Sandbox(n)
	if got, want := sb.GetLinux().GetCgroupParent(), "/kubepods/pod"+pod.UID; got != want {
		t.Errorf("cgroup parent %q, want %q", got, want)
	}
	if sb.GetAnnotations()["numaspread.io/policy"] != "packed" {
		t.Error("pod annotation lost")
	}
	// Pod totals: max(init 4000m, app 1500m+1000m) = 4000m.
	pr := sb.GetLinux().GetPodResources().GetCpu()
	if pr.GetShares().GetValue() != 4096 || pr.GetQuota().GetValue() != 400000 || pr.GetPeriod().GetValue() != 100000 {
		t.Errorf("pod resources %v", pr)
	}

	c := pod.Container("main").NRI(n)
	cpu := c.GetLinux().GetResources().GetCpu()
	if cpu.GetShares().GetValue() != 1536 || cpu.GetQuota().GetValue() != 150000 || cpu.GetCpus() != "" {
		t.Errorf("main cpu %v", cpu)
	}
	if c.GetLinux().GetResources().GetMemory().GetLimit().GetValue() != 1<<30 {
		t.Errorf("main memory %v", c.GetLinux().GetResources().GetMemory())
	}
	if c.GetLinux().GetOomScoreAdj().GetValue() != -997 || c.GetState() != api.ContainerState_CONTAINER_CREATED {
		t.Errorf("main oom %v state %v", c.GetLinux().GetOomScoreAdj(), c.GetState())
	}
	if got, want := c.GetLinux().GetCgroupsPath(), "/kubepods/pod"+pod.UID+"/db.main"; got != want {
		t.Errorf("cgroups path %q, want %q", got, want)
	}
	if side := pod.Container("side").Spec; side.CPURequestMilli != 1000 || side.MemoryLimit == 0 {
		t.Errorf("side not defaulted: %+v", side)
	}
}

func TestBurstableAndBestEffort(t *testing.T) {
	n := mockruntime.Node{SystemdCgroups: true, MemoryBytes: 16 << 30}
	bu := mockruntime.BurstablePod("web", mockruntime.ContainerSpec{Name: "a", CPURequestMilli: 500, MemoryRequest: 8 << 30})
	sb := bu.Sandbox(n)
	uid := strings.ReplaceAll(bu.UID, "-", "_")
	if got, want := sb.GetLinux().GetCgroupParent(), "kubepods-burstable-pod"+uid+".slice"; got != want {
		t.Errorf("cgroup parent %q, want %q", got, want)
	}
	// No limit: the pod's quota is 0 (CRI "unset"), the container's is absent.
	if q := sb.GetLinux().GetPodResources().GetCpu().GetQuota(); q.GetValue() != 0 {
		t.Errorf("pod quota %v, want 0", q)
	}
	c := bu.Container("a").NRI(n)
	if c.GetLinux().GetResources().GetCpu().GetQuota() != nil {
		t.Error("container quota set without a limit")
	}
	if c.GetLinux().GetOomScoreAdj().GetValue() != 500 {
		t.Errorf("oom %v, want 500", c.GetLinux().GetOomScoreAdj())
	}
	if !strings.HasSuffix(c.GetLinux().GetCgroupsPath(), ".slice:cri-containerd:web.a") {
		t.Errorf("systemd cgroups path %q", c.GetLinux().GetCgroupsPath())
	}

	be := mockruntime.BestEffortPod("batch", mockruntime.ContainerSpec{Name: "a", CPURequestMilli: 3000})
	c = be.Container("a").NRI(mockruntime.Node{})
	if c.GetLinux().GetResources().GetCpu().GetShares().GetValue() != 2 || c.GetLinux().GetOomScoreAdj().GetValue() != 1000 {
		t.Errorf("best effort container %v", c.GetLinux())
	}
	if got := be.Sandbox(mockruntime.Node{}).GetLinux().GetCgroupParent(); !strings.HasPrefix(got, "/kubepods/besteffort/pod") {
		t.Errorf("best effort parent %q", got)
	}
}

func TestContainerRestartGetsNewID(t *testing.T) {
	pod := mockruntime.BurstablePod("p", mockruntime.ContainerSpec{Name: "a"}).WithNamespace("ns")
	first := pod.Container("a")
	second := pod.AddContainer(mockruntime.ContainerSpec{Name: "a"})
	if first.ID != "ns.p.a" || second.ID != "ns.p.a.1" || pod.Container("a") != second {
		t.Errorf("ids %q %q", first.ID, second.ID)
	}
}

func TestGuaranteedPodRejectsUnequalRequestAndLimit(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for request != limit")
		}
	}()
	mockruntime.GuaranteedPod("bad", mockruntime.ContainerSpec{Name: "a", CPURequestMilli: 1000, CPULimitMilli: 2000})
}
