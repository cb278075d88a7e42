package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/numaspread/numaspread/metrics"
	"github.com/numaspread/numaspread/topology"
	"github.com/numaspread/numaspread/view"
)

// defaultStatusAddr is the metrics address of the sample configuration.
const defaultStatusAddr = "127.0.0.1:9464"

func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status", stderr)
	addr := fs.String("addr", defaultStatusAddr, "the plugin's [metrics] address: host:port or an http:// URL")
	asJSON := fs.Bool("json", false, "print the raw /state JSON")
	layout := fs.String("layout", "auto", "auto | detailed (CPU ids) | compact (one cell per core; auto above 128 CPUs)")
	width := fs.Int("width", 80, "terminal width to fit the drawing in")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the plugin")
	if st := parseFlags(fs, args); st >= 0 {
		return st
	}
	lay, err := view.ParseLayout(*layout)
	if err != nil {
		return usageError(stderr, "status", "--layout: %v", err)
	}
	body, err := fetchState(*addr, *timeout)
	if err != nil {
		return fail(stderr, "status", "%v", err)
	}
	if *asJSON {
		stdout.Write(body)
		return 0
	}
	var st metrics.State
	if err := json.Unmarshal(body, &st); err != nil {
		return fail(stderr, "status", "the plugin at %s sent unreadable state: %v", *addr, err)
	}
	if err := renderStatus(stdout, &st, lay, *width); err != nil {
		return fail(stderr, "status", "%v", err)
	}
	return 0
}

// stateURL turns --addr into the URL of /state.
func stateURL(addr string) string {
	base := addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return strings.TrimSuffix(base, "/") + "/state"
}

func fetchState(addr string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	url := stateURL(addr)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("--addr %q: %v", addr, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the plugin (is [metrics] address set to %s?): %v", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// renderStatus writes the state as a header and the per-NUMA map.
func renderStatus(w io.Writer, st *metrics.State, layout view.Layout, width int) error {
	if width <= 0 {
		width = 80
	}
	topo, err := st.Machine()
	if err != nil {
		return err
	}
	say := func(format string, args ...any) {
		for _, l := range view.Wrap(fmt.Sprintf(format, args...), width, "  ") {
			fmt.Fprintln(w, l)
		}
	}
	if st.Ready {
		say("numaspread %s: ready (registered with the runtime and synchronized)", st.Version)
	} else {
		say("numaspread %s: NOT READY: %s", st.Version, st.NotReady)
	}
	say("machine: %d CPUs, %d NUMA nodes, %d threads per core; managed CPUs %s",
		topo.Online.Count(), len(topo.Nodes), topo.ThreadsPerCore, orNone(st.Managed))
	var cpus metrics.NodeState
	for _, n := range st.Nodes {
		cpus.Exclusive += n.Exclusive
		cpus.Free += n.Free
		cpus.Reserved += n.Reserved
		cpus.Unmanaged += n.Unmanaged
	}
	counts := fmt.Sprintf("CPUs: %d exclusive, %d free, %d reserved", cpus.Exclusive, cpus.Free, cpus.Reserved)
	if cpus.Unmanaged > 0 {
		counts += fmt.Sprintf(", %d unmanaged", cpus.Unmanaged)
	}
	say("%s; shared pool %d CPUs", counts, st.Shared.Count)
	exclusive := 0
	for _, c := range st.Containers {
		if c.Class == metrics.ClassExclusive {
			exclusive++
		}
	}
	say("containers: %d exclusive, %d shared", exclusive, len(st.Containers)-exclusive)
	if r := st.LastReload; r != nil {
		when := r.Time.Format(time.RFC3339)
		switch {
		case !r.OK: // the error is in the NOT READY line
			say("last config reload FAILED at %s; the running configuration stays", when)
		case len(r.Changed) > 0:
			say("last config reload at %s: %s", when, strings.Join(r.Changed, "; "))
		default:
			say("last config reload at %s: no setting changed", when)
		}
	}
	fmt.Fprintln(w)

	shared, err := topology.ParseMask(st.Shared.CPUs)
	if err != nil {
		return fmt.Errorf("shared pool: %w", err)
	}
	reserved, err := topology.ParseMask(st.Reserved)
	if err != nil {
		return fmt.Errorf("reserved CPUs: %w", err)
	}
	m := view.Map{Topology: topo, Shared: shared, Reserved: reserved, Width: width, Layout: layout}
	for _, c := range st.Containers {
		cpus, err := topology.ParseMask(c.CPUs)
		if err != nil {
			return fmt.Errorf("container %s: %w", c.Ref(), err)
		}
		m.Holders = append(m.Holders, view.Holder{Name: c.Ref(), Exclusive: c.Class == metrics.ClassExclusive, CPUs: cpus, Mems: c.Mems})
	}
	view.Draw(w, m)
	return nil
}
