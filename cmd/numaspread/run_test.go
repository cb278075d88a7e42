package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/numaspread/numaspread/metrics"
	"github.com/numaspread/numaspread/test/mockruntime"
	"github.com/numaspread/numaspread/topology/synth"
)

// syncBuffer is a bytes.Buffer that the plugin's goroutines can write to
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// jsonLines returns the log's JSON lines; it fails on any other line.
func jsonLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		out = append(out, m)
	}
	return out
}

func findLog(t *testing.T, log *syncBuffer, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, m := range jsonLines(t, log.String()) {
			if match(m) {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no such log line in:\n%s", log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func waitHTTP(t *testing.T, what, url string, cond func(code int, body string) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := httpGet(t, url)
		if cond(code, body) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s answers %d %q", what, url, code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRunWithMetricsAndReload runs `numaspread run` against a mock runtime
// with a configuration file that turns on the metrics endpoint and JSON
// logs, then exercises the endpoints, the decision log lines, `status`, and
// a hot reload (an invalid change, then a valid one).
func TestRunWithMetricsAndReload(t *testing.T) {
	dir := t.TempDir()
	sysfs := filepath.Join(dir, "sys")
	if err := synth.FourNode().WriteDir(sysfs); err != nil {
		t.Fatal(err)
	}
	confDir := filepath.Join(dir, "etc")
	os.Mkdir(confDir, 0o755)
	path := filepath.Join(confDir, "config.toml")
	base := "[metrics]\naddress = \"" + freeAddr(t) + "\"\n\n[log]\nformat = \"json\"\n"
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(path+".tmp", []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	write(base)

	rt := mockruntime.NewForTest(t)
	var log syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	status := make(chan int, 1)
	go func() {
		status <- servePlugin(ctx, []string{"--config", path, "--socket", rt.SocketPath(), "--sysfs", sysfs}, &log)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case st := <-status:
			if st != 0 {
				t.Errorf("run exited %d:\n%s", st, log.String())
			}
		case <-time.After(15 * time.Second):
			t.Error("run did not stop")
		}
	}
	defer stop()

	serving := findLog(t, &log, func(m map[string]any) bool { return strings.HasPrefix(m["msg"].(string), "serving /metrics") })
	addr := serving["address"].(string)
	baseURL := "http://" + addr
	waitHTTP(t, "ready", baseURL+"/readyz", func(code int, _ string) bool { return code == http.StatusOK })
	if code, _ := httpGet(t, baseURL+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}

	db := mockruntime.GuaranteedPod("db", mockruntime.ContainerSpec{Name: "postgres", CPURequestMilli: 8000})
	web := mockruntime.BurstablePod("web", mockruntime.ContainerSpec{Name: "nginx", CPURequestMilli: 500})
	for _, pod := range []*mockruntime.Pod{db, web} {
		if err := startPod(rt, pod); err != nil {
			t.Fatal(err)
		}
	}

	// One JSON line per decision, at info, with what an operator needs.
	placed := findLog(t, &log, func(m map[string]any) bool { return m["msg"] == "container placed" && m["container"] == "postgres" })
	for k, want := range map[string]string{"level": "info", "pod": "default/db", "class": "exclusive", "policy": "distributed",
		"cpus": "0,4,8,12,16,20,24,28", "mems": "0-3"} {
		if placed[k] != want {
			t.Errorf("decision log %s = %v, want %q (line %v)", k, placed[k], want, placed)
		}
	}
	if took, _ := placed["took"].(string); took == "" {
		t.Errorf("decision log lacks the time taken: %v", placed)
	}
	shared := findLog(t, &log, func(m map[string]any) bool { return m["msg"] == "container placed" && m["container"] == "nginx" })
	if shared["class"] != "shared" || shared["pod"] != "default/web" || shared["cpus"] == "" {
		t.Errorf("shared decision log: %v", shared)
	}

	// status draws it from the endpoint.
	stdout, stderr, st := run(t, "status", "--addr", addr)
	if st != 0 {
		t.Fatalf("status: %d %s", st, stderr)
	}
	for _, want := range []string{"numaspread dev: ready", "NUMA node 0: [  0 16 |", "default/db/postgres: 8 CPUs, cpus 0,4,8,12,16,20,24,28, mems 0-3",
		"used by default/web/nginx"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, stdout)
		}
	}
	stdout, _, _ = run(t, "status", "--addr", "http://"+addr+"/", "--json")
	var state metrics.State
	if err := json.Unmarshal([]byte(stdout), &state); err != nil || len(state.Containers) != 2 || !state.Ready {
		t.Errorf("status --json: %v %+v", err, state)
	}

	// An invalid change: logged with file and line, /readyz fails, the metric says so.
	write(base + "\n[policy]\nspread = \"most\"\n")
	waitHTTP(t, "not ready after an invalid reload", baseURL+"/readyz", func(code int, body string) bool {
		return code == http.StatusServiceUnavailable && strings.Contains(body, path+":8: policy.spread")
	})
	rejected := findLog(t, &log, func(m map[string]any) bool { return strings.HasPrefix(m["msg"].(string), "invalid configuration") })
	if rejected["level"] != "error" || rejected["file"] != path || !strings.Contains(rejected["error"].(string), ":8: policy.spread") {
		t.Errorf("rejection log: %v", rejected)
	}
	_, body := httpGet(t, baseURL+"/metrics")
	if !strings.Contains(body, "numaspread_config_reload_errors_total 1\n") || !strings.Contains(body, "numaspread_config_last_reload_successful 0\n") {
		t.Errorf("metrics after an invalid reload:\n%s", grepLines(body, "numaspread_config"))
	}

	// A valid change: applied, logged with what changed, ready again.
	write(base + "\n[policy]\nspread = \"minimal\"\nreserved_cpus = \"1\"\n")
	waitHTTP(t, "ready after a valid reload", baseURL+"/readyz", func(code int, _ string) bool { return code == http.StatusOK })
	applied := findLog(t, &log, func(m map[string]any) bool { return m["msg"] == "configuration file reloaded" })
	if ch := applied["changed"].([]any); len(ch) != 2 || ch[0] != "policy.spread: all → minimal" {
		t.Errorf("reload log: %v", applied)
	}
	_, body = httpGet(t, baseURL+"/metrics")
	if !strings.Contains(body, "numaspread_config_reloads_total 1\n") || !strings.Contains(body, "numaspread_config_last_reload_successful 1\n") {
		t.Errorf("metrics after a valid reload:\n%s", grepLines(body, "numaspread_config"))
	}
	if _, body := httpGet(t, baseURL+"/state"); !strings.Contains(body, `"reserved": "1"`) {
		t.Errorf("/state after the reload lacks the new reserved CPUs:\n%s", body)
	}
	// db kept its CPUs.
	if c, _ := rt.Container(db.Containers()[0].ID); c.Cpus != "0,4,8,12,16,20,24,28" {
		t.Errorf("db moved to %s", c.Cpus)
	}

	stop()
	if _, err := http.Get(baseURL + "/healthz"); err == nil {
		t.Error("the metrics endpoint outlived the plugin")
	}
}

// freeAddr returns a loopback address with a port nobody listens on (the
// configuration refuses port 0).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRunMetricsAddressInUse fails at start when the address is taken.
func TestRunMetricsAddressInUse(t *testing.T) {
	dir := t.TempDir()
	sysfs := filepath.Join(dir, "sys")
	if err := synth.SmallTwoNode().WriteDir(sysfs); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	path := filepath.Join(dir, "config.toml")
	os.WriteFile(path, []byte("[metrics]\naddress = \""+busy.Addr().String()+"\"\n"), 0o644)
	_, stderr, st := run(t, "run", "--config", path, "--sysfs", sysfs, "--socket", filepath.Join(dir, "nri.sock"))
	if st != 1 || !strings.Contains(stderr, "metrics.address "+busy.Addr().String()) {
		t.Errorf("status %d, stderr %q", st, stderr)
	}
}

// TestRunBadFlagValue: a flag is checked like the key it overrides, and the
// message names both. Every bad flag is reported, not only the first.
func TestRunBadFlagValue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte("[log]\nformat = \"json\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, st := run(t, "run", "--config", path, "--idx", "7", "--log-level", "loud")
	for _, want := range []string{"numaspread run: ", "--idx: nri.plugin_index", "--log-level: log.level"} {
		if st != 1 || !strings.Contains(stderr, want) {
			t.Errorf("status %d, stderr lacks %q: %q", st, want, stderr)
		}
	}
}

// --metrics-address turns the endpoint on over a configuration file that
// has none (the Kubernetes metrics overlay does this), and a reload of the
// file keeps it.
func TestRunMetricsAddressFlag(t *testing.T) {
	dir := t.TempDir()
	sysfs := filepath.Join(dir, "sys")
	if err := synth.SmallTwoNode().WriteDir(sysfs); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte("[log]\nformat = \"json\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rt := mockruntime.NewForTest(t)
	addr := freeAddr(t)
	var log syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	status := make(chan int, 1)
	go func() {
		status <- servePlugin(ctx, []string{"--config", path, "--socket", rt.SocketPath(), "--sysfs", sysfs,
			"--metrics-address", addr}, &log)
	}()
	defer func() {
		cancel()
		if st := <-status; st != 0 {
			t.Errorf("run exited %d:\n%s", st, log.String())
		}
	}()
	findLog(t, &log, func(m map[string]any) bool { return strings.HasPrefix(m["msg"].(string), "serving /metrics") })
	waitHTTP(t, "readiness", "http://"+addr+"/readyz", func(code int, _ string) bool { return code == http.StatusOK })
	if err := os.WriteFile(path, []byte("[log]\nformat = \"json\"\n[policy]\nmode = \"packed\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if m := findLog(t, &log, func(m map[string]any) bool { return m["msg"] == "configuration file reloaded" }); strings.Contains(fmt.Sprint(m["changed"]), "metrics") {
		t.Errorf("the reload dropped the flag: changed %v", m["changed"])
	}
	waitHTTP(t, "readiness after reload", "http://"+addr+"/readyz", func(code int, _ string) bool { return code == http.StatusOK })
}
