package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
)

// hostRun is the e2e on this machine: its CPUs, memory nodes and the
// allocation the plugin is expected to make.
type hostRun struct {
	o      options
	r      *report
	e      *env
	online string // online CPUs (all managed: no reserved CPUs by default)
	mems   string // memory nodes of those CPUs (what shared containers get)
	excl   string // what `numaspread plan --cpus 1` predicts for a 1-CPU container
}

// cpusetController reports why this machine has no usable cpuset cgroup
// controller ("" when it has one).
func cpusetController() string {
	if exists("/sys/fs/cgroup/cgroup.controllers") {
		if !strings.Contains(readFile("/sys/fs/cgroup/cgroup.controllers"), "cpuset") {
			return "cgroup v2 without the cpuset controller"
		}
		return ""
	}
	if !exists("/sys/fs/cgroup/cpuset/cpuset.cpus") {
		return "no cpuset cgroup controller mounted at /sys/fs/cgroup/cpuset"
	}
	return ""
}

func runHost(o options, r *report) error {
	if why := cpusetController(); why != "" {
		return skipf("%s: the plugin's cpusets cannot be applied here", why)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("the real-runtime e2e must run as root (containerd, runc, cgroups)")
	}
	if !exists(o.plugin) {
		return fmt.Errorf("plugin binary %s is missing: run make build", o.plugin)
	}
	t, err := ensureTools(o.cache, r)
	if err != nil {
		return err
	}
	im, err := buildImages(o.cache)
	if err != nil {
		return err
	}
	h := &hostRun{o: o, r: r}
	h.online = canon(readFile("/sys/devices/system/cpu/online"))
	if count(h.online) < 2 {
		return skipf("this machine has %d online CPU; the exclusive scenarios need 2", count(h.online))
	}
	if h.excl, h.mems, err = planOne(o.plugin, "/sys", ""); err != nil {
		return err
	}
	e, err := newEnv(r, t, o.plugin)
	if err != nil {
		return err
	}
	h.e = e
	stop := onSignal(r, func() { e.teardown(o.keep) })
	defer stop()
	defer e.teardown(o.keep)

	r.logf("containerd %s, runc %s, cgroup %s, CPUs %s, memory nodes %s, folder %s",
		containerdVersion, runcVersion(t.runc), cgroupName(e.cgroupV2), h.online, h.mems, e.dir)
	if err := e.startContainerd(); err != nil {
		return err
	}
	if err := e.importImages(im); err != nil {
		return err
	}
	if err := e.startPlugin(); err != nil {
		return err
	}
	r.pass("plugin/registers", "external plugin synchronized with containerd over %s", e.nriSock())

	for _, s := range []struct {
		name string
		fn   func() error
	}{
		{"exclusive-and-shared", h.exclusiveAndShared},
		{"plugin-restart", h.pluginRestart},
		{"containerd-restart", h.containerdRestart},
		{"exit-releases", h.exitReleases},
		{"timings", h.timings},
		{"daemonset", h.daemonSet},
		{"pre-installed", h.preInstalled},
	} {
		r.logf("scenario %s", s.name)
		if err := s.fn(); err != nil {
			r.fail(s.name, "%v", err)
			r.logf("containerd log tail:\n%s", tail(readFile(e.path("containerd.log")), 15))
			r.logf("plugin log tail:\n%s", tail(e.pluginLogText(), 15))
			return nil // the rest depends on this one
		}
	}
	return nil
}

func cgroupName(v2 bool) string {
	if v2 {
		return "v2"
	}
	return "v1"
}

func runcVersion(runc string) string {
	out, _ := exec.Command(runc, "--version").Output()
	f := strings.Fields(string(out))
	if len(f) >= 3 {
		return f[2]
	}
	return "?"
}

