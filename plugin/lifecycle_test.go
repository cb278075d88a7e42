package plugin

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/topology"
	"github.com/numaspread/numaspread/topology/synth"
)

// A Guaranteed pod sized by pod-level resources (spec.resources) whose
// container has no CPU resources of its own runs in the shared pool, as
// with the kubelet's static policy, and the decision line says why.
func TestPodLevelResourcesGiveNoExclusiveCPUs(t *testing.T) {
	log, hook := logtest.NewNullLogger()
	p, err := New(synth.SmallTwoNode().MustTopology(), config.Default(), log)
	if err != nil {
		t.Fatal(err)
	}
	oom := -997
	c := testContainer(2, 0, 100000, &oom)
	c.Id, c.Name, c.PodSandboxId = "app", "app", "pod-app"
	pod := &api.PodSandbox{Id: "pod-app", Name: "app", Namespace: "ns", Linux: &api.LinuxPodSandbox{
		CgroupParent: "/kubepods/podapp",
		PodResources: &api.LinuxResources{Cpu: &api.LinuxCPU{Shares: api.UInt64(uint64(4096)), Quota: api.Int64(int64(400000)), Period: api.UInt64(uint64(100000))}},
	}}
	pool := p.Snapshot().Shared
	adj, _, err := p.CreateContainer(context.Background(), pod, c)
	if err != nil {
		t.Fatal(err)
	}
	if got := adj.GetLinux().GetResources().GetCpu().GetCpus(); got != pool.String() {
		t.Errorf("cpus %s, want the shared pool %s", got, pool)
	}
	if s := p.Snapshot(); len(s.Containers) != 1 || s.Containers[0].Exclusive || !s.Shared.Equals(pool) {
		t.Errorf("snapshot %+v: want one shared container and the pool unchanged", s)
	}
	e := hook.LastEntry()
	if e == nil || e.Message != "container placed" || !strings.Contains(fmt.Sprint(e.Data["why"]), "pod-level resources (request 4000m, limit 4000m) give no exclusive CPUs") {
		t.Errorf("decision line %v", e)
	}
}

// checkState fails unless the policy state holds exactly the CPUs of the
// exclusive records.
func checkState(t *testing.T, p *Plugin) {
	t.Helper()
	checkPlugin(t, p, nil)
}

// A repeated CreateContainer for a running container's id that fails
// changes nothing: the running container keeps its record and its CPUs.
func TestFailedRepeatCreateChangesNothing(t *testing.T) {
	tests := []struct {
		name    string
		cfg     []string
		repeat  func(db *api.Container) (*api.PodSandbox, *api.Container)
		wantErr string
	}{
		{"bad annotation", nil, func(db *api.Container) (*api.PodSandbox, *api.Container) {
			pod := pods(db)[0]
			pod.Annotations = map[string]string{"numaspread.io/policy": "bogus"}
			return pod, db
		}, "numaspread.io/policy"},
		{"not enough CPUs", nil, func(db *api.Container) (*api.PodSandbox, *api.Container) {
			big := guaranteed("db", 16, "", 1)
			return pods(big)[0], big
		}, "below min_shared_cpus"},
		{"full cores required", []string{"policy.full_cores", "require"}, func(db *api.Container) (*api.PodSandbox, *api.Container) {
			odd := guaranteed("db", 3, "", 1)
			return pods(odd)[0], odd
		}, "container ns/db/db"},
		{"panic", nil, func(db *api.Container) (*api.PodSandbox, *api.Container) {
			return pods(db)[0], db
		}, "internal error"},
		// The observer is told of the request after the decision: a panic
		// there must not leave the new decision recorded either.
		{"panic after the decision", nil, func(db *api.Container) (*api.PodSandbox, *api.Container) {
			return pods(db)[0], db
		}, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPlugin(t, mustWith(t, config.Default(), tt.cfg...))
			ctx := context.Background()
			db, web := guaranteed("db", 4, "", 1), shared("web", "")
			for _, c := range []*api.Container{web, db} {
				if _, _, err := p.CreateContainer(ctx, pods(c)[0], c); err != nil {
					t.Fatal(err)
				}
			}
			before := p.Snapshot()
			switch tt.name {
			case "panic":
				p.SetObserver(panickingObserver{})
			case "panic after the decision":
				p.SetObserver(requestPanicObserver{})
			}
			pod, ctr := tt.repeat(db)
			if _, _, err := p.CreateContainer(ctx, pod, ctr); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("repeated create: err = %v, want one containing %q", err, tt.wantErr)
			}
			p.SetObserver(nil)
			after := p.Snapshot()
			if !slices.Equal(after.Containers, before.Containers) || !after.Shared.Equals(before.Shared) {
				t.Errorf("a failed repeated create changed the state:\nbefore %+v\nafter  %+v", before, after)
			}
			checkState(t, p)
			// The running container's CPUs are still its own: stopping it
			// gives them back.
			if _, err := p.StopContainer(ctx, pods(db)[0], db); err != nil {
				t.Fatal(err)
			}
			if got := p.Snapshot().Shared; got.Count() != 16 {
				t.Errorf("pool %s after the stop, want all 16 CPUs", got)
			}
		})
	}
}

