package suite

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/containerd/nri/pkg/api"

	"github.com/numaspread/numaspread/test/invariants"
	"github.com/numaspread/numaspread/test/mockruntime"
	"github.com/numaspread/numaspread/topology/synth"
)

// TestSeedExample is the example numaspread exists for: a Guaranteed
// container's CPUs spread evenly over the NUMA nodes, or packed onto one
// node when its pod asks for it.
func TestSeedExample(t *testing.T) {
	cases := []struct {
		name       string
		machine    synth.Spec
		cpus       int
		annotation string // numaspread.io/policy, if set
		want, mems string
		perNode    map[int]int
		pool       string // the BestEffort container's cpuset afterwards
	}{
		{name: "SmallTwoNode/distributed", machine: synth.SmallTwoNode(), cpus: 8,
			want: "0-1,4-5,8-9,12-13", mems: "0-1", perNode: map[int]int{0: 4, 1: 4}, pool: "2-3,6-7,10-11,14-15"},
		{name: "SmallTwoNode/packed-by-annotation", machine: synth.SmallTwoNode(), cpus: 8, annotation: "packed",
			want: "0-3,8-11", mems: "0", perNode: map[int]int{0: 8}, pool: "4-7,12-15"},
		{name: "FourNode/distributed", machine: synth.FourNode(), cpus: 8,
			want: "0,4,8,12,16,20,24,28", mems: "0-3", perNode: map[int]int{0: 2, 1: 2, 2: 2, 3: 2},
			pool: "1-3,5-7,9-11,13-15,17-19,21-23,25-27,29-31"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bothModes(t, func(t *testing.T, m mode) {
				e := newEnv(t, m, setup{machine: tc.machine})
				be := e.launch(bestEffortPod("be"))
				if c := e.ctr("be.app"); !invariants.SameCPUs(c.Cpus, e.topo.Online.String()) {
					e.fatalf("BestEffort container before any exclusive one: cpus %q, want every CPU", c.Cpus)
				}
				db := guaranteedPod("db", tc.cpus)
				if tc.annotation != "" {
					db.WithAnnotation("numaspread.io/policy", tc.annotation)
				}
				e.launch(db)
				e.expect("db.app", tc.want, tc.mems)
				if got := e.perNode(e.ctr("db.app").Cpus); !equalCounts(got, tc.perNode) {
					e.fatalf("db.app per node %v, want %v", got, tc.perNode)
				}
				e.expect("be.app", tc.pool, "")
				e.remove(db, "app")
				e.expect(be.Container("app").ID, e.topo.Online.String(), "")
			})
		})
	}
}

// TestSharedPool: shared containers created before and after exclusive
// ones follow the pool as it shrinks and grows; the pool never empties;
// reserved CPUs are never exclusive, and with strict_reserved they leave the
// pool too.
func TestSharedPool(t *testing.T) {
	cases := []struct {
		name   string
		config string
		// fits is the largest exclusive request that still fits after "db"
		// took 4 CPUs; fits+1 must fail.
		fits     int
		poolSize int // the pool with "db" alone
	}{
		{name: "default", fits: 11, poolSize: 12},
		{name: "reserved", config: "[policy]\nreserved_cpus = \"0-1\"\n", fits: 10, poolSize: 12},
		{name: "strict_reserved", config: "[policy]\nreserved_cpus = \"0-1\"\nstrict_reserved = true\n", fits: 9, poolSize: 10},
		{name: "min_shared_cpus", config: "[policy]\nmin_shared_cpus = 3\n", fits: 9, poolSize: 12},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bothModes(t, func(t *testing.T, m mode) {
				e := newEnv(t, m, setup{config: tc.config})
				web := e.launch(burstablePod("web"))
				e.launch(bestEffortPod("be"))
				before := e.pool()
				e.expectShared("web.app")

				db := e.launch(guaranteedPod("db", 4))
				if p := e.pool(); p.Count() != tc.poolSize || !p.IsSubsetOf(before) {
					e.fatalf("pool after db: %s (%d CPUs), want %d CPUs out of %s", p, p.Count(), tc.poolSize, before)
				}
				for _, id := range []string{"web.app", "be.app"} {
					e.expectShared(id)
				}
				e.launch(burstablePod("late"))
				e.expectShared("late.app")

				big := guaranteedPod("big", tc.fits+1)
				e.runPod(big)
				err := e.createFails(big, "app")
				if !strings.Contains(err.Error(), "default/big/app") {
					e.fatalf("error %q does not name the container default/big/app", err)
				}
				fits := e.launch(guaranteedPod("fits", tc.fits))
				if c := e.ctr("fits.app"); mask(t, c.Cpus).Intersects(e.reserved()) {
					e.fatalf("fits.app got reserved CPUs: %s", c.Cpus)
				}
				if p := e.pool(); p.Count() < max(1, e.cfg.Policy.MinSharedCPUs) {
					e.fatalf("pool %s is below min_shared_cpus", p)
				}
				shrunk := e.pool()

				e.stop(db, "app")
				if p := e.pool(); p.Count() != shrunk.Count()+4 {
					e.fatalf("pool after db stopped: %s, want %s plus db's 4 CPUs", p, shrunk)
				}
				e.expectShared("late.app")
				e.remove(db, "app")
				e.remove(fits, "app")
				if p := e.pool(); !p.Equals(before) {
					e.fatalf("pool after every exclusive container left: %s, want %s", p, before)
				}
				e.expectShared(web.Container("app").ID)
			})
		})
	}
}

