package mockruntime

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	"google.golang.org/protobuf/proto"
)

// RunPod relays RunPodSandbox and adds the pod to the model.
func (r *Runtime) RunPod(pod *Pod) error {
	return r.request("RunPod", pod.ID, func(ctx context.Context, a *adaptation.Adaptation) error {
		r.mu.Lock()
		if _, ok := r.pods[pod.ID]; ok {
			r.mu.Unlock()
			return fmt.Errorf("mockruntime: pod %s already exists", pod.ID)
		}
		sb := pod.Sandbox(r.cfg.node)
		seq, _ := r.nextLocked()
		r.mu.Unlock()

		if err := a.RunPodSandbox(ctx, &api.RunPodSandboxRequest{Pod: proto.Clone(sb).(*api.PodSandbox)}); err != nil {
			return err
		}
		r.mu.Lock()
		r.addPodLocked(&podEntry{pod: pod, nri: sb, seq: seq, on: true})
		r.mu.Unlock()
		return nil
	})
}

// CreateContainer relays CreateContainer, applies the returned updates to
// other containers (before the new one exists, as containerd does), then
// adds the container with the adjustment applied and relays
// PostCreateContainer. It returns the new container's cpuset, which is
// empty when no plugin set one (e.g. the plugin is down).
func (r *Runtime) CreateContainer(pod *Pod, ctr *Container) (cpus, mems string, err error) {
	err = r.request("CreateContainer", ctr.ID, func(ctx context.Context, a *adaptation.Adaptation) error {
		r.mu.Lock()
		sb, err := r.podForNewContainerLocked(pod, ctr)
		if err != nil {
			r.mu.Unlock()
			return err
		}
		nc := ctr.NRI(r.cfg.node)
		seq, now := r.nextLocked()
		nc.CreatedAt = now
		r.mu.Unlock()

		start := time.Now()
		rpl, err := a.CreateContainer(ctx, &api.CreateContainerRequest{
			Pod:       sb,
			Container: proto.Clone(nc).(*api.Container),
		})
		r.timed("CreateContainer", start)
		if err != nil {
			// containerd creates nothing. Its undo path relays Stop and
			// Remove only for containers its NRI layer marked created,
			// which this one is not, so plugins hear nothing more of it.
			return err
		}

		r.mu.Lock()
		r.applyUpdatesLocked("CreateContainer", rpl.GetUpdate())
		mergeResources(nc, rpl.GetAdjust().GetLinux().GetResources())
		r.addCtrLocked(&ctrEntry{ctr: ctr, nri: nc, seq: seq, adjust: rpl.GetAdjust().Strip()})
		cpu := nc.GetLinux().GetResources().GetCpu()
		cpus, mems = cpu.GetCpus(), cpu.GetMems()
		post := &api.PostCreateContainerRequest{Pod: sb, Container: proto.Clone(nc).(*api.Container)}
		r.mu.Unlock()

		// Post-events are notifications: containerd only logs their errors.
		_ = a.PostCreateContainer(ctx, post)
		return nil
	})
	return cpus, mems, err
}

// podForNewContainerLocked checks a creation and returns the pod to send.
func (r *Runtime) podForNewContainerLocked(pod *Pod, ctr *Container) (*api.PodSandbox, error) {
	pe := r.pods[pod.ID]
	switch {
	case ctr.Pod != pod:
		return nil, fmt.Errorf("mockruntime: container %s belongs to pod %s, not %s", ctr.ID, ctr.Pod.ID, pod.ID)
	case pe == nil || !pe.on:
		return nil, fmt.Errorf("mockruntime: pod %s is not running", pod.ID)
	case r.ctrs[ctr.ID] != nil:
		return nil, fmt.Errorf("mockruntime: container %s already exists", ctr.ID)
	}
	return proto.Clone(pe.nri).(*api.PodSandbox), nil
}

