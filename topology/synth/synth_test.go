package synth_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/numaspread/numaspread/topology"
	"github.com/numaspread/numaspread/topology/synth"
)

// shape is what a preset must discover as.
type shape struct {
	online, offline, isolated string
	nodes, cpuless, sockets   int
	cores, threadsPerCore     int
	coresPerNode, l3PerNode   int            // on every node with CPUs
	siblings                  map[int]string // CPU → its core's online threads
	nodeOf                    map[int]int
	distances                 [][3]int // from, to, distance: entries to check; empty checks none (symmetry is checked always)
	memory                    uint64   // of node 0
}

func TestPresets(t *testing.T) {
	const gib = 1 << 30
	want := map[string]shape{
		"NoNUMA": {online: "0-7", nodes: 1, sockets: 1, cores: 4, threadsPerCore: 2, coresPerNode: 4, l3PerNode: 1,
			siblings: map[int]string{0: "0-1", 7: "6-7"}, nodeOf: map[int]int{7: 0}},
		"Desktop": {online: "0-15", nodes: 1, sockets: 1, cores: 8, threadsPerCore: 2, coresPerNode: 8, l3PerNode: 1,
			siblings: map[int]string{0: "0-1", 15: "14-15"}, distances: [][3]int{{0, 0, 10}}, memory: 16 * gib},
		"Hybrid": {online: "0-15", nodes: 1, sockets: 1, cores: 12, threadsPerCore: 2, coresPerNode: 12, l3PerNode: 1,
			siblings: map[int]string{1: "0-1", 7: "6-7", 8: "8", 15: "15"}, memory: 16 * gib},
		"SmallTwoNode": {online: "0-15", nodes: 2, sockets: 2, cores: 8, threadsPerCore: 2, coresPerNode: 4, l3PerNode: 1,
			siblings: map[int]string{0: "0,8", 5: "5,13"}, nodeOf: map[int]int{3: 0, 4: 1, 11: 0, 12: 1},
			distances: [][3]int{{0, 1, 21}, {1, 1, 10}}, memory: 16 * gib},
		"FourNode": {online: "0-31", nodes: 4, sockets: 2, cores: 16, threadsPerCore: 2, coresPerNode: 4, l3PerNode: 1,
			siblings: map[int]string{0: "0,16", 13: "13,29"}, nodeOf: map[int]int{4: 1, 15: 3, 20: 1},
			distances: [][3]int{{0, 1, 12}, {0, 2, 21}, {3, 2, 12}}},
		"SharedNode": {online: "0-31", nodes: 1, sockets: 2, cores: 16, threadsPerCore: 2, coresPerNode: 16, l3PerNode: 2,
			siblings: map[int]string{0: "0,16", 8: "8,24"}, nodeOf: map[int]int{31: 0}},
		"MemoryOnly": {online: "0-31", nodes: 4, cpuless: 2, sockets: 2, cores: 16, threadsPerCore: 2, coresPerNode: 8, l3PerNode: 1,
			siblings: map[int]string{0: "0,16"}, nodeOf: map[int]int{8: 1, 16: 0},
			distances: [][3]int{{0, 2, 17}, {0, 3, 28}, {1, 3, 17}, {2, 3, 28}, {3, 3, 10}}},
		"NoSMT": {online: "0-31", nodes: 4, sockets: 2, cores: 32, threadsPerCore: 1, coresPerNode: 8, l3PerNode: 1,
			siblings: map[int]string{5: "5"}, nodeOf: map[int]int{8: 1, 31: 3}},
		"TwoSocket": {online: "0-63", nodes: 2, sockets: 2, cores: 32, threadsPerCore: 2, coresPerNode: 16, l3PerNode: 1,
			siblings: map[int]string{0: "0,32", 16: "16,48"}, nodeOf: map[int]int{16: 1, 47: 0}},
		"SNC": {online: "0-63", isolated: "4-7,36-39", nodes: 4, sockets: 2, cores: 32, threadsPerCore: 2, coresPerNode: 8, l3PerNode: 1,
			siblings: map[int]string{5: "5,37"}, nodeOf: map[int]int{5: 1, 6: 2, 37: 1, 63: 3},
			distances: [][3]int{{0, 2, 12}, {0, 1, 21}, {1, 3, 12}}},
		"AMDLike": {online: "0-63", nodes: 4, sockets: 1, cores: 32, threadsPerCore: 2, coresPerNode: 8, l3PerNode: 2,
			siblings: map[int]string{0: "0,32"}, nodeOf: map[int]int{8: 1, 40: 1}, distances: [][3]int{{0, 3, 12}}},
		"TwoSocketTwoNode": {online: "0-127", nodes: 4, sockets: 2, cores: 64, threadsPerCore: 2, coresPerNode: 16, l3PerNode: 1,
			siblings: map[int]string{0: "0,64", 17: "17,81"}, nodeOf: map[int]int{16: 1, 63: 3, 127: 3}},
		"EightNode512": {online: "0-511", nodes: 8, sockets: 2, cores: 256, threadsPerCore: 2, coresPerNode: 32, l3PerNode: 2,
			siblings: map[int]string{0: "0,256"}, nodeOf: map[int]int{32: 1, 511: 7}, distances: [][3]int{{0, 4, 21}, {0, 3, 12}}},
		"ThirtyTwoNode4096": {online: "0-4031", offline: "4032-4095", nodes: 32, sockets: 4, cores: 2048, threadsPerCore: 2,
			coresPerNode: 64, l3PerNode: 4,
			siblings: map[int]string{0: "0,2048", 1983: "1983,4031", 1984: "1984", 2047: "2047"},
			nodeOf:   map[int]int{1984: 31, 4031: 30}, distances: [][3]int{{0, 7, 12}, {0, 8, 21}}},
	}
	for _, spec := range synth.Presets() {
		t.Run(spec.Name, func(t *testing.T) {
			w, ok := want[spec.Name]
			if !ok {
				t.Fatalf("no expected shape for preset %s", spec.Name)
			}
			if s, ok := synth.Preset(strings.ToLower(spec.Name)); !ok || s.Name != spec.Name {
				t.Errorf("Preset(%q) does not find it", spec.Name)
			}
			topo, err := spec.Topology()
			if err != nil {
				t.Fatal(err)
			}
			checkShape(t, topo, w)
		})
	}
	if len(want) != len(synth.Presets()) {
		t.Errorf("%d expected shapes for %d presets", len(want), len(synth.Presets()))
	}
}

