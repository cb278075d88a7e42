package pluginproc

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// blockingSyncer never sees a Synchronize: WaitForSync returns when its
// context ends.
type blockingSyncer struct{}

func (blockingSyncer) WaitForSync(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestBinaryKillAndWaitSync(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1) on this machine")
	}
	out := &lockedBuffer{}
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
	if _, err := Binary("/nonexistent/numaspread", nil, &lockedBuffer{}); err == nil || !strings.Contains(err.Error(), "/nonexistent/numaspread") {
		t.Errorf("err = %v, want one naming the path", err)
	}
}
