package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/numaspread/numaspread/topology/synth"
)

// checkEnv is a node in a temporary folder: a synthetic sysfs with a cgroup
// v2 root, an NRI socket, the kubelet's files and the NRI folders. Each test
// breaks one thing and looks at the lines about it.
type checkEnv struct {
	t   *testing.T
	dir string
	o   checkOptions
}

func newCheckEnv(t *testing.T, spec synth.Spec) *checkEnv {
	t.Helper()
	dir := t.TempDir()
	e := &checkEnv{t: t, dir: dir}
	sysfs := filepath.Join(dir, "sys")
	if err := spec.WriteDir(sysfs); err != nil {
		t.Fatal(err)
	}
	e.write("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n", 0o644)
	e.write("etc/numaspread/config.toml", "[policy]\nspread = \"minimal\"\n", 0o644)
	e.write("kubelet/config.yaml", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncpuManagerPolicy: none\n", 0o644)
	e.write("kubelet/cpu_manager_state", `{"policyName":"none","defaultCpuSet":"","checksum":1353318690}`, 0o644)
	for _, d := range []string{"opt/nri/plugins", "etc/nri/conf.d", "proc", "run/nri"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(dir, "run/nri/nri.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	e.o = checkOptions{
		configFlags: configFlags{
			file:   filepath.Join(dir, "etc/numaspread/config.toml"),
			socket: sock,
			sysfs:  sysfs,
		},
		kubeletConfig: filepath.Join(dir, "kubelet/config.yaml"),
		kubeletState:  filepath.Join(dir, "kubelet/cpu_manager_state"),
		pluginDir:     filepath.Join(dir, "opt/nri/plugins"),
		confDir:       filepath.Join(dir, "etc/nri/conf.d"),
		procRoot:      filepath.Join(dir, "proc"),
		self:          1,
	}
	return e
}

func (e *checkEnv) path(rel string) string { return filepath.Join(e.dir, rel) }

func (e *checkEnv) write(rel, text string, mode os.FileMode) {
	e.t.Helper()
	p := e.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), mode); err != nil {
		e.t.Fatal(err)
	}
}

// run runs the checks and returns the report and its lines.
func (e *checkEnv) run() (*checkReport, []string) {
	e.t.Helper()
	var out bytes.Buffer
	r := runChecks(e.o, &out)
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	for _, l := range lines {
		if !strings.HasPrefix(l, "ok: ") && !strings.HasPrefix(l, "warn: ") && !strings.HasPrefix(l, "FAIL: ") {
			e.t.Errorf("line without a status: %q", l)
		}
	}
	if r.ok+r.warn+r.fail != len(lines) {
		e.t.Errorf("counted %d+%d+%d results for %d lines", r.ok, r.warn, r.fail, len(lines))
	}
	return r, lines
}

// expect asserts that some line starts with status and contains every part.
func expect(t *testing.T, lines []string, status string, parts ...string) {
	t.Helper()
next:
	for _, l := range lines {
		if !strings.HasPrefix(l, status+": ") {
			continue
		}
		for _, p := range parts {
			if !strings.Contains(l, p) {
				continue next
			}
		}
		return
	}
	t.Errorf("no %q line containing %q in:\n%s", status, parts, strings.Join(lines, "\n"))
}

// expectNone asserts that no line of that status contains the text.
func expectNone(t *testing.T, lines []string, status, text string) {
	t.Helper()
	for _, l := range lines {
		if strings.HasPrefix(l, status+": ") && strings.Contains(l, text) {
			t.Errorf("unexpected line %q", l)
		}
	}
}

func TestCheckHealthyNode(t *testing.T) {
	e := newCheckEnv(t, synth.SmallTwoNode())
	r, lines := e.run()
	if r.fail != 0 || r.warn != 0 {
		t.Fatalf("a healthy node gave %d FAIL, %d warn:\n%s", r.fail, r.warn, strings.Join(lines, "\n"))
	}
	expect(t, lines, "ok", "config:", "parses", "spread minimal")
	expect(t, lines, "ok", "topology: 16 CPUs online (0-15), 2 threads per core, 2 NUMA nodes", "node 0: 0-3,8-11", "node 1: 4-7,12-15")
	expect(t, lines, "ok", "fits this machine", "manages CPUs 0-15 (16)", "reserved none")
	expect(t, lines, "ok", "cgroup v2")
	expect(t, lines, "ok", "nri socket:", "can connect")
	expect(t, lines, "ok", "cpuManagerPolicy is none")
	expect(t, lines, "ok", "last ran with policy none")
	expect(t, lines, "ok", "no other cpuset-owning plugin found")
}

