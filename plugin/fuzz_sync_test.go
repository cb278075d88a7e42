package plugin

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/containerd/nri/pkg/api"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/policy"
	"github.com/numaspread/numaspread/topology"
)

// hostileCPUSets are cpusets a runtime may report after a crash, a CPU
// going offline, a rival writer or a corrupt restore.
var hostileCPUSets = []string{
	"", "0", "0-15", "15", "16", "16-31", "4095", "99999999999", "0-", "-1", "3-1", "0,,1", "ÿ", " 1", "0-3,8-11",
	"4-7,12-15", "1,9", "0,8", "2-3", "0-1,8-9", "0x1", strings.Repeat("1,", 1000) + "1",
}

// fuzzWorld builds a random Synchronize input from a seed and a few fuzzed
// strings: up to 64 containers of random QoS, resources, states, creation
// times, reported cpusets (valid, overlapping, offline, out of range,
// garbage) and annotations (valid, bad, enormous, unicode).
func fuzzWorld(seed int64, n uint8, cpusA, cpusB, annKey, annVal string) ([]*api.PodSandbox, []*api.Container) {
	rng := rand.New(rand.NewSource(seed))
	count := int(n % 64)
	var pods []*api.PodSandbox
	var ctrs []*api.Container
	pick := func(ss ...string) string { return ss[rng.Intn(len(ss))] }
	for i := range count {
		podID := fmt.Sprintf("pod%d", rng.Intn(count+1))
		parent := pick("/kubepods/pod"+podID, "/kubepods/burstable/pod"+podID, "/kubepods/besteffort/pod"+podID,
			"kubepods-pod"+podID+".slice", "", "/custom")
		ann := map[string]string{}
		switch rng.Intn(6) {
		case 0:
			ann[annKey] = annVal
		case 1:
			ann["numaspread.io/policy"] = pick("packed", "distributed", annVal, "")
		case 2:
			ann["numaspread.io/spread"] = pick("all", "minimal", "1", "2", "0", "-1", annVal, "99999999999999999999")
		case 3:
			ann["numaspread.io/exclusive"] = pick("true", "false", annVal)
		case 4:
			ann["numaspread.io/policy.container.c"+fmt.Sprint(i)] = pick("packed", annVal)
		}
		pods = append(pods, &api.PodSandbox{Id: podID, Name: podID, Namespace: pick("ns", "ünï", ""),
			Annotations: ann, Linux: &api.LinuxPodSandbox{CgroupParent: parent}})
		cpu := &api.LinuxCPU{
			Cpus: pick(append(hostileCPUSets, cpusA, cpusB)...),
			Mems: pick("", "0", "1", "0-1", "7", cpusB),
		}
		nCPU := rng.Intn(18)
		switch rng.Intn(5) {
		case 0: // nothing set
		case 1: // a Guaranteed-looking integer request
			cpu.Shares, cpu.Quota, cpu.Period = api.UInt64(uint64(nCPU*1024)), api.Int64(int64(nCPU*100000)), api.UInt64(100000)
		case 2: // fractional
			cpu.Shares, cpu.Quota, cpu.Period = api.UInt64(uint64(nCPU*1024+512)), api.Int64(int64(nCPU*100000+50000)), api.UInt64(100000)
		case 3: // hostile
			cpu.Shares, cpu.Quota, cpu.Period = api.UInt64(rng.Uint64()), api.Int64(rng.Int63()-rng.Int63()), api.UInt64(uint64(rng.Intn(3)))
		case 4: // unlimited
			cpu.Shares, cpu.Quota, cpu.Period = api.UInt64(uint64(nCPU*1024)), api.Int64(-1), api.UInt64(100000)
		}
		c := &api.Container{
			Id: fmt.Sprintf("c%d", i), PodSandboxId: podID, Name: pick("c"+fmt.Sprint(i), "app", "ünï", ""),
			State:     api.ContainerState(rng.Intn(5)),
			CreatedAt: rng.Int63n(1000) - 10,
			Linux:     &api.LinuxContainer{Resources: &api.LinuxResources{Cpu: cpu}},
		}
		if rng.Intn(3) > 0 {
			c.Linux.OomScoreAdj = api.Int(pick2(rng, -997, 1000, 500, 0))
		}
		if rng.Intn(10) == 0 {
			c.Linux = nil // no Linux section at all
		}
		ctrs = append(ctrs, c)
	}
	if rng.Intn(4) == 0 && len(ctrs) > 0 {
		ctrs = append(ctrs, ctrs[rng.Intn(len(ctrs))]) // the same container listed twice
	}
	if rng.Intn(4) == 0 && len(ctrs) > 1 {
		// Two different listings of one id (other resources, cpusets, state).
		last := ctrs[len(ctrs)-1]
		last.Id = ctrs[rng.Intn(len(ctrs)-1)].Id
	}
	return pods, ctrs
}

