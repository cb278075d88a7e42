// Package pluginproc runs numaspread for tests the two ways a runtime meets
// it: in this process (plugin.Plugin.Run on a goroutine, its state open to
// inspection) or as the built binary. Both sit behind one handle that can be
// waited on and killed as abruptly as SIGKILL, so a test suite runs every
// scenario both ways with the same code.
//
// Start builds and runs the in-process plugin; BuildBinary builds the
// binary and BinaryArgs gives its command line; Logs collects either's
// output for failure reports.
package pluginproc

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/numaspread/numaspread/plugin"
)

// Proc is one running plugin.
type Proc struct {
	// Plugin is the in-process plugin; nil for the binary.
	Plugin *plugin.Plugin
	// Cmd is the binary's command line; "" in-process.
	Cmd string

	done chan struct{} // closed when it has exited
	stop func()        // makes it exit abruptly
	once sync.Once
}

// InProcess runs p.Run(opts) on a goroutine. Kill cancels Run, which closes
// its connection: the runtime sees what it sees after a SIGKILL (the
// connection drops; the next request proceeds without the plugin), and the
// plugin's state dies with it. When Run returns, logs gets a line saying so.
func InProcess(p *plugin.Plugin, opts plugin.RunOptions, logs io.Writer) *Proc {
	ctx, cancel := context.WithCancel(context.Background())
	pr := &Proc{Plugin: p, done: make(chan struct{}), stop: cancel}
	go func() {
		defer close(pr.done)
		err := p.Run(ctx, opts)
		fmt.Fprintf(logs, "plugin.Run returned: %v\n", err)
	}()
	return pr
}

// Binary starts the numaspread binary at path with args, its standard output
// and error going to out (which gets a line when the process exits).
func Binary(path string, args []string, out io.Writer) (*Proc, error) {
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", path, err)
	}
	pr := &Proc{Cmd: strings.Join(cmd.Args, " "), done: make(chan struct{}),
		stop: func() { _ = cmd.Process.Signal(syscall.SIGKILL) }}
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(out, "process exited: %v\n", err)
		close(pr.done)
	}()
	return pr, nil
}

// Done is closed when the plugin has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Kill stops the plugin abruptly and waits until it has exited. It may be
// called more than once, from any goroutine.
func (p *Proc) Kill() {
	p.once.Do(p.stop)
	<-p.done
}

// Syncer waits for a runtime's next Synchronize of a plugin
// (mockruntime.Runtime does).
type Syncer interface {
	WaitForSync(ctx context.Context) error
}

// WaitSync waits up to timeout for rt's next Synchronize, and gives up at
// once, saying so, if the plugin exits first.
func (p *Proc) WaitSync(rt Syncer, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	go func() {
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := rt.WaitForSync(ctx)
	if err != nil {
		select {
		case <-p.done:
			return fmt.Errorf("the plugin exited: %w", err)
		default:
		}
	}
	return err
}
