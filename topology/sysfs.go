package topology

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// The sysfs layout discovery depends on. Everything that names a sysfs path
// (the reader in discover.go, the tarball filter, SysfsFiles) is built from
// these constants, so that a dump always holds what discovery reads.
const (
	cpuDir  = "devices/system/cpu"
	nodeDir = "devices/system/node"

	// cpulists in cpuDir.
	fileOnline   = "online"
	fileOffline  = "offline"
	filePossible = "possible" // not used by the model; captured for bug reports
	filePresent  = "present"
	fileIsolated = "isolated"

	// Files in cpuDir/cpuN/topology.
	fileCoreID         = "core_id"
	filePackageID      = "physical_package_id"
	fileDieID          = "die_id"
	fileThreadSiblings = "thread_siblings_list"
	fileCoreCPUs       = "core_cpus_list" // newer name of thread_siblings_list

	// Files in cpuDir/cpuN/cache/indexK.
	fileCacheLevel = "level"
	fileCacheType  = "type"
	fileCacheID    = "id"
	fileCacheCPUs  = "shared_cpu_list"

	// Files in nodeDir/nodeN.
	fileNodeCPUs     = "cpulist"
	fileNodeMeminfo  = "meminfo"
	fileNodeDistance = "distance"
)

var (
	cpuListFiles  = []string{fileOnline, fileOffline, filePossible, filePresent, fileIsolated}
	topologyFiles = []string{fileCoreID, filePackageID, fileDieID, fileThreadSiblings, fileCoreCPUs}
	cacheFiles    = []string{fileCacheLevel, fileCacheType, fileCacheID, fileCacheCPUs}
	nodeFiles     = []string{fileNodeCPUs, fileNodeMeminfo, fileNodeDistance}
)

// sysfsPatterns are the files discovery may read, split into path elements.
// An element ending in '#' matches that prefix followed by a decimal number
// ("cpu#" matches "cpu12").
var sysfsPatterns = func() [][]string {
	var ps [][]string
	add := func(dir string, names []string) {
		for _, n := range names {
			ps = append(ps, strings.Split(dir+"/"+n, "/"))
		}
	}
	add(cpuDir, cpuListFiles)
	add(cpuDir+"/cpu#/topology", topologyFiles)
	add(cpuDir+"/cpu#/cache/index#", cacheFiles)
	add(nodeDir+"/node#", nodeFiles)
	return ps
}()

func cpuPath(cpu int) string   { return cpuDir + "/cpu" + strconv.Itoa(cpu) }
func nodePath(node int) string { return nodeDir + "/node" + strconv.Itoa(node) }

// matchElem reports whether a path element matches a pattern element.
func matchElem(elem, pat string) bool {
	prefix, numbered := strings.CutSuffix(pat, "#")
	if !numbered {
		return elem == pat
	}
	_, ok := numberedName(elem, prefix)
	return ok
}

// numberedName parses names such as "cpu12" or "node3".
func numberedName(name, prefix string) (int, bool) {
	digits, ok := strings.CutPrefix(name, prefix)
	if !ok || digits == "" || len(digits) > 9 {
		return 0, false
	}
	n := 0
	for _, r := range digits {
		if r < '0' || r > '9' {
			return 0, false
		}
		n = n*10 + int(r-'0')
	}
	return n, true
}

// matchSysfs reports whether rel (slash-separated, relative to the sysfs
// root) is a file discovery reads, and whether it is a directory that may
// contain one.
func matchSysfs(rel string) (file, dir bool) {
	if rel == "." || rel == "" {
		return false, true
	}
	elems := strings.Split(rel, "/")
	for _, p := range sysfsPatterns {
		if len(elems) > len(p) {
			continue
		}
		ok := true
		for i, e := range elems {
			if !matchElem(e, p[i]) {
				ok = false
				break
			}
		}
		if ok {
			if len(elems) == len(p) {
				file = true
			} else {
				dir = true
			}
		}
	}
	return file, dir
}

// SysfsFiles lists the files under fsys (a sysfs root) that discovery reads,
// in lexical order: what `numaspread sysfs-dump` captures. It includes a few
// files discovery reads only as a fallback (core_cpus_list) or not at all
// (cpu/possible), because they explain a machine in a bug report.
func SysfsFiles(fsys fs.FS) ([]string, error) {
	var out []string
	for _, dir := range []string{cpuDir, nodeDir} {
		err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if p == nodeDir && errors.Is(err, fs.ErrNotExist) {
					return fs.SkipDir // a kernel without NUMA has no node folder
				}
				return err
			}
			file, isDir := matchSysfs(p)
			switch {
			case d.IsDir() && !isDir:
				return fs.SkipDir // prune: the node folders hold thousands of memory blocks
			case !d.IsDir() && file:
				out = append(out, p)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list sysfs files: %w", err)
		}
	}
	return out, nil
}

// DumpTarGz writes the files SysfsFiles lists to w as a gzip-compressed tar,
// with paths relative to the sysfs root ("devices/system/cpu/online"), so
// that Discover can read the result back.
func DumpTarGz(w io.Writer, fsys fs.FS) error {
	files, err := SysfsFiles(fsys)
	if err != nil {
		return err
	}
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	dirs := map[string]bool{}
	for _, p := range files {
		// sysfs reports every file as 4096 bytes long: read it to learn its size.
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("dump sysfs: %w", err)
		}
		if err := writeTarDirs(tw, path.Dir(p), dirs); err != nil {
			return err
		}
		h := &tar.Header{Name: p, Mode: 0o444, Size: int64(len(data)), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("dump sysfs: %w", err)
		}
		if _, err := tw.Write(data); err != nil {
			return fmt.Errorf("dump sysfs: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("dump sysfs: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("dump sysfs: %w", err)
	}
	return nil
}

// writeTarDirs writes entries for dir and its parents not written yet, so
// that `tar x` of a dump gives ordinary permissions to the folders.
func writeTarDirs(tw *tar.Writer, dir string, done map[string]bool) error {
	if dir == "." || dir == "" || done[dir] {
		return nil
	}
	if err := writeTarDirs(tw, path.Dir(dir), done); err != nil {
		return err
	}
	done[dir] = true
	h := &tar.Header{Name: dir + "/", Mode: 0o755, Typeflag: tar.TypeDir}
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("dump sysfs: %w", err)
	}
	return nil
}
