package main

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/numaspread/numaspread/topology/synth"
)

// cliCase is one command line and what it must say: the exit status, text
// each of stderr and stdout must contain, and text stderr must not.
type cliCase struct {
	name       string
	args       []string
	wantStatus int
	wantErr    []string
	wantOut    []string
	notErr     []string
}

func (tt cliCase) check(t *testing.T) {
	t.Helper()
	stdout, stderr, status := run(t, tt.args...)
	if status != tt.wantStatus {
		t.Errorf("%v: status %d, want %d; stderr %q", tt.args, status, tt.wantStatus, stderr)
	}
	for _, w := range tt.wantErr {
		if !strings.Contains(stderr, w) {
			t.Errorf("%v: stderr lacks %q:\n%s", tt.args, w, stderr)
		}
	}
	for _, w := range tt.notErr {
		if strings.Contains(stderr, w) {
			t.Errorf("%v: stderr has %q:\n%s", tt.args, w, stderr)
		}
	}
	for _, w := range tt.wantOut {
		if !strings.Contains(stdout, w) {
			t.Errorf("%v: stdout lacks %q:\n%s", tt.args, w, stdout)
		}
	}
}

// TestMachineFlagsConflict: --sysfs and --machine both name the machine;
// giving both is a usage error, whichever comes first.
func TestMachineFlagsConflict(t *testing.T) {
	dir := t.TempDir()
	if err := synth.FourNode().WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	both := []string{"--sysfs", dir, "--machine", "SmallTwoNode"}
	tests := []cliCase{
		{name: "topology", args: append([]string{"topology"}, both...), wantStatus: 2,
			wantErr: []string{"numaspread topology: --sysfs " + dir + " and --machine SmallTwoNode"}},
		{name: "topology, --machine first", args: []string{"topology", "--machine", "FourNode", "--sysfs", "/sys"}, wantStatus: 2,
			wantErr: []string{"numaspread topology: ", "--sysfs /sys", "--machine FourNode"}},
		{name: "topology --json", args: append([]string{"topology", "--json"}, both...), wantStatus: 2,
			wantErr: []string{"--sysfs", "--machine"}},
		{name: "plan", args: append([]string{"plan", "--cpus", "2"}, both...), wantStatus: 2,
			wantErr: []string{"numaspread plan: --sysfs " + dir + " and --machine SmallTwoNode"}},
		{name: "plan, explicit default --sysfs", args: []string{"plan", "--cpus", "2", "--sysfs", "/sys", "--machine", "FourNode"}, wantStatus: 2,
			wantErr: []string{"numaspread plan: ", "--sysfs /sys", "--machine FourNode"}},
		{name: "topology --sysfs alone", args: []string{"topology", "--sysfs", dir}, wantOut: []string{"32 CPUs online"}},
		{name: "topology --machine alone", args: []string{"topology", "--machine", "SmallTwoNode"}, wantOut: []string{"16 CPUs online"}},
		{name: "plan --sysfs alone", args: []string{"plan", "--cpus", "2", "--sysfs", dir}, wantOut: []string{"cpus: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.check)
	}
}

// TestPlanAvailableUnmanaged: --available, like --reserved, may name managed
// CPUs only, and the message says which CPUs are isolated, offline or absent.
func TestPlanAvailableUnmanaged(t *testing.T) {
	tests := []cliCase{
		{name: "a CPU that does not exist", args: []string{"plan", "--machine", "SmallTwoNode", "--cpus", "4", "--available", "0-3,99"}, wantStatus: 1,
			wantErr: []string{"numaspread plan: --available CPUs 99 are not managed CPUs (managed: 0-15): CPU 99 does not exist"}},
		{name: "only CPUs that do not exist", args: []string{"plan", "--machine", "SmallTwoNode", "--cpus", "1", "--available", "200-201"}, wantStatus: 1,
			wantErr: []string{"--available CPUs 200-201 are not managed CPUs (managed: 0-15): CPUs 200-201 do not exist"}},
		{name: "isolated CPUs", args: []string{"plan", "--machine", "SNC", "--cpus", "2", "--available", "0-7"}, wantStatus: 1,
			wantErr: []string{"--available CPUs 4-7 are not managed CPUs (managed: 0-3,8-35,40-63): CPUs 4-7 are isolated (isolcpus"}},
		{name: "isolated and absent", args: []string{"plan", "--machine", "SNC", "--cpus", "2", "--available", "36,100"}, wantStatus: 1,
			wantErr: []string{"--available CPUs 36,100 are not managed", "CPU 36 is isolated", "CPU 100 does not exist"}},
		{name: "--reserved isolated says so too", args: []string{"plan", "--machine", "SNC", "--cpus", "2", "--reserved", "4"}, wantStatus: 1,
			wantErr: []string{"numaspread plan: --reserved CPUs 4 are not managed CPUs", "CPU 4 is isolated"}},
		{name: "managed CPUs are fine", args: []string{"plan", "--machine", "SNC", "--cpus", "2", "--available", "0-3", "--json"},
			wantOut: []string{`"cpus":"0-1"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.check)
	}
}

// TestTopLevelHelp: -h/--help before any command, like `numaspread help`,
// lists the commands; a command's -h shows its flags.
func TestTopLevelHelp(t *testing.T) {
	list := []string{"usage: numaspread [command] [flags]", "numaspread COMMAND -h"}
	for _, c := range []string{"run", "demo", "topology", "plan", "status", "check", "sysfs-dump"} {
		list = append(list, "\n  "+c+" ")
	}
	tests := []cliCase{
		{name: "-h", args: []string{"-h"}, wantOut: list, notErr: []string{"-socket"}},
		{name: "--help", args: []string{"--help"}, wantOut: list, notErr: []string{"-socket"}},
		{name: "-help", args: []string{"-help"}, wantOut: list, notErr: []string{"-socket"}},
		{name: "help", args: []string{"help"}, wantOut: list},
		{name: "help plan", args: []string{"help", "plan"}, wantErr: []string{"usage: numaspread plan [flags]", "-cpus"}},
		{name: "run -h: run's flags", args: []string{"run", "-h"}, wantErr: []string{"usage: numaspread run [flags]", "-socket"}},
		{name: "flags without a command go to run", args: []string{"--no-such-flag"}, wantStatus: 2,
			wantErr: []string{"numaspread run: flag provided but not defined: -no-such-flag", "-socket"}},
		{name: "unknown command", args: []string{"frobnicate"}, wantStatus: 2, wantErr: append([]string{`numaspread: unknown command "frobnicate"`}, list...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.check)
	}
}

// TestSysfsDumpOut: errors name the --out path, not the temporary file, and
// --out - prints its summary on stderr.
func TestSysfsDumpOut(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.tar.gz")
	if err := synth.SmallTwoNode().WriteTarGz(src); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "no", "such", "x.tar.gz")
	tests := []cliCase{
		{name: "missing folder", args: []string{"sysfs-dump", "--sysfs", src, "--out", missing}, wantStatus: 1,
			wantErr: []string{"numaspread sysfs-dump: --out " + missing + ": no such file or directory"}, notErr: []string{".x.tar.gz."}},
		{name: "a folder", args: []string{"sysfs-dump", "--sysfs", src, "--out", dir}, wantStatus: 1,
			wantErr: []string{"numaspread sysfs-dump: --out " + dir + " is a folder"}},
		{name: "standard output", args: []string{"sysfs-dump", "--sysfs", src, "--out", "-"},
			wantErr: []string{"wrote standard output: ", " files; 16 CPUs, 2 NUMA nodes\n"}, wantOut: []string{"\x1f\x8b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.check)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("failed dumps left %v", entries)
	}
}

// TestErrorPrefix: every command's errors start with "numaspread CMD: ".
func TestErrorPrefix(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args       []string
		wantStatus int
	}{
		{[]string{"plan", "--machine", "SmallTwoNode", "--cpus", "17"}, 1},
		{[]string{"plan", "--machine", "SmallTwoNode", "--cpus", "2", "--reserved", "99"}, 1},
		{[]string{"plan", "--machine", "SmallTwoNode", "--cpus", "2", "--available", "99"}, 1},
		{[]string{"plan", "--machine", "Nope", "--cpus", "2"}, 1},
		{[]string{"plan", "--machine", "SmallTwoNode", "--cpus", "2", "--reserved", "x"}, 2},
		{[]string{"plan", "--machine", "SmallTwoNode"}, 2},
		{[]string{"plan", "--no-such-flag"}, 2},
		{[]string{"plan", "extra"}, 2},
		{[]string{"topology", "--sysfs", filepath.Join(dir, "nope")}, 1},
		{[]string{"topology", "--machine", "Nope"}, 1},
		{[]string{"demo", "--machine", "Nope"}, 1},
		{[]string{"status", "--layout", "round"}, 2},
		{[]string{"status", "--addr", "http://[::1"}, 1},
		{[]string{"check", "--no-such-flag"}, 2},
		{[]string{"sysfs-dump"}, 2},
		{[]string{"sysfs-dump", "--sysfs", filepath.Join(dir, "nope"), "--out", filepath.Join(dir, "x.tar.gz")}, 1},
		{[]string{"run", "--config", filepath.Join(dir, "nope.toml")}, 1},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, stderr, status := run(t, tt.args...)
			prefix := "numaspread " + tt.args[0] + ": "
			if status != tt.wantStatus || !strings.HasPrefix(stderr, prefix) {
				t.Errorf("status %d stderr %q, want %d and the prefix %q", status, stderr, tt.wantStatus, prefix)
			}
			if strings.Contains(stderr, "numaspread: ") {
				t.Errorf("stderr has the old prefix: %q", stderr)
			}
		})
	}
}

// TestPackageDoc: the package comment names every command.
func TestPackageDoc(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "main.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	doc := f.Doc.Text()
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(doc, c.name) {
				t.Errorf("the package comment does not mention %s:\n%s", c.name, doc)
			}
		})
	}
}
