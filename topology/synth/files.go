package synth

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/numaspread/numaspread/topology"
)

const (
	cpuDir  = "devices/system/cpu"
	nodeDir = "devices/system/node"
)

// Files renders the machine as sysfs files: paths relative to the sysfs
// root ("devices/system/cpu/online") → contents, each ending in a newline as
// the kernel writes them. Besides what discovery reads it writes a few
// neighbours (kernel_max, cpuN/online, core_siblings_list, cache sizes,
// node/has_cpu, …) so that a dump looks like a real one. Hex bitmap files
// (thread_siblings, shared_cpu_map, cpumap) are left out: at thousands of
// CPUs they would take tens of megabytes and nothing reads them.
func (s Spec) Files() (map[string]string, error) {
	m, err := s.build()
	if err != nil {
		return nil, err
	}
	files := make(map[string]string, 32*m.present)
	put := func(p, v string) { files[p] = v + "\n" }
	sp := m.spec

	put(cpuDir+"/online", m.online.String())
	possible := topology.NewMaskRange(0, m.possible-1)
	put(cpuDir+"/possible", rangeList(m.possible))
	put(cpuDir+"/present", rangeList(m.present))
	put(cpuDir+"/offline", possible.Difference(m.online).String())
	put(cpuDir+"/isolated", m.isolated.String())
	put(cpuDir+"/kernel_max", "8191")

	// The lists CPUs share are built once per group: at 4096 CPUs the
	// strings would otherwise dominate the generation time.
	sockets := make([]topology.Mask, sp.Sockets)
	dies := map[[2]int]*topology.Mask{}
	l3s := make([]topology.Mask, m.l3Count)
	nodes := make([]topology.Mask, m.cpuNodes)
	siblings := make([]topology.Mask, len(m.cores))
	for i, c := range m.cores {
		for _, cpu := range c.cpus {
			if m.online.Has(cpu) {
				siblings[i].Set(cpu)
			}
		}
		sockets[c.socket].UnionInPlace(siblings[i])
		d := dies[[2]int{c.socket, c.die}]
		if d == nil {
			d = &topology.Mask{}
			dies[[2]int{c.socket, c.die}] = d
		}
		d.UnionInPlace(siblings[i])
		l3s[c.l3].UnionInPlace(siblings[i])
		nodes[c.node].UnionInPlace(siblings[i])
	}
	socketStr := maskStrings(sockets)
	l3Str := maskStrings(l3s)
	dieStr := map[[2]int]string{}
	for k, d := range dies {
		dieStr[k] = d.String()
	}

	for i, c := range m.cores {
		sib := siblings[i].String()
		for _, cpu := range c.cpus {
			dir := cpuDir + "/cpu" + strconv.Itoa(cpu)
			if cpu != 0 { // x86 kernels have no online file for the boot CPU
				put(dir+"/online", boolDigit(m.online.Has(cpu)))
			}
			if !m.online.Has(cpu) {
				continue // the kernel removes topology and cache of offline CPUs
			}
			t := dir + "/topology/"
			put(t+"core_id", strconv.Itoa(c.coreID))
			put(t+"physical_package_id", strconv.Itoa(c.socket))
			put(t+"thread_siblings_list", sib)
			put(t+"core_cpus_list", sib)
			put(t+"core_siblings_list", socketStr[c.socket])
			put(t+"package_cpus_list", socketStr[c.socket])
			if !sp.NoDieID {
				put(t+"die_id", strconv.Itoa(c.die))
				put(t+"die_cpus_list", dieStr[[2]int{c.socket, c.die}])
			}
			if sp.NoCache {
				continue
			}
			g := strconv.Itoa(i)
			caches := []struct{ level, typ, id, size, shared string }{
				{"1", "Data", g, "48K", sib},
				{"1", "Instruction", g, "32K", sib},
				{"2", "Unified", g, "2048K", sib},
				{"3", "Unified", strconv.Itoa(c.l3), "32768K", l3Str[c.l3]},
			}
			for k, cc := range caches {
				idx := dir + "/cache/index" + strconv.Itoa(k) + "/"
				put(idx+"level", cc.level)
				put(idx+"type", cc.typ)
				put(idx+"size", cc.size)
				put(idx+"shared_cpu_list", cc.shared)
				if !sp.NoCacheID {
					put(idx+"id", cc.id)
				}
			}
		}
	}
	if !sp.NoNUMA {
		m.nodeFiles(put, nodes)
	}
	return files, nil
}

