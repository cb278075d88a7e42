package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/schema"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/numaspread/numaspread/test/pluginproc"
)

// binDir holds the numaspread binary, built on first use; TestMain
// removes it.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mkimage-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	readOnce sync.Once
	built    []byte
	readErr  error
)

// staticBinary builds the real numaspread command the way `make image` does
// (CGO_ENABLED=0, -trimpath), once per test run, and returns its bytes.
func staticBinary(t *testing.T) []byte {
	t.Helper()
	path := pluginproc.BuildBinary(t, binDir, "CGO_ENABLED=0", "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -trimpath"))
	readOnce.Do(func() { built, readErr = os.ReadFile(path) })
	if readErr != nil {
		t.Fatal(readErr)
	}
	return built
}

// tarEntry is one entry of a tar archive.
type tarEntry struct {
	hdr  *tar.Header
	data []byte
}

// readTar returns the entries of a tar in order, failing on duplicates and
// on paths that are absolute or climb out.
func readTar(t *testing.T, r io.Reader) ([]string, map[string]tarEntry) {
	t.Helper()
	tr := tar.NewReader(r)
	var order []string
	entries := map[string]tarEntry{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		if strings.HasPrefix(h.Name, "/") || strings.Contains(h.Name, "..") {
			t.Errorf("tar entry %q is not a clean relative path", h.Name)
		}
		if _, dup := entries[h.Name]; dup {
			t.Errorf("tar entry %q twice", h.Name)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, h.Name)
		entries[h.Name] = tarEntry{h, data}
	}
	return order, entries
}

// strictJSON decodes b into v, failing on unknown fields and trailing data.
func strictJSON(t *testing.T, what string, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, b)
	}
	if dec.More() {
		t.Fatalf("%s: trailing data", what)
	}
}

// validate checks b against the OCI image spec's own JSON schema.
func validate(t *testing.T, what string, v schema.Validator, b []byte) {
	t.Helper()
	if err := v.Validate(bytes.NewReader(b)); err != nil {
		t.Errorf("%s does not validate against the OCI schema: %v", what, err)
	}
}

// blob returns the blob a descriptor points at, after checking that its
// file name, its content's sha256 and the descriptor's size agree.
func blob(t *testing.T, entries map[string]tarEntry, d ocispec.Descriptor) []byte {
	t.Helper()
	if err := d.Digest.Validate(); err != nil || d.Digest.Algorithm() != digest.SHA256 {
		t.Fatalf("descriptor digest %q: %v", d.Digest, err)
	}
	name := "blobs/sha256/" + d.Digest.Encoded()
	e, ok := entries[name]
	if !ok {
		t.Fatalf("blob %s missing", name)
	}
	sum := sha256.Sum256(e.data)
	if got := hex.EncodeToString(sum[:]); got != d.Digest.Encoded() {
		t.Errorf("blob %s has sha256 %s", name, got)
	}
	if int64(len(e.data)) != d.Size {
		t.Errorf("blob %s is %d bytes, its descriptor says %d", name, len(e.data), d.Size)
	}
	return e.data
}

