package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/test/pluginproc"
)

// nriTable is containerd's NRI plugin configuration
// ([plugins."io.containerd.nri.v1.nri"]), the keys its 1.7 and 2.x releases
// accept.
type nriTable struct {
	Disable                   *bool  `toml:"disable"`
	DisableConnections        *bool  `toml:"disable_connections"`
	SocketPath                string `toml:"socket_path"`
	PluginPath                string `toml:"plugin_path"`
	PluginConfigPath          string `toml:"plugin_config_path"`
	PluginRegistrationTimeout string `toml:"plugin_registration_timeout"`
	PluginRequestTimeout      string `toml:"plugin_request_timeout"`
}

// crioNRI is CRI-O's [crio.nri] table.
type crioNRI struct {
	Enable              *bool  `toml:"enable_nri"`
	Listen              string `toml:"nri_listen"`
	PluginDir           string `toml:"nri_plugin_dir"`
	PluginConfigDir     string `toml:"nri_plugin_config_dir"`
	RegistrationTimeout string `toml:"nri_plugin_registration_timeout"`
	RequestTimeout      string `toml:"nri_plugin_request_timeout"`
	DisableConnections  *bool  `toml:"nri_disable_connections"`
}

// commentedSetting is a commented-out setting of a runtime snippet:
// "# key = value" on a line of its own.
var commentedSetting = regexp.MustCompile(`^(\s*)# ?([a-z_]+ = (?:"[^"]*"|true|false|[0-9]+))\s*$`)

// uncomment returns a snippet with its commented-out settings active: the
// defaults the snippet documents, which must still be the runtimes' keys
// and values.
func uncomment(data []byte) ([]byte, int) {
	lines := strings.Split(string(data), "\n")
	n := 0
	for i, l := range lines {
		if m := commentedSetting.FindStringSubmatch(l); m != nil {
			lines[i] = m[1] + m[2]
			n++
		}
	}
	return []byte(strings.Join(lines, "\n")), n
}

// activeKeys lists the settings a snippet makes under the table path
// (dotted), sorted.
func activeKeys(md toml.MetaData, table ...string) []string {
	var out []string
	for _, k := range md.Keys() {
		if len(k) == len(table)+1 && reflect.DeepEqual([]string(k[:len(table)]), table) {
			out = append(out, k[len(table)])
		}
	}
	sort.Strings(out)
	return out
}

// TestContainerdSnippets: each snippet turns NRI on (disable = false) and
// sets nothing else, so that merging it into a node's configuration keeps
// whatever that node set (a raised plugin_request_timeout, a moved socket);
// the defaults it documents in comments are containerd's keys and NRI's
// defaults.
func TestContainerdSnippets(t *testing.T) {
	type file struct {
		Version int `toml:"version"`
		Plugins struct {
			NRI nriTable `toml:"io.containerd.nri.v1.nri"`
		} `toml:"plugins"`
	}
	for name, version := range map[string]int{"runtime/containerd-1.7.toml": 2, "runtime/containerd-2.x.toml": 3} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			var c file
			md, err := toml.Decode(string(data), &c)
			if err != nil {
				t.Fatal(err)
			}
			if u := md.Undecoded(); len(u) > 0 {
				t.Errorf("keys containerd's NRI table does not have: %v", u)
			}
			if c.Version != version {
				t.Errorf("version = %d, want %d", c.Version, version)
			}
			if n := c.Plugins.NRI; n.Disable == nil || *n.Disable {
				t.Errorf("NRI not turned on: disable %v", n.Disable)
			}
			if got := activeKeys(md, "plugins", "io.containerd.nri.v1.nri"); !reflect.DeepEqual(got, []string{"disable"}) {
				t.Errorf("active settings %v: only disable = false may be set, every default stays a comment", got)
			}

			full, n := uncomment(data)
			var d file
			md, err = toml.Decode(string(full), &d)
			if err != nil {
				t.Fatalf("the snippet with its documented defaults uncommented: %v\n%s", err, full)
			}
			if u := md.Undecoded(); len(u) > 0 {
				t.Errorf("documented keys containerd's NRI table does not have: %v", u)
			}
			if got := activeKeys(md, "plugins", "io.containerd.nri.v1.nri"); n != 6 || len(got) != 7 {
				t.Errorf("%d commented defaults, keys %v: want every key of the table documented", n, got)
			}
			nri := d.Plugins.NRI
			if nri.DisableConnections == nil || *nri.DisableConnections {
				t.Errorf("documented default disable_connections %v", nri.DisableConnections)
			}
			checkNRIPaths(t, nri.SocketPath, nri.PluginPath, nri.PluginConfigPath, nri.PluginRegistrationTimeout, nri.PluginRequestTimeout)
		})
	}
}

