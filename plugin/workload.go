package plugin

import (
	"fmt"
	"math"
	"strings"

	"github.com/containerd/nri/pkg/api"
)

// QoS is a Kubernetes pod QoS class as inferred from what the runtime passes.
type QoS string

// QoS classes.
const (
	Guaranteed QoS = "Guaranteed"
	Burstable  QoS = "Burstable"
	BestEffort QoS = "BestEffort"
)

// guaranteedOOMScoreAdj is what the kubelet sets for Guaranteed containers.
const guaranteedOOMScoreAdj = -997

// workload is what the plugin knows of a container's CPU needs.
type workload struct {
	qos          QoS
	requestMilli int64 // 0: no request
	limitMilli   int64 // 0: no limit
	// exclusive is the number of exclusive CPUs the container is entitled
	// to (Guaranteed, whole-number request equal to the limit); 0 otherwise.
	exclusive int
	// why says, for logs, why a container is not entitled to exclusive CPUs.
	why string
}

// inferWorkload applies DESIGN.md "Who gets what": the QoS class from the
// pod's cgroup parent (cross-checked with oom_score_adj), the CPU request
// from cpu.shares and the limit from quota/period.
//
// Pod-level resources (pod spec.resources, KEP-2837), which reach NRI as
// PodSandbox.Linux.PodResources, never make a container exclusive: a
// container is judged by the CPU request and limit it carries itself. The
// kubelet's static CPU manager policy gives a pod with pod-level resources
// no exclusive CPUs at all; only with the PodLevelResourceManagers feature
// gate (alpha in 1.36, off by default) does it give them, and then only to
// containers with Guaranteed resources of their own, the others sharing the
// rest of the pod's budget with their siblings, which NRI does not show us.
// So:
//
//   - A container with no CPU request and no limit of its own (cpu.shares
//     ≤ 2, no quota) in a pod with pod-level resources is shared, and the
//     log says why. The pod's whole-CPU budget is not handed to it: NRI does
//     not tell whether other containers of the pod would share it.
//   - A container with resources of its own is judged by them, as in any
//     other pod (NRI cannot tell whether its pod also sets pod-level
//     resources). Kubelets that copy the pod-level limit into a container
//     without one (its quota, and its cpu.shares when it has no request)
//     make such a container look exactly like the only container of a
//     Guaranteed pod of that size: it is placed as one. Several of them in
//     one pod would each get the pod's count; opt them out with the
//     numaspread.io/exclusive annotation.
func inferWorkload(pod *api.PodSandbox, ctr *api.Container) workload {
	cpu := ctr.GetLinux().GetResources().GetCpu()
	w := workload{
		requestMilli: sharesToMilli(cpu.GetShares().GetValue()),
		limitMilli:   quotaToMilli(cpu.GetQuota().GetValue(), cpu.GetPeriod().GetValue()),
	}
	parent := strings.ToLower(pod.GetLinux().GetCgroupParent())
	w.qos = qosOf(parent, w)
	if w.qos == Guaranteed && strings.Contains(parent, "kubepods") &&
		cpu.GetShares().GetValue() >= kubeletMaxShares && w.limitMilli > w.requestMilli {
		// The kubelet caps cpu.shares at 256 CPUs, and a Guaranteed
		// container's request equals its limit (the API server enforces
		// it): a larger request shows only in the limit.
		w.requestMilli = w.limitMilli
	}
	oom := ctr.GetLinux().GetOomScoreAdj()
	switch {
	case w.qos != Guaranteed:
		w.why = "QoS class " + string(w.qos)
	case oom != nil && oom.GetValue() > 0:
		// The kubelet gives Guaranteed containers -997, Burstable 2..999 and
		// BestEffort 1000. A runtime that may not lower scores (containerd's
		// restrict_oom_score_adj, rootless or user-namespaced nodes) raises
		// -997 to its own score, typically 0, so only a positive score
		// contradicts the cgroup parent.
		w.why = fmt.Sprintf("oom_score_adj %d is a Burstable or BestEffort score, not Guaranteed (%d)", oom.GetValue(), guaranteedOOMScoreAdj)
	case w.requestMilli == 0 && w.limitMilli == 0 && hasPodLevelCPU(pod):
		podCPU := pod.GetLinux().GetPodResources().GetCpu()
		w.why = fmt.Sprintf("no CPU request or limit of its own; pod-level resources (request %dm, limit %dm) give no exclusive CPUs",
			sharesToMilli(podCPU.GetShares().GetValue()), quotaToMilli(podCPU.GetQuota().GetValue(), podCPU.GetPeriod().GetValue()))
	case w.requestMilli == 0 || w.requestMilli != w.limitMilli:
		w.why = fmt.Sprintf("CPU request %dm differs from limit %dm", w.requestMilli, w.limitMilli)
	case w.requestMilli%1000 != 0:
		w.why = fmt.Sprintf("CPU request %dm is not a whole number of CPUs", w.requestMilli)
	default:
		w.exclusive = int(w.requestMilli / 1000)
	}
	return w
}

// hasPodLevelCPU reports whether the runtime passed the pod's CPU resources
// (PodSandbox.Linux.PodResources) with a request or a limit.
func hasPodLevelCPU(pod *api.PodSandbox) bool {
	cpu := pod.GetLinux().GetPodResources().GetCpu()
	return sharesToMilli(cpu.GetShares().GetValue()) > 0 || quotaToMilli(cpu.GetQuota().GetValue(), cpu.GetPeriod().GetValue()) > 0
}

// qosOf reads the QoS class from the pod's cgroup parent, lower-cased, in
// both the cgroupfs (/kubepods/burstable/pod…) and systemd
// (kubepods-burstable-pod….slice) forms. Without a Kubernetes parent it
// falls back to the resources.
func qosOf(p string, w workload) QoS {
	switch {
	case strings.Contains(p, "besteffort"):
		return BestEffort
	case strings.Contains(p, "burstable"):
		return Burstable
	case strings.Contains(p, "kubepods"):
		return Guaranteed
	case w.requestMilli > 0 && w.requestMilli == w.limitMilli:
		return Guaranteed
	case w.requestMilli > 0 || w.limitMilli > 0:
		return Burstable
	}
	return BestEffort
}

// maxMilli bounds CPU amounts so that hostile values cannot overflow:
// no machine has a million CPUs.
const maxMilli = 1_000_000_000

// kubeletMaxShares is the kubelet's cap on cpu.shares (MaxShares): 256 CPUs.
const kubeletMaxShares = 262144

// sharesToMilli reverses the kubelet's milliCPU → cpu.shares conversion;
// shares ≤ 2 mean no request.
func sharesToMilli(shares uint64) int64 {
	if shares <= 2 {
		return 0
	}
	return clampMilli(float64(shares) * 1000 / 1024)
}

// clampMilli rounds a milliCPU amount computed in floating point and
// bounds it by maxMilli before converting: converting a float beyond the
// int64 range is implementation-defined in Go (MinInt64 on amd64, a
// saturated value on arm64), so clamping afterwards would be too late.
func clampMilli(v float64) int64 {
	if v >= maxMilli {
		return maxMilli
	}
	return int64(math.Round(v))
}

// quotaToMilli reverses the limit → quota/period conversion; a missing or
// negative quota or period means no limit.
func quotaToMilli(quota int64, period uint64) int64 {
	if quota <= 0 || period == 0 {
		return 0
	}
	return clampMilli(float64(quota) * 1000 / float64(period))
}
