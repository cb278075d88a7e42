package pluginproc

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/plugin"
	"github.com/numaspread/numaspread/topology/synth"
)

// blockingSyncer never sees a Synchronize: WaitForSync returns when its
// context ends.
type blockingSyncer struct{}

func (blockingSyncer) WaitForSync(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestBinaryKillAndWaitSync(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1) on this machine")
	}
	out := &Logs{}
	p, err := Binary(sleep, []string{"60"}, out)
	if err != nil {
		t.Fatal(err)
	}
	// A live plugin that never synchronizes: the timeout, not an exit.
	if err := p.WaitSync(blockingSyncer{}, 50*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "exited") {
		t.Errorf("WaitSync on a live plugin = %v, want the deadline", err)
	}
	go p.Kill()
	p.Kill() // twice, concurrently: both return once it has exited
	select {
	case <-p.Done():
	default:
		t.Fatal("Kill returned before the process exited")
	}
	if !strings.Contains(out.String(), "process exited: signal: killed") {
		t.Errorf("output = %q", out.String())
	}
	// An exited plugin: WaitSync says so at once instead of waiting out the timeout.
	start := time.Now()
	err = p.WaitSync(blockingSyncer{}, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "the plugin exited") || time.Since(start) > 10*time.Second {
		t.Errorf("WaitSync after exit = %v after %s", err, time.Since(start))
	}
}

func TestBinaryStartError(t *testing.T) {
	if _, err := Binary("/nonexistent/numaspread", nil, &Logs{}); err == nil || !strings.Contains(err.Error(), "/nonexistent/numaspread") {
		t.Errorf("err = %v, want one naming the path", err)
	}
}

func TestLogs(t *testing.T) {
	var all Logs
	limited := &Logs{Max: 16}
	var want strings.Builder
	for i := range 100 {
		line := fmt.Sprintf("line %02d\n", i)
		want.WriteString(line)
		for _, l := range []*Logs{&all, limited} {
			if n, err := l.Write([]byte(line)); n != len(line) || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
		}
		if got, w := limited.String(), want.String(); got != w[max(0, len(w)-16):] {
			t.Fatalf("after %d lines, limited = %q, want the last 16 bytes of the output", i+1, got)
		}
	}
	if all.String() != want.String() {
		t.Errorf("unlimited = %q, want everything", all.String())
	}
	if n := len(limited.buf); n > 2*16 {
		t.Errorf("the limited buffer holds %d bytes", n)
	}

	// Concurrent writers and readers.
	var l Logs
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				_, _ = l.Write([]byte("x"))
				_ = l.String()
			}
		})
	}
	wg.Wait()
	if n := len(l.String()); n != 400 {
		t.Errorf("%d bytes after 400 concurrent writes", n)
	}
}

func TestBinaryArgs(t *testing.T) {
	got := BinaryArgs(BinaryOptions{Socket: "/s", Sysfs: "/sys", Config: "/c.toml"})
	want := []string{"run", "--socket", "/s", "--sysfs", "/sys", "--config", "/c.toml", "--log-level", "info"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("BinaryArgs = %q, want %q", got, want)
	}
	got = BinaryArgs(BinaryOptions{Socket: "/s", Sysfs: "/sys", Config: "/c.toml", Level: "debug", LogFile: "/l"})
	want = []string{"run", "--socket", "/s", "--sysfs", "/sys", "--config", "/c.toml", "--log-level", "debug", "--log-file", "/l"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("BinaryArgs = %q, want %q", got, want)
	}
}

// countingObserver counts the requests the plugin reports.
type countingObserver struct {
	mu sync.Mutex
	n  int
}

func (o *countingObserver) Request(string, time.Duration, error) { o.mu.Lock(); o.n++; o.mu.Unlock() }
func (o *countingObserver) Decision(string)                      {}

func TestStart(t *testing.T) {
	topo := synth.SmallTwoNode().MustTopology()
	if _, err := Start(topo, config.Default(), Options{Level: "loud"}); err == nil || !strings.Contains(err.Error(), "loud") {
		t.Errorf("Start with a bad level: %v", err)
	}
	logs := &Logs{}
	obs := &countingObserver{}
	// No runtime listens: Run keeps retrying until it is killed.
	p, err := Start(topo, config.Default(), Options{Level: "debug", Observer: obs, Logs: logs,
		RunOptions: plugin.RunOptions{Socket: "/nonexistent/nri.sock", MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Plugin == nil || p.Cmd != "" {
		t.Errorf("Proc = %+v, want an in-process plugin", p)
	}
	p.Kill()
	if !strings.Contains(logs.String(), "plugin.Run returned") {
		t.Errorf("logs = %q", logs.String())
	}
	// The observer is the one installed: a handler call reaches it.
	if _, err := p.Plugin.Synchronize(context.Background(), nil, nil); err != nil {
		t.Fatal(err)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.n == 0 {
		t.Error("the observer saw no request")
	}
}
