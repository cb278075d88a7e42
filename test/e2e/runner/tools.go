package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Versions of the tools the e2e builds from the Go module proxy.
const (
	containerdModule  = "github.com/containerd/containerd/v2"
	containerdVersion = "v2.4.2"
	crictlModule      = "sigs.k8s.io/cri-tools/cmd/crictl"
	crictlVersion     = "v1.37.0"
	runcPath          = "/usr/sbin/runc"
)

// tools are the paths of the binaries the e2e runs.
type tools struct {
	bin        string // folder with containerd, ctr, the shim and crictl
	containerd string
	ctr        string
	crictl     string
	runc       string
}

func (t tools) shim() string { return filepath.Join(t.bin, "containerd-shim-runc-v2") }

// ensureTools builds containerd, ctr, containerd-shim-runc-v2 and crictl
// into cache/bin when they are missing (statically: CGO_ENABLED=0, so the
// same files serve the QEMU guest) and installs runc from Debian when it is
// missing.
func ensureTools(cache string, r *report) (tools, error) {
	t := tools{bin: filepath.Join(cache, "bin")}
	t.containerd = filepath.Join(t.bin, "containerd")
	t.ctr = filepath.Join(t.bin, "ctr")
	t.crictl = filepath.Join(t.bin, "crictl")
	if err := os.MkdirAll(t.bin, 0o755); err != nil {
		return t, err
	}
	if !builtFrom(t.containerd, containerdModule, containerdVersion) || !builtFrom(t.ctr, containerdModule, containerdVersion) ||
		!builtFrom(t.shim(), containerdModule, containerdVersion) {
		r.logf("building containerd, ctr and containerd-shim-runc-v2 %s into %s (about 6.5 min on 2 cores, once)", containerdVersion, t.bin)
		start := time.Now()
		err := goInstall(t.bin, []string{"-tags", "no_btrfs"},
			containerdModule+"/cmd/containerd@"+containerdVersion,
			containerdModule+"/cmd/ctr@"+containerdVersion,
			containerdModule+"/cmd/containerd-shim-runc-v2@"+containerdVersion)
		if err != nil {
			return t, err
		}
		r.logf("built containerd in %s", time.Since(start).Round(time.Second))
	}
	if !builtFrom(t.crictl, "sigs.k8s.io/cri-tools", crictlVersion) {
		r.logf("building crictl %s into %s", crictlVersion, t.bin)
		if err := goInstall(t.bin, nil, crictlModule+"@"+crictlVersion); err != nil {
			return t, err
		}
	}
	runc, err := ensureDebianPackage("runc", runcPath, r)
	if err != nil {
		return t, err
	}
	t.runc = runc
	return t, nil
}

func goInstall(gobin string, flags []string, pkgs ...string) error {
	args := append([]string{"install"}, flags...)
	args = append(args, pkgs...)
	cmd := exec.Command(goTool(), args...)
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	cmd.Dir = os.TempDir() // outside the project's module
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

func goTool() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}

// goBuildStatic builds a package of this module as a static binary.
func goBuildStatic(out, pkg string) error {
	cmd := exec.Command(goTool(), "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

// builtFrom reports whether bin exists and was built from module@version
// (go version -m).
func builtFrom(bin, module, version string) bool {
	if !exists(bin) {
		return false
	}
	out, err := exec.Command(goTool(), "version", "-m", bin).Output()
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "mod" && f[1] == module && f[2] == version {
			return true
		}
	}
	return false
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// aptUpdated is set once apt-get update ran in this process.
var aptUpdated bool

// ensureDebianPackage returns path, installing package pkg with apt-get
// when path is missing. A machine where it cannot be installed is a skip.
func ensureDebianPackage(pkg, path string, r *report) (string, error) {
	if exists(path) {
		return path, nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", skipf("%s is missing and there is no apt-get to install package %s", path, pkg)
	}
	r.logf("installing Debian package %s", pkg)
	if err := aptGet("install", "-y", "--no-install-recommends", pkg); err != nil {
		if !aptUpdated {
			if uerr := aptGet("update"); uerr == nil {
				aptUpdated = true
				err = aptGet("install", "-y", "--no-install-recommends", pkg)
			}
		}
		if err != nil {
			return "", skipf("package %s cannot be installed: %v", pkg, err)
		}
	}
	if !exists(path) {
		return "", skipf("package %s installed but %s is missing", pkg, path)
	}
	return path, nil
}

func aptGet(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, tail(string(out), 10))
	}
	return nil
}

// debianUnpack downloads Debian package pkg (without installing it) and
// unpacks it into dir, once.
func debianUnpack(pkg, dir string, r *report) error {
	stamp := filepath.Join(dir, ".unpacked")
	if exists(stamp) {
		return nil
	}
	debs := filepath.Join(filepath.Dir(dir), "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return err
	}
	r.logf("downloading Debian package %s", pkg)
	download := func() error {
		cmd := exec.Command("apt-get", "download", pkg)
		cmd.Dir = debs
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get download %s: %w\n%s", pkg, err, tail(string(out), 5))
		}
		return nil
	}
	if err := download(); err != nil {
		if aptUpdated || aptGet("update") != nil {
			return skipf("package %s cannot be downloaded: %v", pkg, err)
		}
		aptUpdated = true
		if err := download(); err != nil {
			return skipf("package %s cannot be downloaded: %v", pkg, err)
		}
	}
	matches, _ := filepath.Glob(filepath.Join(debs, pkg+"_*.deb"))
	if len(matches) == 0 {
		return fmt.Errorf("apt-get download %s left no .deb in %s", pkg, debs)
	}
	sort.Strings(matches)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if out, err := exec.Command("dpkg-deb", "-x", matches[len(matches)-1], dir).CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg-deb -x %s: %w\n%s", matches[len(matches)-1], err, out)
	}
	return os.WriteFile(stamp, nil, 0o644)
}

// kernelPackage returns the versioned Debian kernel image package that
// linux-image-amd64 points to (e.g. linux-image-6.1.0-56-amd64).
func kernelPackage() (string, error) {
	if p := os.Getenv("NUMASPREAD_E2E_KERNEL_PKG"); p != "" {
		return p, nil
	}
	re := regexp.MustCompile(`Depends: (linux-image-[0-9][^ \n]*-amd64)\b`)
	out, err := exec.Command("apt-cache", "depends", "linux-image-amd64").CombinedOutput()
	if m := re.FindSubmatch(out); err == nil && m != nil {
		return string(m[1]), nil
	}
	if !aptUpdated && aptGet("update") == nil {
		aptUpdated = true
		out, err = exec.Command("apt-cache", "depends", "linux-image-amd64").CombinedOutput()
		if m := re.FindSubmatch(out); err == nil && m != nil {
			return string(m[1]), nil
		}
	}
	return "", skipf("cannot find the Debian kernel package (apt-cache depends linux-image-amd64: %v)", err)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
