package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"time"
)

// guestInit is the guest's /init (busybox sh). Stage 1 copies the initramfs
// into a tmpfs and switch_roots into it (runc cannot pivot_root off the
// initramfs); stage 2 mounts proc, sys, dev and the cgroup v1 hierarchies,
// runs the guest half of the e2e and powers off.
const guestInit = `#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
if [ ! -e /.stage2 ]; then
	mount -t proc proc /proc
	mkdir -p /newroot
	mount -t tmpfs -o mode=0755 root /newroot
	for f in /*; do
		case "$f" in /proc|/sys|/dev|/newroot) ;; *) cp -a "$f" /newroot/ ;; esac
	done
	mkdir -p /newroot/proc /newroot/sys /newroot/dev
	touch /newroot/.stage2
	umount /proc
	exec switch_root /newroot /init
fi
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm /run /tmp /var/lib /var/log /var/run /root
mount -t devpts devpts /dev/pts
mount -t tmpfs shm /dev/shm
mount -t tmpfs -o mode=0755 run /run
mount -t tmpfs -o mode=0755 cgroup /sys/fs/cgroup
for c in cpuset cpu,cpuacct blkio memory devices freezer pids hugetlb perf_event net_cls,net_prio; do
	mkdir -p /sys/fs/cgroup/$c
	mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c || rmdir /sys/fs/cgroup/$c
done
ln -s cpu,cpuacct /sys/fs/cgroup/cpu
ln -s cpu,cpuacct /sys/fs/cgroup/cpuacct
insmod /lib/modules/overlay.ko 2>/dev/null || echo "E2E-GUEST no overlay module: native snapshotter"
hostname numa-guest
ifconfig lo 127.0.0.1 up
echo "E2E-GUEST booted: nodes $(cat /sys/devices/system/node/online), cpus $(cat /sys/devices/system/cpu/online), kernel $(uname -r)"
for n in /sys/devices/system/node/node[0-9]*; do
	echo "E2E-GUEST sysfs $(basename $n): cpulist $(cat $n/cpulist) distance $(cat $n/distance)"
done
for c in /sys/devices/system/cpu/cpu[0-9]*; do
	echo "E2E-GUEST sysfs $(basename $c): package $(cat $c/topology/physical_package_id) core $(cat $c/topology/core_id) siblings $(cat $c/topology/thread_siblings_list)"
done
ARGS=$(sed -n 's/.*e2e.args=\([^ ]*\).*/\1/p' /proc/cmdline | tr , ' ')
/usr/bin/e2e guest $ARGS
echo "E2E-GUEST exit $?"
sync
poweroff -f
`

// guestStall is how long the guest may go without printing a result.
const guestStall = 3 * time.Minute

// Paths inside the guest.
const (
	guestBin    = "/usr/bin"
	guestPlugin = "/usr/bin/numaspread"
	guestImages = "/images"
)

