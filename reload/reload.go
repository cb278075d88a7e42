// Package reload watches the configuration file and applies its changes to
// the running plugin: on a change it parses the file, hands a valid
// configuration to the plugin (plugin.Reload, which keeps running
// allocations) and logs what changed; it logs an invalid one with its file
// and line and keeps the running configuration. Every outcome is reported
// to a callback (the metrics and /readyz).
//
// It watches the file's directory, not the file: editors replace files by
// renaming, and Kubernetes updates a mounted ConfigMap by swapping a
// symlink (..data) next to the file, neither of which a watch on the file
// itself survives. Events about other files of the directory are ignored,
// bursts of events are debounced, and a change is applied only when the
// file's bytes differ from the last ones read.
//
// A configuration that parses but that the plugin refuses for the node's
// present state (reserved CPUs held by running exclusive containers, say)
// is tried again every Retry until it applies or the file changes: the
// containers in the way stop on their own time, and the node should not
// stay on the old configuration, un-ready, until someone edits the file.
package reload

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/sirupsen/logrus"

	"github.com/numaspread/numaspread/config"
)

// DefaultDebounce is how long the watcher waits after the last event of a
// burst before it reads the file.
const DefaultDebounce = 150 * time.Millisecond

// DefaultRetry is how often a configuration the plugin refused is tried
// again.
const DefaultRetry = 30 * time.Second

// Result is the outcome of one reload.
type Result struct {
	Time    time.Time
	Changed []string // the keys that changed, as config.Diff lists them
	Err     error    // nil when the configuration was applied
}

// Watcher watches Path and applies its changes. Set the fields, then Run.
type Watcher struct {
	// Path is the configuration file.
	Path string
	// Parse turns the file's bytes into a configuration; nil means
	// config.Parse(Path, data). The plugin command adds its flag overrides
	// here, so that a reload keeps them.
	Parse func(data []byte) (config.Config, error)
	// Apply installs a configuration and returns the changed keys:
	// plugin.Reload, usually wrapped.
	Apply func(config.Config) ([]string, error)
	// Running is the configuration in effect when Run starts.
	Running config.Config
	// Debounce defaults to DefaultDebounce.
	Debounce time.Duration
	// Retry is how often a configuration that parsed but that Apply
	// refused is tried again; 0 means DefaultRetry, negative never.
	Retry time.Duration
	// Log defaults to logrus's standard logger.
	Log *logrus.Logger
	// OnResult, if set, is told every reload's result.
	OnResult func(Result)

	current config.Config
	last    []byte         // the bytes last read; nil before the first read
	readErr bool           // the last read failed
	refused *config.Config // parsed from the file, refused by Apply; retried
}

