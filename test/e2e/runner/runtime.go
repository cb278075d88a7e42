package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
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

// env is one e2e run: a temporary folder with a private containerd, maybe
// an external plugin, and the pods created through CRI.
type env struct {
	r      *report
	t      tools
	dir    string // temporary folder; everything lives under it
	plugin string // plugin binary for the external plugin
	sysfs  string

	snapshotter string
	restrictOOM bool // restrict_oom_score_adj (root here lacks CAP_SYS_RESOURCE)
	criTimeout  time.Duration
	slow        time.Duration // how long to wait for cpusets to settle

	containerd *proc
	plug       *proc
	pluginLog  string

	pods    map[string]*pod // by pod name
	podUIDs []string        // every pod uid created, for cgroup cleanup

	cgroupV2    bool
	preexisting map[string]bool // cgroup dirs (kubepods/…) that existed before the run

	preLog       string // log of a pre-installed plugin
	preLogOffset int64  // its size before the run; -1 when it did not exist
}

// proc is a process the e2e started.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func (p *proc) alive() bool {
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// startProc starts a process in its own process group (so a terminal's ^C
// reaches only the runner, which then tears everything down in order).
func startProc(name string, logPath string, env []string, argv ...string) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// stop sends sig, waits up to grace, then kills.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) {
	if !p.alive() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func newEnv(r *report, t tools, plugin string) (*env, error) {
	// Short: shim and NRI sockets live under it (socket_dir ≤ 42 characters).
	dir, err := os.MkdirTemp("", "nse2e-")
	if err != nil {
		return nil, err
	}
	e := &env{r: r, t: t, dir: dir, plugin: plugin, sysfs: "/sys", snapshotter: "overlayfs", restrictOOM: true,
		criTimeout: 60 * time.Second, slow: 15 * time.Second, pods: map[string]*pod{}, preLogOffset: -1}
	for _, d := range []string{"root", "state", "opt", "verifier", "s", "runc", "logs", "specs",
		"nri/plugins", "nri/conf.d", "run/nri", "cni/bin", "cni/conf", "etc"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	e.cgroupV2 = exists("/sys/fs/cgroup/cgroup.controllers")
	e.preexisting = map[string]bool{}
	for _, root := range cgroupRoots() {
		for _, rel := range []string{"kubepods", "kubepods/burstable", "kubepods/besteffort"} {
			if exists(filepath.Join(root, rel)) {
				e.preexisting[filepath.Join(root, rel)] = true
			}
		}
	}
	crictlCfg := fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: %d\ndebug: false\npull-image-on-create: false\n",
		e.sock(), e.sock(), int(e.criTimeout/time.Second))
	if err := os.WriteFile(e.path("crictl.yaml"), []byte(crictlCfg), 0o644); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *env) path(rel string) string { return filepath.Join(e.dir, rel) }
func (e *env) sock() string           { return e.path("containerd.sock") }

// The NRI socket is in a folder of its own, as /var/run/nri is on a node:
// the DaemonSet scenario mounts that folder into the plugin's container.
func (e *env) nriSock() string { return e.path("run/nri/nri.sock") }

