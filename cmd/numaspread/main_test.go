package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/numaspread/numaspread/topology/synth"
)

func run(t *testing.T, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	var out, errOut bytes.Buffer
	status = dispatch(args, &out, &errOut)
	return out.String(), errOut.String(), status
}

func TestPlanJSON(t *testing.T) {
	// The seed examples of issue 2, through the CLI.
	tests := []struct {
		name string
		args []string
		want planOutput
	}{
		{"2 nodes: 4 + 4 as whole cores", []string{"--machine", "SmallTwoNode", "--cpus", "8"},
			planOutput{CPUs: "0-1,4-5,8-9,12-13", Mems: "0-1", NUMA: map[string]int{"0": 4, "1": 4}}},
		{"2 nodes, packed: 8 on one node", []string{"--machine", "SmallTwoNode", "--cpus", "8", "--policy", "packed"},
			planOutput{CPUs: "0-3,8-11", Mems: "0", NUMA: map[string]int{"0": 8}}},
		{"4 nodes: 2 on each", []string{"--machine", "FourNode", "--cpus", "8"},
			planOutput{CPUs: "0,4,8,12,16,20,24,28", Mems: "0-3", NUMA: map[string]int{"0": 2, "1": 2, "2": 2, "3": 2}}},
		{"4 nodes, minimal: one node holds 8 (KEP-2902 k=1)", []string{"--machine", "FourNode", "--cpus", "8", "--spread", "minimal"},
			planOutput{CPUs: "0-3,16-19", Mems: "0", NUMA: map[string]int{"0": 8}}},
		{"4 nodes, minimal: 12 need two nodes of 6", []string{"--machine", "FourNode", "--cpus", "12", "--spread", "minimal"},
			planOutput{CPUs: "0-2,4-6,16-18,20-22", Mems: "0-1", NUMA: map[string]int{"0": 6, "1": 6}}},
		{"--available restricts the free CPUs", []string{"--machine", "SmallTwoNode", "--cpus", "4", "--available", "4-7,12-15"},
			planOutput{CPUs: "4-5,12-13", Mems: "1", NUMA: map[string]int{"1": 4}}},
		{"--reserved CPUs are never given", []string{"--machine", "SmallTwoNode", "--cpus", "2", "--policy", "packed", "--reserved", "0,8"},
			planOutput{CPUs: "1,9", Mems: "0", NUMA: map[string]int{"0": 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, status := run(t, append([]string{"plan", "--json"}, tt.args...)...)
			if status != 0 {
				t.Fatalf("status %d, stderr %s", status, stderr)
			}
			var got planOutput
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatalf("bad JSON %q: %v", stdout, err)
			}
			if got.CPUs != tt.want.CPUs || got.Mems != tt.want.Mems || !equalCounts(got.NUMA, tt.want.NUMA) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestPlanErrors(t *testing.T) {
	tests := []struct {
		args       []string
		wantStatus int
		wantErr    string
	}{
		{[]string{"plan", "--machine", "SmallTwoNode", "--cpus", "17"}, 1, "cannot allocate 17 exclusive CPUs: 16 free (node 0: 8, node 1: 8)"},
		{[]string{"plan", "--machine", "SmallTwoNode", "--cpus", "3", "--full-cores", "require"}, 1, "not a multiple of the 2 threads per core"},
		{[]string{"plan", "--machine", "SmallTwoNode"}, 2, "--cpus N (N ≥ 1) is required"},
		{[]string{"plan", "--machine", "SmallTwoNode", "--cpus", "2", "--policy", "spready"}, 2, `--policy: "spready" is not one of distributed, packed`},
		{[]string{"plan", "--machine", "SmallTwoNode", "--cpus", "2", "--spread", "0"}, 2, "--spread"},
		{[]string{"plan", "--machine", "SmallTwoNode", "--cpus", "2", "--reserved", "99"}, 1, "reserved CPUs 99 are not managed"},
		{[]string{"plan", "--machine", "Nope", "--cpus", "2"}, 1, `--machine "Nope": unknown`},
		{[]string{"plan", "--sysfs", "/nonexistent", "--cpus", "2"}, 1, "discovering the machine from /nonexistent"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, stderr, status := run(t, tt.args...)
			if status != tt.wantStatus || !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("status %d stderr %q, want %d and %q", status, stderr, tt.wantStatus, tt.wantErr)
			}
		})
	}
}

func TestTopologyFromSysfsDir(t *testing.T) {
	dir := t.TempDir()
	if err := synth.FourNode().WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, status := run(t, "topology", "--sysfs", dir)
	if status != 0 {
		t.Fatalf("status %d: %s", status, stderr)
	}
	for _, want := range []string{"32 CPUs online (0-31), 16 cores, 2 threads per core, 2 sockets, 4 NUMA nodes", "0-3,16-19"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	stdout, _, _ = run(t, "topology", "--sysfs", dir, "--json")
	var s struct {
		Online string
		Nodes  []struct{ ID int }
	}
	if err := json.Unmarshal([]byte(stdout), &s); err != nil || s.Online != "0-31" || len(s.Nodes) != 4 {
		t.Errorf("JSON %+v, err %v", s, err)
	}
}

func TestTopologyRealCapture(t *testing.T) {
	path := fixture(t, "server-2s-4dram-4pmem-112cpu.tar.xz")
	stdout, stderr, status := run(t, "plan", "--sysfs", path, "--cpus", "8", "--json")
	if status != 0 {
		t.Fatalf("status %d: %s", status, stderr)
	}
	// Four nodes with CPUs (ids ≡ node mod 4), siblings c and c+56: one whole core per node.
	if want := `{"cpus":"0-3,56-59","mems":"0-3","numa":{"0":2,"1":2,"2":2,"3":2}}`; strings.TrimSpace(stdout) != want {
		t.Errorf("got %s, want %s", stdout, want)
	}
}

func TestDemo(t *testing.T) {
	stdout, stderr, status := run(t, "demo")
	if status != 0 {
		t.Fatalf("status %d: %s", status, stderr)
	}
	for _, want := range []string{
		"db/postgres: cpuset.cpus 0,4,8,12,16,20,24,28, cpuset.mems 0-3",
		"cache/redis: cpuset.cpus 1-2,17-18, cpuset.mems 0",
		"NUMA node 0: [  0 16 |  1 17 |  2 18 |  3 19]",
		"             [  a  a |  b  b |  b  b |  .  .]",
		"shared pool: 28 CPUs, cpus 0,3-16,19-31",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout)
		}
	}
	for i, line := range strings.Split(stdout, "\n") {
		if len([]rune(line)) > 100 {
			t.Errorf("line %d is %d columns: %q", i, len([]rune(line)), line)
		}
	}
}

// fixture returns the path of a real sysfs capture kept next to the project
// (../shared/fixtures/sysfs from the repository root), skipping the test
// when it is absent: the captures are not part of the repository. It is
// topology/fixtures_test.go's helper.
func fixture(t *testing.T, name string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("no go.mod above the test's folder: cannot locate ../shared/fixtures/sysfs")
		}
		dir = parent
	}
	p := filepath.Join(dir, "..", "shared", "fixtures", "sysfs", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("real sysfs capture not available (%v); it lives outside the repository", err)
	}
	return p
}
