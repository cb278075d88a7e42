package topology

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// Discover reads the machine from the sysfs tree at root: a directory that
// contains devices/system/... (normally "/sys") or a tarball of one (see
// OpenSysfs).
func Discover(root string) (*Topology, error) {
	fsys, err := OpenSysfs(root)
	if err != nil {
		return nil, err
	}
	t, err := DiscoverFS(fsys)
	if err != nil {
		return nil, fmt.Errorf("sysfs %s: %w", root, err)
	}
	return t, nil
}

// DiscoverFS reads the machine from fsys, the root of a sysfs tree (paths
// such as "devices/system/cpu/online").
//
// Only cpu/online is required. Missing optional files are tolerated, as
// containers, VMs and old kernels omit some: no topology folder makes a CPU
// its own core on socket 0, no die_id means die 0, no L3 cache means L3 -1,
// no node folder means one node 0 with every CPU, no meminfo (or no MemTotal
// in it) means 0 bytes of unknown memory (NodeInfo.MemoryKnown false),
// no distance means unknown distances. A file that exists but cannot be
// parsed is an error naming the file.
func DiscoverFS(fsys fs.FS) (*Topology, error) {
	r := sysfsReader{fsys: fsys}
	var m Machine
	online, err := r.mask(cpuDir+"/"+fileOnline, true)
	if err != nil {
		return nil, err
	}
	if online.IsEmpty() {
		return nil, fmt.Errorf("%s: no online CPUs", cpuDir+"/"+fileOnline)
	}
	if m.Offline, err = r.offline(online); err != nil {
		return nil, err
	}
	if m.Isolated, err = r.mask(cpuDir+"/"+fileIsolated, false); err != nil {
		return nil, err
	}
	nodeOf, nodes, err := r.nodes(online)
	if err != nil {
		return nil, err
	}
	m.Nodes = nodes
	m.CPUs = make([]CPUInfo, 0, online.Count())
	online.ForEach(func(cpu int) bool {
		var c CPUInfo
		if c, err = r.cpu(cpu); err != nil {
			return false
		}
		c.Node = nodeOf[cpu]
		m.CPUs = append(m.CPUs, c)
		return true
	})
	if err != nil {
		return nil, err
	}
	t, err := New(m)
	if err != nil {
		var sn *siblingNodesError
		if errors.As(err, &sn) {
			return nil, fmt.Errorf("inconsistent sysfs: %s: %w", cpuPath(sn.CPU)+"/topology", err)
		}
		return nil, fmt.Errorf("inconsistent sysfs: %w", err)
	}
	return t, nil
}

// sysfsReader reads and parses sysfs files; its errors name the file.
type sysfsReader struct {
	fsys fs.FS
}

// read returns the contents of p, and false when p does not exist.
func (r sysfsReader) read(p string, required bool) (string, bool, error) {
	b, err := fs.ReadFile(r.fsys, p)
	switch {
	case err == nil:
		return string(b), true, nil
	case errors.Is(err, fs.ErrNotExist) && !required:
		return "", false, nil
	case errors.Is(err, fs.ErrNotExist):
		return "", false, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
	default:
		return "", false, err // *fs.PathError: names p already
	}
}

// mask reads a cpulist; a missing optional file is the empty set.
func (r sysfsReader) mask(p string, required bool) (Mask, error) {
	s, ok, err := r.read(p, required)
	if err != nil || !ok {
		return Mask{}, err
	}
	m, err := ParseMask(s)
	if err != nil {
		return Mask{}, fmt.Errorf("%s: %w", p, err)
	}
	return m, nil
}

// int reads a decimal integer; a missing optional file gives def.
func (r sysfsReader) int(p string, def int) (int, error) {
	s, ok, err := r.read(p, false)
	if err != nil || !ok {
		return def, err
	}
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%s: invalid integer %q", p, strings.TrimSpace(s))
	}
	return v, nil
}

// offline returns the CPUs that exist but are not online. It is present −
// online rather than the kernel's offline file, which also lists possible
// CPUs that are not present (a VM's empty hotplug slots): those belong to
// no core and would only inflate the model.
func (r sysfsReader) offline(online Mask) (Mask, error) {
	present, err := r.mask(cpuDir+"/"+filePresent, false)
	if err != nil {
		return Mask{}, err
	}
	if present.IsEmpty() {
		if present, err = r.mask(cpuDir+"/"+fileOffline, false); err != nil {
			return Mask{}, err
		}
	}
	present.SubtractInPlace(online)
	return present, nil
}

// cpu reads the topology and L3 cache of one online CPU.
func (r sysfsReader) cpu(cpu int) (CPUInfo, error) {
	c := CPUInfo{ID: cpu, L3: -1}
	dir := cpuPath(cpu) + "/topology/"
	var err error
	if c.CoreID, err = r.int(dir+fileCoreID, cpu); err != nil {
		return c, err
	}
	if c.Socket, err = r.int(dir+filePackageID, 0); err != nil {
		return c, err
	}
	if c.Die, err = r.int(dir+fileDieID, 0); err != nil {
		return c, err
	}
	for _, f := range []string{fileThreadSiblings, fileCoreCPUs} {
		s, ok, err := r.read(dir+f, false)
		if err != nil {
			return c, err
		}
		if ok {
			if c.Siblings, err = ParseMask(s); err != nil {
				return c, fmt.Errorf("%s: %w", dir+f, err)
			}
			break
		}
	}
	c.L3, err = r.l3(cpu)
	return c, err
}