// TestInitContainer: an init container's CPUs go back to the pool when it
// stops and serve the app container, on a machine where both could not be
// held at once.
func TestInitContainer(t *testing.T) {
	bothModes(t, func(t *testing.T, m mode) {
		e := newEnv(t, m, setup{})
		e.launch(burstablePod("web"))
		// 10 + 10 > 15, the most a 16-CPU machine can give exclusively.
		pod := mockruntime.GuaranteedPod("job",
			mockruntime.ContainerSpec{Name: "setup", CPURequestMilli: 10000, Init: true},
			mockruntime.ContainerSpec{Name: "app", CPURequestMilli: 10000})
		e.runPod(pod)
		setup := e.run(pod, "setup")
		if n := mask(t, setup.Cpus).Count(); n != 10 {
			e.fatalf("init container: %d CPUs, want 10", n)
		}
		e.expectShared("web.app")
		e.stop(pod, "setup")
		if p := e.pool(); !p.Equals(e.topo.Online) {
			e.fatalf("pool after the init container stopped: %s, want every CPU", p)
		}
		e.expectShared("web.app")
		app := e.run(pod, "app")
		if n := mask(t, app.Cpus).Count(); n != 10 {
			e.fatalf("app container: %d CPUs, want 10", n)
		}
		e.expectShared("web.app")
		e.remove(pod, "setup")
		e.expect("job.app", app.Cpus, app.Mems)
	})
}

// TestInsufficient: a request that cannot be met fails naming the
// container, the request and what was free; with on_insufficient = shared
// the container runs in the pool instead.
func TestInsufficient(t *testing.T) {
	freeRE := regexp.MustCompile(`(\d+) free`)
	for _, onInsufficient := range []string{"reject", "shared"} {
		t.Run(onInsufficient, func(t *testing.T) {
			bothModes(t, func(t *testing.T, m mode) {
				e := newEnv(t, m, setup{config: "[policy]\non_insufficient = \"" + onInsufficient + "\"\n"})
				e.launch(burstablePod("web"))
				e.launch(guaranteedPod("db", 12))
				free := e.pool().Count()
				pod := guaranteedPod("analytics", 8).WithNamespace("team-a")
				e.runPod(pod)
				if onInsufficient == "shared" {
					e.chk.ExpectFallback(pod.Container("app").ID)
					c := e.run(pod, "app")
					e.expectShared(c.ID)
					e.expectShared("web.app")
					return
				}
				err := e.createFails(pod, "app")
				msg := err.Error()
				for _, want := range []string{"team-a/analytics/app", "8"} {
					if !strings.Contains(msg, want) {
						e.fatalf("error %q does not mention %q", msg, want)
					}
				}
				sub := freeRE.FindStringSubmatch(msg)
				if sub == nil {
					e.fatalf("error %q does not say how many CPUs were free", msg)
				}
				if n, _ := strconv.Atoi(sub[1]); n != free {
					e.fatalf("error %q says %d free, the pool held %d", msg, n, free)
				}
				e.expectShared("web.app")
			})
		})
	}
}

