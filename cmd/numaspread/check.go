package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"go.yaml.in/yaml/v3"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/topology"
)

// The kubelet's and NRI's default places, which `check` reads when no flag
// names another.
const (
	defaultKubeletConfig = "/var/lib/kubelet/config.yaml"
	defaultKubeletState  = "/var/lib/kubelet/cpu_manager_state"
	defaultNRIPluginDir  = "/opt/nri/plugins"
	defaultNRIConfDir    = "/etc/nri/conf.d"
)

// checkOptions are the inputs of one `numaspread check`: every path it reads,
// so that tests can point each at a temporary file.
type checkOptions struct {
	configFlags   // --config, --socket, --sysfs
	kubeletConfig string
	kubeletState  string
	// explicitKubelet is set when either kubelet path came from a flag:
	// then a missing file is reported, not taken as "no kubelet here".
	explicitKubelet bool
	pluginDir       string
	confDir         string
	procRoot        string // "" skips the scan of running processes
	self            int    // our own pid, left out of the process scan
}

func runCheck(args []string, stdout, stderr io.Writer) int {
	flags := newFlags("check", stderr)
	o := checkOptions{procRoot: "/proc", self: os.Getpid()}
	o.register(flags)
	flags.StringVar(&o.kubeletConfig, "kubelet-config", defaultKubeletConfig, "the kubelet's configuration file (KubeletConfiguration YAML)")
	flags.StringVar(&o.kubeletState, "kubelet-state", defaultKubeletState, "the kubelet's CPU manager state file")
	flags.StringVar(&o.pluginDir, "nri-plugin-dir", defaultNRIPluginDir, "the runtime's pre-installed NRI plugin folder (plugin_path)")
	flags.StringVar(&o.confDir, "nri-conf-dir", defaultNRIConfDir, "the runtime's NRI plugin configuration folder (plugin_config_path)")
	flags.Usage = func() {
		fmt.Fprintln(flags.Output(), "usage: numaspread check [flags]")
		fmt.Fprintln(flags.Output(), "\nChecks the configuration and this node before rollout; prints one")
		fmt.Fprintln(flags.Output(), "\"ok:\", \"warn:\" or \"FAIL:\" line per check and exits 1 if any failed.")
		fmt.Fprintln(flags.Output(), "\nflags:")
		flags.PrintDefaults()
	}
	if st := parseFlags(flags, args); st >= 0 {
		return st
	}
	flags.Visit(func(f *flag.Flag) {
		if f.Name == "kubelet-config" || f.Name == "kubelet-state" {
			o.explicitKubelet = true
		}
	})
	r := runChecks(o, stdout)
	fmt.Fprintf(stdout, "numaspread check: %d ok, %d warn, %d FAIL\n", r.ok, r.warn, r.fail)
	if r.fail > 0 {
		return 1
	}
	return 0
}

// checkReport prints the result lines and counts them.
type checkReport struct {
	w              io.Writer
	ok, warn, fail int
}

func (r *checkReport) okf(format string, args ...any) {
	r.ok++
	r.line("ok", format, args...)
}

func (r *checkReport) warnf(format string, args ...any) {
	r.warn++
	r.line("warn", format, args...)
}

func (r *checkReport) failf(format string, args ...any) {
	r.fail++
	r.line("FAIL", format, args...)
}

// line writes one result on one line: joined errors (config.Parse returns
// every problem it finds) become "; "-separated.
func (r *checkReport) line(status, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	msg = strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", " ; ")), " ")
	fmt.Fprintf(r.w, "%s: %s\n", status, msg)
}

// runChecks runs every check in order and reports each on w. A check that
// fails does not stop the others: an operator wants the whole list at once.
func runChecks(o checkOptions, w io.Writer) *checkReport {
	r := &checkReport{w: w}
	cfg, cfgOK := checkConfig(r, o)
	topo := checkTopology(r, cfg)
	if topo != nil && cfgOK {
		checkResolve(r, cfg, topo)
	}
	checkCgroup(r, cfg.Topology.Sysfs)
	preinstalled := findPreinstalled(o.pluginDir)
	checkSocket(r, cfg.NRI.Socket, preinstalled)
	checkKubelet(r, o, cfg)
	checkOtherPlugins(r, o, preinstalled)
	return r
}

