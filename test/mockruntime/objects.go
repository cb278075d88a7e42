package mockruntime

import (
	"crypto/sha256"
	"fmt"
	"strconv"
)

// QoSClass is a Kubernetes pod QoS class. It decides the pod's cgroup parent
// and its containers' oom_score_adj, which is all a plugin can see of it.
type QoSClass string

// The Kubernetes QoS classes.
const (
	Guaranteed QoSClass = "Guaranteed"
	Burstable  QoSClass = "Burstable"
	BestEffort QoSClass = "BestEffort"
)

// DefaultNamespace is the namespace of pods built by the constructors.
const DefaultNamespace = "default"

// defaultGuaranteedMemory is the memory request = limit a Guaranteed
// container gets when its spec names none: Kubernetes requires one, and
// tests about CPUs should not have to spell it out.
const defaultGuaranteedMemory = 128 << 20

// ContainerSpec is the part of a Kubernetes container spec that reaches NRI.
// Zero means "not set". As the API server does, a missing request defaults
// to the limit.
type ContainerSpec struct {
	Name            string
	CPURequestMilli int64
	CPULimitMilli   int64
	MemoryRequest   int64 // bytes
	MemoryLimit     int64 // bytes
	// Init marks an init container. NRI has no flag for it: it only changes
	// the pod-level resources (max of init vs sum of app containers).
	Init bool
	// Annotations are extra container annotations (the CRI config's).
	Annotations map[string]string
}

// Pod is a Kubernetes-like pod. Build it with GuaranteedPod, BurstablePod or
// BestEffortPod, adjust it with the With* methods, then hand it to
// Runtime.RunPod. Do not change it after RunPod.
type Pod struct {
	Name        string
	Namespace   string
	UID         string
	ID          string // the sandbox ID the runtime reports
	QoS         QoSClass
	Labels      map[string]string
	Annotations map[string]string

	containers []*Container
}

// Container is one container of a pod: a spec plus the ID the runtime uses.
// Containers are immutable once built; the runtime's view of them (state,
// cpuset) lives in the Runtime model.
type Container struct {
	ID      string
	Pod     *Pod
	Spec    ContainerSpec
	Attempt int // restart count: a re-added name gets a new ID
}

// GuaranteedPod builds a Guaranteed pod. Each container's CPU limit defaults
// to its request and vice versa; memory request = limit (128 MiB when
// unset). It panics if a container has no CPU or has request != limit,
// because such a pod would not be Guaranteed.
func GuaranteedPod(name string, containers ...ContainerSpec) *Pod {
	return NewPod(Guaranteed, name, containers...)
}

// BurstablePod builds a Burstable pod with the containers as given.
func BurstablePod(name string, containers ...ContainerSpec) *Pod {
	return NewPod(Burstable, name, containers...)
}

// BestEffortPod builds a BestEffort pod; all requests and limits are cleared.
func BestEffortPod(name string, containers ...ContainerSpec) *Pod {
	return NewPod(BestEffort, name, containers...)
}

// NewPod builds a pod of the given QoS class in DefaultNamespace.
func NewPod(qos QoSClass, name string, containers ...ContainerSpec) *Pod {
	p := &Pod{
		Name:        name,
		QoS:         qos,
		Labels:      map[string]string{},
		Annotations: map[string]string{},
	}
	p.setNamespace(DefaultNamespace)
	for _, c := range containers {
		p.AddContainer(c)
	}
	return p
}

// WithNamespace moves the pod to another namespace; its UID and ID change.
func (p *Pod) WithNamespace(ns string) *Pod {
	p.setNamespace(ns)
	for _, c := range p.containers {
		c.ID = containerID(p, c.Spec.Name, c.Attempt)
	}
	return p
}

// WithAnnotation sets a pod annotation (what the kubelet passes on in the
// sandbox config, and what plugins read policy annotations from).
func (p *Pod) WithAnnotation(key, value string) *Pod {
	p.Annotations[key] = value
	return p
}

// AddContainer adds a container built from spec, with Kubernetes defaulting
// for the pod's QoS class. Adding a name that already exists models a
// container restart: a new attempt with a new ID; Container(name) then
// returns the newest one.
func (p *Pod) AddContainer(spec ContainerSpec) *Container {
	spec = defaultSpec(p.QoS, p.Name, spec)
	attempt := 0
	for _, c := range p.containers {
		if c.Spec.Name == spec.Name && c.Attempt >= attempt {
			attempt = c.Attempt + 1
		}
	}
	c := &Container{
		ID:      containerID(p, spec.Name, attempt),
		Pod:     p,
		Spec:    spec,
		Attempt: attempt,
	}
	p.containers = append(p.containers, c)
	return c
}

// Container returns the newest container with the given name. It panics if
// there is none: that is a bug in the test.
func (p *Pod) Container(name string) *Container {
	for i := len(p.containers) - 1; i >= 0; i-- {
		if p.containers[i].Spec.Name == name {
			return p.containers[i]
		}
	}
	panic(fmt.Sprintf("mockruntime: pod %s has no container %q", p.Name, name))
}

// Containers returns all containers of the pod, in the order they were added.
func (p *Pod) Containers() []*Container {
	return append([]*Container(nil), p.containers...)
}

// current returns the newest attempt of every container name, in order:
// the pod spec the kubelet computes pod-level resources from.
func (p *Pod) current() []*Container {
	var out []*Container
	for _, c := range p.containers {
		if p.Container(c.Spec.Name) == c {
			out = append(out, c)
		}
	}
	return out
}

func (p *Pod) setNamespace(ns string) {
	p.Namespace = ns
	sum := sha256.Sum256([]byte(ns + "/" + p.Name))
	// A deterministic UID in UUID form, so failures are reproducible.
	p.UID = fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
	if ns == DefaultNamespace {
		p.ID = p.Name
	} else {
		p.ID = ns + "." + p.Name
	}
}

func containerID(p *Pod, name string, attempt int) string {
	id := p.ID + "." + name
	if attempt > 0 {
		id += "." + strconv.Itoa(attempt)
	}
	return id
}

// defaultSpec applies API-server defaulting and the QoS class's rules.
func defaultSpec(qos QoSClass, pod string, s ContainerSpec) ContainerSpec {
	if s.CPURequestMilli == 0 {
		s.CPURequestMilli = s.CPULimitMilli
	}
	if s.MemoryRequest == 0 {
		s.MemoryRequest = s.MemoryLimit
	}
	switch qos {
	case Guaranteed:
		if s.CPULimitMilli == 0 {
			s.CPULimitMilli = s.CPURequestMilli
		}
		if s.CPURequestMilli == 0 || s.CPURequestMilli != s.CPULimitMilli {
			panic(fmt.Sprintf("mockruntime: Guaranteed pod %s, container %s: CPU request %dm and limit %dm must be equal and > 0",
				pod, s.Name, s.CPURequestMilli, s.CPULimitMilli))
		}
		if s.MemoryLimit == 0 {
			s.MemoryLimit = s.MemoryRequest
		}
		if s.MemoryLimit == 0 {
			s.MemoryLimit = defaultGuaranteedMemory
		}
		if s.MemoryRequest == 0 {
			s.MemoryRequest = s.MemoryLimit
		}
		if s.MemoryRequest != s.MemoryLimit {
			panic(fmt.Sprintf("mockruntime: Guaranteed pod %s, container %s: memory request %d != limit %d",
				pod, s.Name, s.MemoryRequest, s.MemoryLimit))
		}
	case BestEffort:
		s.CPURequestMilli, s.CPULimitMilli, s.MemoryRequest, s.MemoryLimit = 0, 0, 0, 0
	}
	return s
}
