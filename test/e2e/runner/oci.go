package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Image names. The "localhost/" domain keeps containerd from normalizing
// them to docker.io and from ever trying to pull them.
const (
	probeImage = "localhost/numaspread-e2e/probe:v1"
	pauseImage = "localhost/numaspread-e2e/pause:v1"
)

// images are the OCI tarballs the e2e imports.
type images struct{ probe, pause string }

// buildImages builds the static probe and pause binaries and wraps each in a
// single-layer OCI image tarball under cache/images.
func buildImages(cache string) (images, error) {
	dir := filepath.Join(cache, "images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return images{}, err
	}
	var im images
	for _, b := range []struct {
		pkg, name, ref string
		out            *string
	}{
		{"./test/e2e/probe", "probe", probeImage, &im.probe},
		{"./test/e2e/pause", "pause", pauseImage, &im.pause},
	} {
		bin := filepath.Join(dir, b.name)
		if err := goBuildStatic(bin, b.pkg); err != nil {
			return im, err
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			return im, err
		}
		*b.out = filepath.Join(dir, b.name+".oci.tar")
		if err := writeOCIImage(*b.out, b.ref, "/"+b.name, map[string][]byte{b.name: data}); err != nil {
			return im, err
		}
	}
	return im, nil
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int               `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    map[string]string `json:"platform,omitempty"`
}

// writeOCIImage writes an OCI image layout tarball (oci-layout, index.json,
// blobs/sha256/…) holding one uncompressed layer with files (all mode
// 0755), named ref through the io.containerd.image.name annotation.
func writeOCIImage(out, ref, entrypoint string, files map[string][]byte) error {
	epoch := time.Unix(0, 0)
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	for _, name := range sortedKeys(files) {
		data := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)),
			Typeflag: tar.TypeReg, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	blobs := map[string][]byte{}
	add := func(b []byte) string {
		sum := sha256.Sum256(b)
		d := "sha256:" + hex.EncodeToString(sum[:])
		blobs[d] = b
		return d
	}
	layerDigest := add(layer.Bytes())
	config, err := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux", "created": epoch.UTC().Format(time.RFC3339),
		"config": map[string]any{"Entrypoint": []string{entrypoint}, "Env": []string{"PATH=/"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
	})
	if err != nil {
		return err
	}
	configDigest := add(config)
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: configDigest, Size: len(config)},
		"layers":        []descriptor{{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: layerDigest, Size: layer.Len()}},
	})
	if err != nil {
		return err
	}
	manifestDigest := add(manifest)
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests": []descriptor{{
			MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: manifestDigest, Size: len(manifest),
			Annotations: map[string]string{"io.containerd.image.name": ref},
			Platform:    map[string]string{"architecture": "amd64", "os": "linux"},
		}},
	})
	if err != nil {
		return err
	}

	var buf bytes.Buffer
	ow := tar.NewWriter(&buf)
	put := func(name string, data []byte) error {
		if err := ow.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)),
			Typeflag: tar.TypeReg, ModTime: epoch}); err != nil {
			return err
		}
		_, err := ow.Write(data)
		return err
	}
	if err := put("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := put("index.json", index); err != nil {
		return err
	}
	for _, d := range sortedKeys(blobs) {
		if err := put("blobs/sha256/"+d[len("sha256:"):], blobs[d]); err != nil {
			return err
		}
	}
	if err := ow.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing image %s: %w", out, err)
	}
	return nil
}