// checkConfig loads the configuration and applies the flag overrides, as
// `run` does. When the file does not parse, the later checks go on with the
// built-in defaults (plus the flags), so they still say something useful.
func checkConfig(r *checkReport, o checkOptions) (config.Config, bool) {
	path, mustExist := o.path()
	cfg, err := config.Load(path, mustExist)
	ok := err == nil
	switch {
	case err != nil:
		r.failf("config: %v", err)
		cfg = config.Default()
	case cfg.Source() == "":
		r.okf("config: %s not found: using the built-in defaults (policy %s, spread %s, full_cores %s, memory %s)",
			path, cfg.Policy.Mode, cfg.Policy.Spread, cfg.Policy.FullCores, cfg.Policy.Memory)
	default:
		r.okf("config: %s parses (policy %s, spread %s, full_cores %s, memory %s, plugin %s-%s)",
			path, cfg.Policy.Mode, cfg.Policy.Spread, cfg.Policy.FullCores, cfg.Policy.Memory,
			cfg.NRI.PluginIndex, cfg.NRI.PluginName)
	}
	if cfg, err = o.apply(cfg); err != nil {
		r.failf("config: %v", err)
		ok = false
	}
	return cfg, ok
}

// checkTopology reads the machine; nil when it cannot.
func checkTopology(r *checkReport, cfg config.Config) *topology.Topology {
	t, err := topology.Discover(cfg.Topology.Sysfs)
	if err != nil {
		r.failf("topology: cannot read the machine from %s: %v", cfg.Topology.Sysfs, err)
		return nil
	}
	var withCPUs []string
	for _, n := range t.Nodes {
		if n.HasCPUs() {
			withCPUs = append(withCPUs, fmt.Sprintf("node %d: %s", n.ID, n.CPUs))
		}
	}
	r.okf("topology: %d CPUs online (%s), %d threads per core, %d NUMA nodes with CPUs (%s)",
		t.Online.Count(), t.Online, t.ThreadsPerCore, len(withCPUs), strings.Join(withCPUs, "; "))
	if len(withCPUs) < 2 {
		r.warnf("topology: only one NUMA node has CPUs: the distributed policy has nothing to spread over here (allocations still work, like packed)")
	}
	return t
}

// checkResolve checks the configured CPU lists against the machine.
func checkResolve(r *checkReport, cfg config.Config, t *topology.Topology) {
	res, err := cfg.Resolve(t)
	if err != nil {
		r.failf("config: does not fit this machine: %v", err)
		return
	}
	reserved := "none"
	if !res.Reserved.IsEmpty() {
		reserved = res.Reserved.String()
	}
	r.okf("config: fits this machine: manages CPUs %s (%d), reserved %s, min_shared_cpus %d",
		res.Allowed, res.Allowed.Count(), reserved, cfg.Policy.MinSharedCPUs)
	for _, w := range res.Warnings {
		r.warnf("config: %s", w)
	}
	if msg := noExclusiveRoom(cfg.Policy, res); msg != "" {
		r.warnf("config: no exclusive allocation can succeed: %s", msg)
	}
}

// noExclusiveRoom says why no exclusive allocation can ever succeed under
// the resolved configuration, or returns "" when one of at least one CPU
// can. An exclusive allocation takes CPUs from managed − reserved and must
// leave the shared pool (managed, minus reserved with strict_reserved, minus
// the exclusive CPUs) at least max(1, min_shared_cpus) CPUs, as the plugin
// does. When every managed CPU is reserved, Resolve already warns.
func noExclusiveRoom(pc config.PolicyConfig, res config.Resolved) string {
	usable := res.Allowed.Difference(res.Reserved)
	if usable.IsEmpty() {
		return ""
	}
	floor := max(1, pc.MinSharedCPUs)
	pool, poolDesc := res.Allowed, fmt.Sprintf("the managed CPUs %s (%d)", res.Allowed, res.Allowed.Count())
	if pc.StrictReserved && !res.Reserved.IsEmpty() {
		pool = res.Allowed.Difference(res.Reserved)
		poolDesc = fmt.Sprintf("the managed CPUs %s minus the strictly reserved %s (%d)", res.Allowed, res.Reserved, pool.Count())
	}
	if pool.Count()-floor >= 1 {
		return ""
	}
	floorDesc := fmt.Sprintf("min_shared_cpus = %d", pc.MinSharedCPUs)
	fixes := []string{"manage more CPUs (policy.allowed_cpus)"}
	if pc.MinSharedCPUs > 1 {
		fixes = append(fixes, "lower policy.min_shared_cpus")
	} else {
		floorDesc = fmt.Sprintf("min_shared_cpus = %d, and the plugin never leaves the shared pool empty", pc.MinSharedCPUs)
	}
	if pool.Count() < res.Allowed.Count() {
		fixes = append(fixes, "reserve fewer CPUs or set policy.strict_reserved = false")
	}
	return fmt.Sprintf("the shared pool starts as %s and must keep %d of them (%s), which leaves %d for exclusive allocations; %s",
		poolDesc, floor, floorDesc, max(0, pool.Count()-floor), strings.Join(fixes, ", or "))
}

