package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// sysTopology is the machine as the kernel reports it in /sys, read
// directly (independently of the plugin's topology package).
type sysTopology struct {
	online    string
	nodes     map[int]string // node → cpulist (nodes with CPUs)
	distances map[int][]int  // node → distance row
	memBytes  map[int]uint64
	cpuNode   map[int]int
	socket    map[int]int
	core      map[int]int
	die       map[int]int
	siblings  map[int]string
}

func readSysTopology(sys string) (*sysTopology, error) {
	t := &sysTopology{online: canon(readFile(sys + "/devices/system/cpu/online")),
		nodes: map[int]string{}, distances: map[int][]int{}, memBytes: map[int]uint64{}, cpuNode: map[int]int{},
		socket: map[int]int{}, core: map[int]int{}, die: map[int]int{}, siblings: map[int]string{}}
	nodeDirs, _ := filepath.Glob(sys + "/devices/system/node/node[0-9]*")
	for _, d := range nodeDirs {
		id, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "node"))
		if err != nil {
			continue
		}
		cpus := canon(readFile(d + "/cpulist"))
		if cpus != "" {
			t.nodes[id] = cpus
		}
		for _, f := range strings.Fields(readFile(d + "/distance")) {
			v, _ := strconv.Atoi(f)
			t.distances[id] = append(t.distances[id], v)
		}
		for _, line := range strings.Split(readFile(d+"/meminfo"), "\n") {
			if i := strings.Index(line, "MemTotal:"); i >= 0 {
				var kb uint64
				fmt.Sscanf(strings.TrimSpace(line[i+len("MemTotal:"):]), "%d", &kb)
				t.memBytes[id] = kb * 1024
			}
		}
		ids, _ := parseList(cpus)
		for _, c := range ids {
			t.cpuNode[c] = id
		}
	}
	ids, _ := parseList(t.online)
	for _, c := range ids {
		base := fmt.Sprintf("%s/devices/system/cpu/cpu%d/topology/", sys, c)
		atoi := func(f string) int {
			v, err := strconv.Atoi(strings.TrimSpace(readFile(base + f)))
			if err != nil {
				return 0
			}
			return v
		}
		t.socket[c], t.core[c], t.die[c] = atoi("physical_package_id"), atoi("core_id"), atoi("die_id")
		t.siblings[c] = canon(readFile(base + "thread_siblings_list"))
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("no online CPUs in %s", sys)
	}
	return t, nil
}