// InjectContainer adds a running container with the given cpuset to the
// model without telling any plugin: a container created before the plugin
// ever connected, or by a kubelet CPU manager. Its pod is added silently
// too if the model lacks it. Works while the runtime is stopped.
func (r *Runtime) InjectContainer(pod *Pod, ctr *Container, cpus, mems string) error {
	inject := func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if ctr.Pod != pod {
			return fmt.Errorf("mockruntime: container %s belongs to pod %s, not %s", ctr.ID, ctr.Pod.ID, pod.ID)
		}
		if r.ctrs[ctr.ID] != nil {
			return fmt.Errorf("mockruntime: container %s already exists", ctr.ID)
		}
		if r.pods[pod.ID] == nil {
			seq, _ := r.nextLocked()
			r.addPodLocked(&podEntry{pod: pod, nri: pod.Sandbox(r.cfg.node), seq: seq, on: true})
		}
		nc := ctr.NRI(r.cfg.node)
		seq, now := r.nextLocked()
		nc.CreatedAt, nc.StartedAt = now, now
		nc.State = api.ContainerState_CONTAINER_RUNNING
		mergeResources(nc, &api.LinuxResources{Cpu: &api.LinuxCPU{Cpus: cpus, Mems: mems}})
		r.addCtrLocked(&ctrEntry{ctr: ctr, nri: nc, seq: seq, injected: true})
		return nil
	}
	return r.silently("InjectContainer", ctr.ID, inject)
}

// ExitContainer marks a live container STOPPED without telling any
// plugin: its process exited and the runtime relays no StopContainer
// (CRI-O relays none for a container that exits by itself, and containerd
// relays none while no plugin is connected). The plugin next hears of it
// in RemoveContainer, or not at all when it synchronizes first (stopped
// containers are not listed). Works while the runtime is stopped.
func (r *Runtime) ExitContainer(ctr *Container) error {
	exit := func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		e := r.ctrs[ctr.ID]
		if e == nil {
			return fmt.Errorf("mockruntime: no container %s", ctr.ID)
		}
		if e.live() {
			e.nri.State = api.ContainerState_CONTAINER_STOPPED
			_, e.nri.FinishedAt = r.nextLocked()
		}
		return nil
	}
	return r.silently("ExitContainer", ctr.ID, exit)
}

// SetCPUSet sets a container's cpuset.cpus and cpuset.mems in the model
// exactly as given ("" clears a field), without telling any plugin: what
// the runtime would report after someone else rewrote the cgroup, after a
// crash left a half-applied update, or for a container restored from disk
// whose CPUs no longer exist. Works while the runtime is stopped.
func (r *Runtime) SetCPUSet(ctr *Container, cpus, mems string) error {
	set := func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		e := r.ctrs[ctr.ID]
		if e == nil {
			return fmt.Errorf("mockruntime: no container %s", ctr.ID)
		}
		mergeResources(e.nri, &api.LinuxResources{Cpu: &api.LinuxCPU{}})
		cpu := e.nri.Linux.Resources.Cpu
		cpu.Cpus, cpu.Mems = cpus, mems
		return nil
	}
	return r.silently("SetCPUSet", ctr.ID, set)
}

// silently changes the model without relaying anything to plugins, as a
// step (checks run), under the NRI lock whether or not the runtime runs.
func (r *Runtime) silently(op, id string, fn func() error) error {
	err := r.request(op, id, func(context.Context, *adaptation.Adaptation) error { return fn() })
	if errors.Is(err, ErrNotRunning) {
		r.nriMu.Lock()
		defer r.nriMu.Unlock()
		err = fn()
		r.step(op, id, err)
	}
	return err
}

// StartContainer relays StartContainer and PostStartContainer; the
// container becomes RUNNING.
func (r *Runtime) StartContainer(ctr *Container) error {
	return r.request("StartContainer", ctr.ID, func(ctx context.Context, a *adaptation.Adaptation) error {
		sb, nc, err := r.lookup(ctr, api.ContainerState_CONTAINER_CREATED)
		if err != nil {
			return err
		}
		start := time.Now()
		err = a.StartContainer(ctx, &api.StartContainerRequest{Pod: sb, Container: nc})
		r.timed("StartContainer", start)
		if err != nil {
			return err
		}
		r.mu.Lock()
		e := r.ctrs[ctr.ID]
		_, e.nri.StartedAt = r.nextLocked()
		e.nri.State = api.ContainerState_CONTAINER_RUNNING
		post := &api.PostStartContainerRequest{Pod: sb, Container: proto.Clone(e.nri).(*api.Container)}
		r.mu.Unlock()
		_ = a.PostStartContainer(ctx, post)
		return nil
	})
}

