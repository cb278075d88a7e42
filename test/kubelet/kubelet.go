// Package kubelet is the kubelet's arithmetic for the CRI resources it
// sends with a container: cpu.shares, the CFS quota and oom_score_adj. The
// mock runtime (test/mockruntime) and the real-runtime e2e (test/e2e/runner)
// both build their requests with it. It imports nothing, and nothing of
// numaspread: the e2e runner is an oracle independent of the plugin's code.
//
// Sources (Kubernetes): pkg/kubelet/cm/helpers_linux.go (MilliCPUToShares,
// MilliCPUToQuota) and pkg/kubelet/qos/policy.go
// (GetContainerOOMScoreAdjust).
package kubelet

const (
	// MinShares is the cpu.shares of a container with no CPU request.
	MinShares = 2
	// MaxShares caps cpu.shares (256 CPUs' worth).
	MaxShares = 262144
	// SharesPerCPU is cpu.shares per CPU.
	SharesPerCPU = 1024
	// MilliCPUToCPU is milliCPU per CPU.
	MilliCPUToCPU = 1000
	// QuotaPeriod is the CFS period the kubelet sets, in microseconds.
	QuotaPeriod = 100000
	// MinQuotaPeriod is the smallest CFS quota the kubelet sets, in
	// microseconds.
	MinQuotaPeriod = 1000

	// GuaranteedOOMScoreAdj is the oom_score_adj of Guaranteed containers.
	GuaranteedOOMScoreAdj = -997
	// BestEffortOOMScoreAdj is the oom_score_adj of BestEffort containers.
	BestEffortOOMScoreAdj = 1000
)

// The QoS classes, as the kubelet names them.
const (
	Guaranteed = "Guaranteed"
	Burstable  = "Burstable"
	BestEffort = "BestEffort"
)

// MilliCPUToShares is the cpu.shares for a CPU request: MinShares for none
// (0), else 1024 per CPU, at least MinShares and at most MaxShares.
func MilliCPUToShares(milliCPU int64) int64 {
	if milliCPU <= 0 {
		return MinShares
	}
	return min(max(milliCPU*SharesPerCPU/MilliCPUToCPU, MinShares), MaxShares)
}

// MilliCPUToQuota is the CFS quota for a CPU limit over period: 0 (no
// quota) for no limit, else at least MinQuotaPeriod.
func MilliCPUToQuota(milliCPU, period int64) int64 {
	if milliCPU <= 0 {
		return 0
	}
	return max(milliCPU*period/MilliCPUToCPU, MinQuotaPeriod)
}

// OOMScoreAdj is the oom_score_adj of a regular container of a pod of QoS
// class qos: GuaranteedOOMScoreAdj, BestEffortOOMScoreAdj, and for
// Burstable 1000 − 1000 × memoryRequest / memoryCapacity kept inside
// [1000 + GuaranteedOOMScoreAdj, BestEffortOOMScoreAdj − 1] = [3, 999]. (The
// Kubernetes documentation's table says the floor is 2; the kubelet's code
// returns 1000 + guaranteedOOMScoreAdj = 3.)
func OOMScoreAdj(qos string, memoryRequest, memoryCapacity int64) int64 {
	switch qos {
	case Guaranteed:
		return GuaranteedOOMScoreAdj
	case BestEffort:
		return BestEffortOOMScoreAdj
	}
	adj := int64(1000)
	if memoryCapacity > 0 {
		adj -= 1000 * memoryRequest / memoryCapacity
	}
	return min(max(adj, 1000+GuaranteedOOMScoreAdj), BestEffortOOMScoreAdj-1)
}
