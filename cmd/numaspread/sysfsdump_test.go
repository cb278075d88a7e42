package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/numaspread/numaspread/topology"
	"github.com/numaspread/numaspread/topology/synth"
)

// dump captures root with sysfs-dump into out.
func dump(t *testing.T, root, out string) {
	t.Helper()
	stdout, stderr, st := run(t, "sysfs-dump", "--sysfs", root, "--out", out)
	if st != 0 || stderr != "" || !strings.HasPrefix(stdout, "wrote "+out+": ") {
		t.Fatalf("sysfs-dump: %d %q %q", st, stdout, stderr)
	}
}

// sameOutput checks that a command says the same with each of the two
// machine flags (e.g. --sysfs the original and --sysfs the dump).
func sameOutput(t *testing.T, args []string, want, got []string) {
	t.Helper()
	wantOut, _, wst := run(t, append(args, want...)...)
	gotOut, gerr, gst := run(t, append(args, got...)...)
	if gst != wst || gotOut != wantOut {
		t.Errorf("%s %v (%d %s):\n%s\n%s %v (%d):\n%s", args[0], got, gst, gerr, gotOut, args[0], want, wst, wantOut)
	}
}

// TestSysfsDumpSynthetic round-trips the synthetic machines, from a
// directory for a few and from tarballs for the others: the dump must give
// the same topology (and, for the directories, the same plan and exactly
// the files discovery reads). ThirtyTwoNode4096 is left out: its 85,000
// files take over 10 s through the CLI, and EightNode512 already covers a
// large machine.
func TestSysfsDumpSynthetic(t *testing.T) {
	dir := t.TempDir()
	for _, spec := range synth.Presets() {
		if spec.Name == "ThirtyTwoNode4096" {
			continue
		}
		t.Run(spec.Name, func(t *testing.T) {
			fromDir := spec.Name == "FourNode" || spec.Name == "NoNUMA" || spec.Name == "MemoryOnly" || spec.Name == "SNC"
			src := filepath.Join(dir, spec.Name+"-src.tar.gz")
			if fromDir {
				src = filepath.Join(dir, spec.Name)
				if err := spec.WriteDir(src); err != nil {
					t.Fatal(err)
				}
			} else if err := spec.WriteTarGz(src); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, spec.Name+".tar.gz")
			dump(t, src, out)
			sameOutput(t, []string{"topology", "--json"}, []string{"--machine", spec.Name}, []string{"--sysfs", out})
			if !fromDir {
				return
			}
			sameOutput(t, []string{"plan", "--json", "--cpus", "4"}, []string{"--sysfs", src}, []string{"--sysfs", out})
			want, err := topology.SysfsFiles(spec.FS())
			if err != nil {
				t.Fatal(err)
			}
			fsys, err := topology.OpenSysfs(out)
			if err != nil {
				t.Fatal(err)
			}
			got, err := topology.SysfsFiles(fsys)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("the dump holds %d files, the machine %d", len(got), len(want))
			}
		})
	}
}

// TestSysfsDumpThisMachine captures this machine's own /sys.
func TestSysfsDumpThisMachine(t *testing.T) {
	if _, err := os.Stat("/sys/devices/system/cpu/online"); err != nil {
		t.Skipf("no sysfs here: %v", err)
	}
	out := filepath.Join(t.TempDir(), "this.tar.gz")
	dump(t, "/sys", out)
	sameOutput(t, []string{"topology", "--json"}, []string{"--sysfs", "/sys"}, []string{"--sysfs", out})
	sameOutput(t, []string{"plan", "--json", "--cpus", "1"}, []string{"--sysfs", "/sys"}, []string{"--sysfs", out})
}

func TestSysfsDumpErrors(t *testing.T) {
	_, stderr, st := run(t, "sysfs-dump")
	if st != 2 || !strings.Contains(stderr, "--out") {
		t.Errorf("no --out: %d %q", st, stderr)
	}
	dir := t.TempDir()
	_, stderr, st = run(t, "sysfs-dump", "--sysfs", filepath.Join(dir, "nope"), "--out", filepath.Join(dir, "x.tar.gz"))
	if st != 1 || !strings.Contains(stderr, "sysfs root") {
		t.Errorf("missing sysfs: %d %q", st, stderr)
	}
	unwritable := filepath.Join(dir, "no", "such", "dir.tar.gz")
	_, stderr, st = run(t, "sysfs-dump", "--out", unwritable)
	if st != 1 || !strings.Contains(stderr, "numaspread sysfs-dump: --out "+unwritable+": ") {
		t.Errorf("unwritable --out: %d %q", st, stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed dumps left %v", entries)
	}
	// --out - writes the tarball to standard output.
	src := filepath.Join(dir, "src.tar.gz")
	if err := synth.SmallTwoNode().WriteTarGz(src); err != nil {
		t.Fatal(err)
	}
	stdout, _, st := run(t, "sysfs-dump", "--sysfs", src, "--out", "-")
	if st != 0 || !strings.HasPrefix(stdout, "\x1f\x8b") {
		t.Errorf("--out -: %d, %d bytes", st, len(stdout))
	}
}
