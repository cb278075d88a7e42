// Command probe is the workload of numaspread's real-runtime e2e image. It
// reports the CPUs and memory nodes it may use, as the process sees them
// (/proc/self/status) and as its cgroup says (cpuset.cpus / cpuset.mems),
// then keeps reporting whenever one of them changes, until it is stopped.
//
// Each report is a block of lines on stdout:
//
//	PROBE seq=1 Cpus_allowed_list=0-1
//	PROBE seq=1 Mems_allowed_list=0
//	PROBE seq=1 cgroup=/kubepods/pod…/…
//	PROBE seq=1 cpuset.cpus=0-1
//	PROBE seq=1 cpuset.mems=0
//	PROBE seq=1 end
//
// The e2e reads the container's log and takes the last complete block.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	interval := 100 * time.Millisecond
	if len(os.Args) > 1 && os.Args[1] == "once" {
		report(1, snapshot())
		return
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	seq, last := 0, ""
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		s := snapshot()
		if key := fmt.Sprint(s); key != last {
			seq++
			report(seq, s)
			last = key
		}
		select {
		case <-stop:
			fmt.Printf("PROBE seq=%d exit\n", seq)
			return
		case <-tick.C:
		}
	}
}

type kv struct{ k, v string }

func snapshot() []kv {
	var out []kv
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && (k == "Cpus_allowed_list" || k == "Mems_allowed_list") {
			out = append(out, kv{k, strings.TrimSpace(v)})
		}
	}
	out = append(out, kv{"cgroup", cpusetCgroup()})
	// cgroup v1 mounts the container's own cpuset directory here; cgroup v2
	// mounts its own cgroup at /sys/fs/cgroup.
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		v := readFirst("/sys/fs/cgroup/cpuset/"+f, "/sys/fs/cgroup/"+f+".effective", "/sys/fs/cgroup/"+f)
		out = append(out, kv{f, v})
	}
	return out
}

// cpusetCgroup returns the process's cpuset cgroup (v1) or unified cgroup (v2).
func cpusetCgroup() string {
	b, _ := os.ReadFile("/proc/self/cgroup")
	unified := ""
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "cpuset" {
				return parts[2]
			}
		}
		if parts[0] == "0" {
			unified = parts[2]
		}
	}
	return unified
}

func readFirst(paths ...string) string {
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return "?"
}

func report(seq int, s []kv) {
	var b strings.Builder
	for _, e := range s {
		fmt.Fprintf(&b, "PROBE seq=%d %s=%s\n", seq, e.k, e.v)
	}
	fmt.Fprintf(&b, "PROBE seq=%d end\n", seq)
	os.Stdout.WriteString(b.String())
}
