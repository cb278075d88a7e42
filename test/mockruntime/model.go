package mockruntime

import (
	"maps"
	"slices"
	"sort"

	"github.com/containerd/nri/pkg/api"
	"google.golang.org/protobuf/proto"
)

// PodInfo is the runtime's view of a pod.
type PodInfo struct {
	ID, Name, Namespace, UID string
	QoS                      QoSClass
	Running                  bool // false once StopPod ran
	Seq                      int  // creation order among pods and containers
}

// ContainerInfo is the runtime's view of a container.
type ContainerInfo struct {
	ID, PodID, PodName, Namespace, Name string
	QoS                                 QoSClass
	Spec                                ContainerSpec
	State                               api.ContainerState
	Cpus, Mems                          string // current cpuset.cpus / cpuset.mems
	Seq                                 int    // creation order; lower is older
	// Injected is true for containers added with InjectContainer, which no
	// plugin saw being created.
	Injected bool
	// Adjustment is the stripped CreateContainer adjustment (nil if none).
	// Shared, do not modify.
	Adjustment *api.ContainerAdjustment
}

// Live reports whether the container is created or running (not stopped).
func (c ContainerInfo) Live() bool {
	return c.State == api.ContainerState_CONTAINER_CREATED ||
		c.State == api.ContainerState_CONTAINER_RUNNING
}

// Snapshot is a consistent copy of the model, taken after Step.
type Snapshot struct {
	Step       Step
	Pods       []PodInfo       // by Seq
	Containers []ContainerInfo // by Seq, stopped ones included until removed
}

// Container finds a container by ID.
func (s Snapshot) Container(id string) (ContainerInfo, bool) {
	for _, c := range s.Containers {
		if c.ID == id {
			return c, true
		}
	}
	return ContainerInfo{}, false
}

// Live returns the containers that are created or running.
func (s Snapshot) Live() []ContainerInfo {
	var out []ContainerInfo
	for _, c := range s.Containers {
		if c.Live() {
			out = append(out, c)
		}
	}
	return out
}

// FailedUpdate is a container update the runtime could not apply: an
// unknown, stopped or removed container. containerd logs these (and returns
// them from UpdateContainers unless IgnoreFailure is set).
type FailedUpdate struct {
	Op            string // the step that carried the update
	ContainerID   string
	Reason        string
	IgnoreFailure bool
}

type podEntry struct {
	pod *Pod
	nri *api.PodSandbox
	seq int
	on  bool
}

type ctrEntry struct {
	ctr      *Container
	nri      *api.Container // current state; resources follow every update
	seq      int
	injected bool
	adjust   *api.ContainerAdjustment
}

func (e *ctrEntry) live() bool {
	s := e.nri.GetState()
	return s == api.ContainerState_CONTAINER_CREATED || s == api.ContainerState_CONTAINER_RUNNING
}

func (e *ctrEntry) info() ContainerInfo {
	p := e.ctr.Pod
	cpu := e.nri.GetLinux().GetResources().GetCpu()
	return ContainerInfo{
		ID:         e.ctr.ID,
		PodID:      p.ID,
		PodName:    p.Name,
		Namespace:  p.Namespace,
		Name:       e.ctr.Spec.Name,
		QoS:        p.QoS,
		Spec:       e.ctr.Spec,
		State:      e.nri.GetState(),
		Cpus:       cpu.GetCpus(),
		Mems:       cpu.GetMems(),
		Seq:        e.seq,
		Injected:   e.injected,
		Adjustment: e.adjust,
	}
}

// snapshotLocked copies the model; the caller holds r.mu. The ordered
// lists are kept in creation order as entries come and go, so a snapshot
// is one pass over them, without sorting.
func (r *Runtime) snapshotLocked(step Step) Snapshot {
	s := Snapshot{
		Step:       step,
		Pods:       make([]PodInfo, 0, len(r.podOrder)),
		Containers: make([]ContainerInfo, 0, len(r.ctrOrder)),
	}
	for _, e := range r.podOrder {
		s.Pods = append(s.Pods, PodInfo{
			ID: e.pod.ID, Name: e.pod.Name, Namespace: e.pod.Namespace, UID: e.pod.UID,
			QoS: e.pod.QoS, Running: e.on, Seq: e.seq,
		})
	}
	for _, e := range r.ctrOrder {
		s.Containers = append(s.Containers, e.info())
	}
	return s
}

// addPodLocked and the three functions below keep the maps and the
// creation-ordered lists in step; the caller holds r.mu.
func (r *Runtime) addPodLocked(e *podEntry) {
	r.pods[e.pod.ID] = e
	i := sort.Search(len(r.podOrder), func(i int) bool { return r.podOrder[i].seq > e.seq })
	r.podOrder = slices.Insert(r.podOrder, i, e)
}

func (r *Runtime) removePodLocked(id string) {
	e := r.pods[id]
	if e == nil {
		return
	}
	delete(r.pods, id)
	i := sort.Search(len(r.podOrder), func(i int) bool { return r.podOrder[i].seq >= e.seq })
	if i < len(r.podOrder) && r.podOrder[i] == e {
		r.podOrder = slices.Delete(r.podOrder, i, i+1)
	}
}