// planOne asks the plugin binary where one exclusive CPU goes on a fresh
// machine (numaspread plan), and which memory nodes the whole machine has.
func planOne(plugin, sysfs, reserved string) (cpus, allMems string, err error) {
	args := []string{"plan", "--cpus", "1", "--json", "--sysfs", sysfs}
	if reserved != "" {
		args = append(args, "--reserved", reserved)
	}
	out, err := exec.Command(plugin, args...).Output()
	if err != nil {
		return "", "", fmt.Errorf("%s %s: %w", plugin, strings.Join(args, " "), err)
	}
	var plan struct{ CPUs, Mems string }
	if err := json.Unmarshal(out, &plan); err != nil {
		return "", "", fmt.Errorf("numaspread plan --json: %w: %s", err, out)
	}
	var nodes []int
	matches, _ := filepath.Glob(filepath.Join(sysfs, "devices/system/node/node[0-9]*"))
	for _, m := range matches {
		var id int
		if _, err := fmt.Sscanf(filepath.Base(m), "node%d", &id); err == nil && canon(readFile(m+"/cpulist")) != "" {
			nodes = append(nodes, id)
		}
	}
	if len(nodes) == 0 {
		nodes = []int{0}
	}
	return canon(plan.CPUs), formatList(nodes), nil
}

// exclusiveAndShared: BestEffort, Burstable and fractional Guaranteed
// containers share every CPU; a Guaranteed 1-CPU container gets the CPU
// `numaspread plan` predicts and the shared ones shrink to the rest; a
// second one would empty the shared pool and is rejected; stopping the
// exclusive container grows the shared pool back.
func (h *hostRun) exclusiveAndShared() error {
	e := h.e
	be, err := e.startPod(podSpec{name: "besteffort", qos: bestEffort})
	if err != nil {
		return err
	}
	e.expect("shared/besteffort", be, h.online, h.mems)
	bu, err := e.startPod(podSpec{name: "burstable", qos: burstable, cpuRequest: 500, cpuLimit: 1000})
	if err != nil {
		return err
	}
	e.expect("shared/burstable", bu, h.online, h.mems)
	gf, err := e.startPod(podSpec{name: "guaranteed-fractional", qos: guaranteed, cpuRequest: 1500})
	if err != nil {
		return err
	}
	e.expect("shared/guaranteed-fractional", gf, h.online, h.mems)

	g1, err := e.startPod(podSpec{name: "guaranteed-1cpu", qos: guaranteed, cpuRequest: 1000})
	if err != nil {
		return err
	}
	if !e.expect("exclusive/guaranteed-1cpu", g1, h.excl, h.mems) {
		h.explainOOM(g1)
	}
	rest := minus(h.online, h.excl)
	for _, p := range []*pod{be, bu, gf} {
		e.expect("shared-shrinks/"+p.spec.name, p, rest, h.mems)
	}

	// With min_shared_cpus = 1 (the default) the last shared CPU cannot go.
	if count(rest) == 1 {
		g2, err := e.runPod(podSpec{name: "guaranteed-too-many", qos: guaranteed, cpuRequest: 1000})
		if err != nil {
			return err
		}
		err = e.createContainer(g2)
		switch {
		case err == nil:
			e.r.fail("exclusive/rejected-when-shared-pool-would-empty", "created; want an error (min_shared_cpus = 1)")
		case !strings.Contains(err.Error(), "guaranteed-too-many"):
			e.r.fail("exclusive/rejected-when-shared-pool-would-empty", "error does not name the container: %v", err)
		default:
			e.r.pass("exclusive/rejected-when-shared-pool-would-empty", "%s", rpcDesc(err.Error()))
		}
		if err := e.removePod(g2); err != nil {
			return err
		}
		for _, p := range []*pod{be, bu, gf} {
			e.expect("rejection-keeps-shared/"+p.spec.name, p, rest, h.mems)
		}
	}

	if err := e.stopContainer(g1); err != nil {
		return err
	}
	for _, p := range []*pod{be, bu, gf} {
		e.expect("shared-grows-after-stop/"+p.spec.name, p, h.online, h.mems)
	}
	for _, p := range []*pod{g1, bu, gf} {
		if err := e.removePod(p); err != nil {
			return err
		}
	}
	return nil
}