// compareTopology compares `numaspread topology --json` with /sys and
// returns the differences.
func compareTopology(plugin string, k *sysTopology) ([]string, error) {
	out, err := exec.Command(plugin, "topology", "--json", "--sysfs", "/sys").Output()
	if err != nil {
		return nil, fmt.Errorf("numaspread topology --json: %w", err)
	}
	var s struct {
		Online         string `json:"online"`
		ThreadsPerCore int    `json:"threadsPerCore"`
		Cores          int    `json:"cores"`
		Sockets        []int  `json:"sockets"`
		Nodes          []struct {
			ID          int            `json:"id"`
			CPUs        string         `json:"cpus"`
			MemoryBytes uint64         `json:"memoryBytes"`
			Distances   map[string]int `json:"distances"`
		} `json:"nodes"`
		CPUs []struct {
			ID       int    `json:"id"`
			Node     int    `json:"node"`
			Socket   int    `json:"socket"`
			Die      int    `json:"die"`
			Core     int    `json:"core"`
			Siblings string `json:"siblings"`
		} `json:"cpus"`
	}
	if err := json.Unmarshal(out, &s); err != nil {
		return nil, fmt.Errorf("numaspread topology --json: %w", err)
	}
	var diffs []string
	diff := func(what string, plugin, kernel any) {
		if fmt.Sprint(plugin) != fmt.Sprint(kernel) {
			diffs = append(diffs, fmt.Sprintf("%s: plugin %v, kernel %v", what, plugin, kernel))
		}
	}
	diff("online", canon(s.Online), k.online)
	coreSets, sockets, tpc := map[string]bool{}, map[int]bool{}, 0
	for c, sib := range k.siblings {
		coreSets[sib] = true
		sockets[k.socket[c]] = true
		tpc = max(tpc, count(sib))
	}
	diff("threads per core", s.ThreadsPerCore, tpc)
	diff("cores", s.Cores, len(coreSets))
	var ks []int
	for id := range sockets {
		ks = append(ks, id)
	}
	sort.Ints(ks)
	diff("sockets", s.Sockets, ks)
	seen := map[int]bool{}
	for _, n := range s.Nodes {
		seen[n.ID] = true
		diff(fmt.Sprintf("node%d cpus", n.ID), canon(n.CPUs), k.nodes[n.ID])
		if mb, ok := k.memBytes[n.ID]; ok {
			diff(fmt.Sprintf("node%d memory", n.ID), n.MemoryBytes, mb)
		}
		row := k.distances[n.ID]
		for to, d := range n.Distances {
			i, _ := strconv.Atoi(to)
			if i < len(row) {
				diff(fmt.Sprintf("distance %d→%d", n.ID, i), d, row[i])
			} else {
				diffs = append(diffs, fmt.Sprintf("distance %d→%d: plugin %d, kernel has none", n.ID, i, d))
			}
		}
		if len(n.Distances) != len(row) {
			diffs = append(diffs, fmt.Sprintf("node%d: plugin has %d distances, kernel %d", n.ID, len(n.Distances), len(row)))
		}
	}
	for id := range k.nodes {
		if !seen[id] {
			diffs = append(diffs, fmt.Sprintf("node%d (cpus %s) missing in the plugin's view", id, k.nodes[id]))
		}
	}
	diff("CPU count", len(s.CPUs), len(k.siblings))
	for _, c := range s.CPUs {
		diff(fmt.Sprintf("cpu%d node", c.ID), c.Node, k.cpuNode[c.ID])
		diff(fmt.Sprintf("cpu%d socket", c.ID), c.Socket, k.socket[c.ID])
		diff(fmt.Sprintf("cpu%d core_id", c.ID), c.Core, k.core[c.ID])
		diff(fmt.Sprintf("cpu%d die", c.ID), c.Die, k.die[c.ID])
		diff(fmt.Sprintf("cpu%d siblings", c.ID), canon(c.Siblings), k.siblings[c.ID])
	}
	return diffs, nil
}

// nodesOf returns the NUMA nodes of cpus as a list.
func (k *sysTopology) nodesOf(cpus string) string {
	ids, _ := parseList(cpus)
	set := map[int]bool{}
	for _, c := range ids {
		set[k.cpuNode[c]] = true
	}
	var nodes []int
	for n := range set {
		nodes = append(nodes, n)
	}
	return formatList(nodes)
}

// perNode splits cpus by NUMA node.
func (k *sysTopology) perNode(cpus string) map[int][]int {
	ids, _ := parseList(cpus)
	out := map[int][]int{}
	for _, c := range ids {
		out[k.cpuNode[c]] = append(out[k.cpuNode[c]], c)
	}
	return out
}

// wholeCore reports whether ids are exactly the threads of one core.
func (k *sysTopology) wholeCore(ids []int) bool {
	return len(ids) > 0 && k.siblings[ids[0]] == formatList(ids)
}