func checkShape(t *testing.T, topo *topology.Topology, w shape) {
	t.Helper()
	if topo.Online.String() != w.online || topo.Offline.String() != w.offline || topo.Isolated.String() != w.isolated {
		t.Errorf("online %q offline %q isolated %q; want %q %q %q",
			topo.Online, topo.Offline, topo.Isolated, w.online, w.offline, w.isolated)
	}
	cpuless := 0
	for _, n := range topo.Nodes {
		if !n.HasCPUs() {
			cpuless++
			if n.MemoryBytes == 0 {
				t.Errorf("memory-only node %d has no memory", n.ID)
			}
			continue
		}
		if len(n.Cores) != w.coresPerNode || len(n.Caches) != w.l3PerNode {
			t.Errorf("node %d: %d cores, %d L3; want %d, %d", n.ID, len(n.Cores), len(n.Caches), w.coresPerNode, w.l3PerNode)
		}
	}
	if len(topo.Nodes) != w.nodes || cpuless != w.cpuless || len(topo.Sockets()) != w.sockets {
		t.Errorf("%d nodes (%d CPU-less), %d sockets; want %d (%d), %d",
			len(topo.Nodes), cpuless, len(topo.Sockets()), w.nodes, w.cpuless, w.sockets)
	}
	if len(topo.Cores) != w.cores || topo.ThreadsPerCore != w.threadsPerCore {
		t.Errorf("%d cores × %d threads; want %d × %d", len(topo.Cores), topo.ThreadsPerCore, w.cores, w.threadsPerCore)
	}
	for cpu, sib := range w.siblings {
		if c := topo.CoreOf(cpu); c == nil || c.Mask.String() != sib {
			t.Errorf("core of CPU %d: %v, want %s", cpu, c, sib)
		}
	}
	for cpu, node := range w.nodeOf {
		if got := topo.NodeOf(cpu); got != node {
			t.Errorf("CPU %d on node %d, want %d", cpu, got, node)
		}
	}
	for _, d := range w.distances {
		if got := topo.Node(d[0]).Distances[d[1]]; got != d[2] {
			t.Errorf("distance %d→%d = %d, want %d", d[0], d[1], got, d[2])
		}
	}
	if w.memory != 0 && topo.Nodes[0].MemoryBytes != w.memory {
		t.Errorf("node 0 memory %d, want %d", topo.Nodes[0].MemoryBytes, w.memory)
	}
	// Every node's distance row is symmetric with the others.
	for _, a := range topo.Nodes {
		for _, b := range topo.Nodes {
			if a.Distances[b.ID] != b.Distances[a.ID] {
				t.Errorf("distance %d→%d differs from %d→%d", a.ID, b.ID, b.ID, a.ID)
			}
		}
	}
}