func TestCheckConfig(t *testing.T) {
	t.Run("syntax and key errors name the file and line", func(t *testing.T) {
		e := newCheckEnv(t, synth.SmallTwoNode())
		e.write("etc/numaspread/config.toml", "[policy]\nspred = \"all\"\nmode = \"fast\"\n", 0o644)
		r, lines := e.run()
		if r.fail == 0 {
			t.Fatal("no FAIL")
		}
		expect(t, lines, "FAIL", "config:", "config.toml:2", "policy.spred", "config.toml:3", "policy.mode")
		// The other checks still run, on the defaults.
		expect(t, lines, "ok", "topology: 16 CPUs")
		expect(t, lines, "ok", "nri socket:")
		expectNone(t, lines, "ok", "fits this machine")
	})
	t.Run("an explicit file must exist", func(t *testing.T) {
		e := newCheckEnv(t, synth.SmallTwoNode())
		e.o.file = e.path("nope.toml")
		_, lines := e.run()
		expect(t, lines, "FAIL", "config:", "nope.toml")
	})
	t.Run("the default file may be missing", func(t *testing.T) {
		e := newCheckEnv(t, synth.SmallTwoNode())
		e.o.file = ""
		_, lines := e.run()
		expect(t, lines, "ok", "not found: using the built-in defaults")
	})
	t.Run("does not fit the machine", func(t *testing.T) {
		e := newCheckEnv(t, synth.SmallTwoNode())
		e.write("etc/numaspread/config.toml", "[policy]\nreserved_cpus = \"20-21\"\n", 0o644)
		_, lines := e.run()
		expect(t, lines, "FAIL", "does not fit this machine", "config.toml:2", "policy.reserved_cpus")
	})
	t.Run("resolve warnings are warnings", func(t *testing.T) {
		spec := synth.SmallTwoNode()
		spec.Isolated = "6-7"
		e := newCheckEnv(t, spec)
		e.write("etc/numaspread/config.toml", "[policy]\nallowed_cpus = \"0-15\"\n", 0o644)
		r, lines := e.run()
		if r.fail != 0 {
			t.Fatalf("FAIL in:\n%s", strings.Join(lines, "\n"))
		}
		expect(t, lines, "warn", "config:", "isolated CPUs 6-7")
	})
	t.Run("sysfs from the file", func(t *testing.T) {
		e := newCheckEnv(t, synth.SmallTwoNode())
		e.o.sysfs = ""
		e.write("etc/numaspread/config.toml", "[topology]\nsysfs = \""+e.path("sys")+"\"\n", 0o644)
		r, lines := e.run()
		if r.fail != 0 {
			t.Fatalf("sysfs from the file: FAIL in:\n%s", strings.Join(lines, "\n"))
		}
		// The machine and the cgroup root are the file's synthetic ones, not /sys.
		expect(t, lines, "ok", "topology: 16 CPUs online (0-15), 2 threads per core, 2 NUMA nodes", "node 0: 0-3,8-11", "node 1: 4-7,12-15")
		expect(t, lines, "ok", "cgroup v2, "+e.path("sys/fs/cgroup"))
	})
}

func TestCheckTopology(t *testing.T) {
	t.Run("unreadable", func(t *testing.T) {
		e := newCheckEnv(t, synth.SmallTwoNode())
		e.o.sysfs = e.path("no-such-sysfs")
		_, lines := e.run()
		expect(t, lines, "FAIL", "topology: cannot read the machine from", "no-such-sysfs")
		expectNone(t, lines, "ok", "fits this machine")
	})
	t.Run("one NUMA node", func(t *testing.T) {
		e := newCheckEnv(t, synth.NoNUMA())
		r, lines := e.run()
		if r.fail != 0 {
			t.Fatalf("FAIL in:\n%s", strings.Join(lines, "\n"))
		}
		expect(t, lines, "warn", "only one NUMA node has CPUs")
	})
	t.Run("a tarball has no cgroups to check", func(t *testing.T) {
		e := newCheckEnv(t, synth.SmallTwoNode())
		tgz := e.path("sys.tar.gz")
		if err := synth.SmallTwoNode().WriteTarGz(tgz); err != nil {
			t.Fatal(err)
		}
		e.o.sysfs = tgz
		r, lines := e.run()
		if r.fail != 0 || r.warn != 0 {
			t.Fatalf("FAIL/warn in:\n%s", strings.Join(lines, "\n"))
		}
		expect(t, lines, "ok", "topology: 16 CPUs")
		expectNone(t, lines, "ok", "cgroup: the cpuset controller")
	})
}

