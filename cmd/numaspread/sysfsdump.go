package main

import (
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"

	"github.com/numaspread/numaspread/topology"
)

func runSysfsDump(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("sysfs-dump", stderr)
	out := fs.String("out", "", "the .tar.gz to write (required); - writes to standard output")
	sysfs := fs.String("sysfs", "/sys", "sysfs root to capture: a directory containing devices/system, or a tarball of one")
	if st := parseFlags(fs, args); st >= 0 {
		return st
	}
	if *out == "" {
		fmt.Fprintln(stderr, "numaspread sysfs-dump: --out F.tar.gz is required")
		return 2
	}
	fsys, err := topology.OpenSysfs(*sysfs)
	if err != nil {
		return fail(stderr, "sysfs-dump: %v", err)
	}
	files, err := topology.SysfsFiles(fsys)
	if err != nil {
		return fail(stderr, "sysfs-dump: %s: %v", *sysfs, err)
	}
	if *out == "-" {
		if err := topology.DumpTarGz(stdout, fsys); err != nil {
			return fail(stderr, "sysfs-dump: %v", err)
		}
		return 0
	}
	if err := writeDump(*out, fsys); err != nil {
		return fail(stderr, "sysfs-dump: %v", err)
	}
	// Read the capture back as `topology --sysfs` will. A machine that
	// discovery fails on is worth a bug report too, so that is only a warning.
	t, err := topology.Discover(*out)
	if err != nil {
		fmt.Fprintf(stdout, "wrote %s: %d files\n", *out, len(files))
		fmt.Fprintf(stderr, "numaspread: sysfs-dump: warning: the capture cannot be read back: %v\n", err)
		return 0
	}
	fmt.Fprintf(stdout, "wrote %s: %d files; %d CPUs, %d NUMA nodes (check: numaspread topology --sysfs %s)\n",
		*out, len(files), t.Online.Count(), len(t.Nodes), *out)
	return 0
}

// writeDump writes the tarball next to path and renames it into place, so
// that a failed dump leaves no half-written file.
func writeDump(path string, fsys iofs.FS) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := topology.DumpTarGz(tmp, fsys); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
