package mockruntime

import (
	"maps"
	"strconv"
	"strings"

	"github.com/containerd/nri/pkg/api"
)

// Node is what the NRI objects depend on besides the pod itself.
type Node struct {
	// SystemdCgroups selects the kubelet's systemd cgroup driver naming
	// ("kubepods-burstable-pod<uid>.slice") instead of cgroupfs
	// ("/kubepods/burstable/pod<uid>").
	SystemdCgroups bool
	// MemoryBytes is the machine memory, for Burstable oom_score_adj;
	// 0 means DefaultNodeMemory.
	MemoryBytes int64
}

// CgroupParent is the pod cgroup the kubelet puts in the sandbox config.
func (p *Pod) CgroupParent(n Node) string {
	if n.SystemdCgroups {
		uid := strings.ReplaceAll(p.UID, "-", "_")
		switch p.QoS {
		case Guaranteed:
			return "kubepods-pod" + uid + ".slice"
		case BestEffort:
			return "kubepods-besteffort-pod" + uid + ".slice"
		}
		return "kubepods-burstable-pod" + uid + ".slice"
	}
	switch p.QoS {
	case Guaranteed:
		return "/kubepods/pod" + p.UID
	case BestEffort:
		return "/kubepods/besteffort/pod" + p.UID
	}
	return "/kubepods/burstable/pod" + p.UID
}

// cgroupsPath is how containerd names a container's cgroup under the parent.
func cgroupsPath(parent, id string, n Node) string {
	if n.SystemdCgroups {
		return parent + ":cri-containerd:" + id
	}
	return parent + "/" + id
}

// Sandbox returns the pod as containerd reports it to NRI.
//
// PodResources follows the kubelet's sandbox resources converted from CRI,
// where every field is set: Quota 0 and Memory.Limit 0 mean "no limit".
func (p *Pod) Sandbox(n Node) *api.PodSandbox {
	t := p.totals()
	labels := maps.Clone(p.Labels)
	labels["io.kubernetes.pod.name"] = p.Name
	labels["io.kubernetes.pod.namespace"] = p.Namespace
	labels["io.kubernetes.pod.uid"] = p.UID
	annotations := maps.Clone(p.Annotations)
	annotations["kubernetes.io/config.source"] = "api"
	annotations["kubernetes.io/config.seen"] = "2026-01-01T00:00:00.000000000Z"
	parent := p.CgroupParent(n)
	return &api.PodSandbox{
		Id:          p.ID,
		Name:        p.Name,
		Uid:         p.UID,
		Namespace:   p.Namespace,
		Labels:      labels,
		Annotations: annotations,
		Linux: &api.LinuxPodSandbox{
			CgroupParent: parent,
			CgroupsPath:  cgroupsPath(parent, p.ID, n),
			PodResources: &api.LinuxResources{
				Cpu: &api.LinuxCPU{
					Shares: api.UInt64(CPUShares(t.cpuRequest)),
					Quota:  api.Int64(CPUQuota(t.cpuLimit)),
					Period: api.UInt64(uint64(QuotaPeriod)),
				},
				Memory: &api.LinuxMemory{Limit: api.Int64(t.memLimit)},
			},
			// The pause container's own resources.
			Resources: &api.LinuxResources{
				Cpu: &api.LinuxCPU{Shares: api.UInt64(uint64(minShares))},
			},
		},
	}
}

// NRI returns the container as containerd reports it in CreateContainer:
// state CREATED, resources from the kubelet's CRI request as containerd
// writes them into the OCI spec (zero values left unset), no cpuset.
func (c *Container) NRI(n Node) *api.Container {
	p, s := c.Pod, c.Spec
	cpu := &api.LinuxCPU{
		Shares: api.UInt64(CPUShares(s.CPURequestMilli)),
		Period: api.UInt64(uint64(QuotaPeriod)),
	}
	if q := CPUQuota(s.CPULimitMilli); q > 0 {
		cpu.Quota = api.Int64(q)
	}
	mem := &api.LinuxMemory{}
	if s.MemoryLimit > 0 {
		mem.Limit = api.Int64(s.MemoryLimit)
		mem.Swap = api.Int64(s.MemoryLimit) // containerd: no swap beyond the limit
	}
	annotations := map[string]string{
		"io.kubernetes.container.hash":                     "0badc0de",
		"io.kubernetes.container.restartCount":             strconv.Itoa(c.Attempt),
		"io.kubernetes.container.terminationMessagePath":   "/dev/termination-log",
		"io.kubernetes.container.terminationMessagePolicy": "File",
		"io.kubernetes.cri.container-type":                 "container",
		"io.kubernetes.cri.container-name":                 s.Name,
		"io.kubernetes.cri.sandbox-id":                     p.ID,
		"io.kubernetes.cri.sandbox-name":                   p.Name,
		"io.kubernetes.cri.sandbox-namespace":              p.Namespace,
		"io.kubernetes.cri.sandbox-uid":                    p.UID,
		"io.kubernetes.cri.image-name":                     "docker.io/library/busybox:latest",
	}
	maps.Copy(annotations, s.Annotations)
	return &api.Container{
		Id:           c.ID,
		PodSandboxId: p.ID,
		Name:         s.Name,
		State:        api.ContainerState_CONTAINER_CREATED,
		Labels: map[string]string{
			"io.cri-containerd.kind":       "container",
			"io.kubernetes.container.name": s.Name,
			"io.kubernetes.pod.name":       p.Name,
			"io.kubernetes.pod.namespace":  p.Namespace,
			"io.kubernetes.pod.uid":        p.UID,
		},
		Annotations: annotations,
		Args:        []string{"sleep", "inf"},
		Linux: &api.LinuxContainer{
			Resources:   &api.LinuxResources{Cpu: cpu, Memory: mem},
			OomScoreAdj: api.Int(OOMScoreAdj(p.QoS, s.MemoryRequest, n.MemoryBytes)),
			CgroupsPath: cgroupsPath(p.CgroupParent(n), c.ID, n),
		},
	}
}