// explainOOM logs what the plugin saw when a Guaranteed container was not
// given exclusive CPUs (a failed check's evidence).
func (h *hostRun) explainOOM(p *pod) {
	in, err := h.e.inspect(p)
	if err == nil {
		b, _ := json.Marshal(in.Info.RuntimeSpec.Linux.Resources)
		h.r.logf("%s: spec resources %s", p.spec.name, b)
	}
	for _, line := range strings.Split(h.e.pluginLogText(), "\n") {
		if strings.Contains(line, p.spec.name) {
			h.r.logf("plugin: %s", line)
		}
	}
	if spec := readFile(filepath.Join(h.e.path("state"), "io.containerd.runtime.v2.task/k8s.io", p.ctrID, "config.json")); spec != "" {
		var s struct {
			Process struct {
				OOMScoreAdj *int `json:"oomScoreAdj"`
			} `json:"process"`
		}
		if json.Unmarshal([]byte(spec), &s) == nil && s.Process.OOMScoreAdj != nil {
			h.r.logf("%s: OCI process.oomScoreAdj = %d (containerd's own: %s; restrict_oom_score_adj = true)",
				p.spec.name, *s.Process.OOMScoreAdj, strings.TrimSpace(readFile(fmt.Sprintf("/proc/%d/oom_score_adj", h.e.containerd.cmd.Process.Pid))))
		}
	}
}

// pluginRestart: the plugin is killed while an exclusive and a shared
// container run; a container created meanwhile gets no cpuset from NRI; the
// restarted plugin keeps the running containers' CPUs (Synchronize) and
// moves the newcomer into the shared pool.
func (h *hostRun) pluginRestart() error {
	e := h.e
	be := e.pods["besteffort"]
	g, err := e.startPod(podSpec{name: "guaranteed-a", qos: guaranteed, cpuRequest: 1000})
	if err != nil {
		return err
	}
	e.expect("exclusive/guaranteed-a", g, h.excl, h.mems)
	rest := minus(h.online, h.excl)
	e.expect("shared-shrinks/besteffort", be, rest, h.mems)

	e.plug.stop(syscall.SIGKILL, time.Second)
	e.r.logf("plugin killed (SIGKILL)")
	late, err := e.startPod(podSpec{name: "burstable-late", qos: burstable, cpuRequest: 250})
	if err != nil {
		return fmt.Errorf("creating a pod while the plugin is down: %w", err)
	}
	// No plugin: nothing sets a cpuset in the container's spec.
	switch v, err := e.observe(late); {
	case err != nil:
		e.r.fail("plugin-down/container-still-created", "%s: %v", late.spec.name, err)
	case v.specCPUs != "":
		e.r.fail("plugin-down/container-still-created", "%s has a cpuset while the plugin is down: %s", late.spec.name, v)
	default:
		e.r.pass("plugin-down/container-still-created", "%s runs without a plugin cpuset (%s)", late.spec.name, v)
	}

	if err := e.startPlugin(); err != nil {
		return err
	}
	e.expect("plugin-restart/keeps-exclusive", g, h.excl, h.mems)
	e.expect("plugin-restart/keeps-shared", be, rest, h.mems)
	e.expect("plugin-restart/fixes-container-created-while-down", late, rest, h.mems)
	return nil
}

