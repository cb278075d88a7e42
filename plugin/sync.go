package plugin

import (
	"context"
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
	r := request{event: "Synchronize", start: time.Now(), sync: true, npods: len(pods), nctrs: len(ctrs)}
	defer p.recoverPanic(&r, &err)
	p.mu.Lock()
	defer p.mu.Unlock()

	// The configuration's warnings were logged when it was installed.
	state, _, _, err := newPolicyState(p.topo, p.cfg)
	if err != nil {
		p.observe(&r, err)
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
	// A container whose pod is not listed gets a placeholder pod.
	podOf := make([]*api.PodSandbox, len(ordered))
	choices := make([]policy.Request, len(ordered))
	poolSets := map[string]bool{}
	for i, ctr := range ordered {
		if podOf[i] = podByID[ctr.GetPodSandboxId()]; podOf[i] == nil {
			podOf[i] = &api.PodSandbox{Id: ctr.GetPodSandboxId()}
		}
		choices[i] = p.syncChoices(podOf[i], ctr)
		if choices[i].CPUs == 0 {
			if m, err := topology.ParseMask(ctr.GetLinux().GetResources().GetCpu().GetCpus()); err == nil && !m.IsEmpty() {
				poolSets[m.String()] = true
			}
		}
	}

	var updates []*api.ContainerUpdate
	var pending []syncPending
	for i, ctr := range ordered {
		c, keep, inSync := p.restore(podOf[i], ctr, choices[i], poolSets)
		if !keep {
			pending = append(pending, syncPending{c, choices[i], podOf[i], ctr})
			continue
		}
		if c.exclusive && !inSync {
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
	cpus, mems := p.sharedCPUSet()
	updates = append(updates, p.sharedUpdates("", cpus, mems)...)
	p.synced = true
	p.log.WithFields(logrus.Fields{
		"pods": len(pods), "containers": len(ordered), "exclusive": len(p.state.Owners()),
		"reallocated": len(pending), "updates": len(updates), "took": time.Since(r.start).String(),
	}).Info("synchronized")
	p.observe(&r, nil)
	return updates, nil
}

// syncPending is an exclusive container that Synchronize must allocate for.
type syncPending struct {
	c   *container
	req policy.Request
	pod *api.PodSandbox
	ctr *api.Container
}

// syncChoices applies the rules and annotations to a running container: the
// request's CPUs are 0 when it is not entitled to exclusive CPUs (or opted
// out). A bad annotation means the defaults, since a running container
// cannot be failed.
func (p *Plugin) syncChoices(pod *api.PodSandbox, ctr *api.Container) policy.Request {
	w := inferWorkload(pod, ctr)
	opts, optOut := p.defaults, false
	if p.cfg.Policy.Annotations {
		var err error
		if opts, optOut, err = annotationChoices(pod.GetAnnotations(), ctr.GetName(), p.defaults); err != nil {
			// The defaults, except that a valid opt-out still holds (as
			// annotationChoices returns it): an annotation never gives
			// exclusive CPUs.
			p.log.WithFields(ctrFields(pod, ctr)).WithError(err).Warn("ignoring a bad annotation of a running container")
		}
	}
	if w.exclusive == 0 || optOut {
		return policy.Request{}
	}
	return policy.Request{CPUs: w.exclusive, Options: opts}
}

// restore rebuilds one container's record from what the runtime reports;
// req is what syncChoices gives it. keep is false for an exclusive
// container whose reported CPUs cannot be kept: req is then what to
// allocate for it. inSync says whether a kept exclusive container's
// reported cpuset (CPUs and, unless memory = none, memory nodes) is the
// one recorded. poolSets are the cpusets containers without exclusive CPUs
// report.
func (p *Plugin) restore(pod *api.PodSandbox, ctr *api.Container, req policy.Request, poolSets map[string]bool) (c *container, keep, inSync bool) {
	c = &container{id: ctr.GetId(), podID: pod.GetId(), ref: containerRef(pod, ctr), seq: p.nextSeq()}
	cpu := ctr.GetLinux().GetResources().GetCpu()
	reported, _ := topology.ParseMask(cpu.GetCpus())
	reportedMems, memsErr := topology.ParseMask(cpu.GetMems())
	c.cpus, c.mems = reported.String(), reportedMems.String()

	if req.CPUs == 0 {
		return c, true, false
	}
	if reported.Count() != req.CPUs {
		return c, false, false
	}
	if poolSets[c.cpus] {
		p.log.WithFields(ctrFields(pod, ctr)).WithField("cpus", c.cpus).
			Info("reported CPUs are the shared pool, not exclusive CPUs: allocating")
		return c, false, false
	}
	// A claim must leave the shared pool what an allocation would
	// (min_shared_cpus, and never nothing), or the shared containers would
	// be left with no CPU: reported cpusets may be anything (tampered,
	// restored from before a configuration change).
	if pool := p.state.SharedPool(); pool.Count()-reported.CountAnd(pool) < minShared(p.cfg.Policy.MinSharedCPUs) {
		p.log.WithFields(ctrFields(pod, ctr)).WithField("cpus", reported.String()).
			Warn("reported CPUs cannot be kept: the shared pool would drop below min_shared_cpus; reallocating")
		return c, false, false
	}
	if err := p.state.Claim(c.id, reported); err != nil {
		p.log.WithFields(ctrFields(pod, ctr)).WithError(err).Warn("reported CPUs cannot be kept: reallocating")
		return c, false, false
	}
	c.exclusive, c.policy = true, string(req.Options.Mode)
	c.mems = p.state.Mems(reported, req.Options.Memory).String()
	// The reported CPUs parsed (they are the req.CPUs ≥ 1 kept) and are
	// recorded as they are: only the memory nodes can differ.
	return c, true, memsErr == nil && (c.mems == "" || reportedMems.String() == c.mems)
}
