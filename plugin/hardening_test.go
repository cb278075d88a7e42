package plugin

import (
	"context"
	"strings"
	"testing"

	"github.com/containerd/nri/pkg/api"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/topology"
)

// Regression tests for what the churn test (test/churn) found; each names
// the problem it pins down.

func mustWith(t *testing.T, cfg config.Config, kv ...string) config.Config {
	t.Helper()
	for i := 0; i < len(kv); i += 2 {
		var err error
		if cfg, err = cfg.With(kv[i], kv[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	return cfg
}

// RemoveContainer without StopContainer used to send the pool's growth as
// unsolicited updates; the runtime could apply them after the reply to the
// next request and undo it (shared containers got CPUs just made
// exclusive). Now the growth waits for the next reply, which carries it.
func TestRemoveWithoutStopDefersThePoolToTheNextReply(t *testing.T) {
	p := newTestPlugin(t, config.Default())
	ctx := context.Background()
	web, db := shared("web", ""), guaranteed("db", 4, "", 1)
	for _, c := range []*api.Container{web, db} {
		if _, _, err := p.CreateContainer(ctx, pods(c)[0], c); err != nil {
			t.Fatal(err)
		}
	}
	small := p.Snapshot().Shared
	if err := p.RemoveContainer(ctx, pods(db)[0], db); err != nil {
		t.Fatal(err)
	}
	s := p.Snapshot()
	if s.Shared.Count() != 16 {
		t.Fatalf("pool after the removal: %s, want every CPU", s.Shared)
	}
	for _, c := range s.Containers {
		if c.ID == "web" && c.CPUs != small.String() {
			t.Fatalf("web's record moved to %s before any reply carried it", c.CPUs)
		}
	}
	// The next reply (here a creation that takes 2 CPUs) carries web's new
	// cpuset, computed after that creation.
	next := guaranteed("next", 2, "", 2)
	_, updates, err := p.CreateContainer(ctx, pods(next)[0], next)
	if err != nil {
		t.Fatal(err)
	}
	pool := p.Snapshot().Shared
	if got := updatesByID(updates)["web"]; !strings.HasPrefix(got, pool.String()+"/") || pool.Count() != 14 {
		t.Fatalf("web's update %q, want the pool %s (14 CPUs)", got, pool)
	}
}

// An UpdateContainer reply also carries held-back pool changes, and
// re-asserts a shared target's cpuset as the current pool.
func TestUpdateContainerCarriesHeldBackChanges(t *testing.T) {
	p := newTestPlugin(t, config.Default())
	ctx := context.Background()
	web, be, db := shared("web", ""), shared("be", ""), guaranteed("db", 4, "", 1)
	for _, c := range []*api.Container{web, be, db} {
		if _, _, err := p.CreateContainer(ctx, pods(c)[0], c); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.RemoveContainer(ctx, pods(db)[0], db); err != nil {
		t.Fatal(err)
	}
	updates, err := p.UpdateContainer(ctx, pods(web)[0], web, &api.LinuxResources{Cpu: &api.LinuxCPU{Cpus: "3"}})
	if err != nil {
		t.Fatal(err)
	}
	got, all := updatesByID(updates), p.Snapshot().Shared.String()+"/0-1"
	if got["web"] != all || got["be"] != all || len(got) != 2 {
		t.Fatalf("updates %v, want web and be on %s", got, all)
	}
}

// A reload's unsolicited updates overtaken by a request are re-sent with
// the current cpusets; not overtaken, nothing more is sent.
func TestOvertakenUnsolicitedUpdatesAreResent(t *testing.T) {
	p := newTestPlugin(t, config.Default())
	ctx := context.Background()
	web := shared("web", "")
	if _, _, err := p.CreateContainer(ctx, pods(web)[0], web); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	sent, gen := []*api.ContainerUpdate{cpusetUpdate(p.ctrs["web"])}, p.gen
	p.mu.Unlock()
	if again, _ := p.overtaken(sent, gen); len(again) != 0 {
		t.Fatalf("re-sent %v though no request came in between", updatesByID(again))
	}
	db := guaranteed("db", 4, "", 1) // overtakes: the pool shrinks
	if _, _, err := p.CreateContainer(ctx, pods(db)[0], db); err != nil {
		t.Fatal(err)
	}
	again, newGen := p.overtaken(sent, gen)
	if want := p.Snapshot().Shared.String() + "/0-1"; newGen == gen || updatesByID(again)["web"] != want {
		t.Fatalf("re-sent %v (gen %d → %d), want web on %s", updatesByID(again), gen, newGen, want)
	}
}

// min_shared_cpus = 0 used to let an exclusive allocation take the last
// shared CPU; shared containers were then sent cpuset.cpus "" ("leave it
// as it is") and kept running on it.
func TestMinSharedZeroNeverEmptiesThePool(t *testing.T) {
	cfg := config.Default()
	cfg.Policy.MinSharedCPUs = 0
	p := newTestPlugin(t, cfg)
	ctx := context.Background()
	web, all := shared("web", ""), guaranteed("all", 16, "", 1)
	if _, _, err := p.CreateContainer(ctx, pods(web)[0], web); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.CreateContainer(ctx, pods(all)[0], all); err == nil || !strings.Contains(err.Error(), "cannot allocate 16") {
		t.Fatalf("taking every CPU: err = %v, want a rejection", err)
	}
	fifteen := guaranteed("fifteen", 15, "", 2)
	_, updates, err := p.CreateContainer(ctx, pods(fifteen)[0], fifteen)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range updates {
		if u.GetLinux().GetResources().GetCpu().GetCpus() == "" {
			t.Fatalf("update for %s with an empty cpuset", u.GetContainerId())
		}
	}
	checkPlugin(t, p, map[string]int{"fifteen": 15})
}

// Synchronize used to keep every valid claim, even when together they
// left the shared pool empty (or below min_shared_cpus): a restart with
// another configuration, or tampered cpusets, then gave shared containers
// cpuset.cpus "". Claims now stop at the floor; the rest are re-allocated
// or run in the pool.
func TestSynchronizeClaimsLeaveThePoolItsFloor(t *testing.T) {
	cfg := mustWith(t, config.Default(), "policy.min_shared_cpus", "3")
	p := newTestPlugin(t, cfg)
	ctrs := []*api.Container{
		guaranteed("a", 8, "0-3,8-11", 1),
		guaranteed("b", 6, "4-6,12-14", 2), // leaves 7,15: below 3
		shared("web", "7,15"),
	}
	if _, err := p.Synchronize(context.Background(), pods(ctrs...), ctrs); err != nil {
		t.Fatal(err)
	}
	s := p.Snapshot()
	if s.Shared.Count() < 3 {
		t.Fatalf("pool %s below min_shared_cpus = 3", s.Shared)
	}
	for _, c := range s.Containers {
		if c.ID == "a" && (!c.Exclusive || c.CPUs != "0-3,8-11") {
			t.Errorf("a (older) did not keep its CPUs: %+v", c)
		}
		if c.ID == "b" && c.Exclusive {
			t.Errorf("b kept exclusive CPUs %s though 8 + 6 leave the pool 2 CPUs", c.CPUs)
		}
	}
	checkPlugin(t, p, map[string]int{"a": 8})
}

// A Guaranteed container that ran in the shared pool (on_insufficient =
// shared) reports the pool's cpuset; when the pool happened to hold exactly
// its count, Synchronize took it for an exclusive allocation and gave it
// the whole pool, demoting younger exclusive containers. The cpuset the
// shared containers report is the pool, not a claim.
func TestSynchronizeDoesNotClaimThePool(t *testing.T) {
	cfg := mustWith(t, config.Default(), "policy.on_insufficient", "shared")
	p := newTestPlugin(t, cfg)
	ctrs := []*api.Container{
		guaranteed("fallback", 2, "7,15", 1), // older, in the pool of 2 CPUs
		guaranteed("db", 14, "0-6,8-14", 2),
		shared("web", "7,15"),
	}
	ctrs[2].CreatedAt = 3
	if _, err := p.Synchronize(context.Background(), pods(ctrs...), ctrs); err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Snapshot().Containers {
		switch c.ID {
		case "db":
			if !c.Exclusive || c.CPUs != "0-6,8-14" {
				t.Errorf("db lost its CPUs: %+v", c)
			}
		case "fallback", "web":
			if c.Exclusive || c.CPUs != "7,15" {
				t.Errorf("%s should stay in the pool 7,15: %+v", c.ID, c)
			}
		}
	}
}

// A reload that, with the running allocations kept, leaves nothing for the
// shared pool (here: strict_reserved on the last shared CPUs) used to be
// applied; new shared containers got cpuset.cpus "". It is refused now,
// and the running configuration stays.
func TestReloadThatEmptiesThePoolIsRefused(t *testing.T) {
	p := newTestPlugin(t, config.Default())
	ctx := context.Background()
	big := guaranteed("big", 14, "", 1)
	if _, _, err := p.CreateContainer(ctx, pods(big)[0], big); err != nil {
		t.Fatal(err)
	}
	pool := p.Snapshot().Shared
	cfg := mustWith(t, config.Default(), "policy.reserved_cpus", pool.String(), "policy.strict_reserved", "true")
	if _, err := p.Reload(cfg); err == nil || !strings.Contains(err.Error(), "shared pool would be empty") {
		t.Fatalf("Reload = %v, want a refusal", err)
	}
	if got := p.Config().Policy.ReservedCPUs; got != "" {
		t.Fatalf("the configuration changed to reserved %q", got)
	}
	web := shared("web", "")
	adj, _, err := p.CreateContainer(ctx, pods(web)[0], web)
	if err != nil || adj.GetLinux().GetResources().GetCpu().GetCpus() != pool.String() {
		t.Fatalf("a shared container after the refused reload: %v, %v", adj, err)
	}
}

// A running container with a bad annotation gets the defaults at
// Synchronize, but a valid numaspread.io/exclusive: "false" still holds
// (it used to be dropped with the bad annotation, giving exclusive CPUs to
// a container that opted out).
func TestSynchronizeHonoursOptOutDespiteABadAnnotation(t *testing.T) {
	p := newTestPlugin(t, config.Default())
	c := guaranteed("opt", 2, "", 1)
	pod := pods(c)[0]
	pod.Annotations = map[string]string{"numaspread.io/spread": "banana", "numaspread.io/exclusive.container.opt": "false"}
	if _, err := p.Synchronize(context.Background(), []*api.PodSandbox{pod}, []*api.Container{c}); err != nil {
		t.Fatal(err)
	}
	s := p.Snapshot()
	if len(s.Containers) != 1 || s.Containers[0].Exclusive || s.Containers[0].CPUs != s.Shared.String() {
		t.Fatalf("opted-out container: %+v, want the pool %s", s.Containers, s.Shared)
	}
	if !s.Shared.Equals(topology.MustParseMask("0-15")) {
		t.Fatalf("pool %s", s.Shared)
	}
}