func TestImageLayout(t *testing.T) {
	bin := staticBinary(t)
	const name = "ghcr.io/numaspread/numaspread:0.1.0"
	created := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	res, err := Write(&buf, Options{Binary: bin, Name: name, Created: created})
	if err != nil {
		t.Fatal(err)
	}
	if res.Arch != runtime.GOARCH {
		t.Errorf("arch %s, want %s", res.Arch, runtime.GOARCH)
	}
	order, entries := readTar(t, bytes.NewReader(buf.Bytes()))

	// Every blob is referenced, every file is where the layout spec says.
	for _, n := range order {
		if e := entries[n]; !e.hdr.ModTime.Equal(created) {
			t.Errorf("%s: mtime %v, want %v", n, e.hdr.ModTime, created)
		}
	}
	var layout ocispec.ImageLayout
	strictJSON(t, "oci-layout", entries[ocispec.ImageLayoutFile].data, &layout)
	validate(t, "oci-layout", schema.ValidatorMediaTypeLayoutHeader, entries[ocispec.ImageLayoutFile].data)
	if layout.Version != ocispec.ImageLayoutVersion {
		t.Errorf("oci-layout version %q", layout.Version)
	}

	var index ocispec.Index
	strictJSON(t, "index.json", entries[ocispec.ImageIndexFile].data, &index)
	validate(t, "index.json", schema.ValidatorMediaTypeImageIndex, entries[ocispec.ImageIndexFile].data)
	if index.SchemaVersion != 2 || index.MediaType != ocispec.MediaTypeImageIndex || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %+v", index)
	}
	md := index.Manifests[0]
	if md.MediaType != ocispec.MediaTypeImageManifest {
		t.Errorf("manifest media type %q", md.MediaType)
	}
	if md.Annotations["io.containerd.image.name"] != name || md.Annotations[ocispec.AnnotationRefName] != "0.1.0" {
		t.Errorf("manifest annotations %v", md.Annotations)
	}
	if md.Platform == nil || md.Platform.OS != "linux" || md.Platform.Architecture != runtime.GOARCH {
		t.Errorf("manifest platform %+v", md.Platform)
	}
	if string(md.Digest) != res.ManifestDigest {
		t.Errorf("index names manifest %s, Write returned %s", md.Digest, res.ManifestDigest)
	}

	var man ocispec.Manifest
	strictJSON(t, "manifest", blob(t, entries, md), &man)
	validate(t, "manifest", schema.ValidatorMediaTypeManifest, blob(t, entries, md))
	if man.SchemaVersion != 2 || man.MediaType != ocispec.MediaTypeImageManifest ||
		man.Config.MediaType != ocispec.MediaTypeImageConfig || len(man.Layers) != 1 ||
		man.Layers[0].MediaType != ocispec.MediaTypeImageLayerGzip {
		t.Fatalf("manifest: %+v", man)
	}

	var cfg ocispec.Image
	strictJSON(t, "config", blob(t, entries, man.Config), &cfg)
	validate(t, "config", schema.ValidatorMediaTypeImageConfig, blob(t, entries, man.Config))
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH || cfg.Created == nil || !cfg.Created.Equal(created) {
		t.Errorf("config platform/created: %s/%s %v", cfg.OS, cfg.Architecture, cfg.Created)
	}
	rc := cfg.Config
	if rc.User != "0:0" || !reflect.DeepEqual(rc.Entrypoint, []string{"/usr/local/bin/numaspread"}) ||
		!reflect.DeepEqual(rc.Cmd, []string{"run"}) || rc.WorkingDir != "/" {
		t.Errorf("run config: %+v", rc)
	}

	// The layer: gzip of a tar whose sha256 is the config's diff_id.
	gz := blob(t, entries, man.Layers[0])
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	layerTar, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RootFS.Type != "layers" || len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != digest.FromBytes(layerTar) {
		t.Errorf("rootfs %+v, layer tar is %s", cfg.RootFS, digest.FromBytes(layerTar))
	}
	lorder, layer := readTar(t, bytes.NewReader(layerTar))
	seen := map[string]bool{}
	for _, n := range lorder {
		if parent := filepath.Dir(strings.TrimSuffix(n, "/")); parent != "." && !seen[parent+"/"] {
			t.Errorf("layer: %s comes before its folder %s/", n, parent)
		}
		seen[n] = true
	}
	b, ok := layer["usr/local/bin/numaspread"]
	if !ok {
		t.Fatalf("layer has no usr/local/bin/numaspread: %v", lorder)
	}
	if !bytes.Equal(b.data, bin) || b.hdr.Mode != 0o755 || b.hdr.Uid != 0 || b.hdr.Typeflag != tar.TypeReg {
		t.Errorf("binary in the layer: %d bytes (want %d), mode %o, uid %d", len(b.data), len(bin), b.hdr.Mode, b.hdr.Uid)
	}
	if tmp := layer["tmp/"]; tmp.hdr == nil || tmp.hdr.Mode != 0o1777 {
		t.Errorf("layer tmp/: %+v", tmp.hdr)
	}
	if !strings.HasPrefix(string(layer["etc/passwd"].data), "root:x:0:0:") {
		t.Errorf("etc/passwd: %q", layer["etc/passwd"].data)
	}

	// The binary taken out of the layer runs.
	exe := filepath.Join(t.TempDir(), "numaspread")
	if err := os.WriteFile(exe, b.data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(exe, "help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "usage: numaspread") {
		t.Errorf("the packed binary: %v\n%s", err, out)
	}

	// docker load / podman load read manifest.json.
	var docker []DockerManifestEntry
	strictJSON(t, "manifest.json", entries["manifest.json"].data, &docker)
	if len(docker) != 1 || !reflect.DeepEqual(docker[0].RepoTags, []string{name}) ||
		docker[0].Config != "blobs/sha256/"+man.Config.Digest.Encoded() ||
		!reflect.DeepEqual(docker[0].Layers, []string{"blobs/sha256/" + man.Layers[0].Digest.Encoded()}) {
		t.Errorf("manifest.json: %+v", docker)
	}

	// Nothing else, nothing unreferenced.
	want := map[string]bool{"blobs/": true, "blobs/sha256/": true, "oci-layout": true, "index.json": true, "manifest.json": true,
		"blobs/sha256/" + md.Digest.Encoded(): true, "blobs/sha256/" + man.Config.Digest.Encoded(): true,
		"blobs/sha256/" + man.Layers[0].Digest.Encoded(): true}
	for _, n := range order {
		if !want[n] {
			t.Errorf("unexpected entry %s", n)
		}
		delete(want, n)
	}
	if len(want) > 0 {
		t.Errorf("missing entries %v", want)
	}

	// The same input gives the same bytes.
	var again bytes.Buffer
	if _, err := Write(&again, Options{Binary: bin, Name: name, Created: created}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("two writes of the same image differ")
	}
}

