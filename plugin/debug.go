package plugin

import (
	"github.com/containerd/nri/pkg/api"
	"github.com/sirupsen/logrus"
)

// debugRequest logs what a request carried, at debug level only: building
// the fields costs allocations the request path should not pay otherwise.
func (p *Plugin) debugRequest(event string, pod *api.PodSandbox, ctr *api.Container) {
	if !p.log.IsLevelEnabled(logrus.DebugLevel) {
		return
	}
	cpu := ctr.GetLinux().GetResources().GetCpu()
	fields := ctrFields(pod, ctr)
	fields["id"] = ctr.GetId()
	fields["cgroupParent"] = pod.GetLinux().GetCgroupParent()
	fields["shares"] = cpu.GetShares().GetValue()
	fields["quota"] = cpu.GetQuota().GetValue()
	fields["period"] = cpu.GetPeriod().GetValue()
	fields["cpus"] = cpu.GetCpus()
	fields["mems"] = cpu.GetMems()
	if oom := ctr.GetLinux().GetOomScoreAdj(); oom != nil {
		fields["oomScoreAdj"] = oom.GetValue()
	}
	p.log.WithFields(fields).Debugf("%s request", event)
}

// debugReply logs a reply, at debug level only.
func (p *Plugin) debugReply(event string, pod *api.PodSandbox, ctr *api.Container, adj *api.ContainerAdjustment, updates []*api.ContainerUpdate) {
	if !p.log.IsLevelEnabled(logrus.DebugLevel) {
		return
	}
	fields := ctrFields(pod, ctr)
	if adj != nil {
		fields["cpus"] = adj.GetLinux().GetResources().GetCpu().GetCpus()
		fields["mems"] = adj.GetLinux().GetResources().GetCpu().GetMems()
	}
	for _, u := range updates {
		cpu := u.GetLinux().GetResources().GetCpu()
		fields["update "+u.GetContainerId()] = cpu.GetCpus() + " mems " + cpu.GetMems()
	}
	p.log.WithFields(fields).Debugf("%s reply", event)
}