// containerdRestart: containerd stops and starts again under running
// containers; the plugin reconnects by itself (same process) and
// resynchronizes; the cpusets stay; new containers and a stop still work.
func (h *hostRun) containerdRestart() error {
	e := h.e
	g, be, late := e.pods["guaranteed-a"], e.pods["besteffort"], e.pods["burstable-late"]
	rest := minus(h.online, h.excl)
	pid := e.plug.cmd.Process.Pid
	before := e.syncCount()
	e.stopContainerd()
	e.r.logf("containerd stopped")
	if err := e.startContainerd(); err != nil {
		return err
	}
	err := e.waitSynced(before, 30*time.Second)
	if err == nil && e.plug.alive() && e.plug.cmd.Process.Pid == pid {
		e.r.pass("containerd-restart/plugin-reconnects", "plugin pid %d reconnected and synchronized again", pid)
	} else {
		e.r.fail("containerd-restart/plugin-reconnects", "plugin alive=%v: %v", e.plug.alive(), err)
		return fmt.Errorf("the plugin did not reconnect")
	}
	e.expect("containerd-restart/keeps-exclusive", g, h.excl, h.mems)
	e.expect("containerd-restart/keeps-shared/besteffort", be, rest, h.mems)
	e.expect("containerd-restart/keeps-shared/burstable-late", late, rest, h.mems)
	post, err := e.startPod(podSpec{name: "besteffort-after-restart", qos: bestEffort})
	if err != nil {
		return err
	}
	e.expect("containerd-restart/new-shared-container", post, rest, h.mems)
	if err := e.stopContainer(g); err != nil {
		return err
	}
	for _, p := range []*pod{be, late, post} {
		e.expect("containerd-restart/shared-grows-after-stop/"+p.spec.name, p, h.online, h.mems)
	}
	return e.removeAllPods()
}

// timings measures runp / create / start and stop+remove with the plugin
// and with no plugin connected, in alternating blocks (so that load changes
// of the machine hit both alike), for two kinds of pods: Guaranteed 1-CPU
// pods (each create takes a CPU from a running shared container and each
// stop gives it back: the runtime applies a cpuset update to it) and
// BestEffort pods (no update).
func (h *hostRun) timings() error {
	e := h.e
	if h.o.timings <= 0 {
		e.r.logf("timings skipped (-timings 0)")
		return nil
	}
	if _, err := e.startPod(podSpec{name: "timing-shared", qos: bestEffort}); err != nil {
		return err
	}
	kinds := []struct {
		label string
		spec  podSpec
	}{
		{"Guaranteed 1 CPU", podSpec{qos: guaranteed, cpuRequest: 1000}},
		{"BestEffort", podSpec{qos: bestEffort}},
	}
	type key struct{ kind, op string }
	results := map[bool]map[key][]time.Duration{true: {}, false: {}}
	const block = 5
	seq := 0
	for done := 0; done < h.o.timings; done += block {
		for _, withPlugin := range []bool{true, false} {
			if withPlugin && !e.plug.alive() {
				if err := e.startPlugin(); err != nil {
					return err
				}
			}
			if !withPlugin {
				e.plug.stop(syscall.SIGTERM, 5*time.Second)
			}
			for i := done; i < min(done+block, h.o.timings); i++ {
				start := time.Now()
				if _, err := e.crictlQuiet("version"); err != nil {
					return err
				}
				results[withPlugin][key{"", "crictl version"}] = append(results[withPlugin][key{"", "crictl version"}], time.Since(start))
				for _, k := range kinds {
					seq++
					s := k.spec
					s.name = fmt.Sprintf("timing-%d-%v", seq, withPlugin)
					p, err := e.startPod(s)
					if err != nil {
						return err
					}
					if err := e.removePod(p); err != nil {
						return err
					}
					for op, d := range p.timings {
						results[withPlugin][key{k.label, op}] = append(results[withPlugin][key{k.label, op}], d)
					}
				}
			}
		}
	}
	handler := pluginTook(e.pluginLogText(), "timing-")
	fmt.Printf("TIMINGS %d pods of each kind with and without the plugin (alternating blocks of %d), one shared container running; load average %s\n",
		h.o.timings, block, strings.Join(strings.Fields(readFile("/proc/loadavg"))[:3], " "))
	fmt.Printf("TIMINGS crictl wall time in ms: median / p90 / max\n")
	fmt.Printf("TIMINGS %-18s %-13s %-18s %-18s\n", "pod", "operation", "with plugin", "without plugin")
	for _, k := range kinds {
		for _, op := range []string{"runp", "create", "start", "stop+remove"} {
			fmt.Printf("TIMINGS %-18s %-13s %-18s %-18s\n", k.label, op, stats(results[true][key{k.label, op}]), stats(results[false][key{k.label, op}]))
		}
	}
	fmt.Printf("TIMINGS %-18s %-13s %-18s %-18s\n", "(none)", "crictl version", stats(results[true][key{"", "crictl version"}]), stats(results[false][key{"", "crictl version"}]))
	if len(handler) > 0 {
		sort.Slice(handler, func(i, j int) bool { return handler[i] < handler[j] })
		fmt.Printf("TIMINGS plugin CreateContainer handler (took= in its log): median %s, max %s over %d containers\n",
			handler[len(handler)/2], handler[len(handler)-1], len(handler))
	}
	e.r.pass("timings", "%d pods of each kind with and without the plugin", h.o.timings)
	return e.removeAllPods()
}

