// Package metrics makes the running plugin observable: Prometheus metrics on
// a private registry, and one HTTP listener that serves them with the health
// endpoints and the allocation state.
//
//   - /metrics  the Prometheus metrics. Gauges (CPUs per NUMA node, the
//     shared pool, containers by class) are computed at scrape time from
//     plugin.Snapshot; counters and histograms (decisions, NRI request
//     latency) come from the plugin's Observer hooks, which Metrics
//     implements; config reload results come from RecordReload.
//   - /healthz  200 while the process serves HTTP.
//   - /readyz   200 when the plugin is registered with the runtime and
//     synchronized and the last config reload did not fail; 503 with the
//     reason otherwise.
//   - /state    the State as JSON: the machine, every container's placement,
//     the shared pool, reserved and managed CPUs. `numaspread status` draws it.
//
// Labels are bounded: NUMA node ids, NRI event names, container classes and
// outcome reasons; never cpusets or container names.
package metrics

import (
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/numaspread/numaspread/plugin"
	"github.com/numaspread/numaspread/topology"
)

// Version is the build's version, reported by numaspread_build_info and
// /state. Set it with
//
//	go build -ldflags "-X github.com/numaspread/numaspread/metrics.Version=v1.2.3"
var Version = "dev"

const namespace = "numaspread"

// Source is what Metrics reads at scrape time: *plugin.Plugin.
type Source interface {
	Snapshot() plugin.Snapshot
	Topology() *topology.Topology
	// Synced is Snapshot().Synced without the snapshot, for /readyz.
	Synced() bool
}

// Metrics holds the collectors and the last reload result. It implements
// plugin.Observer. Create it with New.
type Metrics struct {
	src Source
	reg *prometheus.Registry

	// The Observer methods run under the plugin's lock: they do a map
	// lookup or two and an atomic add. Decision children are made in New
	// (so every outcome shows, at 0); request children on first use, so
	// that events the plugin never handles add no series.
	latency     *prometheus.HistogramVec
	reqErrors   *prometheus.CounterVec
	decisions   map[string]prometheus.Counter
	otherReject prometheus.Counter

	reloads, reloadErrors prometheus.Counter
	lastReloadOK          prometheus.Gauge
	lastReloadTime        prometheus.Gauge

	mu         sync.Mutex
	lastReload *ReloadStatus      // nil: no reload yet
	topo       *topology.Topology // the machine summary was made of
	summary    topology.Summary
}

var _ plugin.Observer = (*Metrics)(nil)

// nriEvents are the NRI requests a plugin can be sent; any other name is
// counted as "other", so the event label stays bounded.
var nriEvents = func() map[string]bool {
	m := map[string]bool{}
	for _, e := range []string{
		"Configure", "Synchronize", "Shutdown",
		"RunPodSandbox", "UpdatePodSandbox", "PostUpdatePodSandbox", "StopPodSandbox", "RemovePodSandbox",
		"CreateContainer", "PostCreateContainer", "StartContainer", "PostStartContainer",
		"UpdateContainer", "PostUpdateContainer", "StopContainer", "RemoveContainer",
	} {
		m[e] = true
	}
	return m
}()

// latencyBuckets suit handlers that take microseconds to milliseconds, with
// a tail up to NRI's 2 s request timeout.
var latencyBuckets = []float64{
	10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2,
}