// TestCRIOSnippet: the drop-in sets enable_nri = true and nothing else
// (CRI-O merges drop-ins key by key, so a node's other [crio.nri] settings
// stay); the defaults it documents in comments are CRI-O's keys and NRI's
// defaults.
func TestCRIOSnippet(t *testing.T) {
	type file struct {
		CRIO struct {
			NRI crioNRI `toml:"nri"`
		} `toml:"crio"`
	}
	data, err := os.ReadFile("runtime/crio-nri.conf")
	if err != nil {
		t.Fatal(err)
	}
	var c file
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Errorf("keys [crio.nri] does not have: %v", u)
	}
	if e := c.CRIO.NRI.Enable; e == nil || !*e {
		t.Errorf("NRI not turned on: enable_nri %v", e)
	}
	if got := activeKeys(md, "crio", "nri"); !reflect.DeepEqual(got, []string{"enable_nri"}) {
		t.Errorf("active settings %v: only enable_nri = true may be set, every default stays a comment", got)
	}

	full, n := uncomment(data)
	var d file
	md, err = toml.Decode(string(full), &d)
	if err != nil {
		t.Fatalf("the snippet with its documented defaults uncommented: %v\n%s", err, full)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Errorf("documented keys [crio.nri] does not have: %v", u)
	}
	if got := activeKeys(md, "crio", "nri"); n != 6 || len(got) != 7 {
		t.Errorf("%d commented defaults, keys %v: want every key of the table documented", n, got)
	}
	nri := d.CRIO.NRI
	if nri.DisableConnections == nil || *nri.DisableConnections {
		t.Errorf("documented default nri_disable_connections %v", nri.DisableConnections)
	}
	checkNRIPaths(t, nri.Listen, nri.PluginDir, nri.PluginConfigDir, nri.RegistrationTimeout, nri.RequestTimeout)
}

// checkNRIPaths: the documented socket is the one numaspread dials by
// default, the pre-installed folders are the ones the docs and install.sh
// use, and the timeouts are NRI's defaults.
func checkNRIPaths(t *testing.T, socket, pluginDir, confDir, registration, request string) {
	t.Helper()
	if socket != config.Default().NRI.Socket {
		t.Errorf("socket %q, numaspread's default is %q", socket, config.Default().NRI.Socket)
	}
	if pluginDir != "/opt/nri/plugins" || confDir != "/etc/nri/conf.d" {
		t.Errorf("plugin folders %q, %q", pluginDir, confDir)
	}
	for want, got := range map[time.Duration]string{5 * time.Second: registration, 2 * time.Second: request} {
		if d, err := time.ParseDuration(got); err != nil || d != want {
			t.Errorf("timeout %q, want %s", got, want)
		}
	}
}

