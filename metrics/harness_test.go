package metrics_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	nrilog "github.com/containerd/nri/pkg/log"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/sirupsen/logrus"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/metrics"
	"github.com/numaspread/numaspread/plugin"
	"github.com/numaspread/numaspread/test/mockruntime"
	"github.com/numaspread/numaspread/topology"
)

// TestMain silences the NRI library's own logging, which is process-wide
// (set it once, before any runtime runs).
func TestMain(m *testing.M) {
	nrilog.Set(discardNRILog{})
	os.Exit(m.Run())
}

// env is a plugin with metrics connected to a mock runtime, and an HTTP
// server for the metrics handler.
type env struct {
	rt   *mockruntime.Runtime
	p    *plugin.Plugin
	m    *metrics.Metrics
	topo *topology.Topology
	srv  *httptest.Server
}

func newEnv(t *testing.T, topo *topology.Topology, cfg config.Config) *env {
	t.Helper()
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	p, err := plugin.New(topo, cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(p)
	p.SetObserver(m)
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	e := &env{rt: mockruntime.NewForTest(t), p: p, m: m, topo: topo, srv: srv}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx, plugin.RunOptions{Socket: e.rt.SocketPath(), Name: "numaspread", Index: "90", MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

func (e *env) startPod(t *testing.T, pod *mockruntime.Pod) error {
	t.Helper()
	if err := e.rt.RunPod(pod); err != nil {
		t.Fatal(err)
	}
	for _, c := range pod.Containers() {
		if _, _, err := e.rt.CreateContainer(pod, c); err != nil {
			return err
		}
		if err := e.rt.StartContainer(c); err != nil {
			t.Fatal(err)
		}
	}
	return nil
}

func (e *env) mustStartPod(t *testing.T, pod *mockruntime.Pod) {
	t.Helper()
	if err := e.startPod(t, pod); err != nil {
		t.Fatalf("pod %s: %v", pod.Name, err)
	}
}

func (e *env) removePod(t *testing.T, pod *mockruntime.Pod) {
	t.Helper()
	if err := e.rt.StopPod(pod); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.RemovePod(pod); err != nil {
		t.Fatal(err)
	}
}

// get fetches path from the metrics server.
func (e *env) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(e.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// scrape parses /metrics.
func (e *env) scrape(t *testing.T) families {
	t.Helper()
	code, body := e.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	return fams
}

func (e *env) state(t *testing.T) metrics.State {
	t.Helper()
	code, body := e.get(t, "/state")
	if code != http.StatusOK {
		t.Fatalf("/state: %d %s", code, body)
	}
	var st metrics.State
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/state: %v\n%s", err, body)
	}
	return st
}

type families map[string]*dto.MetricFamily

// value returns the value of the sample of name whose labels include
// labels (name=value pairs); for a histogram, its sample count. ok is false
// when there is no such sample.
func (f families) value(name string, labels ...string) (float64, bool) {
	fam, ok := f[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range fam.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func (f families) want(t *testing.T, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := f.value(name, labels...)
	if !ok {
		t.Errorf("%s%v: no sample", name, labels)
	} else if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type discardNRILog struct{}

func (discardNRILog) Debugf(context.Context, string, ...any) {}
func (discardNRILog) Infof(context.Context, string, ...any)  {}
func (discardNRILog) Warnf(context.Context, string, ...any)  {}
func (discardNRILog) Errorf(context.Context, string, ...any) {}
