package plugin

import (
	"fmt"
	"runtime/debug"
)

// recoverPanic turns a panic in a request handler into an error for that
// request only, logged with the request, so that one bad message cannot take
// down the plugin (and with it every container start on the node). Use it
// as the first deferred call of a handler: defer p.recoverPanic(event, what, &err).
// cleanup, if given, runs after a panic (without the plugin's lock held) to
// undo what the request had half done.
func (p *Plugin) recoverPanic(event, what string, err *error, cleanup ...func()) {
	r := recover()
	if r == nil {
		return
	}
	for _, c := range cleanup {
		c()
	}
	p.log.WithField("request", event).WithField("target", what).
		Errorf("internal error (panic) handling the request: %v\n%s", r, debug.Stack())
	*err = fmt.Errorf("numaspread: internal error handling %s for %s: %v", event, what, r)
}