// TestAnnotations: numaspread.io/ annotations choose the policy per pod or
// container, opt out of exclusive CPUs, never make a container exclusive,
// and fail a container with a clear message when their value is bad.
func TestAnnotations(t *testing.T) {
	t.Run("bad-value", func(t *testing.T) {
		bothModes(t, func(t *testing.T, m mode) {
			e := newEnv(t, m, setup{})
			pod := mockruntime.GuaranteedPod("p",
				mockruntime.ContainerSpec{Name: "ok", CPURequestMilli: 2000},
				mockruntime.ContainerSpec{Name: "bad", CPURequestMilli: 2000}).
				WithAnnotation("numaspread.io/policy.container.bad", "spready")
			e.runPod(pod)
			e.run(pod, "ok")
			err := e.createFails(pod, "bad")
			for _, want := range []string{"numaspread.io/policy.container.bad", "spready", "distributed", "packed", "default/p/bad"} {
				if !strings.Contains(err.Error(), want) {
					e.fatalf("error %q does not mention %q", err, want)
				}
			}

			pod2 := guaranteedPod("p2", 2).WithAnnotation("numaspread.io/spread", "everywhere")
			e.runPod(pod2)
			err = e.createFails(pod2, "app")
			for _, want := range []string{"numaspread.io/spread", "everywhere", "minimal"} {
				if !strings.Contains(err.Error(), want) {
					e.fatalf("error %q does not mention %q", err, want)
				}
			}
		})
	})

	t.Run("container-key-wins", func(t *testing.T) {
		bothModes(t, func(t *testing.T, m mode) {
			e := newEnv(t, m, setup{machine: synth.FourNode()})
			pod := mockruntime.GuaranteedPod("p",
				mockruntime.ContainerSpec{Name: "db", CPURequestMilli: 8000},
				mockruntime.ContainerSpec{Name: "side", CPURequestMilli: 8000}).
				WithAnnotation("numaspread.io/policy", "distributed").
				WithAnnotation("numaspread.io/policy.container.db", "packed")
			e.launch(pod)
			if n := len(e.perNode(e.ctr("p.db").Cpus)); n != 1 {
				e.fatalf("p.db (policy.container.db = packed) spans %d nodes, want 1", n)
			}
			if n := len(e.perNode(e.ctr("p.side").Cpus)); n < 2 {
				e.fatalf("p.side (pod policy distributed) spans %d nodes, want several", n)
			}
		})
	})

	t.Run("exclusive-false", func(t *testing.T) {
		bothModes(t, func(t *testing.T, m mode) {
			e := newEnv(t, m, setup{})
			e.launch(guaranteedPod("pinned", 4))
			optOut := e.launch(guaranteedPod("optout", 4).WithAnnotation("numaspread.io/exclusive", "false"))
			e.expectShared(optOut.Container("app").ID)
			scoped := e.launch(mockruntime.GuaranteedPod("scoped",
				mockruntime.ContainerSpec{Name: "a", CPURequestMilli: 2000},
				mockruntime.ContainerSpec{Name: "b", CPURequestMilli: 2000}).
				WithAnnotation("numaspread.io/exclusive.container.b", "false"))
			if n := mask(t, e.ctr("scoped.a").Cpus).Count(); n != 2 {
				e.fatalf("scoped.a: %d CPUs, want 2 exclusive", n)
			}
			e.expectShared(scoped.Container("b").ID)
		})
	})

	t.Run("burstable-stays-shared", func(t *testing.T) {
		bothModes(t, func(t *testing.T, m mode) {
			e := newEnv(t, m, setup{})
			e.launch(burstablePod("web").
				WithAnnotation("numaspread.io/policy", "packed").
				WithAnnotation("numaspread.io/exclusive", "true"))
			e.expectShared("web.app")
			e.launch(mockruntime.GuaranteedPod("frac", mockruntime.ContainerSpec{Name: "app", CPURequestMilli: 1500}).
				WithAnnotation("numaspread.io/policy", "packed"))
			e.expectShared("frac.app")
		})
	})

	t.Run("annotations-off", func(t *testing.T) {
		bothModes(t, func(t *testing.T, m mode) {
			e := newEnv(t, m, setup{config: "[policy]\nannotations = false\n"})
			e.launch(guaranteedPod("db", 8).
				WithAnnotation("numaspread.io/policy", "spready").
				WithAnnotation("numaspread.io/exclusive", "false"))
			e.expect("db.app", "0-1,4-5,8-9,12-13", "0-1")
		})
	})
}

