package churn

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/plugin"
	"github.com/numaspread/numaspread/test/pluginproc"
	"github.com/numaspread/numaspread/topology"
	"github.com/numaspread/numaspread/topology/synth"
)

// startInProcess runs a new plugin.Plugin on a goroutine (see
// pluginproc.InProcess for what killing it looks like to the runtime).
func startInProcess(socket string, topo *topology.Topology, cfg config.Config, obs plugin.Observer, logs *pluginproc.Logs) (*pluginproc.Proc, error) {
	return pluginproc.Start(topo, cfg, pluginproc.Options{Level: "info", Observer: obs, Logs: logs, RunOptions: plugin.RunOptions{
		Socket:     socket,
		MinBackoff: 2 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
	}})
}

// binaryHost runs the numaspread binary: one sysfs tree per machine
// variant and one configuration file per start, under dir.
type binaryHost struct {
	binary, dir string
	sysfs       map[string]string // machine variant (Offline) → directory
	starts      int
}

func (h *binaryHost) start(socket string, spec synth.Spec, cfgText string, logs *pluginproc.Logs) (*pluginproc.Proc, error) {
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
	return pluginproc.Binary(h.binary, pluginproc.BinaryArgs(pluginproc.BinaryOptions{
		Socket: socket, Sysfs: dir, Config: cfgFile, Level: "info",
	}), logs)
}