// runGuest is the guest half of the NUMA e2e; /init runs it inside QEMU.
func runGuest(o options, r *report) error {
	if why := cpusetController(); why != "" {
		return fmt.Errorf("guest: %s", why)
	}
	k, err := readSysTopology("/sys")
	if err != nil {
		return err
	}
	nodeIDs := sortedInts(k.nodes)
	layout := []string{}
	for _, n := range nodeIDs {
		layout = append(layout, fmt.Sprintf("node%d=%s", n, k.nodes[n]))
	}
	if len(nodeIDs) == 2 && k.nodes[0] == "0-3" && k.nodes[1] == "4-7" && k.siblings[0] == "0-1" && k.siblings[6] == "6-7" {
		r.pass("guest/qemu-numa-layout", "%s, thread siblings 0-1 2-3 4-5 6-7", strings.Join(layout, " "))
	} else {
		r.fail("guest/qemu-numa-layout", "want node0=0-3 node1=4-7 with sibling pairs, got %s siblings %v", strings.Join(layout, " "), k.siblings)
	}
	diffs, err := compareTopology(guestPlugin, k)
	if err != nil {
		r.fail("guest/topology-matches-kernel", "%v", err)
	} else if len(diffs) > 0 {
		r.fail("guest/topology-matches-kernel", "%s", strings.Join(diffs, "; "))
	} else {
		r.pass("guest/topology-matches-kernel", "numaspread topology --json equals /sys: %d CPUs, %d nodes, siblings, sockets, core ids, distances, memory", len(k.siblings), len(k.nodes))
	}

	// In the guest root has every capability: containerd runs at -999 like
	// a systemd-managed one, and the kubelet's oom_score_adj reach runc as is.
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte("-999"), 0o644); err != nil {
		return err
	}
	t := tools{bin: guestBin, containerd: guestBin + "/containerd", ctr: guestBin + "/ctr", crictl: guestBin + "/crictl", runc: runcPath}
	e, err := newEnv(r, t, guestPlugin)
	if err != nil {
		return err
	}
	// No teardown: the guest powers off when this returns.
	e.restrictOOM = false
	e.criTimeout, e.slow = 120*time.Second, 60*time.Second
	if !strings.Contains(readFile("/proc/filesystems"), "overlay") {
		e.snapshotter = "native"
	}
	start := time.Now()
	if err := e.startContainerd(); err != nil {
		return err
	}
	if err := e.importImages(images{probe: guestImages + "/probe.oci.tar", pause: guestImages + "/pause.oci.tar"}); err != nil {
		return err
	}
	if err := e.startPlugin(); err != nil {
		return err
	}
	r.pass("guest/plugin-registers", "containerd + plugin up in %s (snapshotter %s)", time.Since(start).Round(time.Second), e.snapshotter)

	all := k.online
	allMems := formatList(nodeIDs)
	shared, err := e.startPod(podSpec{name: "numa-shared", qos: bestEffort})
	if err != nil {
		return err
	}
	e.expect("guest/shared-all-cpus", shared, all, allMems)

	// Distributed (the default): one whole core on each node, memory of both.
	g, err := e.startPod(podSpec{name: "numa-distributed", qos: guaranteed, cpuRequest: 4000})
	if err != nil {
		return err
	}
	if v, err := e.settle(g); err != nil {
		r.fail("guest/distributed-4cpu", "%v", err)
	} else {
		per := k.perNode(v.specCPUs)
		ok := len(per) == len(nodeIDs) && v.specMems == allMems
		for _, ids := range per {
			ok = ok && len(ids) == 2 && k.wholeCore(ids)
		}
		if ok {
			r.pass("guest/distributed-4cpu", "cpus %s (one whole core on each node), mems %s in spec, cgroup and process", v.specCPUs, v.specMems)
		} else {
			r.fail("guest/distributed-4cpu", "want one whole core per node and mems %s, got %s", allMems, v)
		}
		rest := minus(all, v.specCPUs)
		e.expect("guest/distributed-shared-shrinks", shared, rest, k.nodesOf(rest))
	}
	if err := e.stopContainer(g); err != nil {
		return err
	}
	e.expect("guest/shared-grows-after-stop", shared, all, allMems)
	if err := e.removePod(g); err != nil {
		return err
	}

	// Packed by annotation: both cores of one node and only that node's memory.
	p, err := e.startPod(podSpec{name: "numa-packed", qos: guaranteed, cpuRequest: 4000,
		annotations: map[string]string{"numaspread.io/policy": "packed"}})
	if err != nil {
		return err
	}
	if v, err := e.settle(p); err != nil {
		r.fail("guest/packed-4cpu", "%v", err)
	} else {
		per := k.perNode(v.specCPUs)
		ok := len(per) == 1
		for n, ids := range per {
			ok = ok && formatList(ids) == k.nodes[n] && v.specMems == strconv.Itoa(n)
		}
		if ok {
			r.pass("guest/packed-4cpu", "cpus %s (both cores of node %s), mems %s in spec, cgroup and process", v.specCPUs, v.specMems, v.specMems)
		} else {
			r.fail("guest/packed-4cpu", "want both cores of one node and that node's mems, got %s", v)
		}
		rest := minus(all, v.specCPUs)
		e.expect("guest/packed-shared-on-other-node", shared, rest, k.nodesOf(rest))
	}
	if err := e.stopContainer(p); err != nil {
		return err
	}
	e.expect("guest/shared-grows-after-packed-stop", shared, all, allMems)
	return nil
}

func sortedInts[V any](m map[int]V) []int {
	var ids []int
	for id := range m {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids
}
