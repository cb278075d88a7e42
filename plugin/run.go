package plugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	"github.com/sirupsen/logrus"
)

// RunOptions say how the plugin connects to the runtime.
type RunOptions struct {
	Socket string // the runtime's NRI socket (external mode)
	Name   string // plugin name
	Index  string // two-digit plugin index
	// MinBackoff and MaxBackoff bound the wait between reconnection attempts
	// of an external plugin (defaults 100 ms and 5 s).
	MinBackoff, MaxBackoff time.Duration
	// OnConnected, if set, is called after each successful registration
	// (Configure done; Synchronize follows).
	OnConnected func()
}

// PreInstalled reports whether the runtime launched this process as a
// pre-installed plugin (it then passes the connection as a file descriptor).
func PreInstalled() bool { return os.Getenv(api.PluginSocketEnvVar) != "" }

// Run connects to the runtime and serves it until ctx is cancelled. An
// external plugin reconnects with backoff whenever the runtime goes away; a
// pre-installed one returns an error instead (the runtime launches it again).
func (p *Plugin) Run(ctx context.Context, o RunOptions) error {
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(5*time.Second, o.MinBackoff)
	}
	preinstalled := PreInstalled()
	backoff := o.MinBackoff
	for {
		closed := make(chan struct{})
		s, err := p.connect(ctx, o, preinstalled, closed)
		if err == nil {
			backoff = o.MinBackoff
			if o.OnConnected != nil {
				o.OnConnected()
			}
			select {
			case <-ctx.Done():
				s.Stop()
				return nil
			case <-closed:
			}
			s.Stop()
			p.setStub(nil)
			p.mu.Lock()
			p.synced = false // not registered while we wait to reconnect
			p.mu.Unlock()
			err = errors.New("the runtime closed the connection")
		}
		if preinstalled {
			return fmt.Errorf("pre-installed plugin: %w", err)
		}
		p.log.WithError(err).Warnf("not connected to the runtime at %s: retrying in %s", o.Socket, backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, o.MaxBackoff)
	}
}

func (p *Plugin) connect(ctx context.Context, o RunOptions, preinstalled bool, closed chan struct{}) (stub.Stub, error) {
	var once sync.Once
	opts := []stub.Option{
		stub.WithOnClose(func() { once.Do(func() { close(closed) }) }),
		stub.WithLogger(nriLogger{p.log}),
	}
	if !preinstalled {
		// In pre-installed mode the runtime names us through the environment.
		opts = append(opts, stub.WithPluginName(o.Name), stub.WithPluginIdx(o.Index), stub.WithSocketPath(o.Socket))
	}
	s, err := stub.New(p, opts...)
	if err != nil {
		return nil, fmt.Errorf("creating the NRI stub: %w", err)
	}
	p.setStub(s)
	p.mu.Lock()
	p.synced = false
	p.mu.Unlock()
	if err := s.Start(ctx); err != nil {
		p.setStub(nil)
		return nil, fmt.Errorf("connecting to %s: %w", o.Socket, err)
	}
	return s, nil
}

func (p *Plugin) setStub(s stub.Stub) {
	p.stubMu.Lock()
	p.stub = s
	p.stubMu.Unlock()
}

// sendUnsolicited sends updates outside a request reply. It runs in a
// goroutine: the runtime holds its NRI lock while it waits for a handler, so
// a synchronous call from inside a handler would deadlock until the timeout.
//
// Updates carry absolute cpusets, and the runtime applies them whenever it
// gets to them: a request that the plugin handles while they are in flight
// (gen moved past gen) may have its reply applied first, and the late
// update then undoes it (say, gives shared containers CPUs that request
// just made exclusive). So when gen moved, the same containers' current
// cpusets are sent again, until a send was not overtaken. The window is
// one round trip; requests that race a reload are the only way into it
// (RemoveContainer does not send unsolicited updates at all).
func (p *Plugin) sendUnsolicited(updates []*api.ContainerUpdate, gen uint64) {
	p.stubMu.Lock()
	s := p.stub
	p.stubMu.Unlock()
	if s == nil {
		return
	}
	p.inFlight.Add(1)
	go func() {
		defer p.inFlight.Add(-1)
		for range maxResends {
			failed, err := s.UpdateContainers(updates)
			if err != nil || len(failed) > 0 {
				p.log.WithError(err).WithField("failed", len(failed)).Warn("unsolicited cpuset updates failed")
			}
			if err != nil {
				return // disconnected: the next Synchronize repairs everything
			}
			if updates, gen = p.overtaken(updates, gen); len(updates) == 0 {
				return
			}
		}
		p.log.Warnf("unsolicited cpuset updates overtaken %d times: giving up until the next request", maxResends)
	}()
}

// UnsolicitedInFlight is the number of unsolicited update batches the
// plugin is still sending (a reload's, and their re-sends).
func (p *Plugin) UnsolicitedInFlight() int { return int(p.inFlight.Load()) }

// maxResends bounds how often sendUnsolicited re-sends overtaken updates.
const maxResends = 16

// overtaken returns the current cpusets of the containers of updates when a
// request was handled since gen, with the new gen; nothing otherwise.
func (p *Plugin) overtaken(updates []*api.ContainerUpdate, gen uint64) ([]*api.ContainerUpdate, uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gen == gen {
		return nil, gen
	}
	var again []*api.ContainerUpdate
	for _, u := range updates {
		if c, ok := p.ctrs[u.GetContainerId()]; ok {
			again = append(again, cpusetUpdate(c))
		}
	}
	return again, p.gen
}

// Synced reports whether the plugin is connected and has synchronized.
func (p *Plugin) Synced() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.synced
}

// nriLogger routes the NRI library's log lines through logrus.
type nriLogger struct{ log *logrus.Logger }

func (l nriLogger) Debugf(_ context.Context, f string, a ...any) { l.log.Debugf("nri: "+f, a...) }
func (l nriLogger) Infof(_ context.Context, f string, a ...any)  { l.log.Debugf("nri: "+f, a...) }
func (l nriLogger) Warnf(_ context.Context, f string, a ...any)  { l.log.Warnf("nri: "+f, a...) }
func (l nriLogger) Errorf(_ context.Context, f string, a ...any) { l.log.Errorf("nri: "+f, a...) }
