package suite

import (
	"strings"
	"testing"

	"github.com/containerd/nri/pkg/api"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/test/mockruntime"
	"github.com/numaspread/numaspread/topology/synth"
)

// TestChecker proves that the invariant checker the scenarios rely on
// catches each kind of violation, and accepts the plugin-outage window only
// while it is open.
func TestChecker(t *testing.T) {
	topo := synth.SmallTwoNode().MustTopology() // node 0: 0-3,8-11; node 1: 4-7,12-15
	cfg, err := config.Parse("checker.toml", []byte("[policy]\nreserved_cpus = \"0\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	guaranteed := func(id, cpus, mems string, n int) mockruntime.ContainerInfo {
		return mockruntime.ContainerInfo{ID: id, PodID: id, Name: "app", QoS: mockruntime.Guaranteed,
			Spec:  mockruntime.ContainerSpec{Name: "app", CPURequestMilli: int64(n) * 1000, CPULimitMilli: int64(n) * 1000},
			State: api.ContainerState_CONTAINER_RUNNING, Cpus: cpus, Mems: mems}
	}
	burstable := func(id, cpus, mems string) mockruntime.ContainerInfo {
		return mockruntime.ContainerInfo{ID: id, PodID: id, Name: "app", QoS: mockruntime.Burstable,
			Spec:  mockruntime.ContainerSpec{Name: "app", CPURequestMilli: 500, CPULimitMilli: 1000},
			State: api.ContainerState_CONTAINER_RUNNING, Cpus: cpus, Mems: mems}
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
			chk, err := newChecker(topo, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if tc.optOut != "" {
				chk.addPod(&mockruntime.Pod{ID: tc.optOut, Annotations: map[string]string{"numaspread.io/exclusive": "false"}})
			}
			if tc.down {
				chk.pluginDown()
			}
			s := mockruntime.Snapshot{Step: mockruntime.Step{Seq: 1, Op: "CreateContainer"}, Containers: tc.ctrs}
			err = chk.check(s)
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
		chk, err := newChecker(topo, cfg)
		if err != nil {
			t.Fatal(err)
		}
		chk.pluginDown()
		late := []mockruntime.ContainerInfo{guaranteed("late", "", "", 2)}
		if err := chk.check(mockruntime.Snapshot{Step: mockruntime.Step{Op: "CreateContainer"}, Containers: late}); err != nil {
			t.Fatalf("during the outage: %v", err)
		}
		if err := chk.check(mockruntime.Snapshot{Step: mockruntime.Step{Op: "Synchronize"}, Containers: late}); err == nil {
			t.Fatal("a container still without cpuset after Synchronize was accepted")
		}
	})
}
