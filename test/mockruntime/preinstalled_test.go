package mockruntime_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"

	"github.com/numaspread/numaspread/test/mockruntime"
)

// TestMain doubles as a pre-installed plugin: the runtime launches a copy
// of this test binary with NRI_PLUGIN_SOCKET set, and then it runs
// configPlugin instead of the tests. That avoids building a separate binary.
func TestMain(m *testing.M) {
	if os.Getenv(api.PluginSocketEnvVar) != "" {
		runConfigPlugin()
		return
	}
	os.Exit(m.Run())
}

// configPlugin gives every container the cpus named by its config text
// ("cpus=N"), proving that conf.d reached Configure.
type configPlugin struct{ cpus string }

func (p *configPlugin) Configure(_ context.Context, cfg, _, _ string) (api.EventMask, error) {
	p.cpus = strings.TrimPrefix(strings.TrimSpace(cfg), "cpus=")
	return 0, nil
}

func (p *configPlugin) CreateContainer(context.Context, *api.PodSandbox, *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	adj := &api.ContainerAdjustment{}
	adj.SetLinuxCPUSetCPUs(p.cpus)
	return adj, nil, nil
}

func runConfigPlugin() {
	// Name and index come from the environment, as for any launched plugin.
	s, err := stub.New(&configPlugin{}, stub.WithOnClose(func() { os.Exit(0) }))
	if err != nil {
		os.Exit(1)
	}
	if err := s.Run(context.Background()); err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

func TestPreinstalledPlugin(t *testing.T) {
	self, err := os.Executable()
	must(t, err)
	rt := mockruntime.NewForTest(t, mockruntime.WithPreinstalledPlugin("05", "cfg", self, "cpus=9\n"))
	pod := mockruntime.BurstablePod("p",
		mockruntime.ContainerSpec{Name: "a", CPURequestMilli: 100},
		mockruntime.ContainerSpec{Name: "b", CPURequestMilli: 100})
	must(t, rt.RunPod(pod))

	// Pre-installed plugins are synchronized inside Start: no waiting.
	c, _, err := rt.CreateContainer(pod, pod.Container("a"))
	must(t, err)
	if c != "9" {
		t.Fatalf("cpus %q, want 9 from the plugin's config", c)
	}

	// A restart kills and relaunches it.
	must(t, rt.Restart())
	c, _, err = rt.CreateContainer(pod, pod.Container("b"))
	must(t, err)
	if c != "9" {
		t.Fatalf("after restart: cpus %q, want 9", c)
	}
}
