package suite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/numaspread/numaspread/test/mockruntime"
	"github.com/numaspread/numaspread/topology/synth"
)

// TestBadConfigFile: `numaspread run --config bad.toml` exits non-zero,
// naming the file, the line and the key. (Binary only: it is about the
// command.)
func TestBadConfigFile(t *testing.T) {
	binPath := binaryPath(t)
	sysfs := filepath.Join(t.TempDir(), "sysfs")
	if err := synth.SmallTwoNode().WriteDir(sysfs); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, text string
		line       int
		key        string // "" for a syntax error
	}{
		{name: "unknown-key", text: "[policy]\nmode = \"packed\"\nsprad = \"all\"\n", line: 3, key: "policy.sprad"},
		{name: "bad-value", text: "# numaspread\n[policy]\n\nspread = \"everywhere\"\n", line: 4, key: "policy.spread"},
		{name: "wrong-type", text: "[policy]\nmin_shared_cpus = \"two\"\n", line: 2, key: "policy.min_shared_cpus"},
		{name: "unknown-section", text: "[nri]\nsocket = \"/x.sock\"\n[polcy]\nmode = \"packed\"\n", line: 3, key: "polcy"},
		{name: "cpu-not-on-machine", text: "[policy]\nmode = \"packed\"\nreserved_cpus = \"0-99\"\n", line: 3, key: "policy.reserved_cpus"},
		{name: "syntax", text: "[policy]\nmode = packed\n", line: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "bad.toml")
			if err := os.WriteFile(file, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binPath, "run", "--config", file,
				"--socket", filepath.Join(dir, "none.sock"), "--sysfs", sysfs)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			switch {
			case ctx.Err() != nil:
				t.Fatalf("numaspread run kept running with this config:\n%s\nstderr:\n%s", tc.text, stderr.String())
			case err == nil:
				t.Fatalf("numaspread run exited 0 with this config:\n%s", tc.text)
			case !errors.As(err, &exit):
				t.Fatalf("running %s: %v", binPath, err)
			}
			msg := stderr.String()
			wants := []string{fmt.Sprintf("%s:%d", file, tc.line)}
			if tc.key != "" {
				wants = append(wants, tc.key)
			}
			for _, want := range wants {
				if !strings.Contains(msg, want) {
					t.Errorf("exit status %d; stderr does not name %q:\n%s", exit.ExitCode(), want, msg)
				}
			}
		})
	}
}

// TestPreinstalled: the binary launched by the runtime from its plugin
// directory, with no arguments, configured by the conf.d text it receives
// in Configure (here: the packed policy and the synthetic machine).
func TestPreinstalled(t *testing.T) {
	binPath := binaryPath(t)
	sysfs := filepath.Join(t.TempDir(), "sysfs")
	if err := synth.SmallTwoNode().WriteDir(sysfs); err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf("[topology]\nsysfs = %q\n\n[policy]\nmode = \"packed\"\n", sysfs)
	e := newEnv(t, binary, setup{
		config:   text,
		noPlugin: true,
		rtOpts:   []mockruntime.Option{mockruntime.WithPreinstalledPlugin("90", "numaspread", binPath, text)},
	})
	e.addLogs(func() string {
		b, err := os.ReadFile("/var/log/numaspread.log")
		if err != nil {
			return err.Error() + "\n"
		}
		return "(tail of /var/log/numaspread.log)\n" + string(b[max(0, len(b)-8192):])
	})

	// Pre-installed plugins are synchronized inside the runtime's Start.
	e.launch(burstablePod("web"))
	db := e.launch(guaranteedPod("db", 8))
	e.expect("db.app", "0-3,8-11", "0")
	e.expectShared("web.app")

	// The runtime restarts: it kills the plugin and launches it again,
	// which rebuilds its state from the containers it is given.
	if err := e.rt.Restart(); err != nil {
		e.fatalf("runtime restart: %v", err)
	}
	e.verify()
	e.expect("db.app", "0-3,8-11", "0")
	more := e.launch(guaranteedPod("more", 4))
	if c := e.ctr(more.Container("app").ID); len(e.perNode(c.Cpus)) != 1 || mask(t, c.Cpus).Count() != 4 {
		e.fatalf("more.app: cpus %q, want 4 CPUs on one node (packed)", c.Cpus)
	}
	e.remove(db, "app")
	e.expectShared("web.app")
}