func TestCheckCgroup(t *testing.T) {
	t.Run("v2 without cpuset", func(t *testing.T) {
		e := newCheckEnv(t, synth.SmallTwoNode())
		e.write("sys/fs/cgroup/cgroup.controllers", "cpu io memory pids\n", 0o644)
		_, lines := e.run()
		expect(t, lines, "FAIL", "cgroup.controllers does not list cpuset")
	})
	t.Run("v1", func(t *testing.T) {
		e := newCheckEnv(t, synth.SmallTwoNode())
		os.Remove(e.path("sys/fs/cgroup/cgroup.controllers"))
		os.MkdirAll(e.path("sys/fs/cgroup/cpuset"), 0o755)
		_, lines := e.run()
		expect(t, lines, "ok", "cgroup v1")
	})
	t.Run("none found", func(t *testing.T) {
		e := newCheckEnv(t, synth.SmallTwoNode())
		os.Remove(e.path("sys/fs/cgroup/cgroup.controllers"))
		_, lines := e.run()
		expect(t, lines, "warn", "cannot find the cpuset controller")
	})
}

func TestCheckSocket(t *testing.T) {
	t.Run("missing", func(t *testing.T) {
		e := newCheckEnv(t, synth.SmallTwoNode())
		e.o.socket = e.path("run/nri/other.sock")
		r, lines := e.run()
		if r.fail != 1 {
			t.Errorf("%d FAIL, want 1", r.fail)
		}
		expect(t, lines, "FAIL", "nri socket:", "other.sock does not exist", "enable NRI")
	})
	t.Run("missing is fine for a pre-installed plugin", func(t *testing.T) {
		e := newCheckEnv(t, synth.SmallTwoNode())
		e.o.socket = e.path("run/nri/other.sock")
		e.write("opt/nri/plugins/90-numaspread", "#!/bin/sh\n", 0o755)
		r, lines := e.run()
		if r.fail != 0 {
			t.Fatalf("FAIL in:\n%s", strings.Join(lines, "\n"))
		}
		expect(t, lines, "ok", "nri socket:", "not needed by the pre-installed plugin", "90-numaspread")
		expect(t, lines, "ok", "numaspread is pre-installed", "one mode only")
	})
	t.Run("not a socket", func(t *testing.T) {
		e := newCheckEnv(t, synth.SmallTwoNode())
		e.write("run/nri/file.sock", "", 0o600)
		e.o.socket = e.path("run/nri/file.sock")
		_, lines := e.run()
		expect(t, lines, "FAIL", "nri socket:", "is not a socket")
	})
}

