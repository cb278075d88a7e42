package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/metrics"
	"github.com/numaspread/numaspread/plugin"
	"github.com/numaspread/numaspread/test/mockruntime"
	"github.com/numaspread/numaspread/topology"
	"github.com/numaspread/numaspread/topology/synth"
)

// scenario runs the pods every test here starts from, on FourNode (node n
// holds 4n…4n+3 and their siblings +16) with CPUs 3 and 19 reserved.
type scenario struct {
	*env
	db, cache, web, logs, optout *mockruntime.Pod
}

func newScenario(t *testing.T) *scenario {
	t.Helper()
	cfg, err := config.Default().With("policy.reserved_cpus", "3,19")
	if err != nil {
		t.Fatal(err)
	}
	s := &scenario{env: newEnv(t, synth.FourNode().MustTopology(), cfg)}
	s.rt.MustWaitForSync(t, 10*time.Second)
	s.db = mockruntime.GuaranteedPod("db", mockruntime.ContainerSpec{Name: "postgres", CPURequestMilli: 8000})
	s.cache = mockruntime.GuaranteedPod("cache", mockruntime.ContainerSpec{Name: "redis", CPURequestMilli: 4000}).
		WithAnnotation("numaspread.io/policy", "packed")
	s.web = mockruntime.BurstablePod("web", mockruntime.ContainerSpec{Name: "nginx", CPURequestMilli: 500, CPULimitMilli: 2000})
	s.logs = mockruntime.BestEffortPod("logs", mockruntime.ContainerSpec{Name: "fluentbit"})
	s.optout = mockruntime.GuaranteedPod("batch", mockruntime.ContainerSpec{Name: "worker", CPURequestMilli: 2000}).
		WithAnnotation("numaspread.io/exclusive", "false")
	for _, p := range []*mockruntime.Pod{s.db, s.cache, s.web, s.logs, s.optout} {
		s.mustStartPod(t, p)
	}
	huge := mockruntime.GuaranteedPod("huge", mockruntime.ContainerSpec{Name: "big", CPURequestMilli: 64000})
	if err := s.startPod(t, huge); err == nil {
		t.Fatal("a 64-CPU container was placed on a 32-CPU machine")
	}
	bad := mockruntime.GuaranteedPod("bad", mockruntime.ContainerSpec{Name: "x", CPURequestMilli: 2000}).
		WithAnnotation("numaspread.io/policy", "scattered")
	if err := s.startPod(t, bad); err == nil {
		t.Fatal("a bad annotation was accepted")
	}
	return s
}

// runtimeView is what the runtime applied: the exclusive containers' CPUs
// (by name) and the shared pool (the cpuset of web, a shared container).
func (s *scenario) runtimeView(t *testing.T) (held topology.Mask, exclusive int, shared topology.Mask, live int) {
	t.Helper()
	for _, c := range s.rt.Containers() {
		if !c.Live() {
			continue
		}
		live++
		cpus := topology.MustParseMask(c.Cpus)
		switch c.PodName {
		case "db", "cache":
			held.UnionInPlace(cpus)
			exclusive++
		case "web":
			shared = cpus
		}
	}
	return held, exclusive, shared, live
}