func runNUMA(o options, r *report) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the NUMA e2e must run as root (apt-get)")
	}
	if !exists(o.plugin) {
		return fmt.Errorf("plugin binary %s is missing: run make build", o.plugin)
	}
	qemu, err := ensureDebianPackage("qemu-system-x86", "/usr/bin/qemu-system-x86_64", r)
	if err != nil {
		return err
	}
	t, err := ensureTools(o.cache, r)
	if err != nil {
		return err
	}
	kpkg, err := kernelPackage()
	if err != nil {
		return err
	}
	numaDir := filepath.Join(o.cache, "numa")
	kdir := filepath.Join(numaDir, kpkg)
	if err := debianUnpack(kpkg, kdir, r); err != nil {
		return err
	}
	bbdir := filepath.Join(numaDir, "busybox-static")
	if err := debianUnpack("busybox-static", bbdir, r); err != nil {
		return err
	}
	kernels, _ := filepath.Glob(filepath.Join(kdir, "boot", "vmlinuz-*"))
	if len(kernels) == 0 {
		return fmt.Errorf("no boot/vmlinuz-* in %s", kdir)
	}
	im, err := buildImages(o.cache)
	if err != nil {
		return err
	}
	runner := filepath.Join(numaDir, "e2e")
	if err := goBuildStatic(runner, "./test/e2e/runner"); err != nil {
		return err
	}

	tmp, err := os.MkdirTemp("", "nse2e-numa-")
	if err != nil {
		return err
	}
	defer func() {
		if o.keep {
			r.logf("kept %s (initramfs, console.log)", tmp)
			return
		}
		os.RemoveAll(tmp)
	}()
	fs := newInitramfs()
	fs.file("init", 0o755, []byte(guestInit))
	fs.chardev("dev/console", 5, 1)
	fs.chardev("dev/null", 1, 3)
	for _, d := range []string{"proc", "sys", "dev", "tmp", "run", "etc", "root", "var/lib", "sbin", "usr/sbin"} {
		fs.dir(d)
	}
	fs.file("etc/hosts", 0o644, []byte("127.0.0.1 localhost numa-guest\n::1 localhost\n"))
	fs.file("etc/resolv.conf", 0o644, []byte("nameserver 127.0.0.1\n"))
	fs.file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n"))
	fs.file("etc/group", 0o644, []byte("root:x:0:\n"))
	if err := fs.copyFile("bin/busybox", filepath.Join(bbdir, "bin", "busybox")); err != nil {
		return err
	}
	for _, b := range []struct{ dst, src string }{
		{guestBin + "/containerd", t.containerd}, {guestBin + "/ctr", t.ctr},
		{guestBin + "/containerd-shim-runc-v2", t.shim()}, {guestBin + "/crictl", t.crictl},
		{guestBin + "/e2e", runner}, {guestPlugin, o.plugin}, {runcPath, t.runc},
		{guestImages + "/probe.oci.tar", im.probe}, {guestImages + "/pause.oci.tar", im.pause},
	} {
		if err := fs.copyFile(b.dst, b.src); err != nil {
			return err
		}
	}
	// overlayfs is a module in Debian's kernel (containerd's default snapshotter).
	if mods, _ := filepath.Glob(filepath.Join(kdir, "lib/modules/*/kernel/fs/overlayfs/overlay.ko")); len(mods) == 1 {
		if err := fs.copyFile("lib/modules/overlay.ko", mods[0]); err != nil {
			return err
		}
	}
	// Dynamic binaries (runc from Debian, the plugin when built with cgo)
	// bring their shared libraries.
	for _, bin := range []string{t.runc, o.plugin} {
		libs, err := sharedLibs(bin)
		if err != nil {
			return err
		}
		for _, lib := range libs {
			if err := fs.copyFile(lib, lib); err != nil {
				return err
			}
		}
	}
	initrd := filepath.Join(tmp, "initramfs.cpio")
	if err := fs.write(initrd); err != nil {
		return err
	}
	st, _ := os.Stat(initrd)
	r.logf("guest: kernel %s, initramfs %d MiB; booting QEMU (TCG, 2 sockets × 2 cores × 2 threads, 2 NUMA nodes)",
		filepath.Base(kernels[0]), st.Size()>>20)

	args := []string{
		"-nodefaults", "-no-reboot", "-display", "none", "-serial", "stdio",
		"-machine", "pc", "-accel", "tcg,thread=single", "-cpu", "qemu64,vendor=GenuineIntel",
		"-smp", "8,sockets=2,cores=2,threads=2", "-m", "2G",
		"-object", "memory-backend-ram,id=m0,size=1G", "-object", "memory-backend-ram,id=m1,size=1G",
		"-numa", "node,nodeid=0,cpus=0-3,memdev=m0", "-numa", "node,nodeid=1,cpus=4-7,memdev=m1",
		"-kernel", kernels[0], "-initrd", initrd,
		"-append", "console=ttyS0 quiet loglevel=1 panic=-1 e2e.args=" + guestArgs(o),
	}
	return runQEMU(qemu, args, filepath.Join(tmp, "console.log"), o, r)
}

