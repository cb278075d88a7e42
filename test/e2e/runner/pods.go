package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/numaspread/numaspread/test/kubelet"
)

// QoS classes, as the kubelet derives them.
const (
	guaranteed = kubelet.Guaranteed
	burstable  = kubelet.Burstable
	bestEffort = kubelet.BestEffort
)

// podSpec is a one-container pod as a Kubernetes user would write it.
type podSpec struct {
	name        string
	qos         string
	cpuRequest  int64    // milliCPU; Guaranteed: also the limit
	cpuLimit    int64    // milliCPU, Burstable only (0: none)
	memLimit    int64    // bytes (0: the defaults below)
	probeArgs   []string // arguments of the probe ("once": report and exit)
	annotations map[string]string
	namespace   string         // "" : e2e
	kube        *kubeContainer // nil: the probe image; else a pod template's container (daemonset.go)
}

// pod is a pod created through CRI, with its one container.
type pod struct {
	spec     podSpec
	uid      string
	id       string // sandbox id
	ctrID    string // container id ("" before create)
	logDir   string
	podJSON  string // file paths of the CRI configs
	ctrJSON  string
	timings  map[string]time.Duration
	stopped  bool
	removed  bool
	cgParent string
}

func newUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// The pods' memory (the CPU arithmetic is test/kubelet's).
const (
	memLimit   = 64 << 20 // Guaranteed pods' memory request = limit
	memRequest = 32 << 20 // Burstable pods' memory request
)

// oomScoreAdj is the kubelet's oom_score_adj for this machine's memory.
func oomScoreAdj(qos string) int64 {
	return kubelet.OOMScoreAdj(qos, memRequest, memTotal())
}

func memTotal() int64 {
	var kb int64
	for _, line := range strings.Split(readFile("/proc/meminfo"), "\n") {
		if strings.HasPrefix(line, "MemTotal:") {
			fmt.Sscanf(strings.TrimPrefix(line, "MemTotal:"), "%d", &kb)
		}
	}
	if kb == 0 {
		return 1 << 30
	}
	return kb * 1024
}

// resources returns the CRI LinuxContainerResources the kubelet sends for
// this pod's container (and, summed over its one container, for the pod).
func (s podSpec) resources() map[string]any {
	request, limit := s.cpuRequest, s.cpuLimit
	var mem int64
	switch s.qos {
	case guaranteed:
		limit, mem = request, memLimit
	case bestEffort:
		request, limit = 0, 0
	}
	if s.memLimit > 0 {
		mem = s.memLimit
	}
	return map[string]any{
		"cpu_period":            int64(kubelet.QuotaPeriod),
		"cpu_quota":             kubelet.MilliCPUToQuota(limit, kubelet.QuotaPeriod),
		"cpu_shares":            kubelet.MilliCPUToShares(request),
		"memory_limit_in_bytes": mem,
		"oom_score_adj":         oomScoreAdj(s.qos),
	}
}

func (s podSpec) cgroupParent(uid string) string {
	switch s.qos {
	case burstable:
		return "/kubepods/burstable/pod" + uid
	case bestEffort:
		return "/kubepods/besteffort/pod" + uid
	}
	return "/kubepods/pod" + uid
}