// pluginTook returns the handler times the plugin logged ("container
// placed ... took=...") for pods whose name starts with prefix.
func pluginTook(log, prefix string) []time.Duration {
	var out []time.Duration
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "container placed") || !strings.Contains(line, "pod=e2e/"+prefix) {
			continue
		}
		if i := strings.Index(line, "took="); i >= 0 {
			v := strings.Trim(strings.Fields(line[i+len("took="):])[0], `"`)
			if d, err := time.ParseDuration(v); err == nil {
				out = append(out, d)
			}
		}
	}
	return out
}

func stats(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond)) }
	p90 := s[min(len(s)-1, (len(s)*9+9)/10-1)]
	return ms(s[len(s)/2]) + " / " + ms(p90) + " / " + ms(s[len(s)-1])
}

// preInstalled: containerd launches the plugin itself from plugin_path
// (90-numaspread) with its configuration from plugin_config_path
// (90-numaspread.conf). The configuration reserves the CPU a 1-CPU container
// would otherwise get, so the container landing elsewhere proves it was read.
func (h *hostRun) preInstalled() error {
	e := h.e
	if err := e.removeAllPods(); err != nil {
		return err
	}
	if e.plug.alive() {
		e.plug.stop(syscall.SIGTERM, 5*time.Second)
	}
	e.stopContainerd()
	want, _, err := planOne(h.o.plugin, e.sysfs, h.excl)
	if err != nil {
		return err
	}
	bin := e.path("nri/plugins/90-numaspread")
	data, err := os.ReadFile(h.o.plugin)
	if err != nil {
		return err
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		return err
	}
	conf := e.path("nri/conf.d/90-numaspread.conf")
	if err := e.writePluginConfig(conf, fmt.Sprintf("\n[policy]\nreserved_cpus = %q\n", h.excl)); err != nil {
		return err
	}
	e.preLog = "/var/log/numaspread.log" // where a pre-installed plugin logs
	if st, err := os.Stat(e.preLog); err == nil {
		e.preLogOffset = st.Size()
	}
	if err := e.startContainerd(); err != nil {
		return err
	}
	// containerd launches and synchronizes pre-installed plugins before it serves CRI.
	var launched []int
	for _, pid := range pidsMentioning(e.dir) {
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe == bin {
			launched = append(launched, pid)
		}
	}
	if len(launched) == 1 {
		e.r.pass("pre-installed/launched", "containerd runs %s (pid %d)", bin, launched[0])
	} else {
		e.r.fail("pre-installed/launched", "%d processes run %s", len(launched), bin)
	}
	be, err := e.startPod(podSpec{name: "pre-besteffort", qos: bestEffort})
	if err != nil {
		return err
	}
	e.expect("pre-installed/shared", be, h.online, h.mems)
	g, err := e.startPod(podSpec{name: "pre-guaranteed", qos: guaranteed, cpuRequest: 1000})
	if err != nil {
		return err
	}
	e.r.logf("the configuration in plugin_config_path reserves CPU %s: the 1-CPU container must get %s", h.excl, want)
	e.expect("pre-installed/config-from-plugin_config_path", g, want, h.mems)
	e.expect("pre-installed/shared-shrinks", be, minus(h.online, want), h.mems)
	if err := e.stopContainer(g); err != nil {
		return err
	}
	e.expect("pre-installed/shared-grows-after-stop", be, h.online, h.mems)
	// containerd discards a pre-installed plugin's output: it must log to
	// its own file.
	check(e.r, "pre-installed/logs", loggedPlacement(e.pluginLogText(), "pre-guaranteed"),
		"the plugin logged the placement of pre-guaranteed to %s", e.preLog)
	return e.removeAllPods()
}

