package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Where the binary goes in the image, and how the image runs it. The
// Dockerfile (deploy/Dockerfile) uses the same path, user, entrypoint and
// command; a test keeps the two in step.
const (
	BinaryPath = "/usr/local/bin/numaspread"
	// User is root: the runtimes create the NRI socket for root only, in a
	// 0700 folder, so no other user can connect to it. The Kubernetes
	// manifests drop every capability of that root.
	User = "0:0"
)

var (
	Entrypoint = []string{BinaryPath}
	Cmd        = []string{"run"}
	Env        = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
)

// OCI media types and annotations.
const (
	MediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"

	AnnotationImageName = "io.containerd.image.name"          // the name `ctr images import` gives the image
	AnnotationRefName   = "org.opencontainers.image.ref.name" // the tag, for OCI layout tools
	AnnotationCreated   = "org.opencontainers.image.created"
	AnnotationSource    = "org.opencontainers.image.source"
	AnnotationTitle     = "org.opencontainers.image.title"

	Source = "https://github.com/numaspread/numaspread"
)

// Descriptor is an OCI content descriptor.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *Platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Platform is the platform of an image manifest in an index.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// Index is an OCI image index (index.json).
type Index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []Descriptor `json:"manifests"`
}

// Manifest is an OCI image manifest.
type Manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	Config        Descriptor        `json:"config"`
	Layers        []Descriptor      `json:"layers"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// ImageConfig is the OCI image configuration.
type ImageConfig struct {
	Created      string        `json:"created"`
	Architecture string        `json:"architecture"`
	OS           string        `json:"os"`
	Config       RunConfig     `json:"config"`
	RootFS       RootFS        `json:"rootfs"`
	History      []HistoryItem `json:"history"`
}

// RunConfig is how the runtime starts the image's container.
type RunConfig struct {
	User       string            `json:"User"`
	Entrypoint []string          `json:"Entrypoint"`
	Cmd        []string          `json:"Cmd"`
	Env        []string          `json:"Env"`
	WorkingDir string            `json:"WorkingDir"`
	Labels     map[string]string `json:"Labels,omitempty"`
}

// RootFS lists the layers by the digest of their uncompressed tar.
type RootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

// HistoryItem is one step in the image's history.
type HistoryItem struct {
	Created   string `json:"created"`
	CreatedBy string `json:"created_by"`
}

// DockerManifestEntry is one image of a `docker save` archive
// (manifest.json), which `docker load` and `podman load` read.
type DockerManifestEntry struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// Options say what to pack.
type Options struct {
	Binary  []byte    // a static Linux executable
	Name    string    // full image reference, e.g. ghcr.io/numaspread/numaspread:0.1.0
	Created time.Time // the image's creation time and every file's mtime
}

// Result describes the written archive.
type Result struct {
	Arch           string
	IndexDigest    string
	ManifestDigest string
	ConfigDigest   string
	LayerDigest    string
	DiffID         string
}

// Write packs the image into w as an OCI image layout tarball (oci-layout,
// index.json, blobs/sha256/...) that also carries a Docker manifest.json.
// The same Options always give the same bytes.
func Write(w io.Writer, o Options) (Result, error) {
	var res Result
	arch, err := checkBinary(o.Binary)
	if err != nil {
		return res, err
	}
	res.Arch = arch
	repo, tag, err := splitName(o.Name)
	if err != nil {
		return res, err
	}
	created := o.Created.UTC().Truncate(time.Second)
	stamp := created.Format(time.RFC3339)

	layerTar, err := buildLayer(o.Binary, created)
	if err != nil {
		return res, err
	}
	res.DiffID = sha256Digest(layerTar)
	layer, err := gzipBytes(layerTar)
	if err != nil {
		return res, err
	}
	res.LayerDigest = sha256Digest(layer)

	labels := map[string]string{AnnotationSource: Source, AnnotationTitle: "numaspread", AnnotationCreated: stamp}
	cfg, err := json.Marshal(ImageConfig{
		Created: stamp, Architecture: arch, OS: "linux",
		Config: RunConfig{User: User, Entrypoint: Entrypoint, Cmd: Cmd, Env: Env, WorkingDir: "/", Labels: labels},
		RootFS: RootFS{Type: "layers", DiffIDs: []string{res.DiffID}},
		History: []HistoryItem{{Created: stamp,
			CreatedBy: "numaspread deploy/mkimage: COPY numaspread " + BinaryPath}},
	})
	if err != nil {
		return res, err
	}
	res.ConfigDigest = sha256Digest(cfg)

	man, err := json.Marshal(Manifest{
		SchemaVersion: 2, MediaType: MediaTypeManifest,
		Config:      Descriptor{MediaType: MediaTypeConfig, Digest: res.ConfigDigest, Size: int64(len(cfg))},
		Layers:      []Descriptor{{MediaType: MediaTypeLayer, Digest: res.LayerDigest, Size: int64(len(layer))}},
		Annotations: map[string]string{AnnotationCreated: stamp, AnnotationSource: Source},
	})
	if err != nil {
		return res, err
	}
	res.ManifestDigest = sha256Digest(man)

	index, err := json.Marshal(Index{SchemaVersion: 2, MediaType: MediaTypeIndex, Manifests: []Descriptor{{
		MediaType: MediaTypeManifest, Digest: res.ManifestDigest, Size: int64(len(man)),
		Platform:    &Platform{Architecture: arch, OS: "linux"},
		Annotations: map[string]string{AnnotationImageName: repo + ":" + tag, AnnotationRefName: tag},
	}}})
	if err != nil {
		return res, err
	}
	res.IndexDigest = sha256Digest(index)

	docker, err := json.Marshal([]DockerManifestEntry{{
		Config: blobPath(res.ConfigDigest), RepoTags: []string{repo + ":" + tag},
		Layers: []string{blobPath(res.LayerDigest)},
	}})
	if err != nil {
		return res, err
	}

	tw := tar.NewWriter(w)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(dirHeader(d, created)); err != nil {
			return res, err
		}
	}
	files := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{blobPath(res.ConfigDigest), cfg},
		{blobPath(res.LayerDigest), layer},
		{blobPath(res.ManifestDigest), man},
		{"index.json", index},
		{"manifest.json", docker},
	}
	for _, f := range files {
		if err := writeFile(tw, f.name, f.data, 0o644, created); err != nil {
			return res, err
		}
	}
	return res, tw.Close()
}

// checkBinary makes sure the file is a static Linux ELF executable (the
// image has no C library or loader) and returns its GOARCH.
func checkBinary(b []byte) (string, error) {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return "", fmt.Errorf("binary: not an ELF executable: %w", err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return "", fmt.Errorf("binary: ELF type %s is not an executable", f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", errors.New("binary: dynamically linked (it names a program interpreter): build it with CGO_ENABLED=0")
		}
	}
	arches := map[elf.Machine]string{
		elf.EM_X86_64: "amd64", elf.EM_AARCH64: "arm64", elf.EM_386: "386", elf.EM_ARM: "arm",
		elf.EM_PPC64: "ppc64le", elf.EM_S390: "s390x", elf.EM_RISCV: "riscv64", elf.EM_LOONGARCH: "loong64",
	}
	arch, ok := arches[f.Machine]
	if !ok {
		return "", fmt.Errorf("binary: unsupported machine %s", f.Machine)
	}
	return arch, nil
}

// splitName splits "host/path/name:tag" into the repository and the tag.
// A reference without a tag gets "latest"; digests are not accepted (the
// digest is the packer's to compute).
func splitName(name string) (repo, tag string, err error) {
	if name == "" || strings.ContainsAny(name, " \t\n@") {
		return "", "", fmt.Errorf("image name %q: want repository[:tag]", name)
	}
	repo, tag = name, "latest"
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		repo, tag = name[:i], name[i+1:]
	}
	if repo == "" || tag == "" || repo != strings.ToLower(repo) {
		return "", "", fmt.Errorf("image name %q: want a lower-case repository and a tag", name)
	}
	return repo, tag, nil
}

// layerFiles are the image's files besides the binary: the folders it lives
// in and the user and group databases of root and the conventional
// "nonroot" (65532) user, as in distroless images.
var layerFiles = map[string]string{
	"etc/passwd": "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
	"etc/group":  "root:x:0:\nnonroot:x:65532:\n",
}

// buildLayer returns the uncompressed layer tar.
func buildLayer(binary []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := map[string][]byte{strings.TrimPrefix(BinaryPath, "/"): binary}
	for name, text := range layerFiles {
		files[name] = []byte(text)
	}
	names := make([]string, 0, len(files))
	dirs := map[string]bool{"tmp/": true, "etc/numaspread/": true}
	for name := range files {
		names = append(names, name)
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			dirs[d+"/"] = true
		}
	}
	for d := range dirs {
		names = append(names, d)
	}
	sort.Strings(names)
	for _, name := range names {
		var err error
		switch {
		case strings.HasSuffix(name, "/"):
			h := dirHeader(name, mtime)
			if name == "tmp/" {
				h.Mode = 0o1777
			}
			err = tw.WriteHeader(h)
		case name == strings.TrimPrefix(BinaryPath, "/"):
			err = writeFile(tw, name, files[name], 0o755, mtime)
		default:
			err = writeFile(tw, name, files[name], 0o644, mtime)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func dirHeader(name string, mtime time.Time) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: mtime,
		Uname: "root", Gname: "root", Format: tar.FormatPAX}
}

func writeFile(tw *tar.Writer, name string, data []byte, mode int64, mtime time.Time) error {
	h := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)),
		ModTime: mtime, Uname: "root", Gname: "root", Format: tar.FormatPAX}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func blobPath(d string) string { return "blobs/sha256/" + strings.TrimPrefix(d, "sha256:") }

// WriteFile packs the image into the file out, atomically.
func WriteFile(out string, o Options) (Result, error) {
	tmp, err := os.CreateTemp(filepath.Dir(out), ".mkimage-*")
	if err != nil {
		return Result{}, err
	}
	defer os.Remove(tmp.Name())
	res, err := Write(tmp, o)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Result{}, err
	}
	return res, os.Rename(tmp.Name(), out)
}