// A repeated create that succeeds replaces the old record and its CPUs.
func TestRepeatCreateReplaces(t *testing.T) {
	p := newTestPlugin(t, config.Default())
	ctx := context.Background()
	db := guaranteed("db", 4, "", 1)
	if _, _, err := p.CreateContainer(ctx, pods(db)[0], db); err != nil {
		t.Fatal(err)
	}
	db2 := guaranteed("db", 2, "", 1)
	adj, _, err := p.CreateContainer(ctx, pods(db2)[0], db2)
	if err != nil {
		t.Fatal(err)
	}
	s := p.Snapshot()
	if len(s.Containers) != 1 || !s.Containers[0].Exclusive || s.Containers[0].CPUs != adj.GetLinux().GetResources().GetCpu().GetCpus() || s.Shared.Count() != 14 {
		t.Errorf("after a repeated create of 2 CPUs: %+v", s)
	}
	checkState(t, p)
}

// An id listed twice in Synchronize keeps its first listing; the others are
// ignored with a warning that names the id, and the policy state matches the
// records (it used to keep the first's CPUs for a record of the second).
func TestSynchronizeDuplicateIDKeepsTheFirst(t *testing.T) {
	tests := []struct {
		name          string
		first, second *api.Container
		wantExclusive bool
		wantCPUs      string // "" : the shared pool
	}{
		{"two exclusive listings", guaranteed("db", 2, "0-1", 1), guaranteed("db", 2, "2-3", 2), true, "0-1"},
		{"younger listed first", guaranteed("db", 2, "2-3", 2), guaranteed("db", 2, "0-1", 1), true, "2-3"},
		{"shared, then exclusive", shared("db", "0-15"), guaranteed("db", 2, "0-1", 1), false, ""},
		{"exclusive, then shared", guaranteed("db", 2, "4-5", 1), shared("db", "0-15"), true, "4-5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, hook := logtest.NewNullLogger()
			p, err := New(synth.SmallTwoNode().MustTopology(), config.Default(), log)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Synchronize(context.Background(), pods(tt.first), []*api.Container{tt.first, tt.second}); err != nil {
				t.Fatal(err)
			}
			s := p.Snapshot()
			if len(s.Containers) != 1 {
				t.Fatalf("containers %+v, want one", s.Containers)
			}
			want := tt.wantCPUs
			if want == "" {
				want = s.Shared.String()
			}
			if c := s.Containers[0]; c.Exclusive != tt.wantExclusive || c.CPUs != want {
				t.Errorf("db: exclusive %v on %s, want %v on %s", c.Exclusive, c.CPUs, tt.wantExclusive, want)
			}
			checkState(t, p)
			warned := false
			for _, e := range hook.AllEntries() {
				if e.Level == logrus.WarnLevel && strings.Contains(e.Message, "listed twice") && e.Data["id"] == "db" {
					warned = true
				}
			}
			if !warned {
				t.Error("no warning naming the duplicate id")
			}
		})
	}
}

// lockProbe is a log hook that records lines written while the plugin's
// lock is held.
type lockProbe struct {
	p      *Plugin
	locked atomic.Int32
	lines  []string
}

func (h *lockProbe) Levels() []logrus.Level { return logrus.AllLevels }

func (h *lockProbe) Fire(e *logrus.Entry) error {
	if h.p.mu.TryLock() {
		h.p.mu.Unlock()
	} else {
		h.locked.Add(1)
		h.lines = append(h.lines, e.Message)
	}
	return nil
}

