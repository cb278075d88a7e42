package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/metrics"
	"github.com/numaspread/numaspread/plugin"
	"github.com/numaspread/numaspread/reload"
	"github.com/numaspread/numaspread/topology"
)

// preinstalledLog is where a pre-installed plugin logs: the runtime
// discards its stdout and stderr.
const preinstalledLog = "/var/log/numaspread.log"

func runPlugin(args []string, _, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return servePlugin(ctx, args, stderr)
}

// servePlugin is `numaspread run` until ctx is cancelled: the plugin, its
// metrics endpoint when [metrics] address is set, and the configuration
// file watcher when a file was loaded.
func servePlugin(ctx context.Context, args []string, stderr io.Writer) int {
	fs := newFlags("run", stderr)
	var cf configFlags
	cf.register(fs)
	cf.override(fs, "name", "nri.plugin_name", "plugin name")
	cf.override(fs, "idx", "nri.plugin_index", "two-digit plugin index")
	cf.override(fs, "log-level", "log.level", "debug | info | warn | error")
	cf.override(fs, "metrics-address", "metrics.address", "serve /metrics, /healthz, /readyz and /state here, e.g. :9464")
	logFile := fs.String("log-file", "", "log to this file instead of stderr")
	if st := parseFlags(fs, args); st >= 0 {
		return st
	}

	cfg, err := cf.load()
	if err != nil {
		return fail(stderr, "run", "%v", err)
	}
	log, closeLog, err := newLogger(cfg.Log, *logFile, stderr)
	if err != nil {
		return fail(stderr, "run", "%v", err)
	}
	defer closeLog()

	topo, err := topology.Discover(cfg.Topology.Sysfs)
	if err != nil {
		return fail(stderr, "run", "discovering the machine from %s: %v", cfg.Topology.Sysfs, err)
	}
	p, err := plugin.New(topo, cfg, log)
	if err != nil {
		return fail(stderr, "run", "%v", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	bg := &background{ctx: ctx, log: log, p: p}
	defer bg.wg.Wait()
	defer cancel()

	// The metrics start with the configuration from the file, or (for a
	// pre-installed plugin) with the one the runtime passes in Configure.
	if err := bg.startMetrics(cfg.Metrics.Address); err != nil {
		return fail(stderr, "run", "%v", err)
	}
	if cfg.Source() != "" {
		bg.watchConfig(&cf, cfg)
	}

	log.WithFields(logrus.Fields{
		"config": cfg.Source(), "cpus": topo.Online.String(), "nodes": len(topo.Nodes),
		"policy": cfg.Policy.Mode, "preinstalled": plugin.PreInstalled(), "version": metrics.Version,
	}).Info("numaspread starting")
	err = p.Run(ctx, plugin.RunOptions{
		Socket: cfg.NRI.Socket, Name: cfg.NRI.PluginName, Index: cfg.NRI.PluginIndex,
		OnConnected: func() {
			if !plugin.PreInstalled() {
				return
			}
			// A pre-installed plugin learns its [log] settings from Configure.
			applyLive(log, p.Config(), nil)
			if err := bg.startMetrics(p.Config().Metrics.Address); err != nil {
				log.WithError(err).Error("cannot serve metrics")
			}
		},
	})
	if err != nil {
		log.WithError(err).Error("numaspread stopped")
		return 1
	}
	log.Info("numaspread stopped")
	return 0
}

// background runs what serves alongside the plugin (the metrics endpoint,
// the configuration watcher) until ctx is cancelled; wg waits for them.
type background struct {
	ctx context.Context
	wg  sync.WaitGroup
	log *logrus.Logger
	p   *plugin.Plugin
	obs atomic.Pointer[metrics.Metrics] // set once the endpoint serves
}

func (b *background) start(fn func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		fn()
	}()
}

// startMetrics serves the metrics endpoint on addr and makes it the
// plugin's observer. It does nothing when addr is "" or the endpoint
// already serves.
func (b *background) startMetrics(addr string) error {
	if addr == "" || b.obs.Load() != nil {
		return nil
	}
	m := metrics.New(b.p)
	srv, err := metrics.Listen(addr, m.Handler())
	if err != nil {
		return err
	}
	b.p.SetObserver(m)
	b.obs.Store(m)
	b.start(func() {
		if err := srv.Serve(b.ctx); err != nil {
			b.log.WithError(err).Error("metrics endpoint stopped")
		}
	})
	b.log.WithField("address", srv.Addr().String()).Info("serving /metrics, /healthz, /readyz and /state")
	return nil
}

// watchConfig reloads the configuration file when it changes, with the
// flags applied over it again, and records each result in the metrics.
func (b *background) watchConfig(cf *configFlags, running config.Config) {
	path, _ := cf.path()
	w := &reload.Watcher{
		Path: path,
		Parse: func(data []byte) (config.Config, error) {
			c, err := config.Parse(path, data)
			if err != nil {
				return c, err
			}
			return cf.apply(c)
		},
		Apply: func(c config.Config) ([]string, error) {
			changed, err := b.p.Reload(c)
			if err == nil {
				applyLive(b.log, c, changed)
			}
			return changed, err
		},
		Running: running,
		Log:     b.log,
		OnResult: func(r reload.Result) {
			if m := b.obs.Load(); m != nil {
				m.RecordReload(r.Time, r.Changed, r.Err)
			}
		},
	}
	b.start(func() {
		if err := w.Run(b.ctx); err != nil {
			b.log.WithError(err).Error("configuration changes will not be applied until a restart")
		}
	})
}

// restartOnly are the sections a running plugin cannot change: they take
// effect at the next start.
var restartOnly = []string{"nri.", "topology.", "metrics."}

// applyLive applies the reloaded settings that live outside the plugin (the
// logger) and warns about those that need a restart.
func applyLive(log *logrus.Logger, cfg config.Config, changed []string) {
	if level, err := logrus.ParseLevel(cfg.Log.Level); err == nil && level != log.GetLevel() {
		log.SetLevel(level)
	}
	setFormatter(log, cfg.Log.Format)
	for _, c := range changed {
		for _, prefix := range restartOnly {
			if strings.HasPrefix(c, prefix) {
				log.WithField("change", c).Warn("this setting takes effect only when numaspread restarts")
			}
		}
	}
}

func setFormatter(log *logrus.Logger, format string) {
	if format == config.LogFormatJSON {
		if _, ok := log.Formatter.(*logrus.JSONFormatter); !ok {
			log.SetFormatter(&logrus.JSONFormatter{})
		}
		return
	}
	if _, ok := log.Formatter.(*logrus.TextFormatter); !ok {
		log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	}
}

// newLogger builds the logger the config asks for. A pre-installed plugin
// without --log-file logs to preinstalledLog when it can.
func newLogger(lc config.LogConfig, file string, stderr io.Writer) (*logrus.Logger, func(), error) {
	log := logrus.New()
	log.SetOutput(stderr)
	level, err := logrus.ParseLevel(lc.Level)
	if err != nil {
		return nil, nil, fmt.Errorf("log.level: %w", err)
	}
	log.SetLevel(level)
	log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	setFormatter(log, lc.Format)
	if file == "" && plugin.PreInstalled() {
		file = preinstalledLog
	}
	if file == "" {
		return log, func() {}, nil
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		if file == preinstalledLog {
			return log, func() {}, nil // best effort: keep stderr
		}
		return nil, nil, fmt.Errorf("--log-file: %w", err)
	}
	log.SetOutput(f)
	return log, func() { f.Close() }, nil
}