// writeConfigs writes the CRI PodSandboxConfig and ContainerConfig the
// kubelet would send (cgroupfs driver, hostNetwork so that no CNI is needed).
func (e *env) writeConfigs(p *pod) error {
	s := p.spec
	res := s.resources()
	podRes := map[string]any{}
	for k, v := range res {
		if k != "oom_score_adj" {
			podRes[k] = v
		}
	}
	ns := map[string]any{"network": 2, "pid": 1} // NODE network, CONTAINER pid
	namespace := s.namespace
	if namespace == "" {
		namespace = "e2e"
	}
	annotations := map[string]string{"kubernetes.io/config.source": "api"}
	for k, v := range s.annotations {
		annotations[k] = v
	}
	podCfg := map[string]any{
		"metadata":      map[string]any{"name": s.name, "namespace": namespace, "uid": p.uid, "attempt": 0},
		"log_directory": p.logDir,
		"labels": map[string]string{
			"io.kubernetes.pod.name": s.name, "io.kubernetes.pod.namespace": namespace, "io.kubernetes.pod.uid": p.uid,
		},
		"annotations": annotations,
		"linux": map[string]any{
			"cgroup_parent":    p.cgParent,
			"security_context": map[string]any{"namespace_options": ns},
			"resources":        podRes,
		},
	}
	name, security := "main", map[string]any{}
	ctrCfg := map[string]any{
		"image":   map[string]any{"image": probeImage},
		"command": append([]string{"/probe"}, s.probeArgs...),
	}
	if k := s.kube; k != nil {
		name, security = k.name, k.security
		ctrCfg = map[string]any{
			"image":  map[string]any{"image": k.image},
			"envs":   k.envs,
			"mounts": k.mounts,
		}
		if len(k.command) > 0 {
			ctrCfg["command"] = k.command
		}
		if len(k.args) > 0 {
			ctrCfg["args"] = k.args
		}
	}
	security["namespace_options"] = ns
	ctrCfg["metadata"] = map[string]any{"name": name, "attempt": 0}
	ctrCfg["log_path"] = "main.log"
	ctrCfg["labels"] = map[string]string{
		"io.kubernetes.container.name": name, "io.kubernetes.pod.name": s.name,
		"io.kubernetes.pod.namespace": namespace, "io.kubernetes.pod.uid": p.uid,
	}
	ctrCfg["annotations"] = map[string]string{"io.kubernetes.container.restartCount": "0"}
	ctrCfg["linux"] = map[string]any{"resources": res, "security_context": security}
	for path, v := range map[string]any{p.podJSON: podCfg, p.ctrJSON: ctrCfg} {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// timed runs crictl and records how long it took under key.
func (e *env) timed(p *pod, key string, args ...string) (string, error) {
	start := time.Now()
	out, err := e.crictl(args...)
	if p != nil {
		p.timings[key] = time.Since(start)
	}
	return strings.TrimSpace(out), err
}

// runPod creates the pod sandbox (crictl runp).
func (e *env) runPod(s podSpec) (*pod, error) {
	if old, ok := e.pods[s.name]; ok && !old.removed {
		return nil, fmt.Errorf("pod %s exists", s.name)
	}
	uid := newUID()
	p := &pod{spec: s, uid: uid, logDir: e.path("logs/" + s.name + "-" + uid[:8]),
		podJSON: e.path("specs/" + s.name + "-" + uid[:8] + "-pod.json"),
		ctrJSON: e.path("specs/" + s.name + "-" + uid[:8] + "-ctr.json"),
		timings: map[string]time.Duration{}, cgParent: s.cgroupParent(uid)}
	e.podUIDs = append(e.podUIDs, uid)
	if err := os.MkdirAll(p.logDir, 0o755); err != nil {
		return nil, err
	}
	if err := e.writeConfigs(p); err != nil {
		return nil, err
	}
	id, err := e.timed(p, "runp", "runp", p.podJSON)
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", s.name, err)
	}
	p.id = id
	e.pods[s.name] = p
	return p, nil
}

// createContainer creates the pod's container (crictl create).
func (e *env) createContainer(p *pod) error {
	id, err := e.timed(p, "create", "create", p.id, p.ctrJSON, p.podJSON)
	if err != nil {
		return fmt.Errorf("pod %s: %w", p.spec.name, err)
	}
	p.ctrID = id
	return nil
}

func (e *env) startContainer(p *pod) error {
	if _, err := e.timed(p, "start", "start", p.ctrID); err != nil {
		return fmt.Errorf("pod %s: %w", p.spec.name, err)
	}
	return nil
}

// startPod runs, creates and starts a pod.
func (e *env) startPod(s podSpec) (*pod, error) {
	p, err := e.runPod(s)
	if err != nil {
		return nil, err
	}
	if err := e.createContainer(p); err != nil {
		return p, err
	}
	return p, e.startContainer(p)
}

// stopContainer stops the pod's container (StopContainer releases CPUs).
func (e *env) stopContainer(p *pod) error {
	if _, err := e.timed(p, "stop", "stop", "--timeout", "5", p.ctrID); err != nil {
		return err
	}
	p.stopped = true
	return nil
}

// removePod stops and removes the pod and its container.
func (e *env) removePod(p *pod) error {
	if p == nil || p.removed {
		return nil
	}
	start := time.Now()
	if _, err := e.crictl("stopp", p.id); err != nil {
		return err
	}
	if _, err := e.crictl("rmp", p.id); err != nil {
		return err
	}
	p.timings["stop+remove"] = time.Since(start)
	p.removed = true
	return nil
}

// removeAllPods removes every pod of the run that is still there.
func (e *env) removeAllPods() error {
	var errs []string
	for _, name := range sortedKeys(e.pods) {
		if err := e.removePod(e.pods[name]); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// inspection is what crictl inspect says about a container.
type inspection struct {
	Status struct {
		State     string `json:"state"`
		Resources *struct {
			Linux *struct {
				CpusetCpus string `json:"cpusetCpus"`
				CpusetMems string `json:"cpusetMems"`
			} `json:"linux"`
		} `json:"resources"`
	} `json:"status"`
	Info struct {
		Pid         int `json:"pid"`
		RuntimeSpec struct {
			Linux struct {
				CgroupsPath string `json:"cgroupsPath"`
				Resources   struct {
					CPU struct {
						Cpus string `json:"cpus"`
						Mems string `json:"mems"`
					} `json:"cpu"`
				} `json:"resources"`
			} `json:"linux"`
		} `json:"runtimeSpec"`
	} `json:"info"`
}

func (e *env) inspect(p *pod) (*inspection, error) {
	out, err := e.crictlQuiet("inspect", "-o", "json", p.ctrID)
	if err != nil {
		return nil, err
	}
	var in inspection
	if err := json.Unmarshal([]byte(out), &in); err != nil {
		return nil, fmt.Errorf("crictl inspect %s: %w", p.ctrID, err)
	}
	return &in, nil
}

// view is a container's cpuset as the OCI spec, the host cgroup files and
// the process itself see it. Every CPU and node list is canonical.
type view struct {
	specCPUs, specMems string
	cgCPUs, cgMems     string
	procCPUs, procMems string
	probeCgCPUs        string // the cgroup file as seen from inside the container
	cgroup             string
}

func (v view) String() string {
	return fmt.Sprintf("spec=%s/%s cgroup=%s/%s process=%s/%s (in-container cgroup %s)",
		orDash(v.specCPUs), orDash(v.specMems), orDash(v.cgCPUs), orDash(v.cgMems),
		orDash(v.procCPUs), orDash(v.procMems), orDash(v.probeCgCPUs))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cgroupFile returns the host path of a cpuset file of a container cgroup.
func (e *env) cgroupFile(cgroupsPath, file string) string {
	if e.cgroupV2 {
		return filepath.Join("/sys/fs/cgroup", cgroupsPath, file)
	}
	return filepath.Join("/sys/fs/cgroup/cpuset", cgroupsPath, file)
}

// observe reads the three views of p's container.
func (e *env) observe(p *pod) (view, error) {
	var v view
	in, err := e.inspect(p)
	if err != nil {
		return v, err
	}
	spec := in.Info.RuntimeSpec.Linux
	v.specCPUs, v.specMems = canon(spec.Resources.CPU.Cpus), canon(spec.Resources.CPU.Mems)
	v.cgroup = spec.CgroupsPath
	v.cgCPUs = canon(readFile(e.cgroupFile(spec.CgroupsPath, "cpuset.cpus")))
	v.cgMems = canon(readFile(e.cgroupFile(spec.CgroupsPath, "cpuset.mems")))
	probe := lastProbe(readFile(filepath.Join(p.logDir, "main.log")))
	v.procCPUs, v.procMems = canon(probe["Cpus_allowed_list"]), canon(probe["Mems_allowed_list"])
	v.probeCgCPUs = canon(probe["cpuset.cpus"])
	return v, nil
}

// allProbes returns every complete report of the probe in a CRI log,
// oldest first.
func allProbes(log string) []map[string]string {
	var out []map[string]string
	cur := map[string]string{}
	for _, line := range strings.Split(log, "\n") {
		// CRI log format: TIMESTAMP STREAM TAG MESSAGE
		i := strings.Index(line, "PROBE ")
		if i < 0 {
			continue
		}
		f := strings.Fields(line[i:])
		if len(f) < 3 {
			continue
		}
		if f[2] == "end" {
			out, cur = append(out, cur), map[string]string{}
			continue
		}
		if k, v, ok := strings.Cut(f[2], "="); ok {
			cur[k] = v
		}
	}
	return out
}

// lastProbe returns the last complete report of the probe in a CRI log
// (empty when there is none).
func lastProbe(log string) map[string]string {
	all := allProbes(log)
	if len(all) == 0 {
		return map[string]string{}
	}
	return all[len(all)-1]
}

// expect waits until every view of p's container shows cpus and mems, and
// records a check.
func (e *env) expect(name string, p *pod, cpus, mems string) bool {
	cpus, mems = canon(cpus), canon(mems)
	deadline := time.Now().Add(e.slow)
	var v view
	var err error
	for {
		v, err = e.observe(p)
		if err == nil && v.specCPUs == cpus && v.cgCPUs == cpus && v.procCPUs == cpus && v.probeCgCPUs == cpus &&
			v.specMems == mems && v.cgMems == mems && v.procMems == mems {
			e.r.pass(name, "%s: cpus %s mems %s in spec, cgroup and process", p.spec.name, cpus, mems)
			return true
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		e.r.fail(name, "%s: %v", p.spec.name, err)
	} else {
		e.r.fail(name, "%s: want cpus %s mems %s, got %s", p.spec.name, cpus, mems, v)
	}
	return false
}

// settle waits until the spec of p's container has a cpuset and the other
// views agree with it, and returns it (for checks that learn the answer).
func (e *env) settle(p *pod) (view, error) {
	deadline := time.Now().Add(e.slow)
	for {
		v, err := e.observe(p)
		if err == nil && v.specCPUs != "" && v.cgCPUs == v.specCPUs && v.procCPUs == v.specCPUs &&
			v.specMems == v.cgMems && v.procMems == v.specMems {
			return v, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return v, err
			}
			return v, fmt.Errorf("%s: views disagree: %s", p.spec.name, v)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
