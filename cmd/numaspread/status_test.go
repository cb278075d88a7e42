package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/metrics"
	"github.com/numaspread/numaspread/plugin"
	"github.com/numaspread/numaspread/test/mockruntime"
	"github.com/numaspread/numaspread/topology/synth"
	"github.com/numaspread/numaspread/view"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden files")

// statusServer runs the plugin with metrics on spec's machine against a
// mock runtime, starts pods, and serves the metrics handler.
func statusServer(t *testing.T, spec synth.Spec, reserved string, pods ...*mockruntime.Pod) *httptest.Server {
	t.Helper()
	cfg, err := config.Default().With("policy.reserved_cpus", reserved)
	if err != nil {
		t.Fatal(err)
	}
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	p, err := plugin.New(spec.MustTopology(), cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(p)
	p.SetObserver(m)
	rt := mockruntime.NewForTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx, plugin.RunOptions{Socket: rt.SocketPath(), Name: "numaspread", Index: "90"})
	}()
	t.Cleanup(func() { cancel(); <-done })
	rt.MustWaitForSync(t, 10*time.Second)
	for _, pod := range pods {
		if err := startPod(rt, pod); err != nil {
			t.Fatalf("pod %s: %v", pod.Name, err)
		}
	}
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("status output differs from %s (go test -update rewrites it):\n%s", path, got)
	}
}

func checkWidth(t *testing.T, out string, width int) {
	t.Helper()
	for i, l := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(l); n > width {
			t.Errorf("line %d is %d columns: %q", i+1, n, l)
		}
	}
}

// TestStatusGoldenEightNode512 draws the 8-node, 512-CPU machine with a few
// allocations, through the HTTP endpoint as `numaspread status` does.
func TestStatusGoldenEightNode512(t *testing.T) {
	srv := statusServer(t, synth.EightNode512(), "0,256",
		mockruntime.GuaranteedPod("db", mockruntime.ContainerSpec{Name: "postgres", CPURequestMilli: 96000}).WithNamespace("prod"),
		mockruntime.GuaranteedPod("cache", mockruntime.ContainerSpec{Name: "redis", CPURequestMilli: 6000}).
			WithAnnotation("numaspread.io/policy", "packed"),
		mockruntime.GuaranteedPod("analytics", mockruntime.ContainerSpec{Name: "spark", CPURequestMilli: 32000}).
			WithAnnotation("numaspread.io/spread", "minimal"),
		mockruntime.BurstablePod("web", mockruntime.ContainerSpec{Name: "nginx", CPURequestMilli: 500, CPULimitMilli: 2000}),
		mockruntime.BestEffortPod("logs", mockruntime.ContainerSpec{Name: "fluentbit"}),
	)
	stdout, stderr, st := run(t, "status", "--addr", srv.URL)
	if st != 0 {
		t.Fatalf("status %d: %s", st, stderr)
	}
	checkWidth(t, stdout, 80)
	checkGolden(t, "status-eightnode512.golden", stdout)
	if lines := strings.Count(stdout, "\n"); lines > 50 {
		t.Errorf("%d lines for 512 CPUs", lines)
	}
	// The detailed layout also fits, just longer.
	stdout, _, _ = run(t, "status", "--addr", srv.URL, "--layout", "detailed")
	checkWidth(t, stdout, 80)
	if !strings.Contains(stdout, "NUMA node 7: [ 224 480 |") {
		t.Errorf("detailed layout:\n%s", stdout)
	}
}

// TestStatusGoldenFourNode is the small machine's detailed map, the demo's.
func TestStatusGoldenFourNode(t *testing.T) {
	srv := statusServer(t, synth.FourNode(), "",
		mockruntime.GuaranteedPod("db", mockruntime.ContainerSpec{Name: "postgres", CPURequestMilli: 8000}),
		mockruntime.BurstablePod("web", mockruntime.ContainerSpec{Name: "nginx", CPURequestMilli: 500}),
	)
	stdout, stderr, st := run(t, "status", "--addr", srv.URL)
	if st != 0 {
		t.Fatalf("status %d: %s", st, stderr)
	}
	checkWidth(t, stdout, 80)
	checkGolden(t, "status-fournode.golden", stdout)
}

func TestStatusErrors(t *testing.T) {
	_, stderr, st := run(t, "status", "--addr", freeAddr(t), "--timeout", "2s")
	if st != 1 || !strings.Contains(stderr, "cannot reach the plugin") {
		t.Errorf("nobody listening: %d %q", st, stderr)
	}
	srv := httptest.NewServer(nil) // 404 for everything
	defer srv.Close()
	_, stderr, st = run(t, "status", "--addr", srv.URL)
	if st != 1 || !strings.Contains(stderr, "404") {
		t.Errorf("not numaspread: %d %q", st, stderr)
	}
	_, stderr, st = run(t, "status", "--layout", "round")
	if st != 2 || !strings.Contains(stderr, "--layout") {
		t.Errorf("bad layout: %d %q", st, stderr)
	}
}

// TestStatusNotReady draws a plugin that is not connected and whose last
// reload failed: the header says both, within 80 columns.
func TestStatusNotReady(t *testing.T) {
	p, err := plugin.New(synth.SNC().MustTopology(), config.Default(), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(p)
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	m.RecordReload(at, nil, errors.New(`/etc/numaspread/config.toml:14: policy.spread: "most" is not one of all, minimal`))
	st := m.State()
	var out strings.Builder
	if err := renderStatus(&out, &st, view.LayoutAuto, 80); err != nil {
		t.Fatal(err)
	}
	checkWidth(t, out.String(), 80)
	for _, want := range []string{
		"numaspread dev: NOT READY: not registered with the runtime and synchronized; the",
		"last config reload FAILED at 2025-01-02T03:04:05Z; the running",
		"  -  not managed (isolated, or outside allowed_cpus): 4-7,36-39",
		"CPUs: 0 exclusive, 56 free, 0 reserved, 8 unmanaged; shared pool 56 CPUs", // SNC isolates 8 CPUs
		"[  0 32 |  4 36 |",
		"-  -",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
}