func pick2(rng *rand.Rand, vs ...int) int { return vs[rng.Intn(len(vs))] }

// checkPlugin verifies the plugin's own state: exclusive containers hold
// exactly their entitlement of managed, unreserved CPUs, no CPU twice;
// shared containers hold the pool; the pool is never empty.
func checkPlugin(t *testing.T, p *Plugin, want map[string]int) {
	t.Helper()
	s := p.Snapshot()
	if s.Shared.IsEmpty() {
		t.Fatalf("empty shared pool")
	}
	var held topology.Mask
	for _, c := range s.Containers {
		cpus, err := topology.ParseMask(c.CPUs)
		if err != nil {
			t.Fatalf("%s: recorded cpus %q: %v", c.ID, c.CPUs, err)
		}
		if !c.Exclusive {
			if !cpus.Equals(s.Shared) {
				t.Fatalf("%s: shared container on %s, pool %s", c.ID, cpus, s.Shared)
			}
			continue
		}
		if n, ok := want[c.ID]; ok && cpus.Count() != n {
			t.Fatalf("%s: %d exclusive CPUs %s, entitled to %d", c.ID, cpus.Count(), cpus, n)
		}
		if cpus.Intersects(held) || !cpus.IsSubsetOf(s.Managed) || cpus.Intersects(s.Reserved) {
			t.Fatalf("%s: exclusive CPUs %s overlap others (%s), are unmanaged or reserved", c.ID, cpus, held)
		}
		held.UnionInPlace(cpus)
	}
	// The policy state holds exactly what the exclusive records say.
	owners := p.state.Owners()
	var exclusive []string
	for _, c := range s.Containers {
		if c.Exclusive {
			exclusive = append(exclusive, c.ID)
		}
	}
	sort.Strings(exclusive)
	if !slices.Equal(owners, exclusive) || !p.state.Held().Equals(held) {
		t.Fatalf("policy state holds %s for %v, the records %s for %v", p.state.Held(), owners, held, exclusive)
	}
}

