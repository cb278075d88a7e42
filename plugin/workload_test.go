package plugin

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/containerd/nri/pkg/api"

	"github.com/numaspread/numaspread/policy"
)

func testContainer(shares uint64, quota int64, period uint64, oom *int) *api.Container {
	cpu := &api.LinuxCPU{}
	if shares > 0 {
		cpu.Shares = api.UInt64(shares)
	}
	if quota != 0 {
		cpu.Quota = api.Int64(quota)
	}
	if period > 0 {
		cpu.Period = api.UInt64(period)
	}
	ctr := &api.Container{Id: "c1", Name: "app", Linux: &api.LinuxContainer{Resources: &api.LinuxResources{Cpu: cpu}}}
	if oom != nil {
		ctr.Linux.OomScoreAdj = api.Int(*oom)
	}
	return ctr
}

func podWithParent(parent string) *api.PodSandbox {
	return &api.PodSandbox{Id: "p1", Name: "pod", Namespace: "ns", Linux: &api.LinuxPodSandbox{CgroupParent: parent}}
}

func TestInferWorkload(t *testing.T) {
	guaranteedOOM, burstableOOM, restrictedOOM := -997, 500, 0
	tests := []struct {
		name          string
		parent        string
		shares        uint64
		quota         int64
		period        uint64
		oom           *int
		wantQoS       QoS
		wantExclusive int
		wantWhy       string
	}{
		{"Guaranteed 4 CPUs (cgroupfs)", "/kubepods/pod1234", 4096, 400000, 100000, &guaranteedOOM, Guaranteed, 4, ""},
		{"Guaranteed 2 CPUs (systemd)", "kubepods-pod1234.slice", 2048, 200000, 100000, &guaranteedOOM, Guaranteed, 2, ""},
		{"Guaranteed fractional", "/kubepods/pod1", 1536, 150000, 100000, &guaranteedOOM, Guaranteed, 0, "not a whole number"},
		{"Guaranteed, oom_score_adj disagrees", "/kubepods/pod1", 2048, 200000, 100000, &burstableOOM, Guaranteed, 0, "oom_score_adj 500"},
		{"Guaranteed, oom_score_adj raised to 0 by restrict_oom_score_adj", "/kubepods/pod1", 2048, 200000, 100000, &restrictedOOM, Guaranteed, 2, ""},
		{"Burstable (systemd)", "kubepods-burstable-pod1.slice", 1024, 200000, 100000, &burstableOOM, Burstable, 0, "QoS class Burstable"},
		{"BestEffort", "/kubepods/besteffort/pod1", 2, 0, 100000, nil, BestEffort, 0, "QoS class BestEffort"},
		{"no Kubernetes parent, request = limit", "/custom", 2048, 200000, 100000, nil, Guaranteed, 2, ""},
		{"no Kubernetes parent, no resources", "", 0, 0, 0, nil, BestEffort, 0, "QoS class BestEffort"},
		{"unlimited quota -1", "/kubepods/pod1", 2048, -1, 100000, &guaranteedOOM, Guaranteed, 0, "differs from limit"},
		// Both bounded to maxMilli (a million CPUs): equal, so the allocation
		// fails with a clear error. The quota used to overflow int64 on the
		// way (MinInt64 on amd64, so "shared"; saturated on arm64).
		{"huge shares and quota do not overflow", "/kubepods/pod1", 1 << 62, 1 << 62, 1, &guaranteedOOM, Guaranteed, maxMilli / 1000, ""},
		{"huge quota alone does not overflow", "/kubepods/pod1", 2048, 1 << 62, 1, &guaranteedOOM, Guaranteed, 0, "differs from limit 1000000000m"},
		// The kubelet caps cpu.shares at 262144 (256 CPUs): a Guaranteed
		// container of 300 CPUs shows shares 262144, quota 300 CPUs.
		{"Guaranteed above the kubelet's shares cap", "/kubepods/pod1", 262144, 30000000, 100000, &guaranteedOOM, Guaranteed, 300, ""},
		{"Guaranteed at the shares cap exactly", "/kubepods/pod1", 262144, 25600000, 100000, &guaranteedOOM, Guaranteed, 256, ""},
		{"Burstable at the shares cap stays shared", "/kubepods/burstable/pod1", 262144, 30000000, 100000, &burstableOOM, Burstable, 0, "QoS class Burstable"},
		{"no Kubernetes parent at the shares cap: request ≠ limit", "/custom", 262144, 30000000, 100000, nil, Burstable, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := inferWorkload(podWithParent(tt.parent), testContainer(tt.shares, tt.quota, tt.period, tt.oom))
			if w.qos != tt.wantQoS || w.exclusive != tt.wantExclusive || !strings.Contains(w.why, tt.wantWhy) {
				t.Errorf("got %+v, want QoS %s, %d exclusive, why containing %q", w, tt.wantQoS, tt.wantExclusive, tt.wantWhy)
			}
		})
	}
}

