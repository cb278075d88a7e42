package topology_test

import (
	"maps"
	"strings"
	"testing"

	"github.com/numaspread/numaspread/topology"
	"github.com/numaspread/numaspread/topology/synth"
)

// smallFiles returns the sysfs files of the seed example machine: 2 nodes,
// CPUs 0-3,8-11 on node 0 and 4-7,12-15 on node 1, siblings c and c+8.
func smallFiles(t testing.TB) map[string]string {
	t.Helper()
	files, err := synth.SmallTwoNode().Files()
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func discover(t testing.TB, files map[string]string) (*topology.Topology, error) {
	t.Helper()
	return topology.DiscoverFS(topology.NewMemFS(files))
}

// checkInvariants asserts what the policy relies on: every online CPU is in
// exactly one core and one node, cores live inside one node, and the nodes'
// CPUs partition the online set.
func checkInvariants(t testing.TB, topo *topology.Topology) {
	t.Helper()
	var all topology.Mask
	for i := range topo.Nodes {
		n := &topo.Nodes[i]
		if all.Intersects(n.CPUs) {
			t.Fatalf("node %d shares CPUs with another node", n.ID)
		}
		all.UnionInPlace(n.CPUs)
		var cores topology.Mask
		for _, ci := range n.Cores {
			cores.UnionInPlace(topo.Cores[ci].Mask)
		}
		if !cores.Equals(n.CPUs) {
			t.Fatalf("node %d: cores hold %s, node holds %s", n.ID, cores, n.CPUs)
		}
	}
	if !all.Equals(topo.Online) {
		t.Fatalf("nodes hold %s, online is %s", all, topo.Online)
	}
	topo.Online.ForEach(func(c int) bool {
		core := topo.CoreOf(c)
		if core == nil || !core.Mask.Has(c) {
			t.Fatalf("online CPU %d has no core", c)
		}
		n := topo.Node(topo.NodeOf(c))
		if n == nil || !n.CPUs.Has(c) || core.Node != n.ID {
			t.Fatalf("online CPU %d: node %d, core on node %d", c, topo.NodeOf(c), core.Node)
		}
		if len(core.Threads) > topo.ThreadsPerCore {
			t.Fatalf("core of CPU %d has %d threads, ThreadsPerCore is %d", c, len(core.Threads), topo.ThreadsPerCore)
		}
		return true
	})
	if topo.Online.Intersects(topo.Offline) {
		t.Fatalf("online %s and offline %s overlap", topo.Online, topo.Offline)
	}
}

func TestDiscoverMalformed(t *testing.T) {
	const cpu3 = "devices/system/cpu/cpu3/"
	tests := []struct {
		name    string
		edit    map[string]string // path → new contents; "" deletes
		wantErr []string
	}{
		{"bad core_id", map[string]string{cpu3 + "topology/core_id": "x\n"},
			[]string{cpu3 + `topology/core_id: invalid integer "x"`}},
		{"bad package id", map[string]string{cpu3 + "topology/physical_package_id": "1.5\n"},
			[]string{cpu3 + "topology/physical_package_id"}},
		{"bad die_id", map[string]string{cpu3 + "topology/die_id": "\n"},
			[]string{cpu3 + `topology/die_id: invalid integer ""`}},
		{"bad siblings", map[string]string{cpu3 + "topology/thread_siblings_list": "3,a\n"},
			[]string{cpu3 + "topology/thread_siblings_list", "invalid cpulist"}},
		{"bad cache level", map[string]string{cpu3 + "cache/index1/level": "one\n"},
			[]string{cpu3 + "cache/index1/level"}},
		{"bad cache id", map[string]string{cpu3 + "cache/index3/id": "-\n"},
			[]string{cpu3 + "cache/index3/id"}},
		{"bad node cpulist", map[string]string{"devices/system/node/node0/cpulist": "0-x\n"},
			[]string{"devices/system/node/node0/cpulist", "invalid cpulist"}},
		{"bad distance", map[string]string{"devices/system/node/node1/distance": "21 ten\n"},
			[]string{"devices/system/node/node1/distance", `invalid distance "ten"`}},
		{"bad meminfo", map[string]string{"devices/system/node/node1/meminfo": "Node 1 MemTotal: lots kB\n"},
			[]string{"devices/system/node/node1/meminfo", "MemTotal"}},
		{"missing online", map[string]string{"devices/system/cpu/online": ""},
			[]string{"devices/system/cpu/online: file does not exist"}},
		{"empty online", map[string]string{"devices/system/cpu/online": "\n"},
			[]string{"devices/system/cpu/online", "no online CPUs"}},
		{"bad online", map[string]string{"devices/system/cpu/online": "0-15,\n"},
			[]string{"devices/system/cpu/online"}},
		{"bad isolated", map[string]string{"devices/system/cpu/isolated": "9-8\n"},
			[]string{"devices/system/cpu/isolated", "reversed"}},
		{"bad present", map[string]string{"devices/system/cpu/present": "0-?\n"},
			[]string{"devices/system/cpu/present"}},
		{"node without cpulist", map[string]string{"devices/system/node/node1/cpulist": ""},
			[]string{"devices/system/node/node1/cpulist: file does not exist"}},
		{"CPU on no node", map[string]string{"devices/system/node/node1/cpulist": "4,6-7,12-15\n"},
			[]string{"online CPU 5 is on no NUMA node"}},
		{"CPU on two nodes", map[string]string{"devices/system/node/node1/cpulist": "0,4-7,12-15\n"},
			[]string{"CPU 0 is listed by both devices/system/node/node0/cpulist and devices/system/node/node1/cpulist"}},
		{"siblings across nodes", map[string]string{
			"devices/system/cpu/cpu0/topology/thread_siblings_list": "0,4\n",
			"devices/system/cpu/cpu4/topology/thread_siblings_list": "0,4\n"},
			[]string{"devices/system/cpu/cpu0/topology", "CPU 0 (node 0) and its thread sibling CPU 4 (node 1)"}},
		{"siblings that disagree", map[string]string{cpu3 + "topology/thread_siblings_list": "2-3\n"},
			[]string{"inconsistent sysfs", "thread sibling"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := smallFiles(t)
			for p, v := range tt.edit {
				if _, ok := files[p]; !ok {
					t.Fatalf("test edits %s, which the machine does not have", p)
				}
				if v == "" {
					delete(files, p)
				} else {
					files[p] = v
				}
			}
			topo, err := discover(t, files)
			if err == nil {
				t.Fatalf("DiscoverFS succeeded: %d CPUs", topo.Online.Count())
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestDiscoverTolerates(t *testing.T) {
	deleteAll := func(suffix string) func(map[string]string) {
		return func(files map[string]string) {
			for p := range files {
				if strings.HasSuffix(p, suffix) || strings.Contains(p, suffix+"/") {
					delete(files, p)
				}
			}
		}
	}
	tests := []struct {
		name  string
		edit  func(map[string]string)
		check func(t *testing.T, topo *topology.Topology)
	}{
		{"no die_id", deleteAll("/die_id"), func(t *testing.T, topo *topology.Topology) {
			for _, c := range topo.Cores {
				if c.Die != 0 {
					t.Errorf("core %v: die %d, want 0", c.Threads, c.Die)
				}
			}
		}},
		{"no cache", deleteAll("/cache"), func(t *testing.T, topo *topology.Topology) {
			if len(topo.Caches) != 2 || topo.Caches[0].ID != -1 || topo.Caches[1].ID != -1 {
				t.Errorf("caches %+v, want one unknown (-1) per node", topo.Caches)
			}
		}},
		{"no cache id", deleteAll("/id"), func(t *testing.T, topo *topology.Topology) {
			// Derived from the lowest CPU sharing the cache.
			if len(topo.Caches) != 2 || topo.Caches[0].ID != 0 || topo.Caches[1].ID != 4 {
				t.Errorf("caches %+v, want ids 0 and 4", topo.Caches)
			}
		}},
		{"no cache type", deleteAll("/type"), func(t *testing.T, topo *topology.Topology) {
			if len(topo.Caches) != 2 || topo.Caches[1].ID != 1 {
				t.Errorf("caches %+v, want ids 0 and 1", topo.Caches)
			}
		}},
		{"core_cpus_list only", deleteAll("/thread_siblings_list"), func(t *testing.T, topo *topology.Topology) {
			if topo.ThreadsPerCore != 2 || topo.CoreOf(3).Mask.String() != "3,11" {
				t.Errorf("siblings of 3: %s", topo.CoreOf(3).Mask)
			}
		}},
		{"no topology at all", deleteAll("/topology"), func(t *testing.T, topo *topology.Topology) {
			if topo.ThreadsPerCore != 1 || len(topo.Cores) != 16 || topo.Cores[5].ID != 5 {
				t.Errorf("want every CPU its own core: %d cores, %d threads per core", len(topo.Cores), topo.ThreadsPerCore)
			}
		}},
		{"no meminfo, no distance", func(files map[string]string) {
			deleteAll("/meminfo")(files)
			deleteAll("/distance")(files)
		}, func(t *testing.T, topo *topology.Topology) {
			for _, n := range topo.Nodes {
				if n.MemoryBytes != 0 || n.MemoryKnown || n.Distances != nil {
					t.Errorf("node %d: %d bytes (known %v), distances %v", n.ID, n.MemoryBytes, n.MemoryKnown, n.Distances)
				}
			}
			// Unknown memory: nodes with CPUs count as having memory.
			if got := topo.MemoryNodes().String(); got != "0-1" {
				t.Errorf("memory nodes %s, want 0-1", got)
			}
			if got := topo.LocalMemoryNodes(topology.MustParseMask("4")).String(); got != "1" {
				t.Errorf("local memory of CPU 4: %s, want 1", got)
			}
		}},
		{"a node with CPUs and no memory", func(files map[string]string) {
			files["devices/system/node/node1/meminfo"] = "Node 1 MemTotal:              0 kB\nNode 1 MemFree:               0 kB\n"
		}, func(t *testing.T, topo *topology.Topology) {
			n := topo.Node(1)
			if n.MemoryBytes != 0 || !n.MemoryKnown || n.HasMemory() || !topo.Node(0).HasMemory() {
				t.Errorf("node 1: %d bytes, known %v", n.MemoryBytes, n.MemoryKnown)
			}
			if got := topo.MemoryNodes().String(); got != "0" {
				t.Errorf("memory nodes %s, want 0", got)
			}
			// Node 1's CPUs take memory from node 0, the nearest with memory.
			for cpus, want := range map[string]string{"4-5": "0", "0,4": "0", "0": "0"} {
				if got := topo.LocalMemoryNodes(topology.MustParseMask(cpus)).String(); got != want {
					t.Errorf("local memory of CPUs %s: %s, want %s", cpus, got, want)
				}
			}
			if s := topology.Summarize(topo); s.Nodes[0].NoMemory || !s.Nodes[1].NoMemory {
				t.Errorf("summary nodes %+v", s.Nodes)
			}
		}},
		{"distance of the wrong length", func(files map[string]string) {
			files["devices/system/node/node0/distance"] = "10 21 30\n"
		}, func(t *testing.T, topo *topology.Topology) {
			if topo.Nodes[0].Distances != nil || topo.Nodes[1].Distances[0] != 21 {
				t.Errorf("distances %v, %v", topo.Nodes[0].Distances, topo.Nodes[1].Distances)
			}
		}},
		{"no present: offline file", func(files map[string]string) {
			delete(files, "devices/system/cpu/present")
			files["devices/system/cpu/online"] = "0-14\n"
			files["devices/system/cpu/offline"] = "15\n"
			files["devices/system/node/node1/cpulist"] = "4-7,12-14\n"
			files["devices/system/cpu/cpu7/topology/thread_siblings_list"] = "7\n"
		}, func(t *testing.T, topo *topology.Topology) {
			if topo.Offline.String() != "15" || topo.MaxCPU != 16 || len(topo.CoreOf(7).Threads) != 1 {
				t.Errorf("offline %s, MaxCPU %d", topo.Offline, topo.MaxCPU)
			}
		}},
		{"node lists an offline CPU", func(files map[string]string) {
			files["devices/system/node/node1/cpulist"] = "4-7,12-15,16\n"
		}, func(t *testing.T, topo *topology.Topology) {
			if topo.Nodes[1].CPUs.String() != "4-7,12-15" {
				t.Errorf("node 1: %s", topo.Nodes[1].CPUs)
			}
		}},
		{"meminfo without MemTotal", func(files map[string]string) {
			files["devices/system/node/node0/meminfo"] = "Node 0 MemFree: 5 kB\n"
		}, func(t *testing.T, topo *topology.Topology) {
			if topo.Nodes[0].MemoryBytes != 0 || topo.Nodes[0].MemoryKnown || !topo.Nodes[0].HasMemory() {
				t.Errorf("node 0: %d bytes, known %v", topo.Nodes[0].MemoryBytes, topo.Nodes[0].MemoryKnown)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := smallFiles(t)
			tt.edit(files)
			topo, err := discover(t, files)
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, topo)
			tt.check(t, topo)
		})
	}
}

func TestDiscoverSynthVariants(t *testing.T) {
	tests := []struct {
		spec  synth.Spec
		check func(t *testing.T, topo *topology.Topology)
	}{
		{synth.Spec{Name: "old kernel", Sockets: 2, CoresPerSocket: 4, ThreadsPerCore: 2, NoCacheID: true, NoDieID: true},
			func(t *testing.T, topo *topology.Topology) {
				if len(topo.Caches) != 2 || topo.Caches[1].ID != 4 {
					t.Errorf("caches %+v", topo.Caches)
				}
			}},
		{synth.Spec{Name: "dies", Sockets: 1, DiesPerSocket: 2, NodesPerSocket: 2, CoresPerSocket: 8, ThreadsPerCore: 2},
			func(t *testing.T, topo *topology.Topology) {
				if topo.CoreOf(0).Die != 0 || topo.CoreOf(4).Die != 1 || topo.NodeOf(4) != 1 {
					t.Errorf("CPU 4: die %d node %d", topo.CoreOf(4).Die, topo.NodeOf(4))
				}
			}},
		{synth.Spec{Name: "socket interleaved", Sockets: 2, CoresPerSocket: 4, ThreadsPerCore: 2, Numbering: synth.Interleaved},
			func(t *testing.T, topo *topology.Topology) {
				if topo.Nodes[1].CPUs.String() != "1,3,5,7,9,11,13,15" || topo.CoreOf(1).Mask.String() != "1,9" {
					t.Errorf("node 1: %s, core of 1: %s", topo.Nodes[1].CPUs, topo.CoreOf(1).Mask)
				}
			}},
		{synth.Spec{Name: "offline sibling", Sockets: 1, CoresPerSocket: 4, ThreadsPerCore: 2, Offline: "5", ExtraPossible: 4},
			func(t *testing.T, topo *topology.Topology) {
				if topo.Offline.String() != "5" || topo.CoreOf(1).Mask.String() != "1" || topo.MaxCPU != 8 {
					t.Errorf("offline %s, core of 1 %s, MaxCPU %d", topo.Offline, topo.CoreOf(1).Mask, topo.MaxCPU)
				}
			}},
		{synth.Spec{Name: "SMT4", Sockets: 1, CoresPerSocket: 2, ThreadsPerCore: 4, Numbering: synth.SiblingsAdjacent},
			func(t *testing.T, topo *topology.Topology) {
				if topo.ThreadsPerCore != 4 || topo.CoreOf(6).Mask.String() != "4-7" {
					t.Errorf("SMT4: %d threads, core of 6: %s", topo.ThreadsPerCore, topo.CoreOf(6).Mask)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.spec.Name, func(t *testing.T) {
			topo, err := tt.spec.Topology()
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, topo)
			tt.check(t, topo)
		})
	}
}

func FuzzDiscoverFS(f *testing.F) {
	base := smallFiles(f)
	keys := sortedKeys(base)
	f.Add(uint16(0), "0-15\n", uint16(1), "")
	f.Add(uint16(3), "x", uint16(200), "0-3,8-11")
	f.Add(uint16(470), "10 99\n", uint16(471), "Node 0 MemTotal: 5 kB")
	f.Add(uint16(9), "3\n", uint16(17), "0,8\n")
	f.Fuzz(func(t *testing.T, i uint16, a string, j uint16, b string) {
		files := maps.Clone(base)
		files[keys[int(i)%len(keys)]] = a
		files[keys[int(j)%len(keys)]] = b
		topo, err := topology.DiscoverFS(topology.NewMemFS(files))
		if err != nil {
			return
		}
		checkInvariants(t, topo)
	})
}

func BenchmarkDiscoverFS4096(b *testing.B) {
	files, err := synth.ThirtyTwoNode4096().Files()
	if err != nil {
		b.Fatal(err)
	}
	fsys := topology.NewMemFS(files)
	for b.Loop() {
		if _, err := topology.DiscoverFS(fsys); err != nil {
			b.Fatal(err)
		}
	}
}