// loggedPlacement reports whether a plugin log has the "container placed"
// line of a pod.
func loggedPlacement(log, pod string) bool {
	re := regexp.MustCompile(`\bpod="?e2e/` + regexp.QuoteMeta(pod) + `("|\s|$)`)
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "container placed") && re.MatchString(line) {
			return true
		}
	}
	return false
}

// shrankThenGrew reports whether a shared container's probe reports show
// its CPUs shrink to shrunk and then, in the last report, grow to full.
func shrankThenGrew(reports []map[string]string, shrunk, full string) bool {
	n := len(reports)
	if n < 2 || canon(reports[n-1]["Cpus_allowed_list"]) != canon(full) {
		return false
	}
	for _, r := range reports[:n-1] {
		if canon(r["Cpus_allowed_list"]) == canon(shrunk) {
			return true
		}
	}
	return false
}

// rpcDesc returns the innermost gRPC error description of a crictl error.
func rpcDesc(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "desc = "); i >= 0 {
		s = s[i+len("desc = "):]
	}
	if i := strings.Index(s, "\n"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimRight(s, `"`)
}

// exitReleases: a Guaranteed container that exits on its own (an init
// container, a finished job) hands its CPUs back with no CRI StopContainer:
// containerd tells NRI plugins about the exit (a StopContainer event).
func (h *hostRun) exitReleases() error {
	e := h.e
	be, err := e.startPod(podSpec{name: "exit-shared", qos: bestEffort})
	if err != nil {
		return err
	}
	e.expect("exit/shared", be, h.online, h.mems)
	g, err := e.startPod(podSpec{name: "exit-guaranteed", qos: guaranteed, cpuRequest: 1000, probeArgs: []string{"once"}})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(e.slow)
	var report map[string]string
	for {
		in, err := e.inspect(g)
		report = lastProbe(readFile(filepath.Join(g.logDir, "main.log")))
		if err == nil && in.Status.State == "CONTAINER_EXITED" && len(report) > 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("exit-guaranteed did not exit with a report within %s", e.slow)
		}
		time.Sleep(100 * time.Millisecond)
	}
	check(e.r, "exit/had-exclusive-cpus", canon(report["Cpus_allowed_list"]) == canon(h.excl),
		"exit-guaranteed ran on %s (want %s) and exited", report["Cpus_allowed_list"], h.excl)
	e.expect("exit/shared-grows-after-exit", be, h.online, h.mems)
	rest := minus(h.online, h.excl)
	check(e.r, "exit/shared-shrank-then-grew", shrankThenGrew(allProbes(readFile(filepath.Join(be.logDir, "main.log"))), rest, h.online),
		"exit-shared reported CPUs %s while exit-guaranteed held %s, then %s again", rest, h.excl, h.online)
	released := false
	for _, line := range strings.Split(e.pluginLogText(), "\n") {
		released = released || strings.Contains(line, "exclusive CPUs released") && strings.Contains(line, "exit-guaranteed")
	}
	check(e.r, "exit/plugin-released", released, "the plugin logged the release of exit-guaranteed's CPUs with no crictl stop")
	return e.removeAllPods()
}