func TestSharesAndQuotaConversions(t *testing.T) {
	// The kubelet's forward conversions: shares = milli*1024/1000, quota = milli*period/1000.
	for _, milli := range []int64{1000, 2000, 3000, 8000, 64000, 250000} {
		shares := uint64(milli * 1024 / 1000)
		if got := sharesToMilli(shares); got != milli {
			t.Errorf("sharesToMilli(%d) = %d, want %d", shares, got, milli)
		}
		if got := quotaToMilli(milli*100, 100000); got != milli {
			t.Errorf("quotaToMilli(%d) = %d, want %d", milli*100, got, milli)
		}
	}
	if sharesToMilli(2) != 0 || quotaToMilli(0, 100000) != 0 || quotaToMilli(5000, 0) != 0 {
		t.Error("minimum shares, zero quota or zero period must mean none")
	}
}

func TestAnnotationChoices(t *testing.T) {
	base := policy.DefaultOptions()
	tests := []struct {
		name       string
		ann        map[string]string
		wantMode   policy.Mode
		wantSpread policy.Spread
		wantMax    int
		wantOptOut bool
		wantErr    string
	}{
		{"none", nil, policy.Distributed, policy.SpreadAll, 0, false, ""},
		{"pod policy packed", map[string]string{"numaspread.io/policy": "packed"}, policy.Packed, policy.SpreadAll, 0, false, ""},
		{"container key wins", map[string]string{"numaspread.io/policy": "packed", "numaspread.io/policy.container.app": "distributed"},
			policy.Distributed, policy.SpreadAll, 0, false, ""},
		{"other container's key ignored", map[string]string{"numaspread.io/policy.container.sidecar": "packed"}, policy.Distributed, policy.SpreadAll, 0, false, ""},
		{"spread minimal", map[string]string{"numaspread.io/spread": "minimal"}, policy.Distributed, policy.SpreadMinimal, 0, false, ""},
		{"spread number", map[string]string{"numaspread.io/spread": "2"}, policy.Distributed, policy.SpreadAll, 2, false, ""},
		{"exclusive false", map[string]string{"numaspread.io/exclusive": "false"}, policy.Distributed, policy.SpreadAll, 0, true, ""},
		{"bad policy", map[string]string{"numaspread.io/policy": "spready"}, "", "", 0, false,
			`annotation numaspread.io/policy: "spready" is not one of distributed, packed`},
		{"bad spread", map[string]string{"numaspread.io/spread.container.app": "0"}, "", "", 0, false,
			`annotation numaspread.io/spread.container.app: "0" is not one of all, minimal, or a number`},
		{"bad exclusive", map[string]string{"numaspread.io/exclusive": "yes"}, "", "", 0, false,
			`annotation numaspread.io/exclusive: "yes" is not one of true, false`},
		// An error about another key keeps a valid opt-out (Synchronize honours it).
		{"bad policy, opted out", map[string]string{"numaspread.io/policy": "spready", "numaspread.io/exclusive.container.app": "false"}, "", "", 0, true,
			`annotation numaspread.io/policy: "spready" is not one of distributed, packed`},
		{"bad spread, pod opted out", map[string]string{"numaspread.io/spread": "0", "numaspread.io/exclusive": "false"}, "", "", 0, true,
			`annotation numaspread.io/spread: "0" is not one of all, minimal, or a number`},
		{"bad policy, opted back in", map[string]string{"numaspread.io/policy": "spready", "numaspread.io/exclusive": "false", "numaspread.io/exclusive.container.app": "true"}, "", "", 0, false,
			`annotation numaspread.io/policy: "spready" is not one of distributed, packed`},
		{"huge value is cut in the message", map[string]string{"numaspread.io/policy": strings.Repeat("x", 10000)}, "", "", 0, false, "x…\" is not one of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, optOut, err := annotationChoices(tt.ann, "app", base)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || len(err.Error()) > 200 {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if optOut != tt.wantOptOut || o != base {
					t.Errorf("with the error: %+v optOut=%v, want the base options and optOut=%v", o, optOut, tt.wantOptOut)
				}
				return
			}
			if err != nil || o.Mode != tt.wantMode || o.Spread != tt.wantSpread || o.MaxNUMANodes != tt.wantMax || optOut != tt.wantOptOut {
				t.Errorf("got %+v optOut=%v err=%v", o, optOut, err)
			}
		})
	}
	if got := unknownAnnotations(map[string]string{"numaspread.io/polcy": "x", "numaspread.io/policy.container.a": "packed", "other.io/x": "y"}); len(got) != 1 || got[0] != "numaspread.io/polcy" {
		t.Errorf("unknownAnnotations = %v", got)
	}
}

