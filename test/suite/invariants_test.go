package suite

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/test/mockruntime"
	"github.com/numaspread/numaspread/topology"
)

// checker verifies DESIGN.md's invariants on the mock runtime's model after
// every step. It is deliberately independent of the plugin: it derives who
// should be exclusive from the Kubernetes pod specs and the configuration,
// and the shared pool from the exclusive cpusets it sees.
type checker struct {
	topo        *topology.Topology
	managed     topology.Mask
	reserved    topology.Mask
	strict      bool
	minShared   int
	memory      string
	annotations bool

	mu   sync.Mutex
	pods map[string]*mockruntime.Pod // by sandbox id, registered before RunPod
	// down is set while the plugin is known to be gone: containers created
	// meanwhile have no cpuset. It ends at the next successful Synchronize
	// (the step check clears it before checking), so the window is exactly
	// the outage.
	down bool
	// unchecked are containers whose state is not checked until the next
	// successful Synchronize: containers injected behind the plugin's back
	// with cpusets it must repair.
	unchecked map[string]bool
	// fallback are exclusive-eligible containers the test expects in the
	// shared pool (on_insufficient = "shared").
	fallback map[string]bool
}

func newChecker(topo *topology.Topology, cfg config.Config) (*checker, error) {
	pc := cfg.Policy
	managed := topo.Online.Difference(topo.Isolated)
	if pc.AllowedCPUs != "" {
		m, err := topology.ParseMask(pc.AllowedCPUs)
		if err != nil {
			return nil, fmt.Errorf("allowed_cpus: %w", err)
		}
		managed = m
	}
	reserved, err := topology.ParseMask(pc.ReservedCPUs)
	if err != nil {
		return nil, fmt.Errorf("reserved_cpus: %w", err)
	}
	return &checker{
		topo: topo, managed: managed, reserved: reserved, strict: pc.StrictReserved,
		minShared: pc.MinSharedCPUs, memory: pc.Memory, annotations: pc.Annotations,
		pods: map[string]*mockruntime.Pod{}, unchecked: map[string]bool{}, fallback: map[string]bool{},
	}, nil
}

func (c *checker) addPod(p *mockruntime.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pods[p.ID] = p
}

// pluginDown opens the outage window; the next successful Synchronize closes it.
func (c *checker) pluginDown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = true
}

// uncheckedUntilSync exempts a container until the next successful Synchronize.
func (c *checker) uncheckedUntilSync(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unchecked[id] = true
}

// expectFallback declares that an exclusive-eligible container will run in
// the shared pool because there were not enough CPUs.
func (c *checker) expectFallback(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fallback[id] = true
}

// role is what the rules entitle a container to.
type role int

const (
	shared role = iota
	exclusive
)

func (r role) String() string {
	if r == exclusive {
		return "exclusive"
	}
	return "shared"
}

// roleOf applies DESIGN.md "Who gets what" to a container's Kubernetes spec:
// exclusive when the pod is Guaranteed, the CPU request is a whole number
// equal to the limit, and no numaspread.io/exclusive annotation opts out.
// It returns the number of exclusive CPUs.
func (c *checker) roleOf(ci mockruntime.ContainerInfo) (role, int) {
	s := ci.Spec
	if ci.QoS != mockruntime.Guaranteed || s.CPURequestMilli <= 0 || s.CPURequestMilli != s.CPULimitMilli ||
		s.CPURequestMilli%1000 != 0 || c.fallback[ci.ID] {
		return shared, 0
	}
	if pod := c.pods[ci.PodID]; pod != nil && c.annotations {
		v, ok := pod.Annotations["numaspread.io/exclusive.container."+ci.Name]
		if !ok {
			v = pod.Annotations["numaspread.io/exclusive"]
		}
		if v == "false" {
			return shared, 0
		}
	}
	return exclusive, int(s.CPURequestMilli / 1000)
}

// verdict is the checker's reading of one snapshot.
type verdict struct {
	pool     topology.Mask // managed − exclusive cpusets (− reserved when strict)
	roles    map[string]role
	problems []string
}

