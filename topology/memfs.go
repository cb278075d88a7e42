package topology

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ulikunitz/xz"
)

// OpenSysfs returns the sysfs tree at root as an fs.FS: root is either a
// directory that contains devices/system/... (such as "/sys") or a tarball
// of one (.tar, .tar.gz/.tgz or .tar.xz, recognised by content). A tarball is
// read into memory, keeping only the files discovery reads; it may hold the
// tree under any prefix ("sample1/sys/devices/system/...").
func OpenSysfs(root string) (fs.FS, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("sysfs root: %w", err)
	}
	if st.IsDir() {
		return os.DirFS(root), nil
	}
	f, err := os.Open(root)
	if err != nil {
		return nil, fmt.Errorf("sysfs root: %w", err)
	}
	defer f.Close()
	fsys, err := readTarball(f)
	if err != nil {
		return nil, fmt.Errorf("sysfs tarball %s: %w", root, err)
	}
	return fsys, nil
}

// maxSysfsFile bounds the files kept from a tarball: the longest file
// discovery reads is a cpulist, a few hundred kB at MaxCPUID CPUs.
const maxSysfsFile = 1 << 20

var (
	gzipMagic = []byte{0x1f, 0x8b}
	xzMagic   = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
)

// readTarball streams a (compressed) tar and keeps the discovery files of
// the one sysfs tree in it.
func readTarball(r io.Reader) (*memFS, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	magic, _ := br.Peek(len(xzMagic)) // a short file fails in the tar reader
	var stream io.Reader = br
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer gz.Close()
		stream = gz
	case bytes.HasPrefix(magic, xzMagic):
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("xz: %w", err)
		}
		stream = xr
	}
	files, err := loadTar(stream)
	if err != nil {
		return nil, err
	}
	return newMemFS(files), nil
}

// splitSysfsName splits a cleaned tar entry name at its devices/system part:
// "sample1/sys/devices/system/cpu/online" → "sample1/sys/", "devices/system/cpu/online".
func splitSysfsName(name string) (prefix, rel string, ok bool) {
	i := strings.Index("/"+name, "/devices/system/")
	if i < 0 {
		return "", "", false
	}
	return name[:i], name[i:], true
}

// tarTree is what one prefix of a tarball holds.
type tarTree struct {
	files map[string]string // path relative to the sysfs root → contents
	links map[string]string // symlink → its target, relative to the sysfs root
}

// loadTar returns the discovery files of the single sysfs tree in a tar
// stream. Symlinks to files are resolved (targets are re-rooted at their own
// devices/system part, so absolute "/sys/..." targets work too); symlinks
// to folders are not followed: sysfs has none on the paths discovery reads.
func loadTar(r io.Reader) (map[string]string, error) {
	tr := tar.NewReader(r)
	trees := map[string]*tarTree{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read tar: %w", err)
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		prefix, rel, ok := splitSysfsName(name)
		if !ok {
			continue
		}
		if file, _ := matchSysfs(rel); !file {
			continue
		}
		t := trees[prefix]
		if t == nil {
			t = &tarTree{files: map[string]string{}, links: map[string]string{}}
			trees[prefix] = t
		}
		switch h.Typeflag {
		case tar.TypeReg:
			if h.Size > maxSysfsFile {
				return nil, fmt.Errorf("%s: %d bytes is too large for a sysfs file", h.Name, h.Size)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("read tar: %s: %w", h.Name, err)
			}
			t.files[rel] = string(data)
		case tar.TypeSymlink:
			target := h.Linkname
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(name), target)
			}
			target = strings.TrimPrefix(path.Clean("/"+target), "/")
			if _, trel, ok := splitSysfsName(target); ok {
				t.links[rel] = trel
			}
		}
	}
	var found []string
	for prefix, t := range trees {
		if t.hasCPUs() {
			found = append(found, prefix)
		}
	}
	sort.Strings(found)
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no sysfs tree (devices/system/cpu/...) in the tarball")
	case 1:
	default:
		return nil, fmt.Errorf("the tarball holds %d sysfs trees (under %q); expected one", len(found), found)
	}
	t := trees[found[0]]
	t.resolveLinks()
	return t.files, nil
}

func (t *tarTree) hasCPUs() bool {
	if _, ok := t.files[cpuDir+"/"+fileOnline]; ok {
		return true
	}
	for rel := range t.files {
		if strings.HasPrefix(rel, cpuDir+"/cpu") {
			return true
		}
	}
	return false
}

// resolveLinks turns symlinks to files into copies of the files; dangling
// links (and loops) are dropped, as if the file were absent.
func (t *tarTree) resolveLinks() {
	for link, target := range t.links {
		for range 8 { // sysfs never chains links; 8 hops is generous
			if data, ok := t.files[target]; ok {
				t.files[link] = data
				break
			}
			next, ok := t.links[target]
			if !ok {
				break
			}
			target = next
		}
	}
}

