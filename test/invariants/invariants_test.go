package invariants

import (
	"errors"
	"strings"
	"testing"

	"github.com/containerd/nri/pkg/api"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/test/mockruntime"
	"github.com/numaspread/numaspread/topology"
	"github.com/numaspread/numaspread/topology/synth"
)

// guaranteed is a running container of a Guaranteed pod (its own id) with n CPUs.
func guaranteed(id, cpus, mems string, n int) mockruntime.ContainerInfo {
	return mockruntime.ContainerInfo{ID: id, PodID: id, Name: "app", QoS: mockruntime.Guaranteed,
		Spec:  mockruntime.ContainerSpec{Name: "app", CPURequestMilli: int64(n) * 1000, CPULimitMilli: int64(n) * 1000},
		State: api.ContainerState_CONTAINER_RUNNING, Cpus: cpus, Mems: mems}
}

// burstable is a running container of a Burstable pod (its own id).
func burstable(id, cpus, mems string) mockruntime.ContainerInfo {
	return mockruntime.ContainerInfo{ID: id, PodID: id, Name: "app", QoS: mockruntime.Burstable,
		Spec:  mockruntime.ContainerSpec{Name: "app", CPURequestMilli: 500, CPULimitMilli: 1000},
		State: api.ContainerState_CONTAINER_RUNNING, Cpus: cpus, Mems: mems}
}