// checkCgroup looks for the cpuset cgroup controller under the sysfs root's
// fs/cgroup (v2: cgroup.controllers lists it; v1: a cpuset hierarchy is
// mounted). It says nothing when sysfs is a tarball: a capture has no cgroups.
func checkCgroup(r *checkReport, sysfs string) {
	st, err := os.Stat(sysfs)
	if err != nil || !st.IsDir() {
		return
	}
	root := filepath.Join(sysfs, "fs", "cgroup")
	if b, err := os.ReadFile(filepath.Join(root, "cgroup.controllers")); err == nil {
		if slices.Contains(strings.Fields(string(b)), "cpuset") {
			r.okf("cgroup: the cpuset controller is available (cgroup v2, %s)", root)
		} else {
			r.failf("cgroup: %s/cgroup.controllers does not list cpuset: the runtime cannot apply cpuset.cpus/cpuset.mems", root)
		}
		return
	}
	if st, err := os.Stat(filepath.Join(root, "cpuset")); err == nil && st.IsDir() {
		r.okf("cgroup: the cpuset controller is available (cgroup v1, %s/cpuset)", root)
		return
	}
	r.warnf("cgroup: cannot find the cpuset controller under %s (neither cgroup.controllers nor a cpuset hierarchy); the runtime needs it to apply cpusets", root)
}

// checkSocket checks that the runtime's NRI socket exists, is a socket, and
// that we may connect to it. It does not connect: the runtime would take the
// connection for a plugin and log a registration timeout.
func checkSocket(r *checkReport, path string, preinstalled []string) {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if len(preinstalled) > 0 {
			r.okf("nri socket: %s does not exist; not needed by the pre-installed plugin %s, which the runtime starts itself",
				path, strings.Join(preinstalled, ", "))
			return
		}
		r.failf("nri socket: %s does not exist: enable NRI in the runtime (deploy/runtime/ has the snippets) and restart it, or point --socket / nri.socket at the runtime's socket_path", path)
		return
	case err != nil:
		r.failf("nri socket: %v", err)
		return
	case st.Mode()&fs.ModeSocket == 0:
		r.failf("nri socket: %s exists but is not a socket (%s)", path, st.Mode().Type())
		return
	}
	// Connecting to a unix socket needs write permission on it. The runtimes
	// create it for root only, in a 0700 folder.
	if err := syscall.Access(path, 2 /* W_OK */); err != nil {
		r.failf("nri socket: %s is not writable by uid %d (%v): the plugin must run as root (without capabilities) to connect", path, os.Getuid(), err)
		return
	}
	r.okf("nri socket: %s is a socket this user can connect to", path)
}

// kubeletConfigFile is the part of a KubeletConfiguration the check reads.
type kubeletConfigFile struct {
	CPUManagerPolicy    string `yaml:"cpuManagerPolicy"`
	MemoryManagerPolicy string `yaml:"memoryManagerPolicy"`
	ReservedSystemCPUs  string `yaml:"reservedSystemCPUs"`
}

