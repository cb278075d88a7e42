package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// stateCollector computes the allocation gauges from one plugin snapshot
// per scrape, so they can never drift from the plugin's state.
type stateCollector struct{ m *Metrics }

var (
	descNodeExclusive = prometheus.NewDesc(namespace+"_node_exclusive_cpus",
		"CPUs of the NUMA node held exclusively by containers.", []string{"node"}, nil)
	descNodeFree = prometheus.NewDesc(namespace+"_node_free_cpus",
		"Managed CPUs of the NUMA node that are neither reserved nor held: what exclusive requests can still get.", []string{"node"}, nil)
	descNodeReserved = prometheus.NewDesc(namespace+"_node_reserved_cpus",
		"Reserved CPUs (reserved_cpus) of the NUMA node not held by a container.", []string{"node"}, nil)
	descSharedPool = prometheus.NewDesc(namespace+"_shared_pool_cpus",
		"CPUs in the shared pool that non-exclusive containers run on.", nil, nil)
	descContainers = prometheus.NewDesc(namespace+"_containers",
		"Running containers the plugin placed, by class (exclusive, shared).", []string{"class"}, nil)
	descSynced = prometheus.NewDesc(namespace+"_synchronized",
		"1 when the plugin is registered with the runtime and synchronized.", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNodeExclusive, descNodeFree, descNodeReserved, descSharedPool, descContainers, descSynced} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.src.Snapshot()
	for _, n := range nodeCounts(c.m.src.Topology(), s, heldCPUs(s)) {
		node := strconv.Itoa(n.ID)
		ch <- prometheus.MustNewConstMetric(descNodeExclusive, prometheus.GaugeValue, float64(n.Exclusive), node)
		ch <- prometheus.MustNewConstMetric(descNodeFree, prometheus.GaugeValue, float64(n.Free), node)
		ch <- prometheus.MustNewConstMetric(descNodeReserved, prometheus.GaugeValue, float64(n.Reserved), node)
	}
	ch <- prometheus.MustNewConstMetric(descSharedPool, prometheus.GaugeValue, float64(s.Shared.Count()))
	var exclusive, shared int
	for _, ctr := range s.Containers {
		if ctr.Exclusive {
			exclusive++
		} else {
			shared++
		}
	}
	ch <- prometheus.MustNewConstMetric(descContainers, prometheus.GaugeValue, float64(exclusive), ClassExclusive)
	ch <- prometheus.MustNewConstMetric(descContainers, prometheus.GaugeValue, float64(shared), ClassShared)
	synced := 0.0
	if s.Synced {
		synced = 1
	}
	ch <- prometheus.MustNewConstMetric(descSynced, prometheus.GaugeValue, synced)
}
