package plugin

import (
	"fmt"
	"runtime/debug"
)

// recoverPanic turns a panic in a request handler into an error for that
// request only, logged with the request, so that one bad message cannot take
// down the plugin (and with it every container start on the node). Use it
// as the first deferred call of a handler: defer p.recoverPanic(&r, &err).
// cleanup, if given, runs after a panic (without the plugin's lock held) to
// undo what the request had half done. The observer is told of the request
// as failed, unless it was told before the panic (or its report panicked).
func (p *Plugin) recoverPanic(r *request, err *error, cleanup ...func()) {
	v := recover()
	if v == nil {
		return
	}
	for _, c := range cleanup {
		c()
	}
	what := r.target()
	p.log.WithField("request", r.event).WithField("target", what).
		Errorf("internal error (panic) handling the request: %v\n%s", v, debug.Stack())
	*err = fmt.Errorf("numaspread: internal error handling %s for %s: %v", r.event, what, v)
	p.observePanic(r, *err)
}