func TestCheckKubelet(t *testing.T) {
	cases := []struct {
		name          string
		config, state string // "" leaves the file out
		status        string
		parts         []string
	}{
		{"config default policy", "kind: KubeletConfiguration\n", "", "ok", []string{"cpuManagerPolicy is none (not set: the default)"}},
		{"config static", "cpuManagerPolicy: static\n", "", "FAIL", []string{"cpuManagerPolicy is \"static\"", "needs \"none\"", "cpu_manager_state"}},
		{"config JSON", `{"kind":"KubeletConfiguration","cpuManagerPolicy":"static"}`, "", "FAIL", []string{"cpuManagerPolicy is \"static\""}},
		{"config unparsable", "cpuManagerPolicy: [\n", "", "FAIL", []string{"cannot parse", "config.yaml"}},
		{"state static", "", `{"policyName":"static","defaultCpuSet":"0-15","checksum":1}`, "FAIL", []string{"runs policy \"static\""}},
		{"state static, config none", "cpuManagerPolicy: none\n", `{"policyName":"static","defaultCpuSet":"0-15","checksum":1}`, "FAIL", []string{"refuse to start until that file is removed"}},
		{"state V4 data wins", "", `{"policyName":"none","data":"{\"policyName\":\"static\"}","dataChecksum":1}`, "FAIL", []string{"runs policy \"static\""}},
		{"state V4 none", "", `{"policyName":"none","data":"{\"policyName\":\"none\",\"defaultCPUSet\":\"\"}","dataChecksum":1}`, "ok", []string{"last ran with policy none"}},
		{"state unparsable", "", `{"policyName":`, "FAIL", []string{"cannot parse", "cpu_manager_state"}},
		{"memory manager static", "memoryManagerPolicy: Static\n", "", "warn", []string{"memoryManagerPolicy is Static", "cpuset.mems"}},
		{"reserved CPUs differ", "reservedSystemCPUs: \"0,8\"\n", "", "warn", []string{"reservedSystemCPUs is \"0,8\"", "reserved_cpus is \"\""}},
		{"neither file", "", "", "warn", []string{"cannot tell the CPU manager policy"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newCheckEnv(t, synth.SmallTwoNode())
			for _, f := range []struct{ rel, text string }{{"kubelet/config.yaml", c.config}, {"kubelet/cpu_manager_state", c.state}} {
				if f.text == "" {
					os.Remove(e.path(f.rel))
				} else {
					e.write(f.rel, f.text, 0o644)
				}
			}
			_, lines := e.run()
			expect(t, lines, c.status, append([]string{"kubelet:"}, c.parts...)...)
		})
	}
	t.Run("reserved CPUs that match", func(t *testing.T) {
		e := newCheckEnv(t, synth.SmallTwoNode())
		e.write("kubelet/config.yaml", "reservedSystemCPUs: \"0,8\"\n", 0o644)
		e.write("etc/numaspread/config.toml", "[policy]\nreserved_cpus = \"0,8\"\n", 0o644)
		r, lines := e.run()
		if r.warn+r.fail != 0 {
			t.Fatalf("warn/FAIL in:\n%s", strings.Join(lines, "\n"))
		}
	})
	t.Run("memory manager static with memory none", func(t *testing.T) {
		e := newCheckEnv(t, synth.SmallTwoNode())
		e.write("kubelet/config.yaml", "memoryManagerPolicy: Static\n", 0o644)
		e.write("etc/numaspread/config.toml", "[policy]\nmemory = \"none\"\n", 0o644)
		r, lines := e.run()
		if r.warn+r.fail != 0 {
			t.Fatalf("warn/FAIL in:\n%s", strings.Join(lines, "\n"))
		}
	})
	for _, c := range []struct {
		name, config, state, status string
		parts                       []string
	}{
		{"memory state static, config none", "cpuManagerPolicy: none\n", `{"policyName":"Static","machineState":{},"checksum":1}`, "FAIL",
			[]string{"memory_manager_state records memory manager policy \"Static\"", "configured with \"None\"", "refuse to start"}},
		{"memory state static, config static", "memoryManagerPolicy: Static\n", `{"policyName":"Static","checksum":1}`, "warn",
			[]string{"memory manager runs policy Static"}},
		{"memory state none", "cpuManagerPolicy: none\n", `{"policyName":"None","checksum":1}`, "ok",
			[]string{"memory manager last ran with policy None"}},
		{"memory state unparsable", "", `{"policyName":`, "FAIL", []string{"cannot parse", "memory_manager_state"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newCheckEnv(t, synth.SmallTwoNode())
			e.write("kubelet/config.yaml", c.config, 0o644)
			e.write("kubelet/memory_manager_state", c.state, 0o644)
			_, lines := e.run()
			expect(t, lines, c.status, append([]string{"kubelet:"}, c.parts...)...)
		})
	}
	t.Run("explicit paths must be readable", func(t *testing.T) {
		e := newCheckEnv(t, synth.SmallTwoNode())
		e.o.kubeletConfig = e.path("kubelet/missing.yaml")
		e.o.explicitKubelet = true
		_, lines := e.run()
		expect(t, lines, "warn", "kubelet: cannot read", "missing.yaml")
		expectNone(t, lines, "warn", "cannot tell the CPU manager policy")
	})
}

func TestCheckOtherPlugins(t *testing.T) {
	e := newCheckEnv(t, synth.SmallTwoNode())
	e.write("opt/nri/plugins/10-topology-aware", "#!/bin/sh\n", 0o755)
	e.write("opt/nri/plugins/20-balloons", "not executable\n", 0o644) // the runtime skips it too
	e.write("opt/nri/plugins/README", "#!/bin/sh\n", 0o755)
	e.write("etc/nri/conf.d/15-balloons.conf", "x\n", 0o644)
	e.write("proc/4242/cmdline", "/bin/nri-resource-policy-balloons\x00--config\x00x\x00", 0o444)
	e.write("proc/77/cmdline", "/usr/local/bin/numaspread\x00run\x00", 0o444)
	e.write("proc/1/cmdline", "/usr/local/bin/numaspread\x00check\x00", 0o444) // ourselves
	e.write("proc/5/cmdline", "", 0o444)                                       // a kernel thread
	e.write("proc/self/cmdline", "x\x00", 0o444)
	r, lines := e.run()
	if r.fail != 0 {
		t.Fatalf("FAIL in:\n%s", strings.Join(lines, "\n"))
	}
	expect(t, lines, "warn", "10-topology-aware", `"topology-aware"`)
	expectNone(t, lines, "warn", "20-balloons")
	expect(t, lines, "warn", "15-balloons.conf", `"balloons"`)
	expect(t, lines, "warn", "process 4242 (nri-resource-policy-balloons)")
	expect(t, lines, "ok", "numaspread is already running here (pid 77)")
	expectNone(t, lines, "ok", "no other cpuset-owning plugin")
	if r.warn != 3 {
		t.Errorf("%d warnings, want 3:\n%s", r.warn, strings.Join(lines, "\n"))
	}
}