func TestMetricsMatchAllocations(t *testing.T) {
	s := newScenario(t)
	reserved := topology.MustParseMask("3,19")
	check := func(t *testing.T) {
		held, exclusive, shared, live := s.runtimeView(t)
		f := s.scrape(t)
		for _, n := range s.topo.Nodes {
			node := strconv.Itoa(n.ID)
			f.want(t, float64(n.CPUs.CountAnd(held)), "numaspread_node_exclusive_cpus", "node", node)
			f.want(t, float64(n.CPUs.Difference(held).CountAnd(reserved)), "numaspread_node_reserved_cpus", "node", node)
			f.want(t, float64(n.CPUs.Difference(held).Difference(reserved).Count()), "numaspread_node_free_cpus", "node", node)
		}
		f.want(t, float64(shared.Count()), "numaspread_shared_pool_cpus")
		f.want(t, float64(s.topo.Online.Count()-held.Count()), "numaspread_shared_pool_cpus") // strict_reserved = false
		f.want(t, float64(exclusive), "numaspread_containers", "class", "exclusive")
		f.want(t, float64(live-exclusive), "numaspread_containers", "class", "shared")
		f.want(t, 1, "numaspread_synchronized")
	}

	t.Run("after creation", func(t *testing.T) {
		check(t)
		held, _, _, _ := s.runtimeView(t)
		if held.Count() != 12 {
			t.Fatalf("db and cache hold %s", held)
		}
		f := s.scrape(t)
		f.want(t, 2, "numaspread_allocations_total", "outcome", "exclusive")
		f.want(t, 3, "numaspread_allocations_total", "outcome", "shared")
		f.want(t, 0, "numaspread_allocations_total", "outcome", "fallback_shared")
		f.want(t, 1, "numaspread_allocation_failures_total", "reason", "insufficient")
		f.want(t, 1, "numaspread_allocation_failures_total", "reason", "annotation")
		f.want(t, 0, "numaspread_allocation_failures_total", "reason", "other")
		f.want(t, 7, "numaspread_nri_request_duration_seconds", "event", "CreateContainer")
		f.want(t, 2, "numaspread_nri_request_errors_total", "event", "CreateContainer")
		f.want(t, 1, "numaspread_nri_request_duration_seconds", "event", "Synchronize")
		f.want(t, 1, "numaspread_build_info", "version", metrics.Version, "goversion", runtime.Version())
		f.want(t, 1, "numaspread_config_last_reload_successful")
		f.want(t, 0, "numaspread_config_reloads_total")
	})
	t.Run("after db stops", func(t *testing.T) {
		s.removePod(t, s.db)
		check(t)
		f := s.scrape(t)
		f.want(t, 1, "numaspread_nri_request_duration_seconds", "event", "StopContainer")
		f.want(t, 0, "numaspread_node_exclusive_cpus", "node", "3")
	})
}

// TestStateMatchesRuntime compares /state with the runtime's view.
func TestStateMatchesRuntime(t *testing.T) {
	s := newScenario(t)
	s.removePod(t, s.logs)
	st := s.state(t)
	if !st.Synced || !st.Ready || st.NotReady != "" || st.Version != metrics.Version {
		t.Errorf("state header: %+v", st)
	}
	if st.Managed != "0-31" || st.Reserved != "3,19" {
		t.Errorf("managed %q reserved %q", st.Managed, st.Reserved)
	}
	byID := map[string]metrics.Container{}
	for _, c := range st.Containers {
		byID[c.ID] = c
	}
	live := 0
	for _, rc := range s.rt.Containers() {
		if !rc.Live() {
			if _, ok := byID[rc.ID]; ok {
				t.Errorf("stopped container %s is in /state", rc.ID)
			}
			continue
		}
		live++
		c, ok := byID[rc.ID]
		if !ok {
			t.Errorf("container %s/%s is missing from /state", rc.PodName, rc.Name)
			continue
		}
		wantClass := metrics.ClassShared
		if rc.PodName == "db" || rc.PodName == "cache" {
			wantClass = metrics.ClassExclusive
		}
		if c.Namespace != rc.Namespace || c.Pod != rc.PodName || c.Name != rc.Name || c.PodID != rc.PodID || c.Class != wantClass ||
			c.CPUs != topology.MustParseMask(rc.Cpus).String() || c.Mems != topology.MustParseMask(rc.Mems).String() {
			t.Errorf("/state has %+v, the runtime %s/%s/%s cpus %s mems %s", c, rc.Namespace, rc.PodName, rc.Name, rc.Cpus, rc.Mems)
		}
		if rc.PodName == "web" && (st.Shared.CPUs != c.CPUs || st.Shared.Count != topology.MustParseMask(c.CPUs).Count()) {
			t.Errorf("shared pool %+v, web has %s", st.Shared, c.CPUs)
		}
		if rc.PodName == "cache" && c.Policy != "packed" || rc.PodName == "db" && c.Policy != "distributed" {
			t.Errorf("%s: policy %q", rc.PodName, c.Policy)
		}
	}
	if live != len(st.Containers) {
		t.Errorf("/state has %d containers, the runtime %d live", len(st.Containers), live)
	}
	// The node counts add up and agree with the metrics.
	f := s.scrape(t)
	for _, n := range st.Nodes {
		node := strconv.Itoa(n.ID)
		if total := n.Exclusive + n.Free + n.Reserved + n.Unmanaged; total != s.topo.Node(n.ID).CPUs.Count() {
			t.Errorf("node %d counts %+v add up to %d", n.ID, n, total)
		}
		f.want(t, float64(n.Exclusive), "numaspread_node_exclusive_cpus", "node", node)
		f.want(t, float64(n.Free), "numaspread_node_free_cpus", "node", node)
	}
	// The topology in /state rebuilds the machine.
	got, err := st.Machine()
	if err != nil {
		t.Fatal(err)
	}
	if a, b := fmt.Sprintf("%+v", topology.Summarize(got)), fmt.Sprintf("%+v", topology.Summarize(s.topo)); a != b {
		t.Errorf("rebuilt machine differs:\n%s\n%s", a, b)
	}
}

