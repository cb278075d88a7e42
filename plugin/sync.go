package plugin

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/sirupsen/logrus"

	"github.com/numaspread/numaspread/policy"
	"github.com/numaspread/numaspread/topology"
)

// Synchronize rebuilds the state from the cpusets the runtime reports (the
// runtime is the source of truth; there is no state file). Exclusive
// containers keep the CPUs they report when those are theirs to keep; the
// older container wins a CPU claimed twice; exclusive containers without
// valid CPUs (created while the plugin was away, or losers of a double claim)
// are allocated now; every shared container gets the shared pool. The
// returned updates carry the fixes. An id listed twice keeps its first
// listing; the others are ignored, with a warning.
func (p *Plugin) Synchronize(_ context.Context, pods []*api.PodSandbox, ctrs []*api.Container) (_ []*api.ContainerUpdate, err error) {
	defer p.recoverPanic("Synchronize", fmt.Sprintf("%d pods, %d containers", len(pods), len(ctrs)), &err)
	start := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.observe("Synchronize", start, &err)

	state, _, err := newPolicyState(p.topo, p.cfg)
	if err != nil {
		return nil, err
	}
	p.state, p.ctrs = state, map[string]*container{}
	p.gen++

	podByID := make(map[string]*api.PodSandbox, len(pods))
	for _, pod := range pods {
		podByID[pod.GetId()] = pod
	}
	ordered := make([]*api.Container, 0, len(ctrs))
	seen := make(map[string]bool, len(ctrs))
	for _, ctr := range ctrs {
		// Stopped containers hold nothing: skipped before the duplicate
		// check, so that a stale stopped listing cannot hide a running one.
		if ctr.GetState() == api.ContainerState_CONTAINER_STOPPED {
			continue
		}
		// A live id listed twice is a runtime bug; two records for one id
		// would both claim CPUs while the plugin could keep only one. The
		// first live listing wins.
		if id := ctr.GetId(); seen[id] {
			p.log.WithFields(ctrFields(podByID[ctr.GetPodSandboxId()], ctr)).WithField("id", id).
				Warn("container listed twice by the runtime: ignoring all but the first listing")
			continue
		}
		seen[ctr.GetId()] = true
		ordered = append(ordered, ctr)
	}
	// Older first, so that the older container keeps a CPU claimed twice.
	sort.SliceStable(ordered, func(i, j int) bool {
		a, b := ordered[i], ordered[j]
		if a.GetCreatedAt() != b.GetCreatedAt() {
			return a.GetCreatedAt() < b.GetCreatedAt()
		}
		return a.GetId() < b.GetId()
	})

	// The cpusets that containers without exclusive CPUs report are the old
	// shared pool: an entitled container that reports one of them ran in
	// the pool (on_insufficient = shared) and has no CPUs of its own to
	// keep, even when the pool happens to hold exactly its count.
	choices := make([]syncChoice, len(ordered))
	poolSets := map[string]bool{}
	for i, ctr := range ordered {
		choices[i] = p.syncChoices(podByID[ctr.GetPodSandboxId()], ctr)
		if choices[i].req.CPUs == 0 {
			if m, err := topology.ParseMask(ctr.GetLinux().GetResources().GetCpu().GetCpus()); err == nil && !m.IsEmpty() {
				poolSets[m.String()] = true
			}
		}
	}

	var updates []*api.ContainerUpdate
	var pending []syncPending
	for i, ctr := range ordered {
		pod := podByID[ctr.GetPodSandboxId()]
		c, req, ok := p.restore(pod, ctr, choices[i], poolSets)
		if !ok {
			pending = append(pending, syncPending{c, req, pod, ctr})
			continue
		}
		if c.exclusive && !sameCPUSet(ctr, c) {
			updates = append(updates, cpusetUpdate(c))
		}
		p.ctrs[c.id] = c
	}
	for _, pd := range pending {
		c := pd.c
		a, err := p.state.Allocate(c.id, pd.req)
		if err != nil {
			p.log.WithFields(ctrFields(pd.pod, pd.ctr)).WithError(err).Warn("cannot give a running container exclusive CPUs: it stays in the shared pool")
		} else {
			c.exclusive, c.policy, c.cpus, c.mems = true, string(pd.req.Options.Mode), a.CPUs.String(), a.Mems.String()
			updates = append(updates, cpusetUpdate(c))
			p.log.WithFields(ctrFields(pd.pod, pd.ctr)).WithFields(logrus.Fields{"cpus": c.cpus, "mems": c.mems}).
				Info("container placed at synchronize")
		}
		p.ctrs[c.id] = c
	}
	updates = append(updates, p.sharedUpdates("")...)
	p.synced = true
	p.log.WithFields(logrus.Fields{
		"pods": len(pods), "containers": len(ordered), "exclusive": len(p.state.Owners()),
		"reallocated": len(pending), "updates": len(updates), "took": time.Since(start).String(),
	}).Info("synchronized")
	return updates, nil
}