// FuzzSynchronize feeds Synchronize random container lists as a runtime
// could report them after a crash or a restart: any state, overlapping or
// empty or garbage cpusets, CPUs that do not exist, hostile resources and
// annotations, the same container twice. It must never panic or fail; the
// state it builds must be valid; and it must converge: with its updates
// applied, a second Synchronize changes nothing.
func FuzzSynchronize(f *testing.F) {
	f.Add(int64(1), uint8(10), "0-3", "4-7", "numaspread.io/policy", "packed")
	f.Add(int64(2), uint8(40), "0-15", "", "numaspread.io/spread", strings.Repeat("ü", 10000))
	f.Add(int64(3), uint8(63), "1,9", "1,9", "numaspread.io/exclusive", "false")
	f.Add(int64(4), uint8(5), "16-19", "3-1", "numaspread.io/exclusive.container.app", "maybe")
	f.Fuzz(func(t *testing.T, seed int64, n uint8, cpusA, cpusB, annKey, annVal string) {
		cfg := config.Default()
		if seed%3 == 0 {
			var err error
			if cfg, err = cfg.With("policy.reserved_cpus", "0,8"); err != nil {
				t.Fatal(err)
			}
			if cfg, err = cfg.With("policy.strict_reserved", "true"); err != nil {
				t.Fatal(err)
			}
		}
		if seed%5 == 0 {
			cfg.Policy.MinSharedCPUs = 0
		}
		p := newTestPlugin(t, cfg)
		pods, ctrs := fuzzWorld(seed, n, cpusA, cpusB, annKey, annVal)
		ctx := context.Background()
		updates, err := p.Synchronize(ctx, pods, ctrs)
		if err != nil {
			t.Fatalf("Synchronize failed: %v", err)
		}
		seen := map[string]bool{}
		for _, u := range updates {
			if seen[u.GetContainerId()] {
				t.Fatalf("two updates for %s in one reply", u.GetContainerId())
			}
			seen[u.GetContainerId()] = true
			if cpus := u.GetLinux().GetResources().GetCpu().GetCpus(); cpus == "" {
				t.Fatalf("update for %s with an empty cpuset (means: unchanged)", u.GetContainerId())
			}
		}
		podByID := map[string]*api.PodSandbox{}
		for _, pod := range pods {
			podByID[pod.GetId()] = pod
		}
		// An id listed twice keeps its first live listing: stopped
		// listings are skipped before the duplicate check, as Synchronize
		// does (a stale stopped listing must not hide a running one).
		byID := map[string]*api.Container{}
		for _, c := range ctrs {
			if c.GetState() == api.ContainerState_CONTAINER_STOPPED {
				continue
			}
			if _, dup := byID[c.GetId()]; !dup {
				byID[c.GetId()] = c
			}
		}
		want := map[string]int{}
		for id, c := range byID {
			if pod := podByID[c.GetPodSandboxId()]; pod != nil {
				want[id] = inferWorkload(pod, c).exclusive
			}
		}
		checkPlugin(t, p, want)

		// Converged: apply the updates, synchronize again, nothing to do.
		for _, u := range updates {
			c := byID[u.GetContainerId()]
			if c.Linux == nil {
				c.Linux = &api.LinuxContainer{}
			}
			if c.Linux.Resources == nil {
				c.Linux.Resources = &api.LinuxResources{}
			}
			if c.Linux.Resources.Cpu == nil {
				c.Linux.Resources.Cpu = &api.LinuxCPU{}
			}
			cpu := u.GetLinux().GetResources().GetCpu()
			c.Linux.Resources.Cpu.Cpus = cpu.GetCpus()
			if cpu.GetMems() != "" {
				c.Linux.Resources.Cpu.Mems = cpu.GetMems()
			}
		}
		first := p.Snapshot()
		again, err := p.Synchronize(ctx, pods, ctrs)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) > 0 && !loneFallback(first) {
			t.Fatalf("not converged: a second Synchronize sends %d updates (first: %s)", len(again), updatesByID(again))
		}
	})
}

// loneFallback reports the one state a second Synchronize may change: a
// container entitled to exclusive CPUs runs in the pool, and the pool
// happens to hold exactly its count, with no container of the pool to tell
// it from an exclusive allocation: after a restart it is one (older wins).
func loneFallback(s Snapshot) bool {
	for _, c := range s.Containers {
		if !c.Exclusive && c.CPUs == s.Shared.String() {
			for _, o := range s.Containers {
				if o.ID != c.ID && !o.Exclusive {
					return false
				}
			}
			return true
		}
	}
	return false
}