// TestMachineRoundTrip rebuilds every synthetic machine from its summary.
func TestMachineRoundTrip(t *testing.T) {
	for _, spec := range synth.Presets() {
		topo := spec.MustTopology()
		st := metrics.State{Topology: topology.Summarize(topo)}
		got, err := st.Machine()
		if err != nil {
			t.Errorf("%s: %v", spec.Name, err)
			continue
		}
		if a, b := fmt.Sprintf("%+v", topology.Summarize(got)), fmt.Sprintf("%+v", st.Topology); a != b {
			t.Errorf("%s: rebuilt machine differs", spec.Name)
		}
		if got.MaxCPU != topo.MaxCPU || got.ThreadsPerCore != topo.ThreadsPerCore || len(got.Caches) != len(topo.Caches) {
			t.Errorf("%s: MaxCPU %d/%d threads %d/%d caches %d/%d", spec.Name, got.MaxCPU, topo.MaxCPU,
				got.ThreadsPerCore, topo.ThreadsPerCore, len(got.Caches), len(topo.Caches))
		}
	}
	if _, err := (&metrics.State{}).Machine(); err == nil {
		t.Error("an empty state rebuilt a machine")
	}
}

func TestHealthAndReadiness(t *testing.T) {
	e := newEnv(t, synth.SmallTwoNode().MustTopology(), config.Default())
	if code, body := e.get(t, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	e.rt.MustWaitForSync(t, 10*time.Second)
	if code, body := e.get(t, "/readyz"); code != http.StatusOK || body != "ready\n" {
		t.Errorf("/readyz when synced: %d %q", code, body)
	}

	// A failed reload makes the plugin unready until one succeeds.
	e.m.RecordReload(time.Now(), nil, errors.New(`/etc/numaspread/config.toml:7: policy.spread: "most" is not one of all, minimal`))
	code, body := e.get(t, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "config.toml:7: policy.spread") {
		t.Errorf("/readyz after a failed reload: %d %q", code, body)
	}
	if st := e.state(t); st.Ready || st.LastReload == nil || st.LastReload.OK || !strings.Contains(st.NotReady, "reload failed") {
		t.Errorf("/state after a failed reload: ready %v %q %+v", st.Ready, st.NotReady, st.LastReload)
	}
	f := e.scrape(t)
	f.want(t, 0, "numaspread_config_last_reload_successful")
	f.want(t, 1, "numaspread_config_reload_errors_total")
	e.m.RecordReload(time.Now(), []string{"policy.spread: all → minimal"}, nil)
	if code, _ := e.get(t, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after a good reload: %d", code)
	}
	f = e.scrape(t)
	f.want(t, 1, "numaspread_config_last_reload_successful")
	f.want(t, 1, "numaspread_config_reloads_total")
	if ts, _ := f.value("numaspread_config_last_reload_timestamp_seconds"); time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("last reload timestamp %v", ts)
	}

	// The runtime goes away: not ready until the plugin is back and synchronized.
	e.rt.Stop()
	eventually(t, "/readyz to fail without a runtime", func() bool {
		code, body := e.get(t, "/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "not registered")
	})
	if err := e.rt.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "/readyz after the runtime is back", func() bool {
		code, _ := e.get(t, "/readyz")
		return code == http.StatusOK
	})

	// Only GET.
	resp, err := http.Post(e.srv.URL+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %d", resp.StatusCode)
	}
}

