package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// daemonSet: the image `make image` built, loaded with `ctr images import`
// as an operator does on a node, runs as the DaemonSet's pod of the
// kustomization in -deploy, in place of the external plugin. It registers
// and synchronizes through the socket folder mounted from the host; its
// process has exactly the restrictions the manifests ask for; its health
// endpoints answer as its probes expect; and it places containers, its own
// among the shared ones.
//
// The pod runs on the node's network (the e2e has no CNI), so the probes
// reach it at 127.0.0.1 where the kubelet would use the pod IP.
func (h *hostRun) daemonSet() error {
	e := h.e
	if h.o.image == "" {
		e.r.logf("daemonset skipped: no -image (make e2e passes the archive of make image)")
		return nil
	}
	if err := e.removeAllPods(); err != nil {
		return err
	}
	if e.plug.alive() {
		e.plug.stop(syscall.SIGTERM, 5*time.Second)
	}
	ref, err := imageName(h.o.image)
	if err != nil {
		return err
	}
	node, err := os.Hostname()
	if err != nil {
		return err
	}
	kp, err := e.daemonSetPod(h.o.deploy, node, map[string]string{"/var/run/nri": filepath.Dir(e.nriSock())})
	if err != nil {
		return err
	}
	if kp.container.Image != ref {
		return fmt.Errorf("the DaemonSet of %s runs %s but %s holds %s", h.o.deploy, kp.container.Image, h.o.image, ref)
	}
	if err := e.importTarball(h.o.image); err != nil {
		return err
	}
	e.r.pass("daemonset/image-imported", "ctr -n k8s.io images import %s: %s", filepath.Base(h.o.image), ref)

	p, err := e.runPod(kp.spec)
	if err != nil {
		return err
	}
	e.plug, e.pluginLog = nil, filepath.Join(p.logDir, "main.log")
	if err := e.createContainer(p); err != nil {
		return err
	}
	if err := e.startContainer(p); err != nil {
		return err
	}
	if err := e.waitSynced(0, 30*time.Second); err != nil {
		return fmt.Errorf("the DaemonSet's pod: %w", err)
	}
	e.r.pass("daemonset/registers", "pod %s/%s (%s, args %q) synchronized over the mounted socket folder",
		kp.spec.namespace, kp.spec.name, kp.spec.qos, kp.container.Args)
	in, err := e.inspect(p)
	if err != nil {
		return err
	}
	h.checkRestrictions(in.Info.Pid, kp)
	h.checkProbes(kp)

	be, err := e.startPod(podSpec{name: "ds-besteffort", qos: bestEffort})
	if err != nil {
		return err
	}
	e.expect("daemonset/shared", be, h.online, h.mems)
	g, err := e.startPod(podSpec{name: "ds-guaranteed", qos: guaranteed, cpuRequest: 1000})
	if err != nil {
		return err
	}
	rest := minus(h.online, h.excl)
	e.expect("daemonset/exclusive", g, h.excl, h.mems)
	e.expect("daemonset/shared-shrinks", be, rest, h.mems)
	h.expectOwnCPUs("daemonset/own-container-in-shared-pool", p, in.Info.Pid, rest)
	if err := e.stopContainer(g); err != nil {
		return err
	}
	e.expect("daemonset/shared-grows-after-stop", be, h.online, h.mems)
	h.expectOwnCPUs("daemonset/own-container-grows-after-stop", p, in.Info.Pid, h.online)
	return e.removeAllPods()
}

// checkRestrictions compares the plugin's process with its manifest: user,
// capabilities, no_new_privs, seccomp and read-only mounts, each expected
// value taken from the manifest rather than assumed.
func (h *hostRun) checkRestrictions(pid int, kp *kubePod) {
	r := h.r
	status := procStatus(pid)
	sc := kp.container.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	if sc.RunAsUser != nil {
		want := fmt.Sprint(*sc.RunAsUser)
		if uid := strings.Fields(status["Uid"]); len(uid) > 0 && uid[0] == want {
			r.pass("daemonset/run-as-user", "uid %s", want)
		} else {
			r.fail("daemonset/run-as-user", "want uid %s, process has %q", want, status["Uid"])
		}
	}
	if sc.Capabilities != nil && slices.Contains(sc.Capabilities.Drop, "ALL") && len(sc.Capabilities.Add) == 0 {
		var held []string
		for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
			if strings.Trim(status[k], "0") != "" {
				held = append(held, k+"="+status[k])
			}
		}
		if len(held) == 0 {
			r.pass("daemonset/capabilities-dropped", "effective, permitted, bounding and ambient sets empty")
		} else {
			r.fail("daemonset/capabilities-dropped", "drop ALL, but the process holds %s", strings.Join(held, " "))
		}
	}
	if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		check(r, "daemonset/no-privilege-escalation", status["NoNewPrivs"] == "1", "NoNewPrivs %q", status["NoNewPrivs"])
	}
	if sp := kp.template.SecurityContext; sp != nil && sp.SeccompProfile != nil && sp.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault {
		check(r, "daemonset/seccomp", status["Seccomp"] == "2", "Seccomp %q (2: filter)", status["Seccomp"])
	}
	environ := map[string]string{}
	for _, kv := range strings.Split(readFile(fmt.Sprintf("/proc/%d/environ", pid)), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			environ[k] = v
		}
	}
	for _, env := range kp.spec.kube.envs {
		check(r, "daemonset/env/"+env["key"], environ[env["key"]] == env["value"], "want %q, process has %q", env["value"], environ[env["key"]])
	}
	mounts := mountOptions(pid)
	readOnly := map[string]bool{}
	if sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
		readOnly["/"] = true
	}
	for _, m := range kp.container.VolumeMounts {
		readOnly[m.MountPath] = m.ReadOnly
	}
	for _, path := range sortedKeys(readOnly) {
		opts, ok := mounts[path]
		switch {
		case !ok:
			r.fail("daemonset/mount"+path, "not mounted in the container")
		case readOnly[path] != slices.Contains(strings.Split(opts, ","), "ro"):
			r.fail("daemonset/mount"+path, "read-only %v in the manifest, mounted %s", readOnly[path], opts)
		default:
			r.pass("daemonset/mount"+path, "mounted %s", strings.Split(opts, ",")[0])
		}
	}
}