// StopContainer marks the container STOPPED, relays StopContainer (with
// the container in state STOPPED, as after an exit) and applies the
// returned updates. Stopping a stopped container is a no-op, as in
// containerd, which relays one StopContainer per container.
func (r *Runtime) StopContainer(ctr *Container) error {
	return r.request("StopContainer", ctr.ID, func(ctx context.Context, a *adaptation.Adaptation) error {
		r.mu.Lock()
		e := r.ctrs[ctr.ID]
		if e == nil {
			r.mu.Unlock()
			return fmt.Errorf("mockruntime: no container %s", ctr.ID)
		}
		if !e.live() {
			r.mu.Unlock()
			return nil
		}
		e.nri.State = api.ContainerState_CONTAINER_STOPPED
		_, e.nri.FinishedAt = r.nextLocked()
		sb := proto.Clone(r.pods[ctr.Pod.ID].nri).(*api.PodSandbox)
		nc := proto.Clone(e.nri).(*api.Container)
		r.mu.Unlock()

		start := time.Now()
		rpl, err := a.StopContainer(ctx, &api.StopContainerRequest{Pod: sb, Container: nc})
		r.timed("StopContainer", start)
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.applyUpdatesLocked("StopContainer", rpl.GetUpdate())
		r.mu.Unlock()
		return nil
	})
}

// RemoveContainer stops the container if needed (containerd force-stops),
// relays RemoveContainer and drops it from the model.
func (r *Runtime) RemoveContainer(ctr *Container) error {
	if r.isLive(ctr) {
		// containerd force-stops, and only logs a failure; the step
		// records it.
		_ = r.StopContainer(ctr)
	}
	return r.request("RemoveContainer", ctr.ID, func(ctx context.Context, a *adaptation.Adaptation) error {
		sb, nc, err := r.lookup(ctr, api.ContainerState_CONTAINER_STOPPED)
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.removeCtrLocked(ctr.ID)
		r.mu.Unlock()
		start := time.Now()
		err = a.RemoveContainer(ctx, &api.RemoveContainerRequest{Pod: sb, Container: nc})
		r.timed("RemoveContainer", start)
		return err
	})
}

// UpdateContainer relays a CRI UpdateContainerResources with the given
// resources. Updates for other containers are applied; the target gets the
// plugins' merged resources if a plugin touched it, else the request's.
func (r *Runtime) UpdateContainer(ctr *Container, resources *api.LinuxResources) error {
	return r.request("UpdateContainer", ctr.ID, func(ctx context.Context, a *adaptation.Adaptation) error {
		sb, nc, err := r.lookup(ctr, api.ContainerState_CONTAINER_UNKNOWN)
		if err != nil {
			return err
		}
		if resources == nil {
			resources = &api.LinuxResources{}
		}
		start := time.Now()
		rpl, err := a.UpdateContainer(ctx, &api.UpdateContainerRequest{
			Pod:            sb,
			Container:      nc,
			LinuxResources: resources.Copy(),
		})
		r.timed("UpdateContainer", start)
		if err != nil {
			return err
		}

		r.mu.Lock()
		var target *api.LinuxResources
		var others []*api.ContainerUpdate
		for _, u := range rpl.GetUpdate() {
			if u.GetContainerId() == ctr.ID {
				target = u.GetLinux().GetResources()
			} else {
				others = append(others, u)
			}
		}
		if target == nil {
			target = resources
		}
		r.applyUpdatesLocked("UpdateContainer", others)
		r.applyUpdatesLocked("UpdateContainer", []*api.ContainerUpdate{{
			ContainerId: ctr.ID,
			Linux:       &api.LinuxContainerUpdate{Resources: target},
		}})
		post := &api.PostUpdateContainerRequest{Pod: sb, Container: proto.Clone(r.ctrs[ctr.ID].nri).(*api.Container)}
		r.mu.Unlock()
		_ = a.PostUpdateContainer(ctx, post)
		return nil
	})
}

