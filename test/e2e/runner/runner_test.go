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