// New returns the metrics of plugin src, registered on a private registry
// together with the Go runtime and process collectors.
func New(src Source) *Metrics {
	m := &Metrics{src: src, reg: prometheus.NewRegistry()}

	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "nri_request_duration_seconds",
		Help:    "Time the plugin took to handle an NRI request, by event.",
		Buckets: latencyBuckets,
	}, []string{"event"})
	reqErrors := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "nri_request_errors_total",
		Help: "NRI requests the plugin answered with an error, by event.",
	}, []string{"event"})
	allocations := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "allocations_total",
		Help: "Containers placed, by outcome: exclusive (got exclusive CPUs), shared (not entitled or opted out), fallback_shared (entitled, too few CPUs, on_insufficient = shared).",
	}, []string{"outcome"})
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "allocation_failures_total",
		Help: "Container creations the plugin failed, by reason: insufficient (too few CPUs), annotation (a bad annotation value), other.",
	}, []string{"reason"})
	m.latency, m.reqErrors = latency, reqErrors
	m.decisions = map[string]prometheus.Counter{
		plugin.OutcomeExclusive:          allocations.WithLabelValues(plugin.OutcomeExclusive),
		plugin.OutcomeShared:             allocations.WithLabelValues(plugin.OutcomeShared),
		plugin.OutcomeFallbackShared:     allocations.WithLabelValues(plugin.OutcomeFallbackShared),
		plugin.OutcomeRejectInsufficient: failures.WithLabelValues("insufficient"),
		plugin.OutcomeRejectAnnotation:   failures.WithLabelValues("annotation"),
		plugin.OutcomeRejectOther:        failures.WithLabelValues("other"),
	}
	m.otherReject = m.decisions[plugin.OutcomeRejectOther]

	m.reloads = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "config_reloads_total",
		Help: "Configuration file changes the plugin applied.",
	})
	m.reloadErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "config_reload_errors_total",
		Help: "Configuration file changes the plugin rejected (invalid, or not fitting the machine); the running configuration stays.",
	})
	m.lastReloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "config_last_reload_successful",
		Help: "1 when the last configuration reload (or the load at start) succeeded, 0 when it failed.",
	})
	m.lastReloadTime = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "config_last_reload_timestamp_seconds",
		Help: "Unix time of the last configuration reload attempt (or of the load at start).",
	})
	m.lastReloadOK.Set(1)
	m.lastReloadTime.SetToCurrentTime()
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help:        "Always 1; the labels say which build is running.",
		ConstLabels: prometheus.Labels{"version": Version, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)

	m.reg.MustRegister(latency, reqErrors, allocations, failures,
		m.reloads, m.reloadErrors, m.lastReloadOK, m.lastReloadTime, buildInfo,
		&stateCollector{m: m},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registry returns the private registry /metrics serves.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Request implements plugin.Observer: it records one NRI request.
func (m *Metrics) Request(event string, took time.Duration, err error) {
	if !nriEvents[event] {
		event = "other"
	}
	m.latency.WithLabelValues(event).Observe(took.Seconds())
	if err != nil {
		m.reqErrors.WithLabelValues(event).Inc()
	}
}

// Decision implements plugin.Observer: it counts one placement outcome.
func (m *Metrics) Decision(outcome string) {
	c, ok := m.decisions[outcome]
	if !ok {
		c = m.otherReject
	}
	c.Inc()
}

// RecordReload records the result of one configuration reload: err is nil
// when the new configuration was applied (changed lists what changed).
// /readyz fails while the last reload failed.
func (m *Metrics) RecordReload(at time.Time, changed []string, err error) {
	st := &ReloadStatus{Time: at, OK: err == nil, Changed: changed}
	if err != nil {
		st.Error = err.Error()
		m.reloadErrors.Inc()
		m.lastReloadOK.Set(0)
	} else {
		m.reloads.Inc()
		m.lastReloadOK.Set(1)
	}
	m.lastReloadTime.Set(float64(at.UnixNano()) / 1e9)
	m.mu.Lock()
	m.lastReload = st
	m.mu.Unlock()
}

// LastReload returns the last reload's result, or nil when there was none.
func (m *Metrics) LastReload() *ReloadStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lastReload == nil {
		return nil
	}
	c := *m.lastReload
	return &c
}

// machine returns the plugin's topology and its summary, made once per
// topology (it changes at most once, in a pre-installed plugin's Configure).
func (m *Metrics) machine() (*topology.Topology, topology.Summary) {
	t := m.src.Topology()
	m.mu.Lock()
	defer m.mu.Unlock()
	if t != m.topo {
		m.topo, m.summary = t, topology.Summarize(t)
	}
	return m.topo, m.summary
}

// State returns the plugin's state as /state serves it.
func (m *Metrics) State() State {
	t, sum := m.machine()
	st := buildState(t, sum, m.src.Snapshot())
	st.LastReload = m.LastReload()
	st.Ready, st.NotReady = ready(st.Synced, st.LastReload)
	return st
}

// Ready reports whether the plugin is ready, and why not when it is not.
func (m *Metrics) Ready() (bool, string) {
	return ready(m.src.Synced(), m.LastReload())
}

func ready(synced bool, last *ReloadStatus) (bool, string) {
	var why []string
	if !synced {
		why = append(why, "not registered with the runtime and synchronized")
	}
	if last != nil && !last.OK {
		why = append(why, "the last configuration reload failed: "+last.Error)
	}
	if len(why) == 0 {
		return true, ""
	}
	s := why[0]
	for _, w := range why[1:] {
		s += "; " + w
	}
	return false, s
}
