package mockruntime

import "github.com/numaspread/numaspread/test/kubelet"

// The kubelet's arithmetic (test/kubelet), so the values the plugin sees
// are the ones a real node would send.

const (
	minShares = kubelet.MinShares
	// QuotaPeriod is the CFS period the kubelet sets, in microseconds.
	QuotaPeriod = kubelet.QuotaPeriod
	// DefaultNodeMemory is the machine memory used for Burstable
	// oom_score_adj unless Node.MemoryBytes says otherwise.
	DefaultNodeMemory = 64 << 30
)

// CPUShares is the kubelet's MilliCPUToShares: a request of 0 (none) gives
// the minimum, 2; the most is 262144.
func CPUShares(milliCPU int64) uint64 {
	return uint64(kubelet.MilliCPUToShares(milliCPU))
}

// CPUQuota is the kubelet's milliCPUToQuota: 0 (no limit) for no limit,
// otherwise at least 1000µs.
func CPUQuota(milliCPU int64) int64 {
	return kubelet.MilliCPUToQuota(milliCPU, QuotaPeriod)
}

// OOMScoreAdj is the kubelet's GetContainerOOMScoreAdjust for a regular
// container: -997 Guaranteed, 1000 BestEffort, and for Burstable
// 1000 - 1000*memoryRequest/nodeMemory kept inside [3, 999]. nodeMemory 0
// means DefaultNodeMemory.
func OOMScoreAdj(qos QoSClass, memoryRequest, nodeMemory int64) int {
	if nodeMemory <= 0 {
		nodeMemory = DefaultNodeMemory
	}
	return int(kubelet.OOMScoreAdj(string(qos), memoryRequest, nodeMemory))
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