// StopPod stops the pod's live containers (newest first), then relays
// StopPodSandbox. A stopped pod leaves Synchronize.
func (r *Runtime) StopPod(pod *Pod) error {
	for _, c := range r.podContainers(pod, true) {
		if err := r.StopContainer(c); err != nil {
			return err
		}
	}
	return r.request("StopPod", pod.ID, func(ctx context.Context, a *adaptation.Adaptation) error {
		r.mu.Lock()
		pe := r.pods[pod.ID]
		if pe == nil {
			r.mu.Unlock()
			return fmt.Errorf("mockruntime: no pod %s", pod.ID)
		}
		if !pe.on {
			r.mu.Unlock()
			return nil
		}
		pe.on = false
		sb := proto.Clone(pe.nri).(*api.PodSandbox)
		r.mu.Unlock()
		return a.StopPodSandbox(ctx, &api.StopPodSandboxRequest{Pod: sb})
	})
}

// RemovePod stops the pod if needed, removes its containers and relays
// RemovePodSandbox.
func (r *Runtime) RemovePod(pod *Pod) error {
	if err := r.StopPod(pod); err != nil {
		return err
	}
	for _, c := range r.podContainers(pod, false) {
		if err := r.RemoveContainer(c); err != nil {
			return err
		}
	}
	return r.request("RemovePod", pod.ID, func(ctx context.Context, a *adaptation.Adaptation) error {
		r.mu.Lock()
		pe := r.pods[pod.ID]
		if pe == nil {
			r.mu.Unlock()
			return fmt.Errorf("mockruntime: no pod %s", pod.ID)
		}
		r.removePodLocked(pod.ID)
		sb := proto.Clone(pe.nri).(*api.PodSandbox)
		r.mu.Unlock()
		return a.RemovePodSandbox(ctx, &api.RemovePodSandboxRequest{Pod: sb})
	})
}

// podContainers lists the pod's containers in the model, newest first.
func (r *Runtime) podContainers(pod *Pod, liveOnly bool) []*Container {
	r.mu.Lock()
	defer r.mu.Unlock()
	var es []*ctrEntry
	for _, e := range r.ctrs {
		if e.ctr.Pod.ID == pod.ID && (!liveOnly || e.live()) {
			es = append(es, e)
		}
	}
	sort.Slice(es, func(i, j int) bool { return es[i].seq > es[j].seq })
	out := make([]*Container, len(es))
	for i, e := range es {
		out[i] = e.ctr
	}
	return out
}

func (r *Runtime) isLive(ctr *Container) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.ctrs[ctr.ID]
	return e != nil && e.live()
}

// lookup returns copies of a container and its pod to send to plugins.
// With want != UNKNOWN the container must be in that state; with UNKNOWN it
// must be live.
func (r *Runtime) lookup(ctr *Container, want api.ContainerState) (*api.PodSandbox, *api.Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.ctrs[ctr.ID]
	switch {
	case e == nil:
		return nil, nil, fmt.Errorf("mockruntime: no container %s", ctr.ID)
	case want == api.ContainerState_CONTAINER_UNKNOWN && !e.live(),
		want != api.ContainerState_CONTAINER_UNKNOWN && e.nri.GetState() != want:
		return nil, nil, fmt.Errorf("mockruntime: container %s is %v", ctr.ID, e.nri.GetState())
	}
	pe := r.pods[ctr.Pod.ID]
	if pe == nil {
		return nil, nil, fmt.Errorf("mockruntime: no pod %s", ctr.Pod.ID)
	}
	return proto.Clone(pe.nri).(*api.PodSandbox), proto.Clone(e.nri).(*api.Container), nil
}