// Pod-level resources (spec.resources, KEP-2837) never make a container
// exclusive: the container's own request and limit decide, as with the
// kubelet's static policy (see inferWorkload).
func TestInferWorkloadPodLevelResources(t *testing.T) {
	guaranteedOOM := -997
	podCPU := func(shares uint64, quota int64) *api.LinuxResources {
		cpu := &api.LinuxCPU{Period: api.UInt64(uint64(100000))}
		if shares > 0 {
			cpu.Shares = api.UInt64(shares)
		}
		if quota != 0 {
			cpu.Quota = api.Int64(quota)
		}
		return &api.LinuxResources{Cpu: cpu}
	}
	tests := []struct {
		name          string
		parent        string
		podResources  *api.LinuxResources // nil: the runtime passed none
		shares        uint64
		quota         int64
		wantQoS       QoS
		wantExclusive int
		wantWhy       string
	}{
		// The container has nothing of its own; the pod is Guaranteed with 4
		// whole CPUs. The kubelet gives no exclusive CPUs, nor do we.
		{"no own resources, pod-level 4 CPUs", "/kubepods/podapp", podCPU(4096, 400000), 2, 0, Guaranteed, 0, "pod-level resources (request 4000m, limit 4000m) give no exclusive CPUs"},
		{"no own resources, pod-level 4 CPUs (systemd)", "kubepods-podapp.slice", podCPU(4096, 400000), 0, 0, Guaranteed, 0, "no CPU request or limit of its own"},
		{"no own resources, pod-level fractional", "/kubepods/podapp", podCPU(1536, 150000), 2, 0, Guaranteed, 0, "request 1500m, limit 1500m"},
		{"no own resources, pod-level limit only", "/kubepods/podapp", podCPU(0, 200000), 2, 0, Guaranteed, 0, "request 0m, limit 2000m"},
		// Without pod-level resources the message is the usual one.
		{"no own resources, no pod resources", "/kubepods/podapp", nil, 2, 0, Guaranteed, 0, "CPU request 0m differs from limit 0m"},
		{"no own resources, empty pod resources", "/kubepods/podapp", podCPU(2, 0), 2, 0, Guaranteed, 0, "CPU request 0m differs from limit 0m"},
		// Pod-level resources never lift the QoS class from the cgroup parent.
		{"Burstable pod with pod-level resources", "/kubepods/burstable/podapp", podCPU(4096, 800000), 2, 0, Burstable, 0, "QoS class Burstable"},
		// A container with its own Guaranteed resources is judged by them.
		{"own 2 CPUs in a pod-level 4-CPU pod", "/kubepods/podapp", podCPU(4096, 400000), 2048, 200000, Guaranteed, 2, ""},
		{"own fractional in a pod-level 4-CPU pod", "/kubepods/podapp", podCPU(4096, 400000), 1536, 150000, Guaranteed, 0, "not a whole number"},
		// A container with its own request but no limit, in a kubelet that
		// copies the pod-level limit into it: request ≠ limit.
		{"own request 1 CPU, pod limit copied in", "/kubepods/podapp", podCPU(4096, 400000), 1024, 400000, Guaranteed, 0, "CPU request 1000m differs from limit 4000m"},
		// Neither, in such a kubelet: shares and quota both come from the pod
		// limit, and the container is indistinguishable from the only
		// container of a 4-CPU Guaranteed pod (documented limitation).
		{"pod limit copied into shares and quota", "/kubepods/podapp", podCPU(4096, 400000), 4096, 400000, Guaranteed, 4, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := podWithParent(tt.parent)
			pod.Linux.PodResources = tt.podResources
			w := inferWorkload(pod, testContainer(tt.shares, tt.quota, 100000, &guaranteedOOM))
			if w.qos != tt.wantQoS || w.exclusive != tt.wantExclusive || !strings.Contains(w.why, tt.wantWhy) {
				t.Errorf("got %+v, want QoS %s, %d exclusive, why containing %q", w, tt.wantQoS, tt.wantExclusive, tt.wantWhy)
			}
		})
	}
}

// An error about a container's own annotation names its key, which holds
// the container's name: it stays valid UTF-8 and bounded whatever the name.
func TestBadAnnotationKeyIsCleaned(t *testing.T) {
	for _, name := range []string{"\xff", strings.Repeat("ü", 1000), strings.Repeat("x", 319) + "ü"} {
		ann := map[string]string{"numaspread.io/policy.container." + name: "0"}
		_, _, err := annotationChoices(ann, name, policy.DefaultOptions())
		if err == nil || !utf8.ValidString(err.Error()) || len(err.Error()) > 400 ||
			!strings.HasPrefix(err.Error(), "annotation numaspread.io/policy.container.") {
			t.Errorf("name %.20q: err = %.100q", name, err)
		}
	}
}