func TestNotReadyBeforeSync(t *testing.T) {
	p, err := plugin.New(synth.SmallTwoNode().MustTopology(), config.Default(), nil)
	if err != nil {
		t.Fatal(err)
	}
	src := &countingSource{Plugin: p}
	m := metrics.New(src)
	if ok, why := m.Ready(); ok || !strings.Contains(why, "not registered") {
		t.Errorf("Ready() = %v %q before any runtime", ok, why)
	}
	// A /readyz probe reads the sync flag, not the whole allocation state.
	if src.snapshots != 0 {
		t.Errorf("Ready() took %d snapshots, want none", src.snapshots)
	}
	if st := m.State(); st.Synced || st.Ready || len(st.Containers) != 0 || st.Shared.Count != 16 {
		t.Errorf("state before sync: %+v", st)
	}
}

// countingSource counts the snapshots taken of its plugin.
type countingSource struct {
	*plugin.Plugin
	snapshots int
}

func (s *countingSource) Snapshot() plugin.Snapshot {
	s.snapshots++
	return s.Plugin.Snapshot()
}

// TestObserverBoundsLabels feeds unknown names: they must not become labels.
func TestObserverBoundsLabels(t *testing.T) {
	p, err := plugin.New(synth.SmallTwoNode().MustTopology(), config.Default(), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(p)
	m.Request("SomeFutureEvent", 3*time.Microsecond, errors.New("x"))
	m.Request("CreateContainer", 40*time.Microsecond, nil)
	m.Decision("some_future_outcome")
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for _, f := range fams {
		fmt.Fprintln(&text, f.String())
	}
	for _, bad := range []string{"SomeFutureEvent", "some_future_outcome"} {
		if strings.Contains(text.String(), bad) {
			t.Errorf("label value %q leaked into the metrics", bad)
		}
	}
	other := -1.0
	for _, f := range fams {
		if f.GetName() == "numaspread_nri_request_errors_total" {
			for _, mm := range f.GetMetric() {
				if mm.GetLabel()[0].GetValue() == "other" {
					other = mm.GetCounter().GetValue()
				}
			}
		}
	}
	if other != 1 {
		t.Errorf(`numaspread_nri_request_errors_total{event="other"} = %v, want 1`, other)
	}
	problems, err := promlint.NewWithMetricFamilies(fams).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range problems {
		if strings.HasPrefix(pr.Metric, "numaspread_") {
			t.Errorf("promlint: %s: %s", pr.Metric, pr.Text)
		}
	}
}

func TestServerShutsDownWithContext(t *testing.T) {
	p, err := plugin.New(synth.SmallTwoNode().MustTopology(), config.Default(), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(p)
	srv, err := metrics.Listen("127.0.0.1:0", m.Handler())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	resp, err := http.Get("http://" + srv.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %d", resp.StatusCode)
	}
	if _, err := metrics.Listen(srv.Addr().String(), m.Handler()); err == nil || !strings.Contains(err.Error(), "metrics.address") {
		t.Errorf("a busy address: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := http.Get("http://" + srv.Addr().String() + "/healthz"); err == nil {
		t.Error("still serving after shutdown")
	}
}

// A node whose summary says it has no memory stays without memory when the
// machine is rebuilt (status draws mems from it).
func TestMachineKeepsNodesWithoutMemory(t *testing.T) {
	st := metrics.State{Topology: topology.Summarize(synth.SmallTwoNode().MustTopology())}
	st.Topology.Nodes[1].MemoryBytes, st.Topology.Nodes[1].NoMemory = 0, true
	got, err := st.Machine()
	if err != nil {
		t.Fatal(err)
	}
	if !got.Node(0).HasMemory() || got.Node(1).HasMemory() {
		t.Errorf("rebuilt nodes: 0 has memory %v, 1 has memory %v; want true, false", got.Node(0).HasMemory(), got.Node(1).HasMemory())
	}
	if got.MemoryNodes().String() != "0" {
		t.Errorf("memory nodes %s, want 0", got.MemoryNodes())
	}
}