func (c *checker) judge(s mockruntime.Snapshot) verdict {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.Step.Op == "Synchronize" && s.Step.Err == nil {
		c.down = false
		clear(c.unchecked)
	}
	v := verdict{roles: map[string]role{}}
	fail := func(format string, args ...any) { v.problems = append(v.problems, fmt.Sprintf(format, args...)) }

	var held topology.Mask
	holder := map[int]string{}
	var sharedCtrs []mockruntime.ContainerInfo
	for _, ci := range s.Live() {
		r, n := c.roleOf(ci)
		v.roles[ci.ID] = r
		if c.unchecked[ci.ID] {
			continue
		}
		if ci.Cpus == "" {
			if !c.down {
				fail("%s (%s): no cpuset.cpus", ci.ID, r)
			}
			continue
		}
		cpus, err := topology.ParseMask(ci.Cpus)
		if err != nil {
			fail("%s: cpuset.cpus %q: %v", ci.ID, ci.Cpus, err)
			continue
		}
		if !cpus.IsSubsetOf(c.managed) {
			fail("%s: cpus %s include CPUs numaspread does not manage (%s)", ci.ID, cpus, cpus.Difference(c.managed))
		}
		c.checkMems(ci, cpus, fail)
		if r == shared {
			sharedCtrs = append(sharedCtrs, ci)
			continue
		}
		if got := cpus.Count(); got != n {
			fail("%s: exclusive container holds %d CPUs (%s), wants %d", ci.ID, got, cpus, n)
		}
		if cpus.Intersects(c.reserved) {
			fail("%s: exclusive cpus %s include reserved CPUs %s", ci.ID, cpus, cpus.Intersection(c.reserved))
		}
		cpus.ForEach(func(cpu int) bool {
			if other, ok := holder[cpu]; ok {
				fail("CPU %d held exclusively by both %s and %s", cpu, other, ci.ID)
			}
			holder[cpu] = ci.ID
			return true
		})
		held.UnionInPlace(cpus)
	}

	v.pool = c.managed.Difference(held)
	if c.strict {
		v.pool.SubtractInPlace(c.reserved)
	}
	if v.pool.IsEmpty() {
		fail("the shared pool is empty")
	} else if v.pool.Count() < c.minShared {
		fail("the shared pool %s has %d CPUs, below min_shared_cpus = %d", v.pool, v.pool.Count(), c.minShared)
	}
	for _, ci := range sharedCtrs {
		if cpus, _ := topology.ParseMask(ci.Cpus); !cpus.Equals(v.pool) {
			fail("%s: shared container has cpus %s, the shared pool is %s", ci.ID, ci.Cpus, v.pool)
		}
	}
	return v
}

// checkMems applies the memory rule: local → the nodes of the container's
// CPUs; all → every node with memory; none → untouched (empty).
func (c *checker) checkMems(ci mockruntime.ContainerInfo, cpus topology.Mask, fail func(string, ...any)) {
	var want topology.Mask
	switch c.memory {
	case config.MemoryLocal:
		want = c.topo.NodesOf(cpus)
	case config.MemoryAll:
		want = c.topo.MemoryNodes()
	case config.MemoryNone:
		if ci.Mems != "" {
			fail("%s: memory = none, but cpuset.mems is %q", ci.ID, ci.Mems)
		}
		return
	}
	got, err := topology.ParseMask(ci.Mems)
	if err != nil || !got.Equals(want) {
		fail("%s: cpuset.mems %q, want %q (memory = %s, cpus %s)", ci.ID, ci.Mems, want, c.memory, cpus)
	}
}

// check is the mockruntime.CheckFunc.
func (c *checker) check(s mockruntime.Snapshot) error {
	v := c.judge(s)
	if len(v.problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(v.problems, "; ") + "\n" + c.describe(s, v))
}

// describe prints a snapshot for failure messages: the step, the pool the
// checker expects, and every container with its role and cpuset.
func (c *checker) describe(s mockruntime.Snapshot, v verdict) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  snapshot after %v\n", s.Step)
	fmt.Fprintf(&b, "  managed %s, reserved %q (strict %v), expected shared pool %s (%d CPUs)\n",
		c.managed, c.reserved.String(), c.strict, v.pool, v.pool.Count())
	width := 0
	for _, ci := range s.Containers {
		width = max(width, len(ci.ID))
	}
	for _, ci := range s.Containers {
		r := "-"
		if rr, ok := v.roles[ci.ID]; ok {
			r = rr.String()
		}
		state := strings.TrimPrefix(ci.State.String(), "CONTAINER_")
		fmt.Fprintf(&b, "  %-*s %-10s %6dm %-8s %-9s cpus=%-24q mems=%q\n",
			width, ci.ID, ci.QoS, ci.Spec.CPURequestMilli, state, r, ci.Cpus, ci.Mems)
	}
	return b.String()
}