// checkProbes runs the container's readiness and liveness probes as the
// kubelet would, giving each its initial delay and failure budget.
func (h *hostRun) checkProbes(kp *kubePod) {
	for _, pr := range []struct {
		name  string
		probe *corev1.Probe
	}{{"readiness", kp.container.ReadinessProbe}, {"liveness", kp.container.LivenessProbe}} {
		name := "daemonset/" + pr.name + "-probe"
		if pr.probe == nil || pr.probe.HTTPGet == nil {
			h.r.logf("%s: the manifest has no HTTP %s probe", name, pr.name)
			continue
		}
		url, err := probeURL(kp.container, pr.probe.HTTPGet)
		if err != nil {
			h.r.fail(name, "%v", err)
			continue
		}
		period := time.Duration(max(pr.probe.PeriodSeconds, 1)) * time.Second
		budget := time.Duration(pr.probe.InitialDelaySeconds)*time.Second + period*time.Duration(max(pr.probe.FailureThreshold, 1))
		client := &http.Client{Timeout: time.Duration(max(pr.probe.TimeoutSeconds, 1)) * time.Second}
		deadline := time.Now().Add(budget)
		var last string
		for {
			status, body, err := get(client, url)
			if err == nil && status >= 200 && status < 400 {
				h.r.pass(name, "GET %s: %d %s", url, status, strings.TrimSpace(body))
				break
			}
			last = fmt.Sprintf("status %d %q, err %v", status, body, err)
			if time.Now().After(deadline) {
				h.r.fail(name, "GET %s not healthy within %s: %s", url, budget, last)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// probeURL resolves an HTTP probe against the container's ports.
func probeURL(c corev1.Container, g *corev1.HTTPGetAction) (string, error) {
	port := int32(g.Port.IntValue())
	if g.Port.StrVal != "" {
		for _, p := range c.Ports {
			if p.Name == g.Port.StrVal {
				port = p.ContainerPort
			}
		}
	}
	if port <= 0 {
		return "", fmt.Errorf("probe port %s is not a port of container %s", g.Port.String(), c.Name)
	}
	return fmt.Sprintf("http://127.0.0.1:%d%s", port, g.Path), nil
}

func get(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 200))
	return resp.StatusCode, string(body), err
}

// expectOwnCPUs waits until the plugin's own container (cgroup and process)
// has cpus.
func (h *hostRun) expectOwnCPUs(name string, p *pod, pid int, cpus string) {
	cpus = canon(cpus)
	deadline := time.Now().Add(h.e.slow)
	var cg, proc string
	for {
		if in, err := h.e.inspect(p); err == nil {
			cg = canon(readFile(h.e.cgroupFile(in.Info.RuntimeSpec.Linux.CgroupsPath, "cpuset.cpus")))
		}
		proc = canon(procStatus(pid)["Cpus_allowed_list"])
		if cg == cpus && proc == cpus {
			h.r.pass(name, "the plugin's container: cpus %s in cgroup and process", cpus)
			return
		}
		if time.Now().After(deadline) {
			h.r.fail(name, "the plugin's container: want cpus %s, cgroup %s, process %s", cpus, orDash(cg), orDash(proc))
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func check(r *report, name string, ok bool, format string, a ...any) {
	if ok {
		r.pass(name, format, a...)
	} else {
		r.fail(name, format, a...)
	}
}

// procStatus returns the fields of /proc/PID/status.
func procStatus(pid int) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(readFile(fmt.Sprintf("/proc/%d/status", pid)), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// mountOptions returns the per-mount options of every mount point the
// process sees (its own root's view; the last mount on a point wins).
func mountOptions(pid int) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(readFile(fmt.Sprintf("/proc/%d/mountinfo", pid)), "\n") {
		f := strings.Fields(line)
		if len(f) > 5 {
			out[unescapeMount(f[4])] = f[5]
		}
	}
	return out
}