// Run watches until ctx is cancelled. It returns an error only when the
// watch cannot be set up. It first checks the file once, so that a change
// made after the configuration was loaded but before the watch began is not
// missed.
func (w *Watcher) Run(ctx context.Context) error {
	if w.Debounce <= 0 {
		w.Debounce = DefaultDebounce
	}
	if w.Retry == 0 {
		w.Retry = DefaultRetry
	}
	if w.Log == nil {
		w.Log = logrus.StandardLogger()
	}
	if w.Parse == nil {
		w.Parse = func(data []byte) (config.Config, error) { return config.Parse(w.Path, data) }
	}
	path, err := filepath.Abs(w.Path)
	if err != nil {
		return fmt.Errorf("watching %s: %w", w.Path, err)
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching %s: %w", w.Path, err)
	}
	defer fw.Close()
	dir := filepath.Dir(path)
	if err := fw.Add(dir); err != nil {
		return fmt.Errorf("watching %s: %w", dir, err)
	}
	// When the file is a symlink into another directory, edits of its
	// target show up only there.
	target, realFile := "", ""
	followTarget := func() {
		t := ""
		realFile = ""
		if real, err := filepath.EvalSymlinks(path); err == nil {
			realFile = real
			if d := filepath.Dir(real); d != dir {
				t = d
			}
		}
		if t == target {
			return
		}
		if target != "" {
			fw.Remove(target) // it may be gone already
		}
		target = ""
		if t != "" && fw.Add(t) == nil {
			target = t
		}
	}
	// relevant tells the events that may change the file from those of its
	// neighbours (a log file in the same directory, say, which would
	// otherwise keep the debounce timer running).
	base := filepath.Base(path)
	relevant := func(name string) bool {
		n := filepath.Base(name)
		// The file itself, its symlink's target, or (for a ConfigMap) the
		// ..data symlink and ..timestamp folders next to it.
		return name == realFile || filepath.Dir(name) == dir && (n == base || strings.HasPrefix(n, ".."))
	}
	followTarget()
	w.Log.WithFields(logrus.Fields{"file": w.Path, "dir": dir}).Info("watching the configuration file for changes")

	w.current = w.Running
	w.check(true)

	timer := time.NewTimer(0)
	if !timer.Stop() {
		<-timer.C
	}
	retry := time.NewTicker(max(w.Retry, time.Hour))
	defer retry.Stop()
	if w.Retry > 0 {
		retry.Reset(w.Retry)
	}
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-retry.C:
			if w.Retry > 0 && w.refused != nil {
				w.retry()
			}
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			if !relevant(ev.Name) {
				continue
			}
			w.Log.WithFields(logrus.Fields{"event": ev.Op.String(), "name": ev.Name}).Debug("configuration directory event")
			timer.Reset(w.Debounce)
		case err, ok := <-fw.Errors:
			if !ok {
				return nil
			}
			w.Log.WithError(err).Warn("watching the configuration file")
			timer.Reset(w.Debounce) // events may have been lost: look again
		case <-timer.C:
			w.check(false)
			followTarget()
		}
	}
}

// check reads the file and applies it when its bytes changed.
func (w *Watcher) check(initial bool) {
	data, err := config.ReadFile(w.Path)
	now := time.Now()
	log := w.Log.WithField("file", w.Path)
	if err != nil {
		if w.readErr {
			return // already reported
		}
		// A refused configuration came from the file that is gone now.
		w.readErr, w.last, w.refused = true, nil, nil
		log.WithError(err).Error("cannot read the configuration file: keeping the running configuration")
		w.report(Result{Time: now, Err: err})
		return
	}
	if !w.readErr && w.last != nil && bytes.Equal(data, w.last) {
		return
	}
	w.readErr, w.last, w.refused = false, data, nil

	cfg, err := w.Parse(data)
	if err == nil && cfg.Equal(w.current) {
		if !initial {
			log.Info("configuration file changed, no setting did")
			w.report(Result{Time: now})
		}
		return
	}
	var changed []string
	if err == nil {
		if changed, err = w.Apply(cfg); err != nil {
			w.refused = &cfg
		}
	}
	if err != nil {
		log.WithError(err).Error("invalid configuration: ignored, keeping the running configuration")
		w.report(Result{Time: now, Err: err})
		return
	}
	w.current = cfg
	log.WithField("changed", changed).Info("configuration file reloaded")
	w.report(Result{Time: now, Changed: changed})
}

// retry applies the refused configuration again; it reports only success
// (the failure was reported when the file was read).
func (w *Watcher) retry() {
	cfg := *w.refused
	changed, err := w.Apply(cfg)
	log := w.Log.WithField("file", w.Path)
	if err != nil {
		log.WithError(err).Debug("refused configuration: still refused on retry")
		return
	}
	w.refused, w.current = nil, cfg
	log.WithField("changed", changed).Info("configuration file reloaded: a configuration refused earlier applies now")
	w.report(Result{Time: time.Now(), Changed: changed})
}

func (w *Watcher) report(r Result) {
	if w.OnResult != nil {
		w.OnResult(r)
	}
}