func TestCheckCommand(t *testing.T) {
	e := newCheckEnv(t, synth.SmallTwoNode())
	args := []string{"check", "--config", e.o.file, "--sysfs", e.o.sysfs, "--socket", e.o.socket,
		"--kubelet-config", e.o.kubeletConfig, "--kubelet-state", e.o.kubeletState,
		"--nri-plugin-dir", e.o.pluginDir, "--nri-conf-dir", e.o.confDir}
	var out, errOut bytes.Buffer
	if st := dispatch(args, &out, &errOut); st != 0 {
		t.Fatalf("status %d on a healthy node:\n%s%s", st, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "numaspread check: ") || !strings.Contains(out.String(), " 0 FAIL\n") {
		t.Errorf("no summary line:\n%s", out.String())
	}
	out.Reset()
	args[2] = e.path("missing.toml")
	if st := dispatch(args, &out, &errOut); st != 1 {
		t.Fatalf("status %d with a missing --config, want 1:\n%s", st, out.String())
	}
	if st := dispatch([]string{"check", "extra"}, &out, &errOut); st != 2 {
		t.Errorf("status %d for a stray argument, want 2", st)
	}
	errOut.Reset()
	if st := dispatch([]string{"check", "-h"}, &out, &errOut); st != 0 || !strings.Contains(errOut.String(), "-kubelet-state") {
		t.Errorf("check -h: status %d, usage:\n%s", st, errOut.String())
	}
}

// TestCheckNoExclusiveRoom: a configuration whose shared pool floor takes
// every CPU an exclusive allocation could have is valid, but check warns.
func TestCheckNoExclusiveRoom(t *testing.T) {
	const warning = "config: no exclusive allocation can succeed"
	tests := []struct {
		name   string
		policy string
		want   []string // parts of the warning; nil: no warning
	}{
		{"one managed CPU", `allowed_cpus = "0"`,
			[]string{"the managed CPUs 0 (1) and must keep 1 of them (min_shared_cpus = 1", "leaves 0 for exclusive allocations", "policy.allowed_cpus"}},
		{"one managed CPU, min_shared_cpus = 0 acts as 1", "allowed_cpus = \"0\"\nmin_shared_cpus = 0",
			[]string{"must keep 1 of them (min_shared_cpus = 0, and the plugin never leaves the shared pool empty)"}},
		{"min_shared_cpus takes every managed CPU", "allowed_cpus = \"0-3\"\nmin_shared_cpus = 4",
			[]string{"the managed CPUs 0-3 (4) and must keep 4 of them (min_shared_cpus = 4)", "lower policy.min_shared_cpus"}},
		{"strictly reserved leave only the floor", "reserved_cpus = \"0-13\"\nstrict_reserved = true\nmin_shared_cpus = 2",
			[]string{"the managed CPUs 0-15 minus the strictly reserved 0-13 (2) and must keep 2", "policy.strict_reserved = false"}},
		{"reserved but not strict: one CPU can be exclusive", `reserved_cpus = "0-14"`, nil},
		{"room for one", "allowed_cpus = \"0-3\"\nmin_shared_cpus = 3", nil},
		{"defaults", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newCheckEnv(t, synth.SmallTwoNode())
			e.write("etc/numaspread/config.toml", "[policy]\n"+tt.policy+"\n", 0o644)
			r, lines := e.run()
			if r.fail != 0 {
				t.Fatalf("FAIL in:\n%s", strings.Join(lines, "\n"))
			}
			if tt.want == nil {
				expectNone(t, lines, "warn", warning)
				return
			}
			expect(t, lines, "warn", append([]string{warning}, tt.want...)...)
		})
	}
}