// The request handlers write their log lines (decisions, warnings, debug
// requests and replies) after releasing the lock: with a log file, a write
// under it would serialise every request behind the disk.
func TestRequestLogsAreWrittenOutsideTheLock(t *testing.T) {
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	cfg := mustWith(t, config.Default(), "policy.on_insufficient", "shared")
	p, err := New(synth.SmallTwoNode().MustTopology(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	probe := &lockProbe{p: p}
	log.AddHook(probe)
	ctx := context.Background()
	db, web, big := guaranteed("db", 4, "", 1), shared("web", ""), guaranteed("big", 16, "", 3)
	webPod := pods(web)[0]
	webPod.Annotations = map[string]string{"numaspread.io/unknown": "x"} // a warning
	bad := pods(db)[0]
	bad.Annotations = map[string]string{"numaspread.io/policy": "bogus"} // a rejection
	steps := []func() error{
		func() error { _, _, err := p.CreateContainer(ctx, pods(db)[0], db); return err },
		func() error { _, _, err := p.CreateContainer(ctx, webPod, web); return err },
		func() error { _, _, err := p.CreateContainer(ctx, pods(big)[0], big); return err }, // fallback to shared
		func() error { _, _, _ = p.CreateContainer(ctx, bad, db); return nil },
		func() error { _, err := p.UpdateContainer(ctx, pods(db)[0], db, nil); return err },
		func() error { _, err := p.StopContainer(ctx, pods(db)[0], db); return err },
		func() error { return p.RemoveContainer(ctx, pods(big)[0], big) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if n := probe.locked.Load(); n > 0 {
		t.Errorf("%d log lines written under the lock: %q", n, probe.lines)
	}
	var msgs []string
	for _, e := range hook.AllEntries() {
		msgs = append(msgs, e.Message)
	}
	got := strings.Join(msgs, "\n")
	for _, want := range []string{"container placed", "ignoring unknown annotations", "not enough CPUs", "container rejected",
		"UpdateContainer reply", "container stopped: exclusive CPUs released", "StopContainer reply"} {
		if !strings.Contains(got, want) {
			t.Errorf("no log line %q in:\n%s", want, got)
		}
	}
}

// requestPanicObserver panics when told of a request's outcome, which
// happens after the decision is made.
type requestPanicObserver struct{}

func (requestPanicObserver) Request(string, time.Duration, error) { panic("boom") }
func (requestPanicObserver) Decision(string)                      {}

// A new container whose create panics after the decision holds nothing.
func TestCreatePanicAfterDecisionLeavesNothing(t *testing.T) {
	p := newTestPlugin(t, config.Default())
	p.SetObserver(requestPanicObserver{})
	pool := p.Snapshot().Shared
	c := guaranteed("victim", 4, "", 1)
	if _, _, err := p.CreateContainer(context.Background(), pods(c)[0], c); err == nil || !strings.Contains(err.Error(), "internal error") {
		t.Fatalf("err = %v, want an internal error", err)
	}
	p.SetObserver(nil)
	if s := p.Snapshot(); len(s.Containers) != 0 || !s.Shared.Equals(pool) {
		t.Errorf("after a create that panicked: %+v, want nothing recorded and the pool %s", s, pool)
	}
	checkState(t, p)
}

// A stopped listing of an id does not hide a running listing of the same
// id: the running container keeps its CPUs and nobody else gets them.
func TestSynchronizeStoppedListingDoesNotHideRunning(t *testing.T) {
	p := newTestPlugin(t, config.Default())
	stale := guaranteed("db", 2, "0-1", 1)
	stale.State = api.ContainerState_CONTAINER_STOPPED
	running := guaranteed("db", 2, "0-1", 1)
	x := guaranteed("x", 2, "", 2)
	if _, err := p.Synchronize(context.Background(), pods(running, x), []*api.Container{stale, running, x}); err != nil {
		t.Fatal(err)
	}
	s := p.Snapshot()
	cpus := map[string]string{}
	for _, c := range s.Containers {
		cpus[c.ID] = c.CPUs
	}
	if len(s.Containers) != 2 || cpus["db"] != "0-1" {
		t.Fatalf("containers %+v: want db on 0-1 and x", s.Containers)
	}
	if topology.MustParseMask(cpus["x"]).Intersects(topology.MustParseMask("0-1")) {
		t.Errorf("x got %s, overlapping db's 0-1", cpus["x"])
	}
	checkState(t, p)
}