// TestRoundTrip writes presets to a directory and to a tarball and
// discovers them back from disk.
func TestRoundTrip(t *testing.T) {
	for _, spec := range []synth.Spec{synth.NoNUMA(), synth.Hybrid(), synth.SmallTwoNode(), synth.MemoryOnly(), synth.SNC()} {
		t.Run(spec.Name, func(t *testing.T) {
			want := spec.MustTopology()
			dir := t.TempDir()
			if err := spec.WriteDir(filepath.Join(dir, "sys")); err != nil {
				t.Fatal(err)
			}
			tarball := filepath.Join(dir, "sys.tar.gz")
			if err := spec.WriteTarGz(tarball); err != nil {
				t.Fatal(err)
			}
			for _, root := range []string{filepath.Join(dir, "sys"), tarball} {
				got, err := topology.Discover(root)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("Discover(%s) differs from DiscoverFS(FS())", root)
				}
			}
		})
	}
}

func TestWriteTarGzIsDeterministic(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.tgz"), filepath.Join(dir, "b.tgz")
	for _, p := range []string{a, b} {
		if err := synth.FourNode().WriteTarGz(p); err != nil {
			t.Fatal(err)
		}
	}
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	if len(da) == 0 || !bytes.Equal(da, db) {
		t.Errorf("two tarballs of one Spec differ")
	}
}

func TestFilesLookLikeTheKernel(t *testing.T) {
	files, err := synth.MemoryOnly().Files()
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		"devices/system/cpu/online":                       "0-31\n",
		"devices/system/cpu/offline":                      "\n",
		"devices/system/cpu/isolated":                     "\n",
		"devices/system/cpu/cpu5/cache/index3/level":      "3\n",
		"devices/system/cpu/cpu5/cache/index3/type":       "Unified\n",
		"devices/system/cpu/cpu5/cache/index0/type":       "Data\n",
		"devices/system/cpu/cpu5/topology/core_cpus_list": "5,21\n",
		"devices/system/node/node0/distance":              "10 21 17 28\n",
		"devices/system/node/node2/cpulist":               "\n",
		"devices/system/node/has_cpu":                     "0-1\n",
		"devices/system/node/node0/meminfo": "Node 0 MemTotal:       16777216 kB\n" +
			"Node 0 MemFree:        14680064 kB\nNode 0 MemUsed:         2097152 kB\n",
	} {
		if got := files[p]; got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	if _, ok := files["devices/system/cpu/cpu0/online"]; ok {
		t.Errorf("cpu0/online exists; x86 kernels do not write it")
	}
}

func TestInvalidSpecs(t *testing.T) {
	tests := []struct {
		spec synth.Spec
		want string
	}{
		{synth.Spec{Name: "empty"}, "at least one socket"},
		{synth.Spec{Name: "uneven nodes", Sockets: 1, CoresPerSocket: 6, NodesPerSocket: 4}, "do not split into 4 nodes"},
		{synth.Spec{Name: "uneven L3", Sockets: 1, CoresPerSocket: 6, L3PerNode: 4}, "do not split into 4 L3"},
		{synth.Spec{Name: "both L3", Sockets: 1, CoresPerSocket: 8, L3PerNode: 2, L3PerSocket: true}, "contradict"},
		{synth.Spec{Name: "shared interleaved", Sockets: 2, CoresPerSocket: 8, SocketsPerNode: 2, Numbering: synth.Interleaved}, "SocketsPerNode"},
		{synth.Spec{Name: "ecores apart", Sockets: 1, CoresPerSocket: 8, ECores: 4}, "ECores"},
		{synth.Spec{Name: "offline absent", Sockets: 1, CoresPerSocket: 4, Offline: "4"}, "not within the present CPUs"},
		{synth.Spec{Name: "all offline", Sockets: 1, CoresPerSocket: 2, Offline: "0-1"}, "every CPU is offline"},
		{synth.Spec{Name: "bad isolated", Sockets: 1, CoresPerSocket: 2, Isolated: "x"}, "Isolated"},
		{synth.Spec{Name: "no NUMA, CXL", Sockets: 1, CoresPerSocket: 2, NoNUMA: true, MemoryOnlyNodes: 1}, "need NUMA"},
		{synth.Spec{Name: "too big", Sockets: 1, CoresPerSocket: 1 << 15, ThreadsPerCore: 4}, "more than"},
	}
	for _, tt := range tests {
		_, err := tt.spec.Files()
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.spec.Name) {
			t.Errorf("%s: error %v, want one naming the spec and containing %q", tt.spec.Name, err, tt.want)
		}
		if _, err2 := topology.DiscoverFS(tt.spec.FS()); err2 == nil || !strings.Contains(err2.Error(), tt.want) {
			t.Errorf("%s: DiscoverFS(FS()) error %v, want the Spec's error", tt.spec.Name, err2)
		}
	}
}
