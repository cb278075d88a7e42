package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/numaspread/numaspread/topology"
	"github.com/numaspread/numaspread/topology/synth"
)

// machineFlags are the flags that say which machine a command looks at:
// --sysfs or --machine, not both.
type machineFlags struct {
	sysfs   string
	machine string
	fs      *flag.FlagSet
}

func (m *machineFlags) register(fs *flag.FlagSet) {
	m.fs = fs
	fs.StringVar(&m.sysfs, "sysfs", "/sys", "sysfs root: a directory containing devices/system, or a .tar.gz/.tar.xz of one (not with --machine)")
	fs.StringVar(&m.machine, "machine", "", "use a built-in synthetic machine instead of sysfs (not with --sysfs): "+presetNames())
}

// check fails when both --sysfs and --machine were given: each names the
// machine, and silently preferring one would hide a mistake. Commands call
// it right after parsing, and exit with status 2, before load.
func (m *machineFlags) check() error {
	set := map[string]bool{}
	m.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["sysfs"] && set["machine"] {
		return fmt.Errorf("--sysfs %s and --machine %s both name the machine: give one", m.sysfs, m.machine)
	}
	return nil
}

func presetNames() string {
	var names []string
	for _, s := range synth.Presets() {
		names = append(names, s.Name)
	}
	return strings.Join(names, ", ")
}

// load returns the machine the flags name; check has already passed.
func (m *machineFlags) load() (*topology.Topology, error) {
	if m.machine != "" {
		t, _, err := presetTopology(m.machine)
		return t, err
	}
	t, err := topology.Discover(m.sysfs)
	if err != nil {
		return nil, fmt.Errorf("discovering the machine from %s: %w", m.sysfs, err)
	}
	return t, nil
}

// presetTopology returns the built-in synthetic machine name (the
// --machine flag of topology, plan and demo) and its canonical name.
func presetTopology(name string) (*topology.Topology, string, error) {
	spec, ok := synth.Preset(name)
	if !ok {
		return nil, "", fmt.Errorf("--machine %q: unknown; built-in machines: %s", name, presetNames())
	}
	t, err := spec.Topology()
	return t, spec.Name, err
}

func runTopology(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("topology", stderr)
	var mf machineFlags
	mf.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if st := parseFlags(fs, args); st >= 0 {
		return st
	}
	if err := mf.check(); err != nil {
		return usageError(stderr, "topology", "%v", err)
	}
	t, err := mf.load()
	if err != nil {
		return fail(stderr, "topology", "%v", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(topology.Summarize(t)); err != nil {
			return fail(stderr, "topology", "%v", err)
		}
		return 0
	}
	printTopology(stdout, t)
	return 0
}

func printTopology(w io.Writer, t *topology.Topology) {
	s := topology.Summarize(t)
	fmt.Fprintf(w, "%d CPUs online (%s), %d cores, %d threads per core, %d sockets, %d NUMA nodes\n",
		t.Online.Count(), t.Online, len(t.Cores), t.ThreadsPerCore, len(t.Sockets()), len(t.Nodes))
	fmt.Fprintf(w, "offline: %s  isolated: %s\n\n", orNone(t.Offline.String()), orNone(t.Isolated.String()))

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tCPUS\tCORES\tL3\tSOCKETS\tMEMORY")
	for _, n := range s.Nodes {
		cpus := n.CPUs
		if cpus == "" {
			cpus = "(memory only)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t%s\n", n.ID, cpus, n.Cores, n.L3Caches, joinInts(n.Sockets, ","), formatBytes(n.MemoryBytes))
	}
	tw.Flush()

	if len(t.Nodes) > 1 && t.Nodes[0].Distances != nil {
		fmt.Fprintln(w, "\nnode distances:")
		tw = tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.AlignRight)
		fmt.Fprint(tw, "node\t")
		for _, n := range t.Nodes {
			fmt.Fprintf(tw, "%d\t", n.ID)
		}
		fmt.Fprintln(tw)
		for _, a := range t.Nodes {
			fmt.Fprintf(tw, "%d:\t", a.ID)
			for _, b := range t.Nodes {
				fmt.Fprintf(tw, "%d\t", a.Distances[b.ID])
			}
			fmt.Fprintln(tw)
		}
		tw.Flush()
	}

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "CPU\tNODE\tSOCKET\tDIE\tCORE\tL3\tSIBLINGS\tISOLATED\t")
	for _, c := range s.CPUs {
		iso := "-"
		if c.Isolated {
			iso = "yes"
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t\n", c.ID, c.Node, c.Socket, c.Die, c.Core, c.L3, c.Siblings, iso)
	}
	tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// joinInts joins v with sep, or returns "-" when v is empty.
func joinInts(v []int, sep string) string {
	if len(v) == 0 {
		return "-"
	}
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.Itoa(x)
	}
	return strings.Join(parts, sep)
}

func formatBytes(b uint64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
}
