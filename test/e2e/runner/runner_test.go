package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestCPUList(t *testing.T) {
	for in, want := range map[string]string{"": "", "0": "0", "3,1,2": "1-3", "0-1,4-5\n": "0-1,4-5", "x": "x", "4-2": "4-2"} {
		if got := canon(in); got != want {
			t.Errorf("canon(%q) = %q, want %q", in, got, want)
		}
	}
	if got := minus("0-7", "0-1,4-5"); got != "2-3,6-7" {
		t.Errorf("minus = %q", got)
	}
}

func TestLastProbe(t *testing.T) {
	log := `2025-01-01T00:00:00Z stdout F PROBE seq=1 Cpus_allowed_list=0-1
2025-01-01T00:00:00Z stdout F PROBE seq=1 end
2025-01-01T00:00:01Z stdout F PROBE seq=2 Cpus_allowed_list=1
2025-01-01T00:00:01Z stdout F PROBE seq=2 end
2025-01-01T00:00:02Z stdout F PROBE seq=3 Cpus_allowed_list=0
`
	if got := lastProbe(log)["Cpus_allowed_list"]; got != "1" {
		t.Errorf("last complete report = %q, want 1", got)
	}
}

func TestAllProbes(t *testing.T) {
	log := `2025-01-01T00:00:00Z stdout F PROBE seq=1 Cpus_allowed_list=0-3
2025-01-01T00:00:00Z stdout F PROBE seq=1 Mems_allowed_list=0
2025-01-01T00:00:00Z stdout F PROBE seq=1 end
2025-01-01T00:00:00Z stderr F something else
2025-01-01T00:00:01Z stdout F PROBE seq=2 Cpus_allowed_list=1-3
2025-01-01T00:00:01Z stdout F PROBE seq=2 end
2025-01-01T00:00:02Z stdout F PROBE seq=3 Cpus_allowed_list=0-3
2025-01-01T00:00:02Z stdout F PROBE seq=3 end
2025-01-01T00:00:03Z stdout F PROBE seq=4 Cpus_allowed_list=1
`
	all := allProbes(log)
	var got []string
	for _, r := range all {
		got = append(got, r["Cpus_allowed_list"])
	}
	if strings.Join(got, " ") != "0-3 1-3 0-3" {
		t.Fatalf("allProbes: cpus %q, want the three complete reports in order", got)
	}
	if all[0]["Mems_allowed_list"] != "0" || all[1]["Mems_allowed_list"] != "" {
		t.Errorf("allProbes: reports mix their keys: %v", all)
	}
	if len(allProbes("")) != 0 || len(lastProbe("")) != 0 {
		t.Error("an empty log has reports")
	}

	// exit-releases: the shared container shrank, then grew back last.
	for _, c := range []struct {
		log  string
		want bool
	}{
		{log, true},
		{strings.Join(strings.Split(log, "\n")[:6], "\n"), false},                                       // ends shrunk
		{strings.ReplaceAll(log, "seq=2 Cpus_allowed_list=1-3", "seq=2 Cpus_allowed_list=0-3"), false},  // never shrank
		{strings.ReplaceAll(log, "seq=2 Cpus_allowed_list=1-3", "seq=2 Cpus_allowed_list=3,1-2"), true}, // canonical comparison
	} {
		if got := shrankThenGrew(allProbes(c.log), "1-3", "0-3"); got != c.want {
			t.Errorf("shrankThenGrew = %v, want %v for\n%s", got, c.want, c.log)
		}
	}
	if shrankThenGrew(allProbes(log)[:1], "1-3", "0-3") {
		t.Error("shrankThenGrew with one report")
	}
}

