package churn

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/plugin"
	"github.com/numaspread/numaspread/topology"
	"github.com/numaspread/numaspread/topology/synth"
)

// pluginProc is one running instance of the plugin: in-process (a
// plugin.Plugin serving on a goroutine) or the numaspread binary.
type pluginProc struct {
	inproc *plugin.Plugin // nil for the binary
	done   chan struct{}  // closed when it has exited
	kill   func()         // stops it abruptly and waits for it
	logs   *ring
}

// ring keeps the last bytes written to it: plugin logs, for failure reports.
type ring struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func newRing(max int) *ring { return &ring{max: max} }

func (r *ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(r.buf, p...)
	if over := len(r.buf) - r.max; over > 0 {
		r.buf = append(r.buf[:0], r.buf[over:]...)
	}
	return len(p), nil
}

func (r *ring) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(r.buf)
}

// startInProcess runs plugin.New + Plugin.Run on a goroutine. Killing it
// cancels Run, which closes its connection: the runtime sees what it would
// see after a SIGKILL (the connection drops; the next request proceeds
// without the plugin), and the plugin's state dies with it.
func startInProcess(socket string, topo *topology.Topology, cfg config.Config, obs plugin.Observer, logs *ring) (*pluginProc, error) {
	log := logrus.New()
	log.SetOutput(logs)
	log.SetLevel(logrus.InfoLevel)
	p, err := plugin.New(topo, cfg, log)
	if err != nil {
		return nil, fmt.Errorf("plugin.New: %w", err)
	}
	if obs != nil {
		p.SetObserver(obs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := p.Run(ctx, plugin.RunOptions{
			Socket: socket, Name: "numaspread", Index: "90",
			MinBackoff: 2 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		})
		fmt.Fprintf(logs, "plugin.Run returned: %v\n", err)
	}()
	var once sync.Once
	return &pluginProc{inproc: p, done: done, logs: logs, kill: func() { once.Do(func() { cancel(); <-done }) }}, nil
}

// binaryHost runs the numaspread binary: one sysfs tree per machine
// variant and one configuration file per start, under dir.
type binaryHost struct {
	binary, dir string
	sysfs       map[string]string // machine variant (Offline) → directory
	starts      int
}

func (h *binaryHost) start(socket string, spec synth.Spec, cfgText string, logs *ring) (*pluginProc, error) {
	if h.sysfs == nil {
		h.sysfs = map[string]string{}
	}
	dir, ok := h.sysfs[spec.Offline]
	if !ok {
		dir = filepath.Join(h.dir, fmt.Sprintf("sysfs-%d", len(h.sysfs)))
		if err := spec.WriteDir(dir); err != nil {
			return nil, err
		}
		h.sysfs[spec.Offline] = dir
	}
	h.starts++
	cfgFile := filepath.Join(h.dir, fmt.Sprintf("config-%d.toml", h.starts))
	if err := os.WriteFile(cfgFile, []byte(cfgText), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(h.binary, "run", "--socket", socket, "--sysfs", dir, "--config", cfgFile, "--log-level", "info")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(logs, "process exited: %v\n", err)
		close(done)
	}()
	var once sync.Once
	kill := func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
		})
	}
	return &pluginProc{done: done, logs: logs, kill: kill}, nil
}