// FuzzUpdateContainer places a few containers, then relays a CRI update
// with random resources (a cpuset, hostile numbers, nothing) for a known
// or unknown container. The plugin must re-assert its own cpusets.
func FuzzUpdateContainer(f *testing.F) {
	f.Add(int64(1), "0-15", uint64(4096), int64(400000), uint64(100000), true)
	f.Add(int64(2), "ÿ", uint64(1<<63), int64(-1), uint64(0), false)
	f.Fuzz(func(t *testing.T, seed int64, cpus string, shares uint64, quota int64, period uint64, known bool) {
		p := newTestPlugin(t, config.Default())
		ctx := context.Background()
		db, web := guaranteed("db", 4, "", 1), shared("web", "")
		for _, c := range []*api.Container{db, web} {
			if _, _, err := p.CreateContainer(ctx, pods(c)[0], c); err != nil {
				t.Fatal(err)
			}
		}
		before := p.Snapshot()
		target := []*api.Container{db, web}[seed&1]
		if !known {
			target = shared("ghost", cpus)
		}
		res := &api.LinuxResources{Cpu: &api.LinuxCPU{Cpus: cpus, Shares: api.UInt64(shares), Quota: api.Int64(quota), Period: api.UInt64(period)}}
		updates, err := p.UpdateContainer(ctx, pods(target)[0], target, res)
		if err != nil {
			t.Fatalf("UpdateContainer: %v", err)
		}
		if !known {
			if len(updates) != 0 {
				t.Fatalf("updates for an unknown container: %v", updatesByID(updates))
			}
			return
		}
		got := updatesByID(updates)
		for _, c := range before.Containers {
			if c.ID == target.GetId() && got[c.ID] != c.CPUs+"/"+c.Mems {
				t.Fatalf("UpdateContainer(%s) replies %q, want its cpuset %s/%s", c.ID, got[c.ID], c.CPUs, c.Mems)
			}
		}
		checkPlugin(t, p, map[string]int{"db": 4})
	})
}

// FuzzAnnotations: any annotation map, with enormous or non-UTF-8 values,
// gives a decision or an error that names the annotation, stays short,
// and is valid UTF-8 (it travels in a protobuf string).
func FuzzAnnotations(f *testing.F) {
	f.Add("numaspread.io/policy", "packed", "app", 1)
	f.Add("numaspread.io/spread.container.app", "ünïcødé", "app", 100000)
	f.Add("numaspread.io/exclusive", "\xff\xfe", "", 3)
	f.Fuzz(func(t *testing.T, key, val, name string, repeat int) {
		if repeat < 1 || repeat > 1<<17 {
			repeat = 1
		}
		v := strings.Repeat(val, repeat)
		if len(v) > 1<<20 {
			v = v[:1<<20]
		}
		ann := map[string]string{key: v, "numaspread.io/spread": v, "numaspread.io/policy.container." + name: v}
		_, _, err := annotationChoices(ann, name, policy.DefaultOptions())
		if err == nil {
			return
		}
		msg := fmt.Sprintf("container %s: %v", name, err)
		if len(err.Error()) > 600 || !utf8.ValidString(err.Error()) {
			t.Fatalf("error of %d bytes (valid UTF-8: %v): %.200q", len(err.Error()), utf8.ValidString(err.Error()), msg)
		}
		if !strings.Contains(err.Error(), "numaspread.io/") {
			t.Fatalf("error does not name the annotation: %v", err)
		}
	})
}

// panicOnSync panics while Synchronize reports itself, standing in for any
// bug on the Synchronize path.
type panicOnSync struct{}

func (panicOnSync) Request(event string, _ time.Duration, _ error) {
	if event == "Synchronize" {
		panic("sync boom")
	}
}
func (panicOnSync) Decision(string) {}

func TestSynchronizePanicBecomesAnError(t *testing.T) {
	p := newTestPlugin(t, config.Default())
	p.SetObserver(panicOnSync{})
	ctrs := []*api.Container{guaranteed("db", 2, "0,8", 1), shared("web", "0-15")}
	_, err := p.Synchronize(context.Background(), pods(ctrs...), ctrs)
	if err == nil || !strings.Contains(err.Error(), "internal error handling Synchronize for 2 pods, 2 containers: sync boom") {
		t.Fatalf("err = %v", err)
	}
	// The lock was released: the plugin serves the next requests.
	p.SetObserver(nil)
	if _, err := p.Synchronize(context.Background(), pods(ctrs...), ctrs); err != nil {
		t.Fatalf("Synchronize after a panic: %v", err)
	}
	c := guaranteed("next", 2, "", 2)
	if _, _, err := p.CreateContainer(context.Background(), pods(c)[0], c); err != nil {
		t.Fatalf("CreateContainer after a panic: %v", err)
	}
	checkPlugin(t, p, map[string]int{"db": 2, "next": 2})
}