// TestPluginRestart: the plugin dies mid-scenario; a container created
// meanwhile gets no cpuset; the restarted plugin rebuilds its state from
// Synchronize, keeps every allocation, and fixes the newcomer through the
// updates it returns.
func TestPluginRestart(t *testing.T) {
	variants := []struct {
		name string
		opts []mockruntime.Option
	}{
		{name: "creation-order"},
		{name: "shuffled-sync", opts: []mockruntime.Option{mockruntime.WithShuffledSync(7)}},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			bothModes(t, func(t *testing.T, m mode) {
				e := newEnv(t, m, setup{machine: synth.FourNode(), rtOpts: v.opts})
				e.launch(burstablePod("web"))
				e.launch(guaranteedPod("db", 8))
				e.launch(guaranteedPod("cache", 4).WithAnnotation("numaspread.io/policy", "packed"))
				e.launch(bestEffortPod("be"))
				before := map[string]mockruntime.ContainerInfo{}
				for _, id := range []string{"db.app", "cache.app"} {
					before[id] = e.ctr(id)
				}

				e.killPlugin()
				late := e.launch(guaranteedPod("late", 6))
				lateShared := e.launch(burstablePod("late-web"))
				for _, id := range []string{"late.app", "late-web.app"} {
					if c := e.ctr(id); c.Cpus != "" || c.Mems != "" {
						e.fatalf("%s created while the plugin was down has cpus %q mems %q, want none", id, c.Cpus, c.Mems)
					}
				}

				e.startPlugin()
				for id, was := range before {
					e.expect(id, was.Cpus, was.Mems)
				}
				c := e.ctr(late.Container("app").ID)
				if n := mask(t, c.Cpus).Count(); n != 6 {
					e.fatalf("late.app after Synchronize: %d CPUs (%q), want 6", n, c.Cpus)
				}
				if a := c.Adjustment; a != nil && a.GetLinux().GetResources().GetCpu().GetCpus() != "" {
					e.fatalf("late.app has a creation adjustment %v: it was created while the plugin was down", a)
				}
				for _, id := range []string{"web.app", "be.app", lateShared.Container("app").ID} {
					e.expectShared(id)
				}

				// The rebuilt state is live: new containers avoid the kept
				// allocations, and releases grow the pool.
				e.launch(guaranteedPod("after", 4))
				e.remove(late, "app")
				e.expectShared("web.app")
			})
		})
	}
}

// TestDoubleClaim: two running containers report the same exclusive CPUs
// (one injected behind the plugin's back while it was down). After
// Synchronize the older keeps them and the younger is re-allocated.
func TestDoubleClaim(t *testing.T) {
	bothModes(t, func(t *testing.T, m mode) {
		e := newEnv(t, m, setup{})
		e.launch(burstablePod("web"))
		db := e.launch(guaranteedPod("db", 4))
		held := e.ctr("db.app")

		e.killPlugin()
		twin := guaranteedPod("twin", 4)
		e.chk.AddPod(twin)
		e.chk.UncheckedUntilSync(twin.Container("app").ID)
		if err := e.rt.InjectContainer(twin, twin.Container("app"), held.Cpus, held.Mems); err != nil {
			e.fatalf("InjectContainer: %v", err)
		}
		e.startPlugin()
		e.expect("db.app", held.Cpus, held.Mems)
		if c := e.ctr("twin.app"); mask(t, c.Cpus).Count() != 4 || mask(t, c.Cpus).Intersects(mask(t, held.Cpus)) {
			e.fatalf("twin.app after Synchronize: cpus %q, want 4 CPUs apart from db's %s", c.Cpus, held.Cpus)
		}
		e.remove(db, "app")
		e.expectShared("web.app")
	})
}

// TestRuntimeRestart: the runtime goes away and comes back; the external
// plugin reconnects by itself, re-synchronizes with the surviving
// containers, and serves new ones.
func TestRuntimeRestart(t *testing.T) {
	bothModes(t, func(t *testing.T, m mode) {
		e := newEnv(t, m, setup{machine: synth.FourNode()})
		e.launch(burstablePod("web"))
		db := e.launch(guaranteedPod("db", 8))
		before := e.rt.Snapshot()

		for i := range 2 {
			if err := e.rt.Restart(); err != nil {
				e.fatalf("runtime restart %d: %v", i+1, err)
			}
			e.waitSync("reconnect after runtime restart " + strconv.Itoa(i+1))
			for _, was := range before.Live() {
				e.expect(was.ID, was.Cpus, was.Mems)
			}
		}
		c := e.launch(guaranteedPod("after", 8))
		if n := mask(t, e.ctr(c.Container("app").ID).Cpus).Count(); n != 8 {
			e.fatalf("after.app: %d CPUs, want 8", n)
		}
		e.remove(db, "app")
		e.expectShared("web.app")
	})
}

