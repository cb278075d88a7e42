package plugin

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"

	"github.com/numaspread/numaspread/config"
)

// recordingObserver records the requests it is told of; it panics in
// Decision when panicDecision is set, or in Request when panicRequest is.
type recordingObserver struct {
	requests                    []observed
	panicDecision, panicRequest bool
}

type observed struct {
	event string
	err   error
}

func (o *recordingObserver) Request(event string, _ time.Duration, err error) {
	o.requests = append(o.requests, observed{event, err})
	if o.panicRequest {
		panic("request boom")
	}
}

func (o *recordingObserver) Decision(string) {
	if o.panicDecision {
		panic("decision boom")
	}
}

// A request answered with an internal error after a panic is reported to
// the observer once, as failed. An observer that panics while told of a
// request is not told again (which could only panic again).
func TestPanickingRequestIsObservedAsAnError(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		event string
		// observerPanics: the observer panics in Request, told of the
		// request before it failed.
		observerPanics bool
		setup          func(p *Plugin, o *recordingObserver)
		call           func(p *Plugin, pod *api.PodSandbox, c *api.Container) error
	}{
		{"CreateContainer", false, func(_ *Plugin, o *recordingObserver) { o.panicDecision = true },
			func(p *Plugin, pod *api.PodSandbox, c *api.Container) error {
				_, _, err := p.CreateContainer(ctx, pod, c)
				return err
			}},
		{"CreateContainer", true, func(_ *Plugin, o *recordingObserver) { o.panicRequest = true },
			func(p *Plugin, pod *api.PodSandbox, c *api.Container) error {
				_, _, err := p.CreateContainer(ctx, pod, c)
				return err
			}},
		// A nil record stands in for any bug on the stop, remove and update paths.
		{"StopContainer", false, func(p *Plugin, _ *recordingObserver) { p.ctrs["db"] = nil },
			func(p *Plugin, pod *api.PodSandbox, c *api.Container) error {
				_, err := p.StopContainer(ctx, pod, c)
				return err
			}},
		{"RemoveContainer", false, func(p *Plugin, _ *recordingObserver) { p.ctrs["db"] = nil },
			func(p *Plugin, pod *api.PodSandbox, c *api.Container) error {
				return p.RemoveContainer(ctx, pod, c)
			}},
		{"UpdateContainer", false, func(p *Plugin, _ *recordingObserver) { p.ctrs["db"] = nil },
			func(p *Plugin, pod *api.PodSandbox, c *api.Container) error {
				_, err := p.UpdateContainer(ctx, pod, c, nil)
				return err
			}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/observer panics=%v", tt.event, tt.observerPanics), func(t *testing.T) {
			p := newTestPlugin(t, config.Default())
			o := &recordingObserver{}
			p.SetObserver(o)
			db := guaranteed("db", 2, "", 1)
			pod := pods(db)[0]
			tt.setup(p, o)
			err := tt.call(p, pod, db)
			if err == nil || !strings.Contains(err.Error(), "internal error handling "+tt.event+" for ns/db/db") {
				t.Fatalf("err = %v, want an internal error", err)
			}
			if tt.observerPanics {
				if len(o.requests) != 1 || o.requests[0].event != tt.event {
					t.Errorf("observed %+v, want %s once (the report that panicked)", o.requests, tt.event)
				}
				return
			}
			if len(o.requests) != 1 || o.requests[0].event != tt.event || o.requests[0].err == nil ||
				o.requests[0].err.Error() != err.Error() {
				t.Errorf("observed %+v, want %s once with the error %q", o.requests, tt.event, err)
			}
		})
	}
}

// Requests that succeed are observed once, without an error.
func TestRequestsAreObservedOnce(t *testing.T) {
	ctx := context.Background()
	p := newTestPlugin(t, config.Default())
	o := &recordingObserver{}
	p.SetObserver(o)
	db, web := guaranteed("db", 2, "", 1), shared("web", "")
	for _, c := range []*api.Container{db, web} {
		if _, _, err := p.CreateContainer(ctx, pods(c)[0], c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.UpdateContainer(ctx, pods(web)[0], web, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := p.StopContainer(ctx, pods(db)[0], db); err != nil {
		t.Fatal(err)
	}
	if err := p.RemoveContainer(ctx, pods(db)[0], db); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range o.requests {
		if r.err != nil {
			t.Errorf("%s observed with error %v", r.event, r.err)
		}
		got = append(got, r.event)
	}
	if want := "CreateContainer CreateContainer UpdateContainer StopContainer RemoveContainer"; strings.Join(got, " ") != want {
		t.Errorf("observed %q, want %q", got, want)
	}
}
