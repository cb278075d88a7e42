package churn

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/plugin"
	"github.com/numaspread/numaspread/test/pluginproc"
	"github.com/numaspread/numaspread/topology"
	"github.com/numaspread/numaspread/topology/synth"
)

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

// startInProcess runs a new plugin.Plugin on a goroutine (see
// pluginproc.InProcess for what killing it looks like to the runtime).
func startInProcess(socket string, topo *topology.Topology, cfg config.Config, obs plugin.Observer, logs *ring) (*pluginproc.Proc, error) {
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
	return pluginproc.InProcess(p, plugin.RunOptions{
		Socket: socket, Name: "numaspread", Index: "90",
		MinBackoff: 2 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
	}, logs), nil
}

// binaryHost runs the numaspread binary: one sysfs tree per machine
// variant and one configuration file per start, under dir.
type binaryHost struct {
	binary, dir string
	sysfs       map[string]string // machine variant (Offline) → directory
	starts      int
}

func (h *binaryHost) start(socket string, spec synth.Spec, cfgText string, logs *ring) (*pluginproc.Proc, error) {
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
	return pluginproc.Binary(h.binary, []string{"run", "--socket", socket, "--sysfs", dir, "--config", cfgFile, "--log-level", "info"}, logs)
}
