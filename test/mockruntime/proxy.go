package mockruntime

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
)

// proxy is the socket external plugins dial. It forwards each connection
// to the adaptation's own socket.
//
// Why: adaptation.Stop() closes the listener but keeps accepted external
// connections alive, and the adaptation takes no custom listener. Owning
// both ends of every plugin connection lets Stop cut them, so a plugin sees
// exactly what a runtime restart shows it: EOF, then a socket that refuses
// connections until the runtime is back. Bytes pass through untouched; the
// only visible difference is that the adaptation logs our PID as the
// plugin's.
type proxy struct {
	backend string
	ln      net.Listener
	wg      sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func listenProxy(public, backend string) (*proxy, error) {
	// A socket file left by a crashed run would make Listen fail.
	if err := os.Remove(public); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	ln, err := net.Listen("unix", public)
	if err != nil {
		return nil, err
	}
	p := &proxy{backend: backend, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

func (p *proxy) forward(plugin net.Conn) {
	defer p.wg.Done()
	runtime, err := net.Dial("unix", p.backend)
	if err != nil {
		plugin.Close()
		return
	}
	if !p.track(plugin, runtime) {
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(runtime, plugin)
	go pipe(plugin, runtime)
	<-done
	// One side is gone (plugin killed, or runtime dropped the plugin):
	// close both, as the kernel would for a direct connection.
	p.untrack(plugin, runtime)
	<-done
}

func (p *proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *proxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		c.Close()
		delete(p.conns, c)
	}
}

// Close stops accepting, removes the socket file and cuts every plugin
// connection, then waits for the forwarding goroutines.
func (p *proxy) Close() {
	p.ln.Close() // also unlinks the socket file
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
	p.mu.Unlock()
	p.wg.Wait()
}