// nodeFiles writes the node folder.
func (m *machine) nodeFiles(put func(p, v string), cpus []topology.Mask) {
	total := m.cpuNodes + len(m.memSocket)
	put(nodeDir+"/online", rangeList(total))
	put(nodeDir+"/possible", rangeList(total))
	put(nodeDir+"/has_memory", rangeList(total))
	var hasCPU topology.Mask
	for n := range cpus {
		if !cpus[n].IsEmpty() {
			hasCPU.Set(n)
		}
	}
	put(nodeDir+"/has_cpu", hasCPU.String())
	put(nodeDir+"/has_normal_memory", rangeList(m.cpuNodes))
	for n := 0; n < total; n++ {
		dir := nodeDir + "/node" + strconv.Itoa(n) + "/"
		mem := m.spec.MemoryPerNode
		list := ""
		if n < m.cpuNodes {
			list = cpus[n].String()
		} else {
			mem = m.spec.MemoryOnlyPerNode
		}
		put(dir+"cpulist", list)
		d := make([]string, total)
		for o := range d {
			d[o] = strconv.Itoa(m.distance(n, o))
		}
		put(dir+"distance", strings.Join(d, " "))
		kb := mem >> 10
		free := kb - kb/8
		// The kernel's format: "Node %d MemTotal:       %8lu kB".
		meminfo := fmt.Sprintf("Node %d MemTotal:       %8d kB\nNode %d MemFree:        %8d kB\nNode %d MemUsed:        %8d kB",
			n, kb, n, free, n, kb-free)
		put(dir+"meminfo", meminfo)
	}
}

// FS returns the machine's sysfs tree as an in-memory fs.FS. An invalid Spec
// gives a file system whose every operation fails with the Spec's error, so
// that DiscoverFS reports it.
func (s Spec) FS() fs.FS {
	files, err := s.Files()
	if err != nil {
		return errFS{err}
	}
	return topology.NewMemFS(files)
}

// Topology discovers the machine from its generated files, exactly as the
// plugin would from /sys.
func (s Spec) Topology() (*topology.Topology, error) {
	files, err := s.Files()
	if err != nil {
		return nil, err
	}
	return topology.DiscoverFS(topology.NewMemFS(files))
}

// MustTopology is Topology for tests, benchmarks and the demo, where the
// Spec is a constant; it panics on error.
func (s Spec) MustTopology() *topology.Topology {
	t, err := s.Topology()
	if err != nil {
		panic(err)
	}
	return t
}

// WriteDir writes the files under dir (dir/devices/system/...), creating
// folders as needed, so that dir can be passed as --sysfs.
func (s Spec) WriteDir(dir string) error {
	files, err := s.Files()
	if err != nil {
		return err
	}
	made := map[string]bool{}
	for _, p := range sortedKeys(files) {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if parent := filepath.Dir(full); !made[parent] {
			if err := os.MkdirAll(parent, 0o755); err != nil {
				return fmt.Errorf("write synthetic sysfs: %w", err)
			}
			made[parent] = true
		}
		if err := os.WriteFile(full, []byte(files[p]), 0o644); err != nil {
			return fmt.Errorf("write synthetic sysfs: %w", err)
		}
	}
	return nil
}

// WriteTarGz writes the files discovery reads (topology.SysfsFiles) as a
// gzip-compressed tar at file, the way `numaspread sysfs-dump` does
// (topology.DumpTarGz): paths relative to the sysfs root, in sorted order
// and with zero times, so that the same Spec always gives the same bytes.
func (s Spec) WriteTarGz(file string) (err error) {
	files, err := s.Files()
	if err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("write synthetic sysfs: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write synthetic sysfs: %w", cerr)
		}
	}()
	if err := topology.DumpTarGz(f, topology.NewMemFS(files)); err != nil {
		return fmt.Errorf("write synthetic sysfs: %w", err)
	}
	return nil
}

// errFS is the fs.FS of an invalid Spec.
type errFS struct{ err error }

func (e errFS) Open(name string) (fs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: e.err}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func maskStrings(ms []topology.Mask) []string {
	out := make([]string, len(ms))
	for i := range ms {
		out[i] = ms[i].String()
	}
	return out
}

// rangeList is the cpulist "0-(n-1)", or "" for n = 0.
func rangeList(n int) string {
	switch n {
	case 0:
		return ""
	case 1:
		return "0"
	}
	return "0-" + strconv.Itoa(n-1)
}

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
