package main

import (
	"errors"
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
		return usageError(stderr, "sysfs-dump", "--out F.tar.gz is required")
	}
	fsys, err := topology.OpenSysfs(*sysfs)
	if err != nil {
		return fail(stderr, "sysfs-dump", "%v", err)
	}
	files, err := topology.SysfsFiles(fsys)
	if err != nil {
		return fail(stderr, "sysfs-dump", "%s: %v", *sysfs, err)
	}
	if *out == "-" {
		if err := topology.DumpTarGz(stdout, fsys); err != nil {
			return fail(stderr, "sysfs-dump", "%v", err)
		}
		// Standard output carries the archive, so the summary goes to
		// stderr. The archive holds exactly the files discovery reads, so
		// discovering from them tells what a reader of the archive will find.
		t, err := topology.DiscoverFS(fsys)
		dumpSummary(stderr, stderr, "standard output", len(files), t, err, "discovery fails on the capture", "")
		return 0
	}
	if err := writeDump(*out, fsys); err != nil {
		return fail(stderr, "sysfs-dump", "%v", err)
	}
	// Read the capture back as `topology --sysfs` will.
	t, err := topology.Discover(*out)
	dumpSummary(stdout, stderr, *out, len(files), t, err, "the capture cannot be read back",
		" (check: numaspread topology --sysfs "+*out+")")
	return 0
}

// dumpSummary writes "wrote WHERE: N files; C CPUs, N NUMA nodes" and then
// hint to w, for the machine t discovered from the capture. When discovery
// failed (err) it writes the file count only, and a warning to stderr that
// starts with problem: a machine that discovery fails on is worth a bug
// report too, so the dump still succeeds.
func dumpSummary(w, stderr io.Writer, where string, files int, t *topology.Topology, err error, problem, hint string) {
	if err != nil {
		fmt.Fprintf(w, "wrote %s: %d files\n", where, files)
		fmt.Fprintf(stderr, "numaspread sysfs-dump: warning: %s: %v\n", problem, err)
		return
	}
	fmt.Fprintf(w, "wrote %s: %d files; %d CPUs, %d NUMA nodes%s\n", where, files, t.Online.Count(), len(t.Nodes), hint)
}

// writeDump writes the tarball next to path and renames it into place, so
// that a failed dump leaves no half-written file. Its errors name path
// ("--out PATH: …"), not the temporary file the user never asked for.
func writeDump(path string, fsys iofs.FS) (err error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("--out %s is a folder: name the .tar.gz to write", path)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return outError(path, "", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			err = outError(path, tmp.Name(), err)
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

// outError words an error about the file written for --out path as
// "--out PATH: cause": an *fs.PathError or *os.LinkError on the temporary
// file tmp (or, when tmp is "", from creating it) loses its operation and
// the temporary name, which the user never asked for. Other errors, such as
// a sysfs file that cannot be read, are returned as they are.
func outError(path, tmp string, err error) error {
	var pe *iofs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe) && (tmp == "" || pe.Path == tmp):
		return fmt.Errorf("--out %s: %w", path, pe.Err)
	case errors.As(err, &le) && le.Old == tmp:
		return fmt.Errorf("--out %s: %w", path, le.Err)
	}
	return err
}
