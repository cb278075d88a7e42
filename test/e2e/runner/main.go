// Command runner is numaspread's real-runtime end-to-end test.
//
//	runner host   containerd 2.x + runc + CRI on this machine (make e2e)
//	runner numa   the same inside a 2-node NUMA QEMU guest (make e2e-numa)
//	runner guest  the guest half of "numa" (run by the guest's /init)
//
// It fetches its tools into a cache folder (built once), builds its own OCI
// images, starts a private containerd with NRI enabled, starts the plugin
// against its NRI socket, creates pods through CRI (crictl) with the
// resources the kubelet sets, and checks every container's cpuset in the
// OCI spec, in the host cgroup files and as the process sees it. It tears
// down what it started, also when a step fails. The last line of its output
// is "N passed, M failed", or a "SKIP: …" line when this machine cannot run
// the test at all.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// options are the command-line flags.
type options struct {
	plugin  string // the plugin binary (host mode)
	image   string // the plugin's OCI image archive (make image), "": no DaemonSet scenario
	deploy  string // the kustomization whose DaemonSet runs that image
	cache   string // tool and image cache
	keep    bool   // keep the temporary folder
	verbose bool
	timings int // pods per timing series (0: no timings)
	timeout time.Duration
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: runner host|numa|guest [flags]")
		return 2
	}
	mode, args := args[0], args[1:]
	fs := flag.NewFlagSet("runner "+mode, flag.ContinueOnError)
	var o options
	fs.StringVar(&o.plugin, "plugin", "bin/numaspread", "plugin binary")
	fs.StringVar(&o.image, "image", "", "the plugin image archive from make image (host: run it as the DaemonSet's pod)")
	fs.StringVar(&o.deploy, "deploy", "deploy/kubernetes/overlays/metrics", "the kustomization whose DaemonSet runs -image")
	fs.StringVar(&o.cache, "cache", defaultCache(), "cache folder for tools and images")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary folder (logs, configs) at the end")
	fs.BoolVar(&o.verbose, "v", false, "verbose: echo every command")
	fs.IntVar(&o.timings, "timings", 10, "pods per timing series, with and without the plugin (0: skip)")
	fs.DurationVar(&o.timeout, "timeout", 8*time.Minute, "give up after this long (numa: the guest's run)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var err error
	if o.plugin, err = filepath.Abs(o.plugin); err != nil {
		return fatal(err)
	}
	if o.cache, err = filepath.Abs(o.cache); err != nil {
		return fatal(err)
	}
	if o.image != "" {
		if o.image, err = filepath.Abs(o.image); err != nil {
			return fatal(err)
		}
	}
	r := &report{verbose: o.verbose}
	switch mode {
	case "host":
		err = runHost(o, r)
	case "numa":
		err = runNUMA(o, r)
	case "guest":
		err = runGuest(o, r)
	default:
		fmt.Fprintf(os.Stderr, "runner: unknown mode %q\n", mode)
		return 2
	}
	var skip *skipError
	if errors.As(err, &skip) {
		fmt.Printf("SKIP: %s\n", skip.why)
		return 0
	}
	if err != nil {
		r.fail("run", "%v", err)
	}
	return r.summary()
}

func defaultCache() string {
	if d := os.Getenv("NUMASPREAD_E2E_CACHE"); d != "" {
		return d
	}
	return "test/e2e/.cache"
}

func fatal(err error) int {
	fmt.Fprintln(os.Stderr, "runner:", err)
	return 2
}

// skipError says that this machine cannot run the test at all.
type skipError struct{ why string }

func (e *skipError) Error() string { return "skip: " + e.why }

func skipf(format string, a ...any) error { return &skipError{fmt.Sprintf(format, a...)} }

// report counts checks and prints them.
type report struct {
	mu             sync.Mutex
	passed, failed int
	verbose        bool
}

func (r *report) pass(name string, format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.passed++
	msg := fmt.Sprintf(format, a...)
	if msg != "" {
		msg = ": " + msg
	}
	fmt.Printf("PASS %s%s\n", name, msg)
}

func (r *report) fail(name string, format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed++
	fmt.Printf("FAIL %s: %s\n", name, fmt.Sprintf(format, a...))
}

func (r *report) logf(format string, a ...any) {
	fmt.Printf("-- "+format+"\n", a...)
}

func (r *report) debugf(format string, a ...any) {
	if r.verbose {
		fmt.Printf("   "+format+"\n", a...)
	}
}

func (r *report) summary() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Printf("%d passed, %d failed\n", r.passed, r.failed)
	if r.failed > 0 {
		return 1
	}
	return 0
}

// onSignal runs cleanup when the process is interrupted, then prints the
// summary and exits.
func onSignal(r *report, cleanup func()) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			fmt.Printf("-- interrupted (%v): tearing down\n", s)
			cleanup()
			r.fail("interrupted", "by signal %v", s)
			os.Exit(r.summary())
		case <-done:
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}