func guestArgs(o options) string {
	a := []string{"-timings=0"}
	if o.verbose {
		a = append(a, "-v")
	}
	return strings.Join(a, ",")
}

// sharedLibs lists the shared libraries (and the loader) bin needs.
func sharedLibs(bin string) ([]string, error) {
	out, err := exec.Command("ldd", bin).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "not a dynamic executable") {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %w: %s", bin, err, out)
	}
	var libs []string
	re := regexp.MustCompile(`(?:=> )?(/\S+) \(0x`)
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		libs = append(libs, m[1])
	}
	return libs, nil
}

var (
	resultRE  = regexp.MustCompile(`^(PASS|FAIL) (\S+)(?::\s*(.*))?$`)
	summaryRE = regexp.MustCompile(`^(\d+) passed, (\d+) failed$`)
)

// runQEMU boots the guest, echoes its console and turns its PASS/FAIL lines
// into checks of this run.
func runQEMU(qemu string, args []string, consoleLog string, o options, r *report) error {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	logf, err := os.Create(consoleLog)
	if err != nil {
		return err
	}
	defer logf.Close()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting QEMU: %w", err)
	}
	stop := onSignal(r, func() { _ = cmd.Process.Kill() })
	defer stop()
	// A guest that prints no E2E line for guestStall is hung (e.g. a soft
	// lockup): kill it rather than wait for the overall timeout.
	progress := make(chan struct{}, 1)
	var stalled atomic.Bool
	go func() {
		t := time.NewTimer(guestStall)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-progress:
				if !ok {
					return
				}
				t.Reset(guestStall)
			case <-t.C:
				stalled.Store(true)
				cancel()
				return
			}
		}
	}()
	booted, guestPassed, guestFailed, sawSummary := false, 0, 0, false
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		fmt.Fprintln(logf, line)
		fmt.Printf("   guest %4.0fs| %s\n", time.Since(start).Seconds(), line)
		line = strings.TrimSpace(strings.TrimLeft(line, "\x00"))
		if strings.HasPrefix(line, "E2E-GUEST") || resultRE.MatchString(line) {
			select {
			case progress <- struct{}{}:
			default:
			}
		}
		if strings.HasPrefix(line, "E2E-GUEST booted") && !booted {
			booted = true
			r.pass("numa/guest-boots", "in %s", time.Since(start).Round(time.Second))
		}
		if m := resultRE.FindStringSubmatch(line); m != nil {
			if m[1] == "PASS" {
				guestPassed++
				r.pass("numa/"+m[2], "%s", m[3])
			} else {
				guestFailed++
				r.fail("numa/"+m[2], "%s", m[3])
			}
		}
		if m := summaryRE.FindStringSubmatch(line); m != nil {
			sawSummary = true
			if fmt.Sprint(guestPassed) != m[1] || fmt.Sprint(guestFailed) != m[2] {
				r.fail("numa/console", "guest says %s passed, %s failed; the console showed %d and %d", m[1], m[2], guestPassed, guestFailed)
			}
		}
	}
	werr := cmd.Wait()
	close(progress)
	took := time.Since(start).Round(time.Second)
	switch {
	case stalled.Load():
		r.fail("numa/guest-finishes", "no progress on the console for %s: killed after %s (see the console above)", guestStall, took)
	case ctx.Err() != nil:
		r.fail("numa/guest-finishes", "killed after %s (timeout %s)", took, o.timeout)
	case !booted:
		r.fail("numa/guest-boots", "no boot line on the console (%v)", werr)
	case !sawSummary:
		r.fail("numa/guest-finishes", "the guest stopped after %s without its summary line (%v)", took, werr)
	default:
		r.pass("numa/guest-finishes", "QEMU ran %s", took)
	}
	return nil
}
