package main

import (
	"context"
	"fmt"
	"io"
	"time"

	nrilog "github.com/containerd/nri/pkg/log"
	"github.com/sirupsen/logrus"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/plugin"
	"github.com/numaspread/numaspread/test/mockruntime"
	"github.com/numaspread/numaspread/topology"
	"github.com/numaspread/numaspread/view"
)

// demoStep is one pod the demo starts.
type demoStep struct {
	say string
	pod *mockruntime.Pod
}

func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("demo", stderr)
	machine := fs.String("machine", "FourNode", "built-in synthetic machine to run on: "+presetNames())
	if st := parseFlags(fs, args); st >= 0 {
		return st
	}
	topo, name, err := presetTopology(*machine)
	if err != nil {
		return fail(stderr, "demo", "%v", err)
	}
	if err := demo(stdout, topo, name); err != nil {
		return fail(stderr, "demo", "%v", err)
	}
	return 0
}

// demo runs the plugin in-process against an embedded NRI runtime (the
// adaptation containerd links) and draws what each step did.
func demo(w io.Writer, topo *topology.Topology, machine string) error {
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	nrilog.Set(discardNRILog{})

	rt, err := mockruntime.New()
	if err != nil {
		return err
	}
	defer rt.Close()
	if err := rt.Start(); err != nil {
		return err
	}
	p, err := plugin.New(topo, config.Default(), quiet)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx, plugin.RunOptions{Socket: rt.SocketPath(), Name: "numaspread", Index: "90"})
	waitCtx, waitCancel := context.WithTimeout(ctx, 10*time.Second)
	defer waitCancel()
	if err := rt.WaitForSync(waitCtx); err != nil {
		return fmt.Errorf("the plugin did not connect: %w", err)
	}

	fmt.Fprintf(w, "numaspread demo: the plugin and an embedded NRI runtime on the built-in %s machine\n", machine)
	fmt.Fprintf(w, "(%d CPUs, %d NUMA nodes, %d threads per core; policy distributed, memory local)\n\n",
		topo.Online.Count(), len(topo.Nodes), topo.ThreadsPerCore)

	half := int64(max(1, topo.Online.Count()/4)) * 1000
	db := mockruntime.GuaranteedPod("db", mockruntime.ContainerSpec{Name: "postgres", CPURequestMilli: half})
	cache := mockruntime.GuaranteedPod("cache", mockruntime.ContainerSpec{Name: "redis", CPURequestMilli: 4000}).
		WithAnnotation("numaspread.io/policy", "packed")
	web := mockruntime.BurstablePod("web", mockruntime.ContainerSpec{Name: "nginx", CPURequestMilli: 500, CPULimitMilli: 2000})
	logs := mockruntime.BestEffortPod("logs", mockruntime.ContainerSpec{Name: "fluentbit"})

	steps := []demoStep{
		{"BestEffort pod logs/fluentbit: shared pool", logs},
		{fmt.Sprintf("Guaranteed pod db/postgres, %d CPUs: distributed across every NUMA node", half/1000), db},
		{"Guaranteed pod cache/redis, 4 CPUs, annotation numaspread.io/policy=packed: one node", cache},
		{"Burstable pod web/nginx (500m, limit 2): shared pool", web},
	}
	for i, s := range steps {
		if err := startPod(rt, s.pod); err != nil {
			return fmt.Errorf("%s: %w", s.say, err)
		}
		fmt.Fprintf(w, "%d. %s\n", i+1, s.say)
		for _, c := range rt.Containers() {
			if c.PodID == s.pod.ID {
				fmt.Fprintf(w, "   → %s/%s: cpuset.cpus %s, cpuset.mems %s\n", c.PodName, c.Name, c.Cpus, c.Mems)
			}
		}
	}
	fmt.Fprintln(w)
	drawRuntime(w, topo, rt, p)

	fmt.Fprintf(w, "\n%d. Remove pod db: its CPUs return to the shared pool, shared containers are updated\n", len(steps)+1)
	if err := stopPod(rt, db); err != nil {
		return err
	}
	fmt.Fprintln(w)
	drawRuntime(w, topo, rt, p)
	return nil
}

func startPod(rt *mockruntime.Runtime, pod *mockruntime.Pod) error {
	if err := rt.RunPod(pod); err != nil {
		return err
	}
	for _, c := range pod.Containers() {
		if _, _, err := rt.CreateContainer(pod, c); err != nil {
			return err
		}
		if err := rt.StartContainer(c); err != nil {
			return err
		}
	}
	return nil
}

func stopPod(rt *mockruntime.Runtime, pod *mockruntime.Pod) error {
	if err := rt.StopPod(pod); err != nil {
		return err
	}
	return rt.RemovePod(pod)
}

// drawRuntime draws the runtime's view of every live container (what the
// runtime applied, not what the plugin believes) with the plugin's pool.
func drawRuntime(w io.Writer, topo *topology.Topology, rt *mockruntime.Runtime, p *plugin.Plugin) {
	snap := p.Snapshot()
	exclusive := map[string]bool{}
	for _, c := range snap.Containers {
		exclusive[c.ID] = c.Exclusive
	}
	m := view.Map{Topology: topo, Shared: snap.Shared, Reserved: snap.Reserved}
	for _, c := range rt.Containers() {
		if !c.Live() {
			continue
		}
		cpus, _ := topology.ParseMask(c.Cpus)
		m.Holders = append(m.Holders, view.Holder{
			Name: c.Namespace + "/" + c.PodName + "/" + c.Name, Exclusive: exclusive[c.ID], CPUs: cpus, Mems: c.Mems,
		})
	}
	view.Draw(w, m)
}

// discardNRILog silences the NRI library's own logging in the demo.
type discardNRILog struct{}

func (discardNRILog) Debugf(context.Context, string, ...any) {}
func (discardNRILog) Infof(context.Context, string, ...any)  {}
func (discardNRILog) Warnf(context.Context, string, ...any)  {}
func (discardNRILog) Errorf(context.Context, string, ...any) {}
