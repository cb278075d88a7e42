package mockruntime

import (
	"fmt"
	"time"

	"github.com/containerd/nri/pkg/api"
)

// Option configures a Runtime.
type Option func(*config) error

type preinstalled struct {
	idx, name, binary, config string
}

type config struct {
	node           Node
	preinstalled   []preinstalled
	requestTimeout time.Duration
	shuffleSeed    *int64
	checks         []CheckFunc
	roundTrip      func(op string, took time.Duration)
}

// WithSystemdCgroups uses the kubelet's systemd cgroup driver naming
// (Node.SystemdCgroups).
func WithSystemdCgroups() Option {
	return func(c *config) error {
		c.node.SystemdCgroups = true
		return nil
	}
}

// WithPreinstalledPlugin copies binary to plugins/<idx>-<name> and, when
// cfg is not empty, writes it to conf.d/<idx>-<name>.conf. Start launches
// it the way containerd launches /opt/nri/plugins: no arguments, the
// connection on fd 3, and the config text passed to Configure.
func WithPreinstalledPlugin(idx, name, binary, cfg string) Option {
	return func(c *config) error {
		if err := api.CheckPluginIndex(idx); err != nil {
			return err
		}
		if err := api.CheckPluginName(name); err != nil {
			return err
		}
		c.preinstalled = append(c.preinstalled, preinstalled{idx, name, binary, cfg})
		return nil
	}
}

// WithRequestTimeout sets NRI's plugin request timeout (default 2s).
// NRI keeps it in a process-wide variable: tests that change it must not
// run in parallel with others. Close puts the default back.
func WithRequestTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("request timeout %v: must be > 0", d)
		}
		c.requestTimeout = d
		return nil
	}
}

// WithShuffledSync hands pods and containers to Synchronize in a random
// order (from seed) instead of creation order. Real runtimes list them
// from maps; a plugin must not depend on the order.
func WithShuffledSync(seed int64) Option {
	return func(c *config) error {
		c.shuffleSeed = &seed
		return nil
	}
}

// WithCheck adds an invariant check that runs after every request, every
// Synchronize and every unsolicited update, also after failed requests.
// Violations are recorded, not returned by the request: read them with
// Violations (NewForTest reports them at cleanup).
func WithCheck(fn CheckFunc) Option {
	return func(c *config) error {
		c.checks = append(c.checks, fn)
		return nil
	}
}

// WithRoundTripObserver calls fn with the duration of every request the
// runtime relays to plugins through the adaptation (CreateContainer,
// StartContainer, UpdateContainer, StopContainer, RemoveContainer): the
// NRI round trip alone, without the mock runtime's bookkeeping and checks.
// fn runs on the request path and must be fast.
func WithRoundTripObserver(fn func(op string, took time.Duration)) Option {
	return func(c *config) error {
		c.roundTrip = fn
		return nil
	}
}