// TestUpdateContainer: a CRI update that asks for other CPUs (as a kubelet
// CPU manager would) gets the plugin's cpuset back.
func TestUpdateContainer(t *testing.T) {
	bothModes(t, func(t *testing.T, m mode) {
		e := newEnv(t, m, setup{})
		web := e.launch(burstablePod("web"))
		db := e.launch(guaranteedPod("db", 4))
		for _, c := range []*mockruntime.Container{db.Container("app"), web.Container("app")} {
			was := e.ctr(c.ID)
			res := &api.LinuxResources{Cpu: &api.LinuxCPU{Cpus: "0-15", Mems: "0-1"}}
			if err := e.rt.UpdateContainer(c, res); err != nil {
				e.fatalf("UpdateContainer %s: %v", c.ID, err)
			}
			e.verify()
			e.expect(c.ID, was.Cpus, was.Mems)
		}
	})
}

// TestSystemdCgroups: under the kubelet's systemd cgroup driver the pod
// cgroup parents read kubepods-pod<uid>.slice,
// kubepods-burstable-pod<uid>.slice and kubepods-besteffort-pod<uid>.slice.
// The plugin reads the QoS class from them as from the cgroupfs form, and
// recognises a Kubernetes Guaranteed container beyond 256 CPUs, whose
// cpu.shares the kubelet caps (the request shows only in the quota).
func TestSystemdCgroups(t *testing.T) {
	bothModes(t, func(t *testing.T, m mode) {
		e := newEnv(t, m, setup{machine: synth.EightNode512(), logLevel: "info",
			rtOpts: []mockruntime.Option{mockruntime.WithSystemdCgroups()}})
		if !e.rt.Node().SystemdCgroups {
			e.fatalf("WithSystemdCgroups did not select the systemd cgroup driver")
		}
		web := e.launch(burstablePod("web"))
		be := e.launch(bestEffortPod("be"))
		big := guaranteedPod("big", 300)
		for _, p := range []*mockruntime.Pod{web, be, big} {
			parent := p.Sandbox(e.rt.Node()).GetLinux().GetCgroupParent()
			if !strings.HasPrefix(parent, "kubepods-") || !strings.HasSuffix(parent, ".slice") {
				e.fatalf("%s: cgroup parent %q is not systemd's kubepods-…slice", p.Name, parent)
			}
		}
		if s := big.Container("app").NRI(e.rt.Node()).GetLinux().GetResources().GetCpu().GetShares().GetValue(); s != 262144 {
			e.fatalf("big.app: cpu.shares %d, want the kubelet's cap 262144", s)
		}
		e.launch(big)
		if n := mask(t, e.ctr("big.app").Cpus).Count(); n != 300 {
			e.fatalf("big.app: %d CPUs, want 300 exclusive", n)
		}
		e.expectShared("web.app")
		e.expectShared("be.app")
		e.remove(big, "app")
		e.expect("web.app", e.topo.Online.String(), "")
		e.expectShared("be.app")
	})
}

// TestMemoryModes: cpuset.mems follows the memory setting for exclusive and
// shared containers alike (the checker verifies the rule after every step).
func TestMemoryModes(t *testing.T) {
	cases := []struct {
		memory       string
		dbMems, pool string // "" for untouched
	}{
		{memory: "local", dbMems: "0", pool: "1"}, // the pool is 4-7,12-15: node 1
		{memory: "all", dbMems: "0-1", pool: "0-1"},
		{memory: "none"},
	}
	for _, tc := range cases {
		t.Run(tc.memory, func(t *testing.T) {
			bothModes(t, func(t *testing.T, m mode) {
				e := newEnv(t, m, setup{config: "[policy]\nmode = \"packed\"\nmemory = \"" + tc.memory + "\"\n"})
				e.launch(burstablePod("web"))
				e.launch(guaranteedPod("db", 8))
				for id, want := range map[string]string{"db.app": tc.dbMems, "web.app": tc.pool} {
					if c := e.ctr(id); !(c.Mems == "" && want == "" || invariants.SameCPUs(c.Mems, want)) {
						e.fatalf("%s: mems %q, want %q", id, c.Mems, want)
					}
				}
			})
		})
	}
}
