package plugin

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/topology"
)

// FuzzRequestPath feeds CreateContainer the fields of a random NRI message
// (shares, quota, period, oom_score_adj, cgroup parent, an annotation,
// names, a reported cpuset), then stops and removes the container. It must
// never panic; it must answer with an error or a sane cpuset; and the stop
// must give every CPU back.
func FuzzRequestPath(f *testing.F) {
	f.Add(uint64(4096), int64(400000), uint64(100000), int64(-997), "/kubepods/pod1", "numaspread.io/policy", "packed", "app", "")
	f.Add(uint64(0), int64(-1), uint64(0), int64(1000), "kubepods-besteffort-pod1.slice", "numaspread.io/spread", "3", "ünïcode", "0-3")
	f.Add(uint64(1<<63), int64(-1<<63), uint64(1<<63), int64(-1<<62), "", "numaspread.io/exclusive", "maybe", "", "garbage")
	f.Add(uint64(2048), int64(200000), uint64(100000), int64(-997), "/kubepods/pod1", "numaspread.io/spread.container.app", strings.Repeat("9", 300), "app", "")
	f.Fuzz(func(t *testing.T, shares uint64, quota int64, period uint64, oom int64, parent, annKey, annVal, name, cpus string) {
		p := newTestPlugin(t, config.Default())
		pod := &api.PodSandbox{Id: "pod", Name: "pod", Namespace: "ns", Annotations: map[string]string{annKey: annVal},
			Linux: &api.LinuxPodSandbox{CgroupParent: parent}}
		ctr := &api.Container{Id: "ctr", PodSandboxId: "pod", Name: name, Linux: &api.LinuxContainer{
			Resources:   &api.LinuxResources{Cpu: &api.LinuxCPU{Shares: api.UInt64(shares), Quota: api.Int64(quota), Period: api.UInt64(period), Cpus: cpus}},
			OomScoreAdj: api.Int(int(oom)),
		}}
		before := p.Snapshot().Shared
		ctx := context.Background()
		adj, _, err := p.CreateContainer(ctx, pod, ctr)
		if err != nil {
			if strings.Contains(err.Error(), "internal error") {
				t.Fatalf("panic on the request path: %v", err)
			}
			if !strings.Contains(err.Error(), "ns/pod/"+name) {
				t.Fatalf("error does not name the container: %v", err)
			}
			return
		}
		got, perr := topology.ParseMask(adj.GetLinux().GetResources().GetCpu().GetCpus())
		if perr != nil || got.IsEmpty() || !got.IsSubsetOf(before) {
			t.Fatalf("cpuset %q (%v) is not a non-empty part of the pool %s", adj.GetLinux().GetResources().GetCpu().GetCpus(), perr, before)
		}
		if w := inferWorkload(pod, ctr); w.exclusive > 0 && got.Count() != w.exclusive && !got.Equals(before) {
			t.Fatalf("exclusive container asked %d CPUs, got %s", w.exclusive, got)
		}
		if _, err := p.StopContainer(ctx, pod, ctr); err != nil {
			t.Fatal(err)
		}
		if err := p.RemoveContainer(ctx, pod, ctr); err != nil {
			t.Fatal(err)
		}
		if after := p.Snapshot().Shared; !after.Equals(before) {
			t.Fatalf("pool %s after stop, was %s", after, before)
		}
	})
}

// panickingObserver panics on the request path, standing in for any bug.
type panickingObserver struct{}

func (panickingObserver) Request(string, time.Duration, error) {}
func (panickingObserver) Decision(string)                      { panic("boom") }

func TestPanicBecomesAnErrorForThatContainer(t *testing.T) {
	p := newTestPlugin(t, config.Default())
	p.SetObserver(panickingObserver{})
	pool := p.Snapshot().Shared
	c := guaranteed("victim", 2, "", 1)
	_, _, err := p.CreateContainer(context.Background(), pods(c)[0], c)
	if err == nil || !strings.Contains(err.Error(), "internal error handling CreateContainer for ns/victim/victim: boom") {
		t.Fatalf("err = %v", err)
	}
	if got := p.Snapshot().Shared; !got.Equals(pool) {
		t.Errorf("the failed request leaked CPUs: pool %s, was %s", got, pool)
	}
	// The plugin still works: the lock was released and the next request succeeds.
	p.SetObserver(nil)
	c2 := guaranteed("next", 2, "", 2)
	if _, _, err := p.CreateContainer(context.Background(), pods(c2)[0], c2); err != nil {
		t.Fatalf("next request after a panic: %v", err)
	}
}
