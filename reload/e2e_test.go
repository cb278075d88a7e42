package reload_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	nrilog "github.com/containerd/nri/pkg/log"
	"github.com/sirupsen/logrus"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/plugin"
	"github.com/numaspread/numaspread/reload"
	"github.com/numaspread/numaspread/test/mockruntime"
	"github.com/numaspread/numaspread/topology"
	"github.com/numaspread/numaspread/topology/synth"
)

type quietNRI struct{}

func (quietNRI) Debugf(context.Context, string, ...any) {}
func (quietNRI) Infof(context.Context, string, ...any)  {}
func (quietNRI) Warnf(context.Context, string, ...any)  {}
func (quietNRI) Errorf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	nrilog.Set(quietNRI{})
	os.Exit(m.Run())
}

// TestReloadThroughRuntime changes reserved_cpus, strict_reserved and the
// mode in the file of a plugin that serves a mock runtime: the running
// exclusive container keeps its CPUs, shared containers get the new pool,
// new containers follow the new settings, and an invalid change is ignored.
func TestReloadThroughRuntime(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(path+".new", []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	}
	write("[policy]\nmode = \"distributed\"\n")
	cfg, err := config.Load(path, true)
	if err != nil {
		t.Fatal(err)
	}
	topo := synth.FourNode().MustTopology() // node n: CPUs 4n…4n+3 and +16
	log := logrus.New()
	log.SetOutput(io.Discard)
	p, err := plugin.New(topo, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	rt := mockruntime.NewForTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		p.Run(ctx, plugin.RunOptions{Socket: rt.SocketPath(), Name: "numaspread", Index: "90"})
	}()
	defer func() { cancel(); <-runDone }()
	rt.MustWaitForSync(t, 10*time.Second)

	results := make(chan reload.Result, 10)
	w := &reload.Watcher{Path: path, Running: cfg, Apply: p.Reload, Log: log, Debounce: 50 * time.Millisecond,
		OnResult: func(r reload.Result) { results <- r }}
	watchDone := make(chan error, 1)
	go func() { watchDone <- w.Run(ctx) }()
	defer func() { cancel(); <-watchDone }()
	next := func() reload.Result {
		t.Helper()
		select {
		case r := <-results:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("no reload result")
		}
		return reload.Result{}
	}

	start := func(pod *mockruntime.Pod) {
		t.Helper()
		if err := rt.RunPod(pod); err != nil {
			t.Fatal(err)
		}
		for _, c := range pod.Containers() {
			if _, _, err := rt.CreateContainer(pod, c); err != nil {
				t.Fatalf("%s: %v", pod.Name, err)
			}
			if err := rt.StartContainer(c); err != nil {
				t.Fatal(err)
			}
		}
	}
	cpusOf := func(pod *mockruntime.Pod) (topology.Mask, string) {
		t.Helper()
		c, ok := rt.Container(pod.Containers()[0].ID)
		if !ok {
			t.Fatalf("no container of %s", pod.Name)
		}
		return topology.MustParseMask(c.Cpus), c.Mems
	}
	waitShared := func(pod *mockruntime.Pod, want topology.Mask) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, _ := cpusOf(pod)
			if got.Equals(want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s has CPUs %s, want the shared pool %s", pod.Name, got, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	db := mockruntime.GuaranteedPod("db", mockruntime.ContainerSpec{Name: "postgres", CPURequestMilli: 8000})
	web := mockruntime.BurstablePod("web", mockruntime.ContainerSpec{Name: "nginx", CPURequestMilli: 500})
	start(db)
	start(web)
	dbCPUs, dbMems := cpusOf(db)
	if dbCPUs.String() != "0,4,8,12,16,20,24,28" || dbMems != "0-3" {
		t.Fatalf("db: %s / %s, want distributed", dbCPUs, dbMems)
	}

	// Reserve CPUs 0-1 and 16-17 (0 and 16 are db's), keep them out of the
	// shared pool, and pack new containers.
	reserved := topology.MustParseMask("0-1,16-17")
	write("[policy]\nmode = \"packed\"\nreserved_cpus = \"0-1,16-17\"\nstrict_reserved = true\n")
	r := next()
	if r.Err != nil || len(r.Changed) != 3 {
		t.Fatalf("reload: %+v", r)
	}
	if got, mems := cpusOf(db); !got.Equals(dbCPUs) || mems != dbMems {
		t.Errorf("db moved to %s / %s on reload", got, mems)
	}
	pool := topo.Online.Difference(dbCPUs).Difference(reserved)
	waitShared(web, pool)

	cache := mockruntime.GuaranteedPod("cache", mockruntime.ContainerSpec{Name: "redis", CPURequestMilli: 4000})
	start(cache)
	cacheCPUs, cacheMems := cpusOf(cache)
	if cacheCPUs.Count() != 4 || cacheMems != "0" && cacheMems != "1" && cacheMems != "2" && cacheMems != "3" ||
		cacheCPUs.Intersects(reserved) || cacheCPUs.Intersects(dbCPUs) {
		t.Errorf("cache: %s / %s: want 4 CPUs packed on one node, none reserved or db's", cacheCPUs, cacheMems)
	}
	pool.SubtractInPlace(cacheCPUs)
	waitShared(web, pool)
	logs := mockruntime.BestEffortPod("logs", mockruntime.ContainerSpec{Name: "fluentbit"})
	start(logs)
	if got, _ := cpusOf(logs); !got.Equals(pool) {
		t.Errorf("a new shared container got %s, want the pool %s", got, pool)
	}

	// db stops: its CPUs go back, except the reserved ones (strict).
	if err := rt.StopPod(db); err != nil {
		t.Fatal(err)
	}
	pool.UnionInPlace(dbCPUs.Difference(reserved))
	waitShared(web, pool)
	if got, _ := cpusOf(web); got.Intersects(reserved) {
		t.Errorf("web runs on reserved CPUs: %s", got)
	}

	// An invalid change (a CPU the machine lacks) is rejected with its file
	// and line, and the running configuration stays.
	write("[policy]\nmode = \"distributed\"\nreserved_cpus = \"0-1,99\"\nstrict_reserved = true\n")
	r = next()
	var ce *config.Error
	if r.Err == nil || !errors.As(r.Err, &ce) || ce.Source != path || ce.Line != 3 || !strings.Contains(r.Err.Error(), path+":3: policy.reserved_cpus") {
		t.Fatalf("invalid reload: %+v", r)
	}
	if c := p.Config(); c.Policy.Mode != "packed" || c.Policy.ReservedCPUs != "0-1,16-17" {
		t.Errorf("the running configuration changed to %+v", c.Policy)
	}
	batch := mockruntime.GuaranteedPod("batch", mockruntime.ContainerSpec{Name: "worker", CPURequestMilli: 2000})
	start(batch)
	if _, mems := cpusOf(batch); strings.ContainsAny(mems, ",-") {
		t.Errorf("after a rejected reload a new container was not packed: mems %s", mems)
	}
	if got, _ := cpusOf(cache); !got.Equals(cacheCPUs) {
		t.Errorf("cache moved to %s", got)
	}
}
