package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/numaspread/numaspread/topology"
)

// machine builds a 16-CPU, 2-node machine by hand: cores are CPU c and c+8,
// node 0 has cores 0-3 (CPUs 0-3,8-11), node 1 cores 4-7 (CPUs 4-7,12-15).
// CPUs 16-17 exist but are offline.
func machine(t *testing.T, isolated string) *topology.Topology {
	t.Helper()
	m := topology.Machine{
		Offline:  topology.MustParseMask("16-17"),
		Isolated: topology.MustParseMask(isolated),
		Nodes:    []topology.NodeInfo{{ID: 0, MemoryBytes: 1 << 34}, {ID: 1, MemoryBytes: 1 << 34}},
	}
	for c := range 16 {
		core := c % 8
		m.CPUs = append(m.CPUs, topology.CPUInfo{
			ID: c, CoreID: core, Node: core / 4, L3: core / 4,
			Siblings: topology.NewMask(core, core+8),
		})
	}
	top, err := topology.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return top
}

func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		name     string
		isolated string
		in       string // the [policy] section
		allowed  string
		reserved string
		warnings []string
		errs     []string // the whole error, line by line, when Resolve fails
	}{
		{name: "defaults", allowed: "0-15"},
		{name: "reserved whole core", in: `reserved_cpus = "0,8"`, allowed: "0-15", reserved: "0,8"},
		{name: "isolated are not managed", isolated: "6-7,14-15", allowed: "0-5,8-13"},
		{name: "allowed subset", in: `allowed_cpus = "0-3,8-11"`, allowed: "0-3,8-11"},
		{
			name: "reserved half a core", in: `reserved_cpus = "0"`, allowed: "0-15", reserved: "0",
			warnings: []string{`CPU 8 shares a core with CPUs that are reserved or not managed, so they are handed out only as single threads, never as part of a whole core (full_cores = "prefer")`},
		},
		{name: "half a core, full_cores off", in: "reserved_cpus = \"0\"\nfull_cores = \"off\"", allowed: "0-15", reserved: "0"},
		{
			name: "allowed half cores", in: `allowed_cpus = "0-5"`, allowed: "0-5",
			warnings: []string{`CPUs 0-5 share a core with CPUs that are reserved or not managed, so they are handed out only as single threads, never as part of a whole core (full_cores = "prefer")`},
		},
		{
			name: "allowed includes isolated", isolated: "7,15", in: `allowed_cpus = "0-15"`, allowed: "0-15",
			warnings: []string{`policy.allowed_cpus includes isolated CPUs 7,15; numaspread will hand them out like the others`},
		},
		{
			name: "everything reserved", in: `reserved_cpus = "0-15"`, allowed: "0-15", reserved: "0-15",
			warnings: []string{`policy.reserved_cpus reserves every managed CPU (0-15): no container can get exclusive CPUs`},
		},
		{name: "strict reserved leaves enough", in: "reserved_cpus = \"0-13\"\nstrict_reserved = true\nmin_shared_cpus = 2", allowed: "0-15", reserved: "0-13",
			warnings: []string{`CPUs 14-15 share a core with CPUs that are reserved or not managed, so they are handed out only as single threads, never as part of a whole core (full_cores = "prefer")`}},

		{name: "reserved does not exist", in: `reserved_cpus = "200"`, errs: []string{
			`f:2: policy.reserved_cpus: CPU 200 does not exist (online: 0-15)`}},
		{name: "reserved offline and missing", in: `reserved_cpus = "15-17,200-201"`, errs: []string{
			`f:2: policy.reserved_cpus: CPUs 200-201 do not exist, CPUs 16-17 are offline (online: 0-15)`}},
		{name: "allowed offline", in: `allowed_cpus = "0-16"`, errs: []string{
			`f:2: policy.allowed_cpus: CPU 16 is offline (online: 0-15)`}},
		{name: "reserved outside allowed", in: "allowed_cpus = \"0-3\"\nreserved_cpus = \"3-4\"", errs: []string{
			`f:3: policy.reserved_cpus: CPU 4 is not in allowed_cpus (0-3); reserved CPUs must be managed CPUs`}},
		{name: "reserved isolated", isolated: "2-3", in: `reserved_cpus = "1-3"`, errs: []string{
			`f:2: policy.reserved_cpus: CPUs 2-3 are isolated; reserved CPUs must be managed CPUs (the online, non-isolated ones: 0-1,4-15), or list them in allowed_cpus`}},
		{name: "all isolated", isolated: "0-15", errs: []string{
			`f: policy.allowed_cpus: no CPUs to manage: every online CPU (0-15) is isolated; list the CPUs numaspread may use`}},
		{name: "min shared too high", in: "\nmin_shared_cpus = 17", errs: []string{
			`f:3: policy.min_shared_cpus: 17 is more than the 16 CPUs the shared pool can ever have (the managed CPUs 0-15)`}},
		{name: "min shared vs strict reserved", in: "reserved_cpus = \"0-13\"\nstrict_reserved = true\nmin_shared_cpus = 3", errs: []string{
			`f:4: policy.min_shared_cpus: 3 is more than the 2 CPUs the shared pool can ever have (the managed CPUs 0-15 minus the strictly reserved 0-13)`}},
		{name: "min shared default vs strict reserved", in: "allowed_cpus = \"0-1\"\nreserved_cpus = \"0-1\"\nstrict_reserved = true\nmin_shared_cpus = 0", errs: []string{
			`f:4: policy.strict_reserved: every managed CPU (0-1) is reserved, so shared containers would have no CPU`}},
		{name: "both lists bad", in: "allowed_cpus = \"0-99\"\nreserved_cpus = \"99\"", errs: []string{
			`f:2: policy.allowed_cpus: CPUs 18-99 do not exist, CPUs 16-17 are offline (online: 0-15)`,
			`f:3: policy.reserved_cpus: CPU 99 does not exist (online: 0-15)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("f", []byte("[policy]\n"+tc.in))
			if err != nil {
				t.Fatal(err)
			}
			r, err := c.Resolve(machine(t, tc.isolated))
			if tc.errs != nil {
				if err == nil {
					t.Fatalf("no error; resolved %+v", r)
				}
				if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tc.errs) {
					t.Errorf("\n got: %q\nwant: %q", got, tc.errs)
				}
				if _, again := c.Resolve(machine(t, tc.isolated)); again == nil || again.Error() != err.Error() {
					t.Errorf("Resolve again: %v, want the same error", again)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Allowed.String() != tc.allowed || r.Reserved.String() != tc.reserved {
				t.Errorf("allowed %q reserved %q, want %q %q", r.Allowed, r.Reserved, tc.allowed, tc.reserved)
			}
			if !reflect.DeepEqual(r.Warnings, tc.warnings) {
				t.Errorf("warnings\n got: %q\nwant: %q", r.Warnings, tc.warnings)
			}
		})
	}
}

// A Config built in code has no file or line to point at, and may hold a
// cpulist Parse never saw.
func TestResolveUnparsed(t *testing.T) {
	c := Default()
	c.Policy.ReservedCPUs = "0-"
	_, err := c.Resolve(machine(t, ""))
	if err == nil || err.Error() != `policy.reserved_cpus: invalid cpulist "0-": empty CPU id` {
		t.Errorf("got %v", err)
	}
	c = Default()
	c.Policy.ReservedCPUs = "40"
	if _, err := c.Resolve(machine(t, "")); err == nil || err.Error() != `policy.reserved_cpus: CPU 40 does not exist (online: 0-15)` {
		t.Errorf("got %v", err)
	}
}
