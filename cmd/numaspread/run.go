package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/plugin"
	"github.com/numaspread/numaspread/topology"
)

// preinstalledLog is where a pre-installed plugin logs: the runtime
// discards its stdout and stderr.
const preinstalledLog = "/var/log/numaspread.log"

func runPlugin(args []string, _, stderr io.Writer) int {
	fs := newFlags("run", stderr)
	configPath := fs.String("config", "", "TOML configuration file (default "+config.DefaultPath+" if it exists)")
	socket := fs.String("socket", "", "NRI socket of the runtime (overrides nri.socket)")
	sysfs := fs.String("sysfs", "", "sysfs root or tarball (overrides topology.sysfs)")
	name := fs.String("name", "", "plugin name (overrides nri.plugin_name)")
	idx := fs.String("idx", "", "two-digit plugin index (overrides nri.plugin_index)")
	logLevel := fs.String("log-level", "", "debug | info | warn | error (overrides log.level)")
	logFile := fs.String("log-file", "", "log to this file instead of stderr")
	if st := parseFlags(fs, args); st >= 0 {
		return st
	}

	path, mustExist := *configPath, true
	if path == "" {
		path, mustExist = config.DefaultPath, false
	}
	cfg, err := config.Load(path, mustExist)
	if err != nil {
		return fail(stderr, "run: %v", err)
	}
	for _, o := range []struct{ flag, value string }{
		{"nri.socket", *socket}, {"topology.sysfs", *sysfs}, {"nri.plugin_name", *name},
		{"nri.plugin_index", *idx}, {"log.level", *logLevel},
	} {
		if o.value == "" {
			continue
		}
		if cfg, err = cfg.With(o.flag, o.value); err != nil {
			return fail(stderr, "run: flag for %s: %v", o.flag, err)
		}
	}

	log, closeLog, err := newLogger(cfg.Log, *logFile, stderr)
	if err != nil {
		return fail(stderr, "run: %v", err)
	}
	defer closeLog()

	topo, err := topology.Discover(cfg.Topology.Sysfs)
	if err != nil {
		return fail(stderr, "run: discovering the machine from %s: %v", cfg.Topology.Sysfs, err)
	}
	p, err := plugin.New(topo, cfg, log)
	if err != nil {
		return fail(stderr, "run: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log.WithFields(logrus.Fields{
		"config": cfg.Source(), "cpus": topo.Online.String(), "nodes": len(topo.Nodes),
		"policy": cfg.Policy.Mode, "preinstalled": plugin.PreInstalled(),
	}).Info("numaspread starting")
	err = p.Run(ctx, plugin.RunOptions{Socket: cfg.NRI.Socket, Name: cfg.NRI.PluginName, Index: cfg.NRI.PluginIndex})
	if err != nil {
		log.WithError(err).Error("numaspread stopped")
		return 1
	}
	log.Info("numaspread stopped")
	return 0
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
	if lc.Format == config.LogFormatJSON {
		log.SetFormatter(&logrus.JSONFormatter{})
	} else {
		log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	}
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