func TestSameCPUs(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"0-3", "3,2,1,0", true},
		{"0-3,8", "0-3,8-8", true},
		{"", "", true},
		{"0-3", "0-2", false},
		{"0", "", false},
		{"x", "x", false}, // not a cpulist
	} {
		if got := SameCPUs(c.a, c.b); got != c.want {
			t.Errorf("SameCPUs(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

// TestChecker proves that the invariant checker the scenarios rely on
// catches each kind of violation, and accepts the plugin-outage window only
// while it is open.
func TestChecker(t *testing.T) {
	topo := synth.SmallTwoNode().MustTopology() // node 0: 0-3,8-11; node 1: 4-7,12-15
	cfg, err := config.Parse("checker.toml", []byte("[policy]\nreserved_cpus = \"0\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	const restPool = "0-1,4-15" // every CPU but db's 2-3
	cases := []struct {
		name   string
		ctrs   []mockruntime.ContainerInfo
		down   bool   // the plugin-outage window is open
		optOut string // pod id with numaspread.io/exclusive: "false"
		want   string // "" for no violation, else a part of the message
	}{
		{name: "consistent", ctrs: []mockruntime.ContainerInfo{
			guaranteed("db", "2-3", "0", 2), burstable("web", restPool, "0-1")}},
		{name: "stopped-containers-ignored", ctrs: []mockruntime.ContainerInfo{
			guaranteed("db", "2-3", "0", 2), burstable("web", restPool, "0-1"),
			func() mockruntime.ContainerInfo {
				c := guaranteed("old", "2-3", "0", 2)
				c.State = api.ContainerState_CONTAINER_STOPPED
				return c
			}()}},
		{name: "held-twice", want: "held exclusively by both", ctrs: []mockruntime.ContainerInfo{
			guaranteed("db", "2-3", "0", 2), guaranteed("db2", "3-4", "0-1", 2)}},
		{name: "wrong-count", want: "holds 3 CPUs", ctrs: []mockruntime.ContainerInfo{
			guaranteed("db", "2-4", "0-1", 2)}},
		{name: "reserved-exclusive", want: "reserved CPUs 0", ctrs: []mockruntime.ContainerInfo{
			guaranteed("db", "0-1", "0", 2)}},
		{name: "stale-shared", want: "web: shared container has cpus 0-15", ctrs: []mockruntime.ContainerInfo{
			guaranteed("db", "2-3", "0", 2), burstable("web", "0-15", "0-1")}},
		{name: "wrong-mems", want: `cpuset.mems "0-1", want "0"`, ctrs: []mockruntime.ContainerInfo{
			guaranteed("db", "2-3", "0-1", 2)}},
		{name: "empty-pool", want: "the shared pool is empty", ctrs: []mockruntime.ContainerInfo{
			guaranteed("a", "1-7", "0-1", 7), guaranteed("b", "8-15", "0-1", 8), guaranteed("c", "0", "0", 1)}},
		{name: "no-cpuset", want: "no cpuset.cpus", ctrs: []mockruntime.ContainerInfo{
			guaranteed("db", "2-3", "0", 2), guaranteed("late", "", "", 2)}},
		{name: "no-cpuset-during-outage", down: true, ctrs: []mockruntime.ContainerInfo{
			guaranteed("db", "2-3", "0", 2), guaranteed("late", "", "", 2), burstable("web", "", "")}},
		{name: "outage-does-not-excuse-the-rest", down: true, want: "holds 3 CPUs", ctrs: []mockruntime.ContainerInfo{
			guaranteed("db", "2-4", "0-1", 2), guaranteed("late", "", "", 2)}},
		{name: "opted-out-is-shared", optOut: "g", ctrs: []mockruntime.ContainerInfo{
			guaranteed("db", "2-3", "0", 2), guaranteed("g", restPool, "0-1", 2)}},
		{name: "opted-out-but-pinned", optOut: "g", want: "g: shared container", ctrs: []mockruntime.ContainerInfo{
			guaranteed("db", "2-3", "0", 2), guaranteed("g", "4-5", "1", 2)}},
		{name: "unmanaged-cpu", want: "does not manage", ctrs: []mockruntime.ContainerInfo{
			guaranteed("db", "2,99", "0", 2)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			chk, err := New(topo, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if tc.optOut != "" {
				chk.AddPod(&mockruntime.Pod{ID: tc.optOut, Annotations: map[string]string{"numaspread.io/exclusive": "false"}})
			}
			if tc.down {
				chk.PluginDown()
			}
			s := mockruntime.Snapshot{Step: mockruntime.Step{Seq: 1, Op: "CreateContainer"}, Containers: tc.ctrs}
			err = chk.Check(s)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected violation: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("no violation, want one mentioning %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("violation %v\ndoes not mention %q", err, tc.want)
			}
		})
	}

	t.Run("outage-ends-at-synchronize", func(t *testing.T) {
		chk, err := New(topo, cfg)
		if err != nil {
			t.Fatal(err)
		}
		chk.PluginDown()
		late := []mockruntime.ContainerInfo{guaranteed("late", "", "", 2)}
		if err := chk.Check(mockruntime.Snapshot{Step: mockruntime.Step{Op: "CreateContainer"}, Containers: late}); err != nil {
			t.Fatalf("during the outage: %v", err)
		}
		if err := chk.Check(mockruntime.Snapshot{Step: mockruntime.Step{Op: "Synchronize"}, Containers: late}); err == nil {
			t.Fatal("a container still without cpuset after Synchronize was accepted")
		}
		if n := chk.Syncs(); n != 1 {
			t.Errorf("Syncs = %d after one successful Synchronize step", n)
		}
		_ = chk.Check(mockruntime.Snapshot{Step: mockruntime.Step{Op: "Synchronize", Err: errors.New("refused")}, Containers: late})
		if n := chk.Syncs(); n != 1 {
			t.Errorf("Syncs = %d: a failed Synchronize counted", n)
		}
	})
}

// TestCheckerWindows: what each window tolerates, and what it never does.
func TestCheckerWindows(t *testing.T) {
	topo := synth.SmallTwoNode().MustTopology()
	snap := func(op string, ctrs ...mockruntime.ContainerInfo) mockruntime.Snapshot {
		return mockruntime.Snapshot{Step: mockruntime.Step{Op: op}, Containers: ctrs}
	}
	newChk := func(t *testing.T, toml string) *Checker {
		cfg, err := config.Parse("c.toml", []byte(toml))
		if err != nil {
			t.Fatal(err)
		}
		chk, err := New(topo, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return chk
	}
	expect := func(t *testing.T, err error, want string) {
		t.Helper()
		switch {
		case want == "" && err != nil:
			t.Fatalf("unexpected violation: %v", err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Fatalf("violation %v, want one mentioning %q", err, want)
		}
	}

	t.Run("settling-tolerates-lag-not-overlap", func(t *testing.T) {
		chk := newChk(t, "")
		expect(t, chk.Check(snap("StopContainer", guaranteed("db", "2-3", "0", 2), burstable("web", "0-1,4-15", "0-1"))), "")
		chk.Settling()
		// db removed without a reply: web lags the grown pool.
		expect(t, chk.Check(snap("RemoveContainer", burstable("web", "0-1,4-15", "0-1"))), "")
		// A new exclusive container on web's CPUs is never tolerated.
		expect(t, chk.Check(snap("CreateContainer", burstable("web", "0-1,4-15", "0-1"), guaranteed("x", "4-5", "1", 2))), "S2: web")
		if chk.TrySettle(snap("Snapshot", burstable("web", "0-1,4-15", "0-1"))) {
			t.Fatal("settled while web still lags")
		}
		if !chk.TrySettle(snap("Snapshot", burstable("web", "0-15", "0-1"))) {
			t.Fatal("did not settle once web has the pool")
		}
		expect(t, chk.Check(snap("UpdateContainer", burstable("web", "0-1,4-15", "0-1"))), "C3: web")
	})

	t.Run("racy-settling-tolerates-only-newer-exclusive-cpus", func(t *testing.T) {
		chk := newChk(t, "")
		expect(t, chk.Check(snap("CreateContainer", guaranteed("db", "2-3", "0", 2), burstable("web", "0-1,4-15", "0-1"))), "")
		chk.SettlingRacy()
		// A late unsolicited update gives web CPUs "new" just got: tolerated.
		expect(t, chk.Check(snap("UpdateContainers", guaranteed("db", "2-3", "0", 2), guaranteed("new", "4-5", "1", 2), burstable("web", "0-1,4-15", "0-1"))), "")
		// db's CPUs were exclusive before the window: never tolerated.
		expect(t, chk.Check(snap("UpdateContainers", guaranteed("db", "2-3", "0", 2), burstable("web", "0-15", "0-1"))), "S2: web")
		// A Synchronize closes the window.
		expect(t, chk.Check(snap("Synchronize", guaranteed("db", "2-3", "0", 2), burstable("web", "0-1,4-15", "0-1"))), "")
		if chk.IsSettling() {
			t.Fatal("still settling after a Synchronize")
		}
	})

	t.Run("reconfigure-grandfathers-until-synchronize", func(t *testing.T) {
		chk := newChk(t, "")
		expect(t, chk.Check(snap("CreateContainer", guaranteed("db", "2-3", "0", 2), burstable("web", "0-1,4-15", "0-1"))), "")
		cfg, _ := config.Parse("c.toml", []byte("[policy]\nreserved_cpus = \"3\"\n"))
		if err := chk.Reconfigure(cfg); err != nil {
			t.Fatal(err)
		}
		expect(t, chk.Check(snap("CreateContainer", guaranteed("db", "2-3", "0", 2), burstable("web", "0-1,4-15", "0-1"))), "")
		expect(t, chk.Check(snap("Synchronize", guaranteed("db", "2-3", "0", 2), burstable("web", "0-1,4-15", "0-1"))), "S3: db: exclusive cpus 2-3 include reserved CPUs 3")
	})

	t.Run("grandfathered-exited-container-keeps-the-exemption", func(t *testing.T) {
		chk := newChk(t, "")
		expect(t, chk.Check(snap("CreateContainer", guaranteed("db", "2-13", "0-1", 12), burstable("web", "0-1,14-15", "0-1"))), "")
		cfg, _ := config.Parse("c.toml", []byte("[policy]\nmin_shared_cpus = 6\n"))
		if err := chk.Reconfigure(cfg); err != nil {
			t.Fatal(err)
		}
		gone := guaranteed("db", "2-13", "0-1", 12)
		gone.State = api.ContainerState_CONTAINER_STOPPED
		chk.Exited("db")
		// The plugin still holds db's CPUs: the pool of 4 stays below 6.
		expect(t, chk.Check(snap("ExitContainer", gone, burstable("web", "0-1,14-15", "0-1"))), "")
	})

	t.Run("window-recognises-a-fallback-by-a-shared-cpuset", func(t *testing.T) {
		chk := newChk(t, "")
		chk.InferFallbacks()
		chk.PluginDown()
		// A dying plugin placed fb in the pool (count happens to match).
		expect(t, chk.Check(snap("CreateContainer", guaranteed("db", "0-13", "0-1", 14), guaranteed("fb", "14-15", "1", 2), burstable("web", "14-15", "1"))), "")
	})

	t.Run("exited-containers-hold-their-cpus", func(t *testing.T) {
		chk := newChk(t, "")
		gone := guaranteed("db", "2-3", "0", 2)
		gone.State = api.ContainerState_CONTAINER_STOPPED
		chk.Exited("db")
		expect(t, chk.Check(snap("ExitContainer", gone, burstable("web", "0-1,4-15", "0-1"))), "")
		expect(t, chk.Check(snap("Synchronize", gone, burstable("web", "0-1,4-15", "0-1"))), "C3: web")
	})

	t.Run("set-machine-only-in-an-outage", func(t *testing.T) {
		chk := newChk(t, "")
		offline := synth.SmallTwoNode()
		offline.Offline = "3"
		if err := chk.SetMachine(offline.MustTopology()); err == nil {
			t.Fatal("SetMachine outside an outage was accepted")
		}
		chk.PluginDown()
		if err := chk.SetMachine(offline.MustTopology()); err != nil {
			t.Fatal(err)
		}
		// During the outage a cpuset may still name the offline CPU.
		expect(t, chk.Check(snap("CreateContainer", guaranteed("db", "2-3", "0", 2), burstable("web", "0-1,4-15", "0-1"))), "")
		expect(t, chk.Check(snap("Synchronize", guaranteed("db", "2-3", "0", 2), burstable("web", "0-1,4-15", "0-1"))), "C1: db: cpus 2-3 include CPUs numaspread does not manage (3)")
	})

	t.Run("infer-fallbacks", func(t *testing.T) {
		chk := newChk(t, "")
		chk.InferFallbacks()
		// fb runs in the pool (the cpuset web has).
		v := chk.Judge(snap("CreateContainer", guaranteed("db", "0-13", "0-1", 14), guaranteed("fb", "14-15", "1", 3), burstable("web", "14-15", "1")))
		if len(v.Problems) > 0 || len(v.Fallbacks) != 1 || v.Fallbacks[0] != "fb" || !v.Pool.Equals(topology.MustParseMask("14-15")) {
			t.Fatalf("verdict %+v", v)
		}
		// Without shared containers, a wrong count tells a fallback apart.
		v = chk.Judge(snap("CreateContainer", guaranteed("db", "0-13", "0-1", 14), guaranteed("fb", "14-15", "1", 3)))
		if len(v.Problems) > 0 || len(v.Fallbacks) != 1 {
			t.Fatalf("verdict %+v", v)
		}
		// An exclusive container given the pool's cpuset is caught.
		v = chk.Judge(snap("CreateContainer", guaranteed("db", "0-13", "0-1", 14), guaranteed("x", "14-15", "1", 2), burstable("web", "14-15", "1")))
		if len(v.Fallbacks) != 1 || v.Fallbacks[0] != "x" {
			t.Fatalf("x (same cpuset as web) should be read as a fallback: %+v", v)
		}
	})
}