func TestWriteFile(t *testing.T) {
	bin := staticBinary(t)
	out := filepath.Join(t.TempDir(), "image.tar")
	res, err := WriteFile(out, Options{Binary: bin, Name: "example.com/ns:dev", Created: time.Unix(0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, entries := readTar(t, f)
	if _, ok := entries["blobs/sha256/"+strings.TrimPrefix(res.ManifestDigest, "sha256:")]; !ok {
		t.Error("the written file lacks the manifest blob")
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".mkimage-*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestRejects(t *testing.T) {
	bin := staticBinary(t)
	cases := []struct {
		name   string
		binary []byte
		ref    string
		want   string
	}{
		{"not ELF", []byte("#!/bin/sh\necho hi\n"), "a/b:c", "not an ELF"},
		{"empty name", bin, "", "want repository"},
		{"digest", bin, "a/b@sha256:00", "want repository"},
		{"upper case", bin, "A/b:c", "lower-case"},
		{"empty tag", bin, "a/b:", "lower-case repository and a tag"},
	}
	if dyn, err := os.ReadFile("/bin/sh"); err == nil && isDynamic(dyn) {
		cases = append(cases, struct {
			name   string
			binary []byte
			ref    string
			want   string
		}{"dynamic", dyn, "a/b:c", "CGO_ENABLED=0"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Write(io.Discard, Options{Binary: c.binary, Name: c.ref})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func isDynamic(b []byte) bool { return bytes.Contains(b[:min(len(b), 4096)], []byte("ld-linux")) }

func TestSplitName(t *testing.T) {
	for in, want := range map[string][2]string{
		"ghcr.io/numaspread/numaspread:0.1.0": {"ghcr.io/numaspread/numaspread", "0.1.0"},
		"localhost:5000/numaspread":           {"localhost:5000/numaspread", "latest"},
		"localhost:5000/numaspread:v1":        {"localhost:5000/numaspread", "v1"},
		"numaspread":                          {"numaspread", "latest"},
	} {
		repo, tag, err := splitName(in)
		if err != nil || repo != want[0] || tag != want[1] {
			t.Errorf("splitName(%q) = %q, %q, %v; want %q", in, repo, tag, err, want)
		}
	}
}

// TestDockerfileAgrees keeps deploy/Dockerfile's final stage in step with
// the image this packer writes: same binary path, user, entrypoint, command.
func TestDockerfileAgrees(t *testing.T) {
	f, err := os.Open("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var final []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "FROM ") {
			final = nil
		}
		final = append(final, line)
	}
	if len(final) == 0 || !strings.Contains(final[0], "distroless/static") {
		t.Fatalf("final stage does not start FROM a distroless static base: %q", final)
	}
	instr := map[string]string{}
	for _, l := range final[1:] {
		k, v, _ := strings.Cut(l, " ")
		instr[k] = v
	}
	entry, _ := json.Marshal(Entrypoint)
	cmd, _ := json.Marshal(Cmd)
	for k, want := range map[string]string{"USER": User, "ENTRYPOINT": string(entry), "CMD": string(cmd)} {
		if got := strings.ReplaceAll(instr[k], `", "`, `","`); got != want {
			t.Errorf("Dockerfile %s %s, the packer uses %s", k, got, want)
		}
	}
	if !strings.HasSuffix(instr["COPY"], " "+BinaryPath) {
		t.Errorf("Dockerfile COPY %s does not install %s", instr["COPY"], BinaryPath)
	}
}
