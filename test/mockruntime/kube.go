package mockruntime

// The kubelet's arithmetic (pkg/kubelet/cm, pkg/kubelet/qos), so the values
// the plugin sees are the ones a real node would send.

const (
	minShares    = 2
	maxShares    = 262144
	sharesPerCPU = 1024
	milliPerCPU  = 1000
	// QuotaPeriod is the CFS period the kubelet sets, in microseconds.
	QuotaPeriod = 100000
	minQuota    = 1000

	guaranteedOOMScoreAdj = -997
	besteffortOOMScoreAdj = 1000
	// DefaultNodeMemory is the machine memory used for Burstable
	// oom_score_adj unless Node.MemoryBytes says otherwise.
	DefaultNodeMemory = 64 << 30
)

// CPUShares is the kubelet's MilliCPUToShares: a request of 0 (none) gives
// the minimum, 2.
func CPUShares(milliCPU int64) uint64 {
	if milliCPU <= 0 {
		return minShares
	}
	shares := milliCPU * sharesPerCPU / milliPerCPU
	switch {
	case shares < minShares:
		return minShares
	case shares > maxShares:
		return maxShares
	}
	return uint64(shares)
}

// CPUQuota is the kubelet's milliCPUToQuota: 0 (no limit) for no limit,
// otherwise at least 1000µs.
func CPUQuota(milliCPU int64) int64 {
	if milliCPU <= 0 {
		return 0
	}
	quota := milliCPU * QuotaPeriod / milliPerCPU
	if quota < minQuota {
		return minQuota
	}
	return quota
}

// OOMScoreAdj is the kubelet's GetContainerOOMScoreAdjust for a regular
// container: -997 Guaranteed, 1000 BestEffort, and for Burstable
// 1000 - 1000*memoryRequest/nodeMemory kept inside [3, 999].
func OOMScoreAdj(qos QoSClass, memoryRequest, nodeMemory int64) int {
	switch qos {
	case Guaranteed:
		return guaranteedOOMScoreAdj
	case BestEffort:
		return besteffortOOMScoreAdj
	}
	if nodeMemory <= 0 {
		nodeMemory = DefaultNodeMemory
	}
	adj := 1000 - (1000*memoryRequest)/nodeMemory
	if adj < 1000+guaranteedOOMScoreAdj {
		return 1000 + guaranteedOOMScoreAdj
	}
	if adj >= besteffortOOMScoreAdj {
		return besteffortOOMScoreAdj - 1
	}
	return int(adj)
}

// podTotals is the kubelet's PodRequests/PodLimits: the larger of the sum
// over app containers and the largest init container. A limit counts only
// where it is set, as in resourcehelper.PodLimits.
type podTotals struct {
	cpuRequest, cpuLimit, memLimit int64
}

func (p *Pod) totals() podTotals {
	var app, init podTotals
	for _, c := range p.current() {
		s := c.Spec
		if s.Init {
			init.cpuRequest = max(init.cpuRequest, s.CPURequestMilli)
			init.cpuLimit = max(init.cpuLimit, s.CPULimitMilli)
			init.memLimit = max(init.memLimit, s.MemoryLimit)
			continue
		}
		app.cpuRequest += s.CPURequestMilli
		app.cpuLimit += s.CPULimitMilli
		app.memLimit += s.MemoryLimit
	}
	return podTotals{
		cpuRequest: max(app.cpuRequest, init.cpuRequest),
		cpuLimit:   max(app.cpuLimit, init.cpuLimit),
		memLimit:   max(app.memLimit, init.memLimit),
	}
}