// checkKubelet checks that the kubelet's CPU manager policy is none, from
// its configuration file (what it will use at its next start) and its CPU
// manager state file (what it last ran with). Either may be missing: a node
// without a kubelet, or one whose kubelet is configured by flags only.
func checkKubelet(r *checkReport, o checkOptions, cfg config.Config) {
	seen := false
	configPolicy, memoryPolicy := "", ""
	if b, err := os.ReadFile(o.kubeletConfig); err == nil {
		seen = true
		var kc kubeletConfigFile
		if err := yaml.Unmarshal(b, &kc); err != nil {
			r.failf("kubelet: cannot parse %s: %v", o.kubeletConfig, err)
		} else {
			configPolicy, memoryPolicy = kc.CPUManagerPolicy, kc.MemoryManagerPolicy
			if configPolicy == "" {
				configPolicy = "none" // the kubelet's default
			}
			if memoryPolicy == "" {
				memoryPolicy = "None" // the kubelet's default
			}
			if strings.EqualFold(configPolicy, "none") {
				r.okf("kubelet: %s: cpuManagerPolicy is %s", o.kubeletConfig, describeDefault(kc.CPUManagerPolicy, "none"))
			} else {
				r.failf("kubelet: %s: cpuManagerPolicy is %q; numaspread needs \"none\" (two owners of cpusets conflict): set cpuManagerPolicy: none, drain the node, stop the kubelet, remove %s, start the kubelet",
					o.kubeletConfig, configPolicy, o.kubeletState)
			}
			if strings.EqualFold(kc.MemoryManagerPolicy, "static") && cfg.Policy.Memory != config.MemoryNone {
				r.warnf("kubelet: %s: memoryManagerPolicy is Static, which also sets cpuset.mems for Guaranteed pods; use None, or set numaspread's policy.memory = \"none\"", o.kubeletConfig)
			}
			if kc.ReservedSystemCPUs != "" && !sameCPUList(kc.ReservedSystemCPUs, cfg.Policy.ReservedCPUs) {
				r.warnf("kubelet: %s: reservedSystemCPUs is %q but numaspread's policy.reserved_cpus is %q; set reserved_cpus to keep the system CPUs out of exclusive allocations",
					o.kubeletConfig, kc.ReservedSystemCPUs, cfg.Policy.ReservedCPUs)
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) || o.explicitKubelet {
		r.warnf("kubelet: cannot read %s: %v", o.kubeletConfig, err)
	}

	if b, err := os.ReadFile(o.kubeletState); err == nil {
		seen = true
		policy, err := cpuManagerStatePolicy(b)
		switch {
		case err != nil:
			r.failf("kubelet: cannot parse %s: %v", o.kubeletState, err)
		case strings.EqualFold(policy, "none"):
			r.okf("kubelet: %s: the CPU manager last ran with policy none", o.kubeletState)
		case configPolicy != "" && strings.EqualFold(configPolicy, "none"):
			r.failf("kubelet: %s records policy %q but the kubelet is now configured with none: it will refuse to start until that file is removed (drain the node, stop the kubelet, remove the file, start the kubelet)",
				o.kubeletState, policy)
		default:
			r.failf("kubelet: %s: the CPU manager runs policy %q; numaspread needs \"none\": set cpuManagerPolicy: none, drain the node, stop the kubelet, remove this file, start the kubelet",
				o.kubeletState, policy)
		}
	} else if !errors.Is(err, fs.ErrNotExist) || o.explicitKubelet {
		r.warnf("kubelet: cannot read %s: %v", o.kubeletState, err)
	}

	checkMemoryManagerState(r, filepath.Join(filepath.Dir(o.kubeletState), "memory_manager_state"), memoryPolicy)

	if !seen && !o.explicitKubelet {
		r.warnf("kubelet: cannot tell the CPU manager policy: neither %s nor %s exists (no kubelet here, or pass --kubelet-config / --kubelet-state); it must be none",
			o.kubeletConfig, o.kubeletState)
	}
}

// checkMemoryManagerState: the kubelet refuses to start when its memory
// manager's state file records another policy than the configured one
// ("configured policy … differs from state checkpoint policy"), the same
// trap as the CPU manager's when an operator switches policies for
// numaspread. configured is "" when the kubelet configuration was not read.
func checkMemoryManagerState(r *checkReport, path, configured string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return // no memory manager state: nothing to trip over
	}
	var st struct {
		PolicyName string `json:"policyName"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		r.failf("kubelet: cannot parse %s: %v", path, err)
		return
	}
	switch {
	case configured != "" && !strings.EqualFold(st.PolicyName, configured):
		r.failf("kubelet: %s records memory manager policy %q but the kubelet is configured with %q: it will refuse to start until that file is removed (drain the node, stop the kubelet, remove the file, start the kubelet)",
			path, st.PolicyName, configured)
	case strings.EqualFold(st.PolicyName, "static"):
		r.warnf("kubelet: %s: the memory manager runs policy Static, which also sets cpuset.mems for Guaranteed pods; use None, or set numaspread's policy.memory = \"none\"", path)
	default:
		r.okf("kubelet: %s: the memory manager last ran with policy %s", path, st.PolicyName)
	}
}

func describeDefault(written, def string) string {
	if written == "" {
		return def + " (not set: the default)"
	}
	return written
}

// cpuManagerStatePolicy returns the policyName of a CPU manager checkpoint.
// Every format so far (V1 to V4) has it at the top level; V4 also keeps the
// trusted copy in "data", a JSON string, which wins when present.
func cpuManagerStatePolicy(b []byte) (string, error) {
	var st struct {
		PolicyName string `json:"policyName"`
		Data       string `json:"data"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return "", err
	}
	if st.Data != "" {
		var d struct {
			PolicyName string `json:"policyName"`
		}
		if err := json.Unmarshal([]byte(st.Data), &d); err != nil {
			return "", fmt.Errorf("data: %w", err)
		}
		if d.PolicyName != "" {
			return d.PolicyName, nil
		}
	}
	if st.PolicyName == "" {
		return "", errors.New("no policyName")
	}
	return st.PolicyName, nil
}

func sameCPUList(a, b string) bool {
	ma, errA := topology.ParseMask(a)
	mb, errB := topology.ParseMask(b)
	return errA == nil && errB == nil && ma.Equals(mb)
}

// cpusetOwners are name fragments of the NRI plugins (and node agents using
// NRI) known to set cpusets. A match is a guess, so it is a warning.
var cpusetOwners = []string{
	"topology-aware", "balloons", "resource-policy", // containers/nri-plugins
	"dra-driver-cpu", "dracpu", // kubernetes-sigs/dra-driver-cpu
	"koordlet", // Koordinator's node agent, in NRI mode
}

var preinstalledName = regexp.MustCompile(`^[0-9]{2}-.+`)

// findPreinstalled lists the pre-installed numaspread plugins in dir: the
// executables the runtime would launch (NN-name, NN-numaspread*).
func findPreinstalled(dir string) []string {
	var out []string
	for _, e := range readDir(dir) {
		if isPluginExecutable(dir, e) && strings.Contains(e.Name()[3:], "numaspread") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

func isPluginExecutable(dir string, e fs.DirEntry) bool {
	if !preinstalledName.MatchString(e.Name()) || e.IsDir() {
		return false
	}
	st, err := os.Stat(filepath.Join(dir, e.Name())) // follows symlinks, as the runtime does
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

func readDir(dir string) []fs.DirEntry {
	entries, _ := os.ReadDir(dir) // a missing folder is simply empty
	return entries
}

func ownerMatch(name string) string {
	lower := strings.ToLower(name)
	for _, o := range cpusetOwners {
		if strings.Contains(lower, o) {
			return o
		}
	}
	return ""
}

// checkOtherPlugins warns about other plugins that set cpusets: NRI fails
// the creation of a container whose cpuset two plugins both set. It can
// tell from the pre-installed plugin folder, the plugin configuration
// folder, and the running processes (an external plugin runs somewhere on
// the node, often in a DaemonSet pod).
func checkOtherPlugins(r *checkReport, o checkOptions, preinstalled []string) {
	found := 0
	for _, e := range readDir(o.pluginDir) {
		if !isPluginExecutable(o.pluginDir, e) {
			continue
		}
		if m := ownerMatch(e.Name()); m != "" {
			found++
			r.warnf("nri plugins: %s looks like another cpuset-owning plugin (%q): NRI fails containers whose cpuset two plugins set; remove one", filepath.Join(o.pluginDir, e.Name()), m)
		}
	}
	for _, e := range readDir(o.confDir) {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".conf") {
			continue
		}
		if m := ownerMatch(e.Name()); m != "" {
			found++
			r.warnf("nri plugins: %s configures another cpuset-owning plugin (%q)", filepath.Join(o.confDir, e.Name()), m)
		}
	}
	running := map[string][]int{}
	if o.procRoot != "" {
		for _, e := range readDir(o.procRoot) {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == o.self {
				continue
			}
			b, err := os.ReadFile(filepath.Join(o.procRoot, e.Name(), "cmdline"))
			if err != nil || len(b) == 0 {
				continue
			}
			prog := filepath.Base(strings.SplitN(string(b), "\x00", 2)[0])
			switch m := ownerMatch(prog); {
			case m != "":
				found++
				r.warnf("nri plugins: process %d (%s) looks like another cpuset-owning plugin (%q)", pid, prog, m)
			case strings.Contains(prog, "numaspread"):
				running[prog] = append(running[prog], pid)
			}
		}
	}
	if len(preinstalled) > 0 {
		r.okf("nri plugins: numaspread is pre-installed (%s): run it in one mode only, not also as a DaemonSet or service", strings.Join(preinstalled, ", "))
	}
	progs := make([]string, 0, len(running))
	for p := range running {
		progs = append(progs, p)
	}
	sort.Strings(progs)
	for _, p := range progs {
		sort.Ints(running[p])
		r.okf("nri plugins: %s is already running here (pid %s)", p, joinInts(running[p], ", "))
	}
	if found == 0 {
		where := o.pluginDir + ", " + o.confDir
		if o.procRoot != "" {
			where += " and the running processes"
		}
		r.okf("nri plugins: no other cpuset-owning plugin found (looked in %s)", where)
	}
}
