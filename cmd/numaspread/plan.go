package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/policy"
	"github.com/numaspread/numaspread/topology"
)

// planOutput is the --json shape DESIGN.md fixes: {"cpus":"…","mems":"…","numa":{"0":4,"1":4}}.
type planOutput struct {
	CPUs string         `json:"cpus"`
	Mems string         `json:"mems"`
	NUMA map[string]int `json:"numa"`
}

func runPlan(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("plan", stderr)
	var mf machineFlags
	mf.register(fs)
	cpus := fs.Int("cpus", 0, "number of exclusive CPUs to allocate (required)")
	available := fs.String("available", "", "cpulist of the CPUs to treat as free (default: all managed CPUs)")
	mode := fs.String("policy", string(policy.Distributed), "distributed | packed")
	spread := fs.String("spread", string(policy.SpreadAll), "all | minimal | a number of NUMA nodes")
	fullCores := fs.String("full-cores", string(policy.FullCoresPrefer), "prefer | require | off")
	memory := fs.String("memory", string(policy.MemoryLocal), "local | all | none")
	reserved := fs.String("reserved", "", "cpulist of reserved CPUs (never exclusive)")
	asJSON := fs.Bool("json", false, `print {"cpus":…,"mems":…,"numa":{node:count}}`)
	if st := parseFlags(fs, args); st >= 0 {
		return st
	}
	if *cpus < 1 {
		return usageError(stderr, "plan", "--cpus N (N ≥ 1) is required")
	}
	if err := mf.check(); err != nil {
		return usageError(stderr, "plan", "%v", err)
	}
	opts, err := planOptions(*mode, *spread, *fullCores, *memory)
	if err != nil {
		return usageError(stderr, "plan", "%v", err)
	}
	reservedSet, err := topology.ParseMask(*reserved)
	if err != nil {
		return usageError(stderr, "plan", "--reserved: %v", err)
	}
	var avail topology.Mask
	if *available != "" {
		if avail, err = topology.ParseMask(*available); err != nil {
			return usageError(stderr, "plan", "--available: %v", err)
		}
	}
	t, err := mf.load()
	if err != nil {
		return fail(stderr, "plan", "%v", err)
	}
	// plan manages what the plugin manages without allowed_cpus.
	res, err := config.Default().Resolve(t)
	if err != nil {
		return fail(stderr, "plan", "%v", err)
	}
	managed := res.Allowed
	if err := checkManaged(t, managed, "--reserved", reservedSet); err != nil {
		return fail(stderr, "plan", "%v", err)
	}
	state, err := policy.NewState(t, policy.Config{Managed: managed, Reserved: reservedSet})
	if err != nil {
		return fail(stderr, "plan", "%v", err)
	}
	if *available != "" {
		if err := checkManaged(t, managed, "--available", avail); err != nil {
			return fail(stderr, "plan", "%v", err)
		}
		if busy := state.Free().Difference(avail); !busy.IsEmpty() {
			if err := state.Claim("unavailable", busy); err != nil {
				return fail(stderr, "plan", "--available: %v", err)
			}
		}
	}
	a, err := state.Plan(policy.Request{CPUs: *cpus, Options: opts})
	if err != nil {
		return fail(stderr, "plan", "%v", err)
	}
	if *asJSON {
		out := planOutput{CPUs: a.CPUs.String(), Mems: a.Mems.String(), NUMA: map[string]int{}}
		for _, s := range a.PerNode {
			out.NUMA[strconv.Itoa(s.Node)] = s.CPUs
		}
		if err := json.NewEncoder(stdout).Encode(out); err != nil {
			return fail(stderr, "plan", "%v", err)
		}
		return 0
	}
	fmt.Fprintf(stdout, "cpus: %s (%d CPUs)\nmems: %s\n", a.CPUs, a.CPUs.Count(), orNone(a.Mems.String()))
	for _, s := range a.PerNode {
		fmt.Fprintf(stdout, "  node %d: %d CPUs (%s)\n", s.Node, s.CPUs, a.CPUs.Intersection(t.Node(s.Node).CPUs))
	}
	return 0
}

func planOptions(mode, spread, fullCores, memory string) (policy.Options, error) {
	o := policy.DefaultOptions()
	var err error
	if o.Mode, err = policy.ParseMode(mode); err != nil {
		return o, fmt.Errorf("--policy: %w", err)
	}
	if err = o.ApplySpread(spread); err != nil {
		return o, fmt.Errorf("--spread: %w", err)
	}
	if o.FullCores, err = policy.ParseFullCores(fullCores); err != nil {
		return o, fmt.Errorf("--full-cores: %w", err)
	}
	if o.Memory, err = policy.ParseMemory(memory); err != nil {
		return o, fmt.Errorf("--memory: %w", err)
	}
	return o, nil
}

// checkManaged fails when list (the CPUs of flag what) holds CPUs outside
// managed, naming them, and saying which are isolated (isolcpus=), offline
// or absent from the machine, since those are the usual reasons.
func checkManaged(t *topology.Topology, managed topology.Mask, what string, list topology.Mask) error {
	bad := list.Difference(managed)
	if bad.IsEmpty() {
		return nil
	}
	msg := fmt.Sprintf("%s CPUs %s are not managed CPUs (managed: %s)", what, bad, managed)
	var why []string
	if iso := bad.Intersection(t.Isolated).Intersection(t.Online); !iso.IsEmpty() {
		why = append(why, config.CPUPhrase(iso, "is isolated", "are isolated")+" (isolcpus; plan manages only the online, non-isolated CPUs)")
	}
	if off := bad.Intersection(t.Offline); !off.IsEmpty() {
		why = append(why, config.CPUPhrase(off, "is offline", "are offline"))
	}
	if missing := bad.Difference(t.Online).Difference(t.Offline); !missing.IsEmpty() {
		why = append(why, config.CPUPhrase(missing, "does not exist", "do not exist"))
	}
	if len(why) > 0 {
		msg += ": " + strings.Join(why, ", ")
	}
	return errors.New(msg)
}