// syncPending is an exclusive container that Synchronize must allocate for.
type syncPending struct {
	c   *container
	req policy.Request
	pod *api.PodSandbox
	ctr *api.Container
}

// syncChoice is what the rules give a running container: req.CPUs is 0
// when it is not entitled to exclusive CPUs (or opted out).
type syncChoice struct {
	req policy.Request
}

// syncChoices applies the rules and annotations to a running container; a
// bad annotation means the defaults, since a running container cannot be
// failed.
func (p *Plugin) syncChoices(pod *api.PodSandbox, ctr *api.Container) syncChoice {
	if pod == nil {
		pod = &api.PodSandbox{Id: ctr.GetPodSandboxId()}
	}
	w := inferWorkload(pod, ctr)
	opts, optOut := p.defaults, false
	if p.cfg.Policy.Annotations {
		var err error
		if opts, optOut, err = annotationChoices(pod.GetAnnotations(), ctr.GetName(), p.defaults); err != nil {
			// The defaults, except that a valid opt-out still holds: an
			// annotation never gives exclusive CPUs.
			p.log.WithFields(ctrFields(pod, ctr)).WithError(err).Warn("ignoring a bad annotation of a running container")
			opts, optOut = p.defaults, optedOut(pod.GetAnnotations(), ctr.GetName())
		}
	}
	if w.exclusive == 0 || optOut {
		return syncChoice{}
	}
	return syncChoice{req: policy.Request{CPUs: w.exclusive, Options: opts}}
}

// restore rebuilds one container's record from what the runtime reports.
// ok is false for an exclusive container whose reported CPUs cannot be kept:
// req is then what to allocate for it. poolSets are the cpusets containers
// without exclusive CPUs report.
func (p *Plugin) restore(pod *api.PodSandbox, ctr *api.Container, ch syncChoice, poolSets map[string]bool) (c *container, req policy.Request, ok bool) {
	if pod == nil {
		pod = &api.PodSandbox{Id: ctr.GetPodSandboxId()}
	}
	c = &container{id: ctr.GetId(), podID: pod.GetId(), ref: containerRef(pod, ctr), seq: p.nextSeq()}
	cpu := ctr.GetLinux().GetResources().GetCpu()
	reported, _ := topology.ParseMask(cpu.GetCpus())
	reportedMems, _ := topology.ParseMask(cpu.GetMems())
	c.cpus, c.mems = reported.String(), reportedMems.String()

	req = ch.req
	if req.CPUs == 0 {
		return c, req, true
	}
	if reported.Count() != req.CPUs {
		return c, req, false
	}
	if poolSets[c.cpus] {
		p.log.WithFields(ctrFields(pod, ctr)).WithField("cpus", c.cpus).
			Info("reported CPUs are the shared pool, not exclusive CPUs: allocating")
		return c, req, false
	}
	// A claim must leave the shared pool what an allocation would
	// (min_shared_cpus, and never nothing), or the shared containers would
	// be left with no CPU: reported cpusets may be anything (tampered,
	// restored from before a configuration change).
	if pool := p.state.SharedPool(); pool.Count()-reported.CountAnd(pool) < minShared(p.cfg.Policy.MinSharedCPUs) {
		p.log.WithFields(ctrFields(pod, ctr)).WithField("cpus", reported.String()).
			Warn("reported CPUs cannot be kept: the shared pool would drop below min_shared_cpus; reallocating")
		return c, req, false
	}
	if err := p.state.Claim(c.id, reported); err != nil {
		p.log.WithFields(ctrFields(pod, ctr)).WithError(err).Warn("reported CPUs cannot be kept: reallocating")
		return c, req, false
	}
	c.exclusive, c.policy = true, string(req.Options.Mode)
	c.mems = p.state.Mems(reported, req.Options.Memory).String()
	return c, req, true
}

// sameCPUSet reports whether the runtime's view of ctr matches our record.
func sameCPUSet(ctr *api.Container, c *container) bool {
	cpu := ctr.GetLinux().GetResources().GetCpu()
	cpus, err1 := topology.ParseMask(cpu.GetCpus())
	mems, err2 := topology.ParseMask(cpu.GetMems())
	return err1 == nil && err2 == nil && cpus.String() == c.cpus && (c.mems == "" || mems.String() == c.mems)
}