// containerdConfig is a private containerd configuration: every path under
// the temporary folder, NRI on, CRI without TCP, runc with cgroupfs.
func (e *env) containerdConfig() string {
	d := e.dir
	return fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q
imports = []

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[debug]
  level = "info"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = %[5]q
  [plugins."io.containerd.image-verifier.v1.bindir"]
    bin_dir = %[6]q
  [plugins."io.containerd.shim.v1.manager"]
    socket_dir = %[7]q
  [plugins."io.containerd.nri.v1.nri"]
    disable = false
    socket_path = %[8]q
    plugin_path = %[9]q
    plugin_config_path = %[10]q
    plugin_registration_timeout = "5s"
    plugin_request_timeout = "2s"
    disable_connections = false
  [plugins."io.containerd.grpc.v1.cri"]
    disable_tcp_service = true
  [plugins."io.containerd.cri.v1.images"]
    snapshotter = %[11]q
    [plugins."io.containerd.cri.v1.images".pinned_images]
      sandbox = %[12]q
  [plugins."io.containerd.cri.v1.runtime"]
    restrict_oom_score_adj = %[17]v
    [plugins."io.containerd.cri.v1.runtime".cni]
      bin_dirs = [%[13]q]
      conf_dir = %[14]q
    [plugins."io.containerd.cri.v1.runtime".containerd]
      default_runtime_name = "runc"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        snapshotter = %[11]q
        [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
          SystemdCgroup = false
          BinaryName = %[15]q
          Root = %[16]q
`, d+"/root", d+"/state", e.sock(), e.sock()+".ttrpc", d+"/opt", d+"/verifier", d+"/s",
		e.nriSock(), d+"/nri/plugins", d+"/nri/conf.d", e.snapshotter, pauseImage,
		d+"/cni/bin", d+"/cni/conf", e.t.runc, d+"/runc", e.restrictOOM)
}

// startContainerd starts containerd and waits until CRI answers.
func (e *env) startContainerd() error {
	if err := os.WriteFile(e.path("containerd.toml"), []byte(e.containerdConfig()), 0o644); err != nil {
		return err
	}
	environ := append(os.Environ(), "PATH="+e.t.bin+":"+filepath.Dir(e.t.runc)+":"+os.Getenv("PATH"))
	start := time.Now()
	p, err := startProc("containerd", e.path("containerd.log"), environ,
		e.t.containerd, "--config", e.path("containerd.toml"))
	if err != nil {
		return err
	}
	e.containerd = p
	deadline := time.Now().Add(e.criTimeout)
	for {
		if _, err := e.crictlQuiet("version"); err == nil {
			e.r.debugf("containerd answers CRI after %s", time.Since(start).Round(time.Millisecond))
			return nil
		}
		if !p.alive() {
			return fmt.Errorf("containerd exited (%v); log:\n%s", p.err, tail(readFile(e.path("containerd.log")), 20))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("containerd does not answer CRI after %s; log:\n%s", e.criTimeout, tail(readFile(e.path("containerd.log")), 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *env) stopContainerd() {
	if e.containerd != nil {
		e.containerd.stop(syscall.SIGTERM, 15*time.Second)
	}
}

// importImages loads the OCI tarballs into the k8s.io namespace.
func (e *env) importImages(im images) error {
	for _, tarball := range []string{im.pause, im.probe} {
		if err := e.importTarball(tarball); err != nil {
			return err
		}
	}
	out, err := e.crictlQuiet("images", "-q")
	if err != nil {
		return err
	}
	e.r.debugf("images: %s", strings.Join(strings.Fields(out), " "))
	return nil
}

// importTarball loads an OCI image archive as an operator does on a node.
func (e *env) importTarball(tarball string) error {
	// --local: the transfer service only unpacks for the snapshotters
	// of its unpack configuration.
	out, err := exec.Command(e.t.ctr, "--address", e.sock(), "-n", "k8s.io", "images", "import",
		"--local", "--snapshotter", e.snapshotter, tarball).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ctr images import %s: %w\n%s", tarball, err, out)
	}
	return nil
}

// writePluginConfig writes the external plugin's TOML configuration.
func (e *env) writePluginConfig(path, extra string) error {
	text := fmt.Sprintf("[topology]\nsysfs = %q\n\n[log]\nlevel = \"debug\"\n%s", e.sysfs, extra)
	return os.WriteFile(path, []byte(text), 0o644)
}

var syncedRE = regexp.MustCompile(`msg="?synchronized`)

// startPlugin starts the external plugin and waits for its Synchronize.
func (e *env) startPlugin() error {
	// In a folder of its own: the plugin watches the configuration file's
	// folder, and its log file must not be in it.
	cfg := e.path("etc/numaspread.toml")
	if err := e.writePluginConfig(cfg, ""); err != nil {
		return err
	}
	e.pluginLog = e.path("numaspread.log")
	before := e.syncCount()
	p, err := startProc("numaspread", e.path("numaspread.stderr"), os.Environ(), e.plugin, "run",
		"--socket", e.nriSock(), "--sysfs", e.sysfs, "--config", cfg, "--log-file", e.pluginLog,
		"--idx", "90", "--name", "numaspread")
	if err != nil {
		return err
	}
	e.plug = p
	return e.waitSynced(before, 20*time.Second)
}

// syncCount is how many Synchronize calls the plugin's log shows so far.
func (e *env) syncCount() int {
	return len(syncedRE.FindAllStringIndex(e.pluginLogText(), -1))
}

func (e *env) pluginLogText() string {
	if e.preLog != "" {
		b := readFile(e.preLog)
		if e.preLogOffset > 0 && int64(len(b)) >= e.preLogOffset {
			b = b[e.preLogOffset:]
		}
		return b
	}
	return readFile(e.pluginLog)
}

// waitSynced waits until the plugin has synchronized more than before times.
func (e *env) waitSynced(before int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for e.syncCount() <= before {
		if e.plug != nil && !e.plug.alive() && e.preLog == "" {
			return fmt.Errorf("the plugin exited (%v); stderr:\n%s\nlog:\n%s", e.plug.err,
				tail(readFile(e.path("numaspread.stderr")), 10), tail(e.pluginLogText(), 10))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the plugin did not synchronize within %s; log:\n%s", timeout, tail(e.pluginLogText(), 10))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// crictl runs crictl against the private containerd and returns stdout.
func (e *env) crictl(args ...string) (string, error) {
	e.r.debugf("crictl %s", strings.Join(args, " "))
	return e.crictlQuiet(args...)
}

func (e *env) crictlQuiet(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), e.criTimeout+10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.t.crictl, append([]string{"--config", e.path("crictl.yaml")}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("crictl %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// teardown removes everything the run started or left: pods, the plugin,
// containerd, leftover shims and container processes, pod cgroups, mounts
// under the temporary folder and, unless keep, the folder itself.
func (e *env) teardown(keep bool) {
	if e == nil {
		return
	}
	if e.containerd.alive() {
		if out, err := e.crictlQuiet("pods", "-q"); err == nil {
			for _, id := range strings.Fields(out) {
				_, _ = e.crictlQuiet("stopp", id)
				_, _ = e.crictlQuiet("rmp", "-f", id)
			}
		}
	}
	if e.plug != nil {
		e.plug.stop(syscall.SIGTERM, 5*time.Second)
	}
	e.stopContainerd()
	// Shims and a pre-installed plugin name the temporary folder in their
	// command line or executable path.
	for _, pid := range pidsMentioning(e.dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	e.removePodCgroups()
	unmountUnder(e.dir)
	if e.preLog != "" && e.preLogOffset < 0 {
		_ = os.Remove(e.preLog) // the run created it
	}
	if keep {
		fmt.Printf("-- kept %s (containerd.log, numaspread.log, specs/, logs/)\n", e.dir)
		return
	}
	if err := os.RemoveAll(e.dir); err != nil {
		fmt.Printf("-- could not remove %s: %v\n", e.dir, err)
	}
}

// pidsMentioning returns the processes (other than this one) whose command
// line or executable names dir.
func pidsMentioning(dir string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		var pid int
		if _, err := fmt.Sscanf(ent.Name(), "%d", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		exe, _ := os.Readlink(filepath.Join("/proc", ent.Name(), "exe"))
		if bytes.Contains(cmdline, []byte(dir+"/")) || strings.HasPrefix(exe, dir+"/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// cgroupRoots returns the cgroup hierarchies mounted under /sys/fs/cgroup
// (each v1 controller once, or the v2 root).
func cgroupRoots() []string {
	if exists("/sys/fs/cgroup/cgroup.controllers") {
		return []string{"/sys/fs/cgroup"}
	}
	seen := map[string]bool{}
	var roots []string
	ents, _ := os.ReadDir("/sys/fs/cgroup")
	for _, ent := range ents {
		p := filepath.Join("/sys/fs/cgroup", ent.Name())
		real, err := filepath.EvalSymlinks(p)
		if err != nil || seen[real] || !exists(filepath.Join(real, "cgroup.procs")) {
			continue
		}
		seen[real] = true
		roots = append(roots, real)
	}
	sort.Strings(roots)
	return roots
}

// removePodCgroups kills what is left in the run's pod cgroups and removes
// them, and the kubepods parents when the run created them.
func (e *env) removePodCgroups() {
	for _, root := range cgroupRoots() {
		for _, uid := range e.podUIDs {
			for _, parent := range []string{"kubepods", "kubepods/burstable", "kubepods/besteffort"} {
				removeCgroupTree(filepath.Join(root, parent, "pod"+uid))
			}
		}
		for _, rel := range []string{"kubepods/burstable", "kubepods/besteffort", "kubepods"} {
			p := filepath.Join(root, rel)
			if !e.preexisting[p] {
				_ = syscall.Rmdir(p)
			}
		}
	}
}

func removeCgroupTree(dir string) {
	if !exists(dir) {
		return
	}
	ents, _ := os.ReadDir(dir)
	for _, ent := range ents {
		if ent.IsDir() {
			removeCgroupTree(filepath.Join(dir, ent.Name()))
		}
	}
	for attempt := 0; attempt < 20; attempt++ {
		procs, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		for _, f := range strings.Fields(string(procs)) {
			var pid int
			if _, err := fmt.Sscanf(f, "%d", &pid); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if err := syscall.Rmdir(dir); err == nil || errors.Is(err, syscall.ENOENT) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Printf("-- could not remove cgroup %s\n", dir)
}

// unmountUnder lazily unmounts every mount point under dir, deepest first.
func unmountUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 {
			mp := unescapeMount(fields[4])
			if strings.HasPrefix(mp, dir+"/") {
				points = append(points, mp)
			}
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, mp := range points {
		_ = syscall.Unmount(mp, syscall.MNT_DETACH)
	}
}

func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