func TestLoggedPlacement(t *testing.T) {
	log := `time="2026-01-01T00:00:00Z" level=info msg="container placed" class=exclusive container=main cpus=3 pod=e2e/pre-guaranteed took=1ms
time="2026-01-01T00:00:00Z" level=info msg="container placed" class=shared container=main pod=e2e/pre-guaranteed-2 took=1ms
`
	if !loggedPlacement(log, "pre-guaranteed") {
		t.Error("the placement line is not recognised")
	}
	if loggedPlacement(log, "pre-guaranteed-2x") || loggedPlacement(log, "pre") {
		t.Error("a prefix of another pod's name matched")
	}
	if loggedPlacement(strings.ReplaceAll(log, "container placed", "container removed"), "pre-guaranteed") {
		t.Error("a line that is not a placement matched")
	}
	if !loggedPlacement(`level=info msg="container placed" pod="e2e/pre-guaranteed"`, "pre-guaranteed") {
		t.Error("a quoted pod is not recognised")
	}
}

func TestKubeletResources(t *testing.T) {
	g := podSpec{qos: guaranteed, cpuRequest: 2000}.resources()
	if g["cpu_shares"] != int64(2048) || g["cpu_quota"] != int64(200000) || g["oom_score_adj"] != int64(-997) {
		t.Errorf("guaranteed: %v", g)
	}
	b := podSpec{qos: burstable, cpuRequest: 500}.resources()
	if b["cpu_shares"] != int64(512) || b["cpu_quota"] != int64(0) {
		t.Errorf("burstable: %v", b)
	}
	if be := (podSpec{qos: bestEffort}).resources(); be["cpu_shares"] != int64(2) || be["oom_score_adj"] != int64(1000) {
		t.Errorf("besteffort: %v", be)
	}
	// The kubelet caps cpu.shares at 256 CPUs, and keeps Burstable scores
	// in [3, 999].
	if huge := (podSpec{qos: guaranteed, cpuRequest: 300000}).resources(); huge["cpu_shares"] != int64(262144) || huge["cpu_quota"] != int64(30000000) {
		t.Errorf("guaranteed 300 CPUs: %v", huge)
	}
	if adj, ok := b["oom_score_adj"].(int64); !ok || adj < 3 || adj > 999 {
		t.Errorf("burstable oom_score_adj %v, want 3..999", b["oom_score_adj"])
	}
}

func TestOCIImage(t *testing.T) {
	out := filepath.Join(t.TempDir(), "img.tar")
	if err := writeOCIImage(out, "localhost/x:v1", "/x", map[string][]byte{"x": []byte("hi")}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = b
	}
	var index struct {
		Manifests []struct {
			Digest      string
			Annotations map[string]string
		}
	}
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %v %s", err, files["index.json"])
	}
	m := index.Manifests[0]
	if m.Annotations["io.containerd.image.name"] != "localhost/x:v1" {
		t.Errorf("annotations %v", m.Annotations)
	}
	if _, ok := files["blobs/sha256/"+strings.TrimPrefix(m.Digest, "sha256:")]; !ok || files["oci-layout"] == nil {
		t.Errorf("missing manifest blob or oci-layout: %v", sortedKeys(files))
	}
}

func TestCpio(t *testing.T) {
	fs := newInitramfs()
	fs.file("a/b", 0o644, []byte("abc"))
	fs.symlink("c", "a/b")
	fs.chardev("dev/console", 5, 1)
	out := filepath.Join(t.TempDir(), "x.cpio")
	if err := fs.write(out); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if len(b)%4 != 0 || !bytes.HasPrefix(b, []byte("070701")) || !bytes.Contains(b, []byte("TRAILER!!!")) {
		t.Errorf("bad archive (%d bytes)", len(b))
	}
	for _, name := range []string{"a\x00", "a/b\x00", "c\x00", "dev/console\x00"} {
		if !bytes.Contains(b, []byte(name)) {
			t.Errorf("missing %q", name)
		}
	}
}

