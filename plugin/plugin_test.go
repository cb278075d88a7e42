package plugin

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/containerd/nri/pkg/api"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/topology"
	"github.com/numaspread/numaspread/topology/synth"
)

func newTestPlugin(t *testing.T, cfg config.Config) *Plugin {
	t.Helper()
	log := logrus.New()
	log.SetOutput(io.Discard)
	p, err := New(synth.SmallTwoNode().MustTopology(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// guaranteed returns a Guaranteed container of n CPUs reporting cpus.
func guaranteed(id string, n int, cpus string, created int64) *api.Container {
	oom := -997
	c := testContainer(uint64(n*1024), int64(n*100000), 100000, &oom)
	c.Id, c.Name, c.PodSandboxId, c.CreatedAt = id, id, "pod-"+id, created
	c.State = api.ContainerState_CONTAINER_RUNNING
	c.Linux.Resources.Cpu.Cpus = cpus
	return c
}

func shared(id, cpus string) *api.Container {
	c := testContainer(512, 0, 100000, nil)
	c.Id, c.Name, c.PodSandboxId = id, id, "pod-"+id
	c.State = api.ContainerState_CONTAINER_RUNNING
	c.Linux.Resources.Cpu.Cpus = cpus
	return c
}

func pods(ctrs ...*api.Container) []*api.PodSandbox {
	var out []*api.PodSandbox
	for _, c := range ctrs {
		parent := "/kubepods/pod" + c.Id
		if c.Linux.Resources.Cpu.Quota == nil {
			parent = "/kubepods/burstable/pod" + c.Id
		}
		out = append(out, &api.PodSandbox{Id: c.PodSandboxId, Name: c.Id, Namespace: "ns", Linux: &api.LinuxPodSandbox{CgroupParent: parent}})
	}
	return out
}

func updatesByID(us []*api.ContainerUpdate) map[string]string {
	out := map[string]string{}
	for _, u := range us {
		if _, dup := out[u.ContainerId]; dup {
			out[u.ContainerId] = "DUPLICATE"
			continue
		}
		out[u.ContainerId] = u.GetLinux().GetResources().GetCpu().GetCpus() + "/" + u.GetLinux().GetResources().GetCpu().GetMems()
	}
	return out
}

func TestSynchronizeRebuildsState(t *testing.T) {
	p := newTestPlugin(t, config.Default())
	ctrs := []*api.Container{
		guaranteed("young", 2, "0,8", 200), // claims the same CPUs as old: loses
		guaranteed("old", 2, "0,8", 100),   // keeps 0,8
		guaranteed("keeper", 4, "4-5,12-13", 150),
		guaranteed("new", 2, "", 300), // created while the plugin was away
		shared("web", "0-15"),
	}
	ctrs[1].Linux.Resources.Cpu.Mems = "0"
	updates, err := p.Synchronize(context.Background(), pods(ctrs...), ctrs)
	if err != nil {
		t.Fatal(err)
	}
	got := updatesByID(updates)
	snap := p.Snapshot()
	byID := map[string]ContainerState{}
	for _, c := range snap.Containers {
		byID[c.ID] = c
	}
	if byID["old"].CPUs != "0,8" || !byID["old"].Exclusive {
		t.Errorf("old = %+v, want to keep 0,8", byID["old"])
	}
	if byID["keeper"].CPUs != "4-5,12-13" {
		t.Errorf("keeper = %+v", byID["keeper"])
	}
	if _, ok := got["old"]; ok {
		t.Errorf("old got an update %s though its cpuset was right", got["old"])
	}
	for _, id := range []string{"young", "new"} {
		c := byID[id]
		if !c.Exclusive || c.CPUs == "" || topology.MustParseMask(c.CPUs).Intersects(topology.MustParseMask("0,8")) {
			t.Errorf("%s = %+v, want fresh exclusive CPUs", id, c)
		}
		if got[id] != c.CPUs+"/"+c.Mems {
			t.Errorf("update for %s = %q, want %s/%s", id, got[id], c.CPUs, c.Mems)
		}
	}
	if want := snap.Shared.String(); !strings.HasPrefix(got["web"], want+"/") {
		t.Errorf("web update %q, want the pool %s", got["web"], want)
	}
	for id, u := range got {
		if u == "DUPLICATE" {
			t.Errorf("two updates for %s in one reply (NRI rejects that)", id)
		}
	}
	// No CPU held twice, every exclusive container holds its count, and
	// the policy state agrees with the records.
	checkPlugin(t, p, map[string]int{"young": 2, "old": 2, "keeper": 4, "new": 2})
}

func TestCreateContainerErrorsNameTheContainer(t *testing.T) {
	p := newTestPlugin(t, config.Default())
	c := guaranteed("big", 16, "", 1) // 16 of 16 CPUs would empty the shared pool
	pod := pods(c)[0]
	_, _, err := p.CreateContainer(context.Background(), pod, c)
	for _, want := range []string{"container ns/big/big", "16 CPUs", "below min_shared_cpus = 1", "16 free (node 0: 8, node 1: 8)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to contain %q", err, want)
		}
	}
	if len(p.Snapshot().Containers) != 0 {
		t.Error("a rejected container was recorded")
	}
}

func TestDebugLogsRequestAndReply(t *testing.T) {
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	p, err := New(synth.SmallTwoNode().MustTopology(), config.Default(), log)
	if err != nil {
		t.Fatal(err)
	}
	c := guaranteed("db", 2, "", 1)
	if _, _, err := p.CreateContainer(context.Background(), pods(c)[0], c); err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, e := range hook.AllEntries() {
		msgs = append(msgs, e.Message)
		if e.Message == "container placed" {
			for _, k := range []string{"pod", "container", "class", "policy", "cpus", "mems", "took"} {
				if _, ok := e.Data[k]; !ok {
					t.Errorf("decision line lacks %q: %v", k, e.Data)
				}
			}
		}
	}
	want := "CreateContainer request,container placed,CreateContainer reply"
	if got := strings.Join(msgs, ","); got != want {
		t.Errorf("log messages %q, want %q", got, want)
	}
}
