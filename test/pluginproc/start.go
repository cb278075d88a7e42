package pluginproc

import (
	"fmt"
	"io"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/plugin"
	"github.com/numaspread/numaspread/topology"
)

// Options configure Start.
type Options struct {
	// Level is the plugin's log level ("" is info).
	Level string
	// Observer, if not nil, is installed with Plugin.SetObserver.
	Observer plugin.Observer
	// Logs receives the plugin's log (nil: discarded).
	Logs io.Writer
	// RunOptions are passed to Plugin.Run; Name and Index default to
	// "numaspread" and "90".
	RunOptions plugin.RunOptions
}

// Start builds a plugin.Plugin for topo under cfg, logging to o.Logs, and
// runs it in this process (see InProcess).
func Start(topo *topology.Topology, cfg config.Config, o Options) (*Proc, error) {
	level := logrus.InfoLevel
	if o.Level != "" {
		var err error
		if level, err = logrus.ParseLevel(o.Level); err != nil {
			return nil, err
		}
	}
	if o.Logs == nil {
		o.Logs = io.Discard
	}
	log := logrus.New()
	log.SetOutput(o.Logs)
	log.SetLevel(level)
	p, err := plugin.New(topo, cfg, log)
	if err != nil {
		return nil, fmt.Errorf("plugin.New: %w", err)
	}
	if o.Observer != nil {
		p.SetObserver(o.Observer)
	}
	ro := o.RunOptions
	if ro.Name == "" {
		ro.Name = "numaspread"
	}
	if ro.Index == "" {
		ro.Index = "90"
	}
	return InProcess(p, ro, o.Logs), nil
}

// BinaryOptions are the numaspread binary's command line for a test.
type BinaryOptions struct {
	Socket  string // --socket: the runtime's NRI socket
	Sysfs   string // --sysfs: the machine as a sysfs tree
	Config  string // --config: the configuration file
	Level   string // --log-level ("" is info)
	LogFile string // --log-file ("": standard error)
}

// BinaryArgs returns the arguments of `numaspread run` for o, to pass to
// Binary.
func BinaryArgs(o BinaryOptions) []string {
	if o.Level == "" {
		o.Level = "info"
	}
	args := []string{"run", "--socket", o.Socket, "--sysfs", o.Sysfs, "--config", o.Config, "--log-level", o.Level}
	if o.LogFile != "" {
		args = append(args, "--log-file", o.LogFile)
	}
	return args
}

// Logs collects a plugin's output for failure reports. It is safe for
// concurrent writers and readers. With Max > 0 it keeps about the last Max
// bytes (String returns at most Max); the zero value keeps everything.
type Logs struct {
	Max int

	mu  sync.Mutex
	buf []byte
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	// Trim only once the buffer holds twice the limit, so that a write
	// costs amortized O(len(p)) however small Max is.
	if l.Max > 0 && len(l.buf) > 2*l.Max {
		l.buf = append(l.buf[:0], l.buf[len(l.buf)-l.Max:]...)
	}
	return len(p), nil
}

// String returns what was written (the last Max bytes of it, with Max > 0).
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buf
	if l.Max > 0 && len(b) > l.Max {
		b = b[len(b)-l.Max:]
	}
	return string(b)
}