func (r *Runtime) addCtrLocked(e *ctrEntry) {
	r.ctrs[e.ctr.ID] = e
	i := sort.Search(len(r.ctrOrder), func(i int) bool { return r.ctrOrder[i].seq > e.seq })
	r.ctrOrder = slices.Insert(r.ctrOrder, i, e)
}

func (r *Runtime) removeCtrLocked(id string) {
	e := r.ctrs[id]
	if e == nil {
		return
	}
	delete(r.ctrs, id)
	i := sort.Search(len(r.ctrOrder), func(i int) bool { return r.ctrOrder[i].seq >= e.seq })
	if i < len(r.ctrOrder) && r.ctrOrder[i] == e {
		r.ctrOrder = slices.Delete(r.ctrOrder, i, i+1)
	}
}

// applyUpdatesLocked applies container updates to the model the way
// containerd does: unknown or stopped targets fail, the rest take the
// resources. It returns the failures a plugin should hear about (those
// without IgnoreFailure). The caller holds r.mu.
func (r *Runtime) applyUpdatesLocked(op string, updates []*api.ContainerUpdate) []*api.ContainerUpdate {
	var failed []*api.ContainerUpdate
	for _, u := range updates {
		if u == nil {
			// UpdateContainer replies end with a nil entry when no plugin
			// touched the target (adaptation result.go).
			continue
		}
		e, reason := r.ctrs[u.GetContainerId()], ""
		switch {
		case e == nil:
			reason = "no such container"
		case !e.live():
			reason = "container is " + e.nri.GetState().String()
		}
		if reason != "" {
			r.recordFailedLocked(FailedUpdate{
				Op: op, ContainerID: u.GetContainerId(), Reason: reason, IgnoreFailure: u.GetIgnoreFailure(),
			})
			if !u.GetIgnoreFailure() {
				failed = append(failed, u)
			}
			continue
		}
		mergeResources(e.nri, u.GetLinux().GetResources())
	}
	return failed
}

// mergeResources writes every field that src sets into the container's
// resources. Empty strings and nil optionals mean "unchanged", as in NRI.
func mergeResources(c *api.Container, src *api.LinuxResources) {
	if src == nil {
		return
	}
	if c.Linux == nil {
		c.Linux = &api.LinuxContainer{}
	}
	if c.Linux.Resources == nil {
		c.Linux.Resources = &api.LinuxResources{}
	}
	dst := c.Linux.Resources
	if s := src.GetCpu(); s != nil {
		if dst.Cpu == nil {
			dst.Cpu = &api.LinuxCPU{}
		}
		d := dst.Cpu
		if s.Shares != nil {
			d.Shares = api.UInt64(s.Shares)
		}
		if s.Quota != nil {
			d.Quota = api.Int64(s.Quota)
		}
		if s.Period != nil {
			d.Period = api.UInt64(s.Period)
		}
		if s.Cpus != "" {
			d.Cpus = s.Cpus
		}
		if s.Mems != "" {
			d.Mems = s.Mems
		}
	}
	if s := src.GetMemory(); s != nil {
		if dst.Memory == nil {
			dst.Memory = &api.LinuxMemory{}
		}
		if s.Limit != nil {
			dst.Memory.Limit = api.Int64(s.Limit)
		}
		if s.Swap != nil {
			dst.Memory.Swap = api.Int64(s.Swap)
		}
	}
	if len(src.Unified) > 0 {
		if dst.Unified == nil {
			dst.Unified = map[string]string{}
		}
		maps.Copy(dst.Unified, src.Unified)
	}
}

// syncStateLocked lists live pods and containers for Synchronize, in
// creation order unless a shuffle seed was given. The caller holds r.mu.
func (r *Runtime) syncStateLocked() ([]*api.PodSandbox, []*api.Container) {
	pods := make([]*podEntry, 0, len(r.podOrder))
	for _, e := range r.podOrder {
		if e.on {
			pods = append(pods, e)
		}
	}
	ctrs := make([]*ctrEntry, 0, len(r.ctrOrder))
	for _, e := range r.ctrOrder {
		if e.live() {
			ctrs = append(ctrs, e)
		}
	}
	if r.shuffle != nil {
		r.shuffle.Shuffle(len(pods), func(i, j int) { pods[i], pods[j] = pods[j], pods[i] })
		r.shuffle.Shuffle(len(ctrs), func(i, j int) { ctrs[i], ctrs[j] = ctrs[j], ctrs[i] })
	}
	outP := make([]*api.PodSandbox, 0, len(pods))
	for _, e := range pods {
		outP = append(outP, proto.Clone(e.nri).(*api.PodSandbox))
	}
	outC := make([]*api.Container, 0, len(ctrs))
	for _, e := range ctrs {
		outC = append(outC, proto.Clone(e.nri).(*api.Container))
	}
	return outP, outC
}