// unitFile reads a systemd unit into section → key → values.
func unitFile(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			section = l[1 : len(l)-1]
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || section == "" {
				t.Fatalf("%s: bad line %q", path, l)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	return out
}

func TestSystemdUnit(t *testing.T) {
	const path = "runtime/systemd/numaspread.service"
	u := unitFile(t, path)
	one := func(section, key string) string {
		if v := u[section][key]; len(v) == 1 {
			return v[0]
		}
		t.Errorf("%s: [%s] %s: %q, want one value", path, section, key, u[section][key])
		return ""
	}
	if got := one("Service", "ExecStart"); got != "/usr/local/bin/numaspread run --config /etc/numaspread/config.toml" {
		t.Errorf("ExecStart=%s", got)
	}
	if one("Service", "Restart") != "on-failure" {
		t.Error("Restart is not on-failure")
	}
	if !strings.Contains(" "+one("Unit", "After")+" ", " containerd.service ") {
		t.Error("not After=containerd.service")
	}
	if u["Unit"]["Requires"] != nil || u["Unit"]["BindsTo"] != nil || u["Unit"]["PartOf"] != nil {
		t.Error("the service must outlive a runtime restart (it reconnects by itself)")
	}
	if one("Service", "CapabilityBoundingSet") != "" || one("Service", "NoNewPrivileges") != "yes" {
		t.Error("the service keeps capabilities")
	}
	if one("Install", "WantedBy") != "multi-user.target" {
		t.Error("WantedBy")
	}

	// systemd's own verifier, where this machine has it: every key known, the
	// unit loads. ExecStart must name an existing executable for it.
	t.Run("systemd-analyze", func(t *testing.T) {
		sa, err := exec.LookPath("systemd-analyze")
		if err != nil {
			t.Skip("systemd-analyze not found: no systemd verification on this machine")
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		exe := numaspreadBinary(t)
		tmp := filepath.Join(t.TempDir(), "numaspread.service")
		if err := os.WriteFile(tmp, bytes.ReplaceAll(data, []byte("/usr/local/bin/numaspread"), []byte(exe)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(sa, "verify", tmp).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	})
}

// binDir holds the numaspread binary, built on first use; TestMain
// removes it.
var binDir string

// numaspreadBinary builds bin/numaspread's equivalent (once per test run).
func numaspreadBinary(t *testing.T) string {
	t.Helper()
	return pluginproc.BuildBinary(t, binDir)
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestPreinstalledInstall runs install.sh into temporary plugin folders.
func TestPreinstalledInstall(t *testing.T) {
	exe := numaspreadBinary(t)
	run := func(t *testing.T, env []string, args ...string) (string, string, int) {
		dir := t.TempDir()
		plugins, confs := filepath.Join(dir, "opt/nri/plugins"), filepath.Join(dir, "etc/nri/conf.d")
		cmd := exec.Command("sh", append([]string{"runtime/preinstalled/install.sh"}, args...)...)
		cmd.Env = append(os.Environ(), append([]string{"PLUGIN_PATH=" + plugins, "PLUGIN_CONFIG_PATH=" + confs}, env...)...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return dir, string(out), code
	}

	t.Run("installs", func(t *testing.T) {
		dir, out, code := run(t, nil, exe, "config.toml")
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		bin := filepath.Join(dir, "opt/nri/plugins/90-numaspread")
		conf := filepath.Join(dir, "etc/nri/conf.d/90-numaspread.conf")
		if st, err := os.Stat(bin); err != nil || st.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v %v", bin, st, err)
		}
		if st, err := os.Stat(conf); err != nil || st.Mode().Perm() != 0o644 {
			t.Errorf("%s: %v %v", conf, st, err)
		}
		if _, err := config.Load(conf, true); err != nil {
			t.Error(err)
		}
		// Nothing else, no temporary files: the runtime refuses to start any
		// plugin when one executable in plugin_path is misnamed.
		for _, d := range []string{"opt/nri/plugins", "etc/nri/conf.d"} {
			entries, _ := os.ReadDir(filepath.Join(dir, d))
			if len(entries) != 1 {
				t.Errorf("%s holds %d files", d, len(entries))
			}
		}
		if !strings.Contains(out, "restart the runtime") {
			t.Errorf("output:\n%s", out)
		}
	})
	t.Run("index", func(t *testing.T) {
		dir, out, code := run(t, []string{"IDX=15"}, exe, "config.toml")
		if _, err := os.Stat(filepath.Join(dir, "opt/nri/plugins/15-numaspread")); code != 0 || err != nil {
			t.Errorf("IDX=15: exit %d, %v\n%s", code, err, out)
		}
		if _, out, code := run(t, []string{"IDX=5"}, exe, "config.toml"); code != 2 {
			t.Errorf("IDX=5: exit %d, want 2\n%s", code, out)
		}
	})
	t.Run("refuses a bad config", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.toml")
		if err := os.WriteFile(bad, []byte("[policy]\nmode = \"fast\"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		dir, out, code := run(t, nil, exe, bad)
		if code != 1 || !strings.Contains(out, "FAIL: config:") || !strings.Contains(out, "policy.mode") {
			t.Errorf("exit %d:\n%s", code, out)
		}
		if _, err := os.Stat(filepath.Join(dir, "opt/nri/plugins/90-numaspread")); err == nil {
			t.Error("installed anyway")
		}
	})
	t.Run("needs a binary", func(t *testing.T) {
		if _, out, code := run(t, nil, "/nonexistent/numaspread"); code != 2 {
			t.Errorf("exit %d:\n%s", code, out)
		}
	})
}

// TestREADMESectionPaths: every repository path the README names
// exists, and every command it runs is one the binary has.
func TestREADMESectionPaths(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`\bdeploy/[A-Za-z0-9_./-]*[A-Za-z0-9_]`).FindAllString(string(data), -1) {
		seen[m] = true
	}
	paths := keys(seen) // sorted
	if len(paths) < 8 {
		t.Errorf("only %d paths named: %v", len(paths), paths)
	}
	for _, p := range paths {
		if _, err := os.Stat(filepath.Join("..", p)); err != nil {
			t.Errorf("README.md names %s: %v", p, err)
		}
	}
	exe := numaspreadBinary(t)
	help, err := exec.Command(exe, "help").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	commands := helpCommands(string(help))
	if !commands["run"] {
		t.Fatalf("`numaspread help` lists no run command; its commands section did not parse:\n%s", help)
	}
	runs := readmeCommands(string(data))
	for _, c := range keys(runs) {
		if !commands[c] && c != "help" {
			t.Errorf("README.md runs `numaspread %s`, which `numaspread help` does not list", c)
		}
	}
	for _, c := range keys(commands) {
		if !runs[c] {
			t.Errorf("`numaspread help` lists %s, which README.md never shows", c)
		}
	}
}

// helpCommands returns the commands of `numaspread help`: the indented
// "  name  description" lines after "commands:".
func helpCommands(help string) map[string]bool {
	out := map[string]bool{}
	line := regexp.MustCompile(`^  ([a-z][a-z0-9-]*)\s{2,}\S`)
	in := false
	for _, l := range strings.Split(help, "\n") {
		switch {
		case strings.TrimSpace(l) == "commands:":
			in = true
		case in && strings.TrimSpace(l) == "":
			in = false
		case in:
			if m := line.FindStringSubmatch(l); m != nil {
				out[m[1]] = true
			}
		}
	}
	return out
}

// readmeCommands returns the numaspread commands a Markdown text runs: in
// code (fenced blocks and inline spans), the word after "numaspread" where
// numaspread starts a command (the start of the code, after a shell prompt,
// sudo, "--" or a pipe, optionally with a path such as bin/), not where it is
// an argument (kubectl -n numaspread, helm install numaspread).
func readmeCommands(md string) map[string]bool {
	var code []string
	fenced := false
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			code = append(code, l)
			continue
		}
		for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(l, -1) {
			code = append(code, m[1])
		}
	}
	invocation := regexp.MustCompile(`(?:^\s*|[$#|]\s*|\bsudo\s+|--\s+)(?:[\w./-]*/)?numaspread\s+([a-z][a-z0-9-]*)`)
	out := map[string]bool{}
	for _, c := range code {
		for _, m := range invocation.FindAllStringSubmatch(c, -1) {
			out[m[1]] = true
		}
	}
	return out
}

// TestREADMECommandParsing: what TestREADMESectionPaths counts as a command
// the README runs, and as a command `numaspread help` lists.
func TestREADMECommandParsing(t *testing.T) {
	md := "numaspread places it as one (prose, not code).\n" +
		"| `numaspread run [--config F]` | the plugin |\n" +
		"Use `numaspread frobnicate` or `kubectl -n numaspread exec POD -- numaspread status`.\n" +
		"```\n$ bin/numaspread plan --cpus 8\n# numaspread check --config x\n" +
		"kubectl -n numaspread rollout status ds/numaspread\nhelm install numaspread deploy/helm/numaspread\n" +
		"sudo /usr/local/bin/numaspread topology | less\nnumaspread run: bad.toml:2: policy.spread\n```\n"
	want := map[string]bool{"run": true, "frobnicate": true, "status": true, "plan": true, "check": true, "topology": true}
	if got := readmeCommands(md); !reflect.DeepEqual(got, want) {
		t.Errorf("readmeCommands = %v, want %v", keys(got), keys(want))
	}
	help := "usage: numaspread [command] [flags]\n\ncommands:\n  run         run the plugin\n  sysfs-dump  capture sysfs\n\nRun 'numaspread COMMAND -h'.\n"
	if got := helpCommands(help); !reflect.DeepEqual(got, map[string]bool{"run": true, "sysfs-dump": true}) {
		t.Errorf("helpCommands = %v", keys(got))
	}
}