// NewMemFS returns a read-only fs.FS that serves files (slash-separated
// paths relative to its root → contents); folders are implied by the paths
// and names that fs.ValidPath rejects are ignored. Unlike
// testing/fstest.MapFS, looking up a missing file costs one map lookup
// instead of a scan of every file, which matters because discovery probes
// for optional files on every CPU of machines with thousands of them.
func NewMemFS(files map[string]string) fs.FS { return newMemFS(files) }

// memFS is the fs.FS of NewMemFS and of tarballs.
type memFS struct {
	files map[string]string
	dirs  map[string][]memInfo // folder → its entries, sorted by name
}

func newMemFS(files map[string]string) *memFS {
	m := &memFS{files: make(map[string]string, len(files)), dirs: map[string][]memInfo{".": nil}}
	entered := map[string]bool{".": true} // folders listed in their parent already
	for name, data := range files {
		if !fs.ValidPath(name) || name == "." {
			continue
		}
		m.files[name] = data
		dir := path.Dir(name)
		m.dirs[dir] = append(m.dirs[dir], memInfo{name: path.Base(name), size: int64(len(data))})
		for !entered[dir] {
			entered[dir] = true
			parent := path.Dir(dir)
			m.dirs[parent] = append(m.dirs[parent], memInfo{name: path.Base(dir), dir: true})
			dir = parent
		}
	}
	for _, entries := range m.dirs {
		slices.SortFunc(entries, func(a, b memInfo) int { return strings.Compare(a.name, b.name) })
	}
	return m
}

func (m *memFS) stat(op, name string) (memInfo, error) {
	if !fs.ValidPath(name) {
		return memInfo{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if data, ok := m.files[name]; ok {
		return memInfo{name: path.Base(name), size: int64(len(data))}, nil
	}
	if _, ok := m.dirs[name]; ok {
		return memInfo{name: path.Base(name), dir: true}, nil
	}
	return memInfo{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
}

// Open implements fs.FS.
func (m *memFS) Open(name string) (fs.File, error) {
	info, err := m.stat("open", name)
	if err != nil {
		return nil, err
	}
	if info.dir {
		return &memDir{info: info, entries: dirEntries(m.dirs[name])}, nil
	}
	return &memFile{info: info, r: strings.NewReader(m.files[name])}, nil
}

// ReadFile implements fs.ReadFileFS.
func (m *memFS) ReadFile(name string) ([]byte, error) {
	info, err := m.stat("readfile", name)
	if err != nil {
		return nil, err
	}
	if info.dir {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: errors.New("is a directory")}
	}
	return []byte(m.files[name]), nil
}

// ReadDir implements fs.ReadDirFS.
func (m *memFS) ReadDir(name string) ([]fs.DirEntry, error) {
	info, err := m.stat("readdir", name)
	if err != nil {
		return nil, err
	}
	if !info.dir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	return dirEntries(m.dirs[name]), nil
}

// Stat implements fs.StatFS.
func (m *memFS) Stat(name string) (fs.FileInfo, error) {
	info, err := m.stat("stat", name)
	if err != nil {
		return nil, err
	}
	return info, nil
}

// memInfo is both the fs.FileInfo and the fs.DirEntry of a file or folder.
type memInfo struct {
	name string
	size int64
	dir  bool
}

func (i memInfo) Name() string               { return i.name }
func (i memInfo) Size() int64                { return i.size }
func (i memInfo) ModTime() time.Time         { return time.Time{} }
func (i memInfo) IsDir() bool                { return i.dir }
func (i memInfo) Sys() any                   { return nil }
func (i memInfo) Type() fs.FileMode          { return i.Mode().Type() }
func (i memInfo) Info() (fs.FileInfo, error) { return i, nil }
func (i memInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o555
	}
	return 0o444
}

// dirEntries returns a fresh slice, so that callers may sort or modify it.
func dirEntries(infos []memInfo) []fs.DirEntry {
	out := make([]fs.DirEntry, len(infos))
	for i, info := range infos {
		out[i] = info
	}
	return out
}

type memFile struct {
	info memInfo
	r    *strings.Reader
}

func (f *memFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *memFile) Read(b []byte) (int, error) { return f.r.Read(b) }
func (f *memFile) Close() error               { return nil }

type memDir struct {
	info    memInfo
	entries []fs.DirEntry
	off     int
}

func (d *memDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *memDir) Close() error               { return nil }
func (d *memDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: errors.New("is a directory")}
}

// ReadDir implements fs.ReadDirFile.
func (d *memDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.off:]
	if n <= 0 {
		d.off = len(d.entries)
		return append([]fs.DirEntry(nil), rest...), nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(rest))
	d.off += n
	return append([]fs.DirEntry(nil), rest[:n]...), nil
}