// l3 returns the id of the CPU's level-3 unified cache, or -1. The index
// folders are numbered from 0 without gaps, so probing stops at the first
// missing one instead of listing the folder.
func (r sysfsReader) l3(cpu int) (int, error) {
	for k := 0; k < 64; k++ {
		dir := cpuPath(cpu) + "/cache/index" + strconv.Itoa(k) + "/"
		level, err := r.int(dir+fileCacheLevel, -1)
		if err != nil {
			return -1, err
		}
		if level < 0 {
			return -1, nil // no such index: no L3
		}
		if level != 3 {
			continue
		}
		typ, ok, err := r.read(dir+fileCacheType, false)
		if err != nil {
			return -1, err
		}
		if ok && strings.TrimSpace(typ) != "Unified" {
			continue
		}
		id, err := r.int(dir+fileCacheID, -1)
		if err != nil || id >= 0 {
			return id, err
		}
		// Old kernels have no id file: the lowest CPU sharing the cache
		// names it stably.
		shared, err := r.mask(dir+fileCacheCPUs, false)
		if err != nil {
			return -1, err
		}
		if shared.IsEmpty() {
			return cpu, nil
		}
		return shared.First(), nil
	}
	return -1, nil
}

// nodes reads the NUMA nodes and returns them with the node of every online
// CPU (indexed by CPU id).
func (r sysfsReader) nodes(online Mask) ([]int, []NodeInfo, error) {
	nodeOf := make([]int, online.Last()+1)
	for i := range nodeOf {
		nodeOf[i] = -1
	}
	entries, err := fs.ReadDir(r.fsys, nodeDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	var ids []int
	for _, e := range entries {
		if id, ok := numberedName(e.Name(), "node"); ok {
			if id >= MaxCPUID {
				return nil, nil, fmt.Errorf("%s/%s: NUMA node id is out of range", nodeDir, e.Name())
			}
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		// A kernel without NUMA support: one node holds everything.
		online.ForEach(func(c int) bool { nodeOf[c] = 0; return true })
		return nodeOf, []NodeInfo{{ID: 0}}, nil
	}
	sort.Ints(ids)
	nodes := make([]NodeInfo, 0, len(ids))
	for _, id := range ids {
		n, cpus, err := r.node(id, len(ids))
		if err != nil {
			return nil, nil, err
		}
		cpus.IntersectInPlace(online) // a stale capture may list offline CPUs
		cpus.ForEach(func(c int) bool {
			if nodeOf[c] >= 0 {
				err = fmt.Errorf("CPU %d is listed by both %s and %s", c,
					nodePath(nodeOf[c])+"/"+fileNodeCPUs, nodePath(id)+"/"+fileNodeCPUs)
				return false
			}
			nodeOf[c] = id
			return true
		})
		if err != nil {
			return nil, nil, err
		}
		nodes = append(nodes, n)
	}
	online.ForEach(func(c int) bool {
		if nodeOf[c] < 0 {
			err = fmt.Errorf("online CPU %d is on no NUMA node: no %s/nodeN/%s lists it", c, nodeDir, fileNodeCPUs)
			return false
		}
		return true
	})
	return nodeOf, nodes, err
}

// node reads one node folder; nodes is how many node folders there are.
func (r sysfsReader) node(id, nodes int) (NodeInfo, Mask, error) {
	n := NodeInfo{ID: id}
	dir := nodePath(id) + "/"
	cpus, err := r.mask(dir+fileNodeCPUs, true)
	if err != nil {
		return n, Mask{}, err
	}
	if s, ok, err := r.read(dir+fileNodeMeminfo, false); err != nil {
		return n, Mask{}, err
	} else if ok {
		if n.MemoryBytes, n.MemoryKnown, err = parseMemTotal(s); err != nil {
			return n, Mask{}, fmt.Errorf("%s: %w", dir+fileNodeMeminfo, err)
		}
	}
	if s, ok, err := r.read(dir+fileNodeDistance, false); err != nil {
		return n, Mask{}, err
	} else if ok {
		if n.Distances, err = parseDistances(s); err != nil {
			return n, Mask{}, fmt.Errorf("%s: %w", dir+fileNodeDistance, err)
		}
		// The kernel prints one distance per online node. If the count
		// is off (a hand-edited capture), distances are unknown rather
		// than fatal: the policy does not need them to allocate.
		if len(n.Distances) != nodes {
			n.Distances = nil
		}
	}
	return n, cpus, nil
}

// parseMemTotal finds "Node 0 MemTotal:   16303004 kB" in a node's meminfo
// and reports whether it did; no such line means 0 bytes, not found.
func parseMemTotal(s string) (uint64, bool, error) {
	for line := range strings.Lines(s) {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] != "MemTotal:" {
				continue
			}
			v, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return 0, false, fmt.Errorf("invalid MemTotal %q", f[i+1])
			}
			unit := uint64(1)
			if i+2 < len(f) {
				switch f[i+2] {
				case "kB":
					unit = 1 << 10
				default:
					return 0, false, fmt.Errorf("unknown MemTotal unit %q", f[i+2])
				}
			}
			if v > (1<<64-1)/unit {
				return 0, false, fmt.Errorf("MemTotal %d %s is out of range", v, f[i+2])
			}
			return v * unit, true, nil
		}
	}
	return 0, false, nil
}

// parseDistances parses a node's distance line ("10 21 17 28").
func parseDistances(s string) ([]int, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return nil, nil
	}
	out := make([]int, len(f))
	for i, v := range f {
		d, err := strconv.Atoi(v)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("invalid distance %q", v)
		}
		out[i] = d
	}
	return out, nil
}
