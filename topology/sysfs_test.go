package topology_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/numaspread/numaspread/topology"
	"github.com/numaspread/numaspread/topology/synth"
	"github.com/ulikunitz/xz"
)

// TestTarball covers the tarball reader: a prefix inside the archive, xz,
// symlinked files, and archives with no or several sysfs trees.
func TestTarball(t *testing.T) {
	files := smallFiles(t)
	want, err := discover(t, files)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, compress func(io.Writer) io.WriteCloser, entries []tarEntry) string {
		p := filepath.Join(dir, name)
		var buf bytes.Buffer
		w := compress(&buf)
		tw := tar.NewWriter(w)
		for _, e := range entries {
			h := &tar.Header{Name: e.name, Mode: 0o444, Size: int64(len(e.data)), Typeflag: tar.TypeReg}
			if e.link != "" {
				h = &tar.Header{Name: e.name, Linkname: e.link, Typeflag: tar.TypeSymlink}
			}
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			if _, err := tw.Write([]byte(e.data)); err != nil {
				t.Fatal(err)
			}
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	xzw := func(w io.Writer) io.WriteCloser {
		x, err := xz.NewWriter(w)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	gzw := func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) }
	plain := func(w io.Writer) io.WriteCloser { return nopCloser{w} }
	prefixed := func(prefix string, files map[string]string) []tarEntry {
		var out []tarEntry
		for _, p := range sortedKeys(files) {
			out = append(out, tarEntry{name: prefix + p, data: files[p]})
		}
		return out
	}

	// Symlinks: an absolute one and a relative one, standing for files.
	linked := maps.Clone(files)
	delete(linked, "devices/system/cpu/online")
	delete(linked, "devices/system/node/node1/distance")
	linkEntries := append(prefixed("./capture/sys/", linked),
		tarEntry{name: "capture/sys/devices/system/cpu/online", link: "/sys/devices/system/cpu/present"},
		tarEntry{name: "capture/sys/devices/system/node/node1/distance", link: "../node0/distance"},
		tarEntry{name: "capture/sys/devices/system/node/node0/cpu0", link: "../../cpu/cpu0"},
		tarEntry{name: "capture/README", data: "not sysfs"},
	)
	wantLinked, err := discover(t, func() map[string]string {
		f := maps.Clone(files)
		f["devices/system/node/node1/distance"] = f["devices/system/node/node0/distance"]
		return f
	}())
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		path    string
		want    *topology.Topology
		wantErr string
	}{
		{"xz with prefix", write("a.tar.xz", xzw, prefixed("sample/sys/", files)), want, ""},
		{"gzip, no prefix", write("b.tgz", gzw, prefixed("", files)), want, ""},
		{"plain tar", write("c.tar", plain, prefixed("/", files)), want, ""},
		{"symlinks", write("d.tar.gz", gzw, linkEntries), wantLinked, ""},
		{"two trees", write("e.tar.gz", gzw, append(prefixed("a/", files), prefixed("b/", files)...)), nil,
			`2 sysfs trees (under ["a/" "b/"])`},
		{"no tree", write("f.tar.gz", gzw, []tarEntry{{name: "etc/hostname", data: "x"}}), nil, "no sysfs tree"},
		{"not a tarball", writeRaw(t, dir, "g.tar.gz", "hello"), nil, "sysfs tarball"},
		{"missing", filepath.Join(dir, "nope.tar.gz"), nil, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := topology.Discover(tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Discover(%s) error %v, want %q", tt.path, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Discover(%s) differs from DiscoverFS", tt.path)
			}
		})
	}
}

type tarEntry struct{ name, data, link string }

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func writeRaw(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestSysfsFilesAndDump(t *testing.T) {
	files := smallFiles(t)
	fsys := topology.NewMemFS(files)
	list, err := topology.SysfsFiles(fsys)
	if err != nil {
		t.Fatal(err)
	}
	has := map[string]bool{}
	for _, p := range list {
		has[p] = true
	}
	for _, p := range []string{
		"devices/system/cpu/online", "devices/system/cpu/present", "devices/system/cpu/isolated",
		"devices/system/cpu/cpu9/topology/core_id", "devices/system/cpu/cpu9/topology/thread_siblings_list",
		"devices/system/cpu/cpu9/cache/index3/id", "devices/system/cpu/cpu9/cache/index0/level",
		"devices/system/node/node1/cpulist", "devices/system/node/node1/meminfo", "devices/system/node/node1/distance",
	} {
		if !has[p] {
			t.Errorf("SysfsFiles misses %s", p)
		}
	}
	for _, p := range []string{
		"devices/system/cpu/kernel_max", "devices/system/cpu/cpu9/online", "devices/system/cpu/cpu9/cache/index3/size",
		"devices/system/cpu/cpu9/topology/core_siblings_list", "devices/system/node/has_cpu",
	} {
		if has[p] {
			t.Errorf("SysfsFiles lists %s, which discovery does not read", p)
		}
	}

	// A dump discovers as the original, from a directory and from the dump.
	var buf bytes.Buffer
	if err := topology.DumpTarGz(&buf, fsys); err != nil {
		t.Fatal(err)
	}
	p := writeRaw(t, t.TempDir(), "dump.tar.gz", buf.String())
	got, err := topology.Discover(p)
	if err != nil {
		t.Fatal(err)
	}
	want, err := topology.DiscoverFS(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the dump discovers differently")
	}

	// On a real directory too, without the node folder.
	dir := t.TempDir()
	if err := synth.NoNUMA().WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	list, err = topology.SysfsFiles(os.DirFS(dir))
	if err != nil || len(list) == 0 || list[0] != "devices/system/cpu/cpu0/cache/index0/id" {
		t.Errorf("SysfsFiles(dir) = %d files starting %q, %v", len(list), list[:min(1, len(list))], err)
	}
}

func TestMemFS(t *testing.T) {
	fsys := topology.NewMemFS(map[string]string{
		"a/b/c":     "1\n",
		"a/b/d":     "",
		"a/e":       "xyz",
		"f":         "top",
		"../bad":    "ignored",
		"a/./g":     "ignored",
		"a/b/h/i/j": "deep",
	})
	if err := fstest.TestFS(fsys, "a/b/c", "a/b/d", "a/e", "f", "a/b/h/i/j"); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Stat(fsys, "bad"); err == nil {
		t.Errorf("invalid names are served")
	}
	if err := fstest.TestFS(topology.NewMemFS(nil)); err != nil {
		t.Fatal(err)
	}
}