// The metrics overlay, translated as the kubelet would: the values the
// DaemonSet scenario runs with and checks against.
func TestDaemonSetPod(t *testing.T) {
	e := &env{dir: t.TempDir()}
	kp, err := e.daemonSetPod("../../../deploy/kubernetes/overlays/metrics", "node-a",
		map[string]string{"/var/run/nri": "/tmp/x/run/nri"})
	if err != nil {
		t.Fatal(err)
	}
	s := kp.spec
	if s.name != "numaspread-node-a" || s.namespace != "numaspread" || s.qos != burstable ||
		s.cpuRequest != 50 || s.cpuLimit != 0 || s.memLimit != 256<<20 {
		t.Errorf("pod = %s/%s %s cpu %dm/%dm mem %d", s.namespace, s.name, s.qos, s.cpuRequest, s.cpuLimit, s.memLimit)
	}
	k := s.kube
	if k.image != "ghcr.io/numaspread/numaspread:0.1.0" || strings.Join(k.args, " ") != "run --config=/etc/numaspread/config.toml --metrics-address=:9464" {
		t.Errorf("container = %s %q", k.image, k.args)
	}
	if len(k.envs) != 1 || k.envs[0]["key"] != "NODE_NAME" || k.envs[0]["value"] != "node-a" {
		t.Errorf("envs = %v", k.envs)
	}
	mounts := map[string]string{}
	for _, m := range k.mounts {
		if m["readonly"] != true {
			t.Errorf("mount %v is not read-only", m)
		}
		mounts[m["container_path"].(string)] = m["host_path"].(string)
	}
	if mounts["/var/run/nri"] != "/tmp/x/run/nri" || mounts["/host/sys/devices/system"] != "/sys/devices/system" ||
		mounts["/etc/numaspread"] != filepath.Join(e.dir, "configmaps/config") {
		t.Errorf("mounts = %v", mounts)
	}
	conf, err := os.ReadFile(filepath.Join(e.dir, "configmaps/config/config.toml"))
	if err != nil || !strings.Contains(string(conf), "[policy]") {
		t.Errorf("ConfigMap file: %v\n%s", err, conf)
	}
	got, _ := json.Marshal(k.security)
	want := `{"capabilities":{"add_capabilities":[],"drop_capabilities":["ALL"]},"no_new_privs":true,"privileged":false,` +
		`"readonly_rootfs":true,"run_as_group":{"value":0},"run_as_user":{"value":0},"seccomp":{"profile_type":0}}`
	if string(got) != want {
		t.Errorf("security context\n got %s\nwant %s", got, want)
	}
	if u, err := probeURL(kp.container, kp.container.ReadinessProbe.HTTPGet); err != nil || u != "http://127.0.0.1:9464/readyz" {
		t.Errorf("readiness probe = %q, %v", u, err)
	}
}

func TestQoSClass(t *testing.T) {
	q := resource.MustParse
	for _, c := range []struct {
		req, lim corev1.ResourceList
		want     string
	}{
		{nil, nil, bestEffort},
		{corev1.ResourceList{"cpu": q("50m")}, corev1.ResourceList{"memory": q("1Gi")}, burstable},
		{nil, corev1.ResourceList{"cpu": q("2"), "memory": q("1Gi")}, guaranteed}, // requests default to limits
		{corev1.ResourceList{"cpu": q("2"), "memory": q("1Gi")}, corev1.ResourceList{"cpu": q("2"), "memory": q("1Gi")}, guaranteed},
		{corev1.ResourceList{"cpu": q("1")}, corev1.ResourceList{"cpu": q("2"), "memory": q("1Gi")}, burstable},
	} {
		if got := qosClass(corev1.ResourceRequirements{Requests: c.req, Limits: c.lim}); got != c.want {
			t.Errorf("requests %v limits %v: %s, want %s", c.req, c.lim, got, c.want)
		}
	}
}

// A manifest the e2e cannot translate faithfully is refused, naming the field.
func TestDaemonSetPodRefuses(t *testing.T) {
	dir := t.TempDir()
	ds := `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: p, namespace: n}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers:
        - name: c
          image: i
          env:
            - name: POD_IP
              valueFrom: {fieldRef: {fieldPath: status.podIP}}
`
	for name, text := range map[string]string{
		"kustomization.yaml": "resources: [ds.yaml]\n",
		"ds.yaml":            ds,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{dir: t.TempDir()}
	_, err := e.daemonSetPod(dir, "node", nil)
	if err == nil || !strings.Contains(err.Error(), "env POD_IP") {
		t.Errorf("err = %v, want one naming env POD_IP", err)
	}
}
