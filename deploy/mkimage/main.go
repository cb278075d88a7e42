// Command mkimage packs a static numaspread binary into a single-layer OCI
// image tarball without a container engine:
//
//	go run ./deploy/mkimage --binary bin/numaspread --name ghcr.io/numaspread/numaspread:0.1.0 --out bin/numaspread-image.tar
//
// The tarball is an OCI image layout (oci-layout, index.json, blobs/sha256/)
// whose index names the image in the io.containerd.image.name annotation, so
// `ctr -n k8s.io images import bin/numaspread-image.tar` loads it under that
// name; it also carries a Docker manifest.json for `docker load` and
// `podman load`. The layer holds the binary at /usr/local/bin/numaspread,
// /etc/passwd and /etc/group, and empty /tmp and /etc/numaspread folders;
// the image runs `numaspread run` as root (see the README's Deploy section for
// why, and what the manifests take away from that root).
//
// The output is reproducible: every time stamp is --created, which defaults
// to $SOURCE_DATE_EPOCH, else the binary's modification time.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"
)

func main() {
	binary := flag.String("binary", "bin/numaspread", "the static numaspread executable to pack")
	name := flag.String("name", "ghcr.io/numaspread/numaspread:dev", "the image reference, repository:tag")
	out := flag.String("out", "bin/numaspread-image.tar", "the tarball to write")
	created := flag.String("created", "", "creation time, RFC 3339 (default $SOURCE_DATE_EPOCH, else the binary's mtime)")
	flag.Parse()
	if flag.NArg() > 0 {
		fail(fmt.Errorf("unexpected argument %q", flag.Arg(0)))
	}
	data, err := os.ReadFile(*binary)
	if err != nil {
		fail(err)
	}
	when, err := creationTime(*created, *binary)
	if err != nil {
		fail(err)
	}
	res, err := WriteFile(*out, Options{Binary: data, Name: *name, Created: when})
	if err != nil {
		fail(err)
	}
	fmt.Printf("%s: %s (linux/%s) manifest %s\n", *out, *name, res.Arch, res.ManifestDigest)
}

func creationTime(flagValue, binary string) (time.Time, error) {
	if flagValue != "" {
		return time.Parse(time.RFC3339, flagValue)
	}
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err)
		}
		return time.Unix(n, 0), nil
	}
	st, err := os.Stat(binary)
	if err != nil {
		return time.Time{}, err
	}
	return st.ModTime(), nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mkimage:", err)
	os.Exit(1)
}
