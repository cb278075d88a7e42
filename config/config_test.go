package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const samplePath = "../deploy/config.toml"

// The sample is the documentation users copy; it must not drift from the
// built-in defaults, and it must show every key.
func TestSampleEqualsDefault(t *testing.T) {
	c, err := Load(samplePath, true)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Equal(Default()) {
		t.Errorf("sample differs from Default(): %v", Diff(Default(), c))
	}
	for i := range schema {
		if c.Line(schema[i].key()) == 0 {
			t.Errorf("sample does not set %s", schema[i].key())
		}
	}
}

// The schema table and the Config struct describe the same keys: every
// tagged field has a schema entry whose accessor points at that field.
func TestSchemaMatchesStruct(t *testing.T) {
	seen := map[string]bool{}
	ct := reflect.TypeFor[Config]()
	for i := range ct.NumField() {
		sf := ct.Field(i)
		section := sf.Tag.Get("toml")
		if section == "" {
			continue
		}
		for j := range sf.Type.NumField() {
			kf := sf.Type.Field(j)
			key := section + "." + kf.Tag.Get("toml")
			f := lookup(section, kf.Tag.Get("toml"))
			if f == nil {
				t.Errorf("%s (Config.%s.%s) has no schema entry", key, sf.Name, kf.Name)
				continue
			}
			seen[key] = true
			// Write through the accessor and read back through reflection.
			var c Config
			want := reflect.ValueOf(&c).Elem().Field(i).Field(j)
			switch f.kind {
			case kindString:
				*f.str(&c) = "x"
			case kindInt:
				*f.num(&c) = 7
			case kindBool:
				*f.flag(&c) = true
			}
			if want.IsZero() {
				t.Errorf("schema accessor of %s does not point at Config.%s.%s", key, sf.Name, kf.Name)
			}
		}
	}
	if len(seen) != len(schema) {
		t.Errorf("struct has %d keys, schema %d", len(seen), len(schema))
	}
}

func TestParseEmptyIsDefault(t *testing.T) {
	for _, in := range []string{"", "# only a comment\n", "[policy]\n"} {
		c, err := Parse("x.toml", []byte(in))
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if !c.Equal(Default()) {
			t.Errorf("%q: %v", in, Diff(Default(), c))
		}
	}
}

func TestParseValues(t *testing.T) {
	in := `
[nri]
socket = "/run/nri.sock"
plugin_name = "numa-spread.v2"
plugin_index = "05"
[topology]
sysfs = "/tmp/sys.tar.xz"
[policy]
mode = "packed"
spread = "minimal"
max_numa_nodes = 2
full_cores = "require"
reserved_cpus = " 1,0 "
strict_reserved = true
allowed_cpus = "0-3,8,9,10,11"
min_shared_cpus = 0
memory = "none"
on_insufficient = "shared"
annotations = false
[log]
level = "debug"
format = "json"
[metrics]
address = "127.0.0.1:9464"
`
	want := Config{
		NRI:      NRIConfig{Socket: "/run/nri.sock", PluginName: "numa-spread.v2", PluginIndex: "05"},
		Topology: TopologyConfig{Sysfs: "/tmp/sys.tar.xz"},
		Policy: PolicyConfig{
			Mode: ModePacked, Spread: SpreadMinimal, MaxNUMANodes: 2, FullCores: FullCoresRequire,
			ReservedCPUs: "0-1", StrictReserved: true, AllowedCPUs: "0-3,8-11", MinSharedCPUs: 0,
			Memory: MemoryNone, OnInsufficient: InsufficientShared, Annotations: false,
		},
		Log:     LogConfig{Level: LogDebug, Format: LogFormatJSON},
		Metrics: MetricsConfig{Address: "127.0.0.1:9464"},
	}
	c, err := Parse("x.toml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Equal(want) {
		t.Errorf("got %+v\nwant %+v\ndiff %v", c, want, Diff(want, c))
	}
	if c.Source() != "x.toml" || c.Line("policy.reserved_cpus") != 13 || c.Line("metrics.address") != 24 {
		t.Errorf("origin: source %q, reserved_cpus line %d, address line %d", c.Source(), c.Line("policy.reserved_cpus"), c.Line("metrics.address"))
	}

	// Other ways TOML can spell the same keys: dotted keys and inline tables.
	for _, in := range []string{
		"policy.spread = \"minimal\"\nlog.level = \"warn\"\n",
		"policy = { spread = \"minimal\" }\nlog = { level = \"warn\" }\n",
		"policy.\"spread\" = 'minimal'\n[log]\nlevel = \"\"\"warn\"\"\"\n",
	} {
		c, err := Parse("x.toml", []byte(in))
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if c.Policy.Spread != SpreadMinimal || c.Log.Level != LogWarn {
			t.Errorf("%q: spread %q, level %q", in, c.Policy.Spread, c.Log.Level)
		}
		if c.Line("policy.spread") != 1 {
			t.Errorf("%q: policy.spread on line %d, want 1", in, c.Line("policy.spread"))
		}
	}
}

// Each case's errors must match exactly, in order: the file, the line, the
// key and the message are what a user sees.
func TestParseErrors(t *testing.T) {
	policyKeys := "(policy keys: mode, spread, max_numa_nodes, full_cores, reserved_cpus, strict_reserved, allowed_cpus, min_shared_cpus, memory, on_insufficient, annotations)"
	sections := "(sections: nri, topology, policy, log, metrics)"
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		// Bad values, one per key.
		{"socket", "[nri]\nsocket = \"\"", []string{`f:2: nri.socket: must not be empty: give the path of the runtime's NRI socket`}},
		{"plugin_name empty", "[nri]\nplugin_name = \"\"", []string{`f:2: nri.plugin_name: must not be empty`}},
		{"plugin_name char", "[nri]\nplugin_name = \"numa spread\"", []string{`f:2: nri.plugin_name: "numa spread" contains ' '; NRI plugin names use only a-z A-Z 0-9 _ . + -`}},
		{"plugin_index short", "[nri]\nplugin_index = \"9\"", []string{`f:2: nri.plugin_index: "9" is not two digits ("00" to "99")`}},
		{"plugin_index letters", "[nri]\nplugin_index = \"ab\"", []string{`f:2: nri.plugin_index: "ab" is not two digits ("00" to "99")`}},
		{"sysfs", "[topology]\nsysfs = \"\"", []string{`f:2: topology.sysfs: must not be empty: give a sysfs root such as "/sys", or a .tar.gz/.tar.xz of one`}},
		{"mode", "[policy]\nmode = \"spread\"", []string{`f:2: policy.mode: "spread" is not one of distributed, packed`}},
		{"spread", "\n\n[policy]\n\nspread = \"most\"", []string{`f:5: policy.spread: "most" is not one of all, minimal`}},
		{"max_numa_nodes", "[policy]\nmax_numa_nodes = -1", []string{`f:2: policy.max_numa_nodes: -1 is out of range (0 to 65536)`}},
		{"max_numa_nodes huge", "[policy]\nmax_numa_nodes = 9223372036854775807", []string{`f:2: policy.max_numa_nodes: 9223372036854775807 is out of range (0 to 65536)`}},
		{"full_cores", "[policy]\nfull_cores = \"yes\"", []string{`f:2: policy.full_cores: "yes" is not one of prefer, require, off`}},
		{"reserved_cpus", "[policy]\nreserved_cpus = \"0-x\"", []string{`f:2: policy.reserved_cpus: invalid cpulist "0-x": CPU id "x" is not a non-negative integer`}},
		{"allowed_cpus", "[policy]\nallowed_cpus = \"3-1\"", []string{`f:2: policy.allowed_cpus: invalid cpulist "3-1": range "3-1" is reversed`}},
		{"min_shared_cpus", "[policy]\nmin_shared_cpus = -2", []string{`f:2: policy.min_shared_cpus: -2 is out of range (0 to 65536)`}},
		{"memory", "[policy]\nmemory = \"remote\"", []string{`f:2: policy.memory: "remote" is not one of local, all, none`}},
		{"on_insufficient", "[policy]\non_insufficient = \"wait\"", []string{`f:2: policy.on_insufficient: "wait" is not one of reject, shared`}},
		{"level", "[log]\nlevel = \"trace\"", []string{`f:2: log.level: "trace" is not one of debug, info, warn, error`}},
		{"format", "[log]\nformat = \"yaml\"", []string{`f:2: log.format: "yaml" is not one of text, json`}},
		{"address no port", "[metrics]\naddress = \"localhost\"", []string{`f:2: metrics.address: "localhost" is not host:port; write host:port such as "127.0.0.1:9464", or "" to turn metrics off`}},
		{"address named port", "[metrics]\naddress = \"localhost:http\"", []string{`f:2: metrics.address: "localhost:http": port "http" is not a number from 1 to 65535; write host:port such as "127.0.0.1:9464", or "" to turn metrics off`}},
		{"address port 0", "[metrics]\naddress = \":0\"", []string{`f:2: metrics.address: ":0": port "0" is not a number from 1 to 65535; write host:port such as "127.0.0.1:9464", or "" to turn metrics off`}},

		// Wrong TOML types.
		{"string for int", "[policy]\nmax_numa_nodes = \"2\"", []string{`f:2: policy.max_numa_nodes: got a string ("2"), want an integer: write 2 without quotes`}},
		{"float for int", "[policy]\nmin_shared_cpus = 1.5", []string{`f:2: policy.min_shared_cpus: got a float (1.5), want an integer`}},
		{"int for string", "[nri]\nplugin_index = 90", []string{`f:2: nri.plugin_index: got an integer (90), want a string: write it in quotes, "90"`}},
		{"array for cpulist", "[policy]\nreserved_cpus = [0, 1]", []string{`f:2: policy.reserved_cpus: got an array, want a string`}},
		{"string for bool", "[policy]\nstrict_reserved = \"true\"", []string{`f:2: policy.strict_reserved: got a string ("true"), want true or false: write true without quotes`}},
		{"int for bool", "[policy]\nannotations = 1", []string{`f:2: policy.annotations: got an integer (1), want true or false`}},
		{"table for string", "[policy.spread]\nx = 1", []string{`f:1: policy.spread: got a table, want a string`}},
		{"date for string", "[log]\nlevel = 2024-01-01", []string{`f:2: log.level: got a date/time, want a string`}},
		{"section not a table", "policy = 3", []string{`f:1: policy: got an integer (3), want a table: write [policy] and its keys below it`}},
		{"array of tables", "[[policy]]\nmode = \"packed\"", []string{`f:1: policy: got an array of tables, want a table: write [policy] and its keys below it`}},

		// Unknown names.
		{"unknown key", "[policy]\nmode = \"packed\"\nfoo = 1", []string{`f:3: policy.foo: unknown key ` + policyKeys}},
		{"misspelt key", "[policy]\nsprad = \"all\"", []string{`f:2: policy.sprad: unknown key; did you mean "spread"? ` + policyKeys}},
		{"key in wrong case", "[policy]\nSpread = \"all\"", []string{`f:2: policy.Spread: unknown key; did you mean "spread"? ` + policyKeys}},
		{"key of another section", "[log]\naddress = \"\"", []string{`f:2: log.address: unknown key (log keys: level, format)`}},
		{"unknown section", "[policy]\n[foo]\nbar = 1\nbaz = 2", []string{`f:2: foo: unknown section ` + sections}},
		{"misspelt section", "[polcy]\nmode = \"packed\"", []string{`f:1: polcy: unknown section; did you mean "policy"? ` + sections}},
		{"unknown array of tables", "[[foo]]\nx = 1", []string{`f:1: foo: unknown section ` + sections}},
		{"key outside section", "# c\nmode = \"packed\"\n[policy]", []string{`f:2: mode: keys must be inside a section: did you mean mode under [policy]?`}},
		{"unknown top-level key", "x = 1", []string{`f:1: x: unknown key outside any section ` + sections}},
		{"unknown subtable", "[policy]\n[policy.extra]\na = 1\nb = 2", []string{`f:2: policy.extra: unknown key ` + policyKeys}},
		{"dotted unknown", "policy.x.y = 1", []string{`f:1: policy.x: unknown key ` + policyKeys}},
		{"dotted bad value", "\npolicy.spread = \"most\"", []string{`f:2: policy.spread: "most" is not one of all, minimal`}},
		{"inline table", "\n\npolicy = { mode = \"packed\", spread = \"most\" }", []string{`f:3: policy.spread: "most" is not one of all, minimal`}},
		{"quoted key", "[policy]\n\"mode\" = 'x'", []string{`f:2: policy.mode: "x" is not one of distributed, packed`}},
		// The TOML parser places a multi-line string where it ends.
		{"multi-line string", "[policy]\nreserved_cpus = \"\"\"\n0-x\"\"\"", []string{`f:3: policy.reserved_cpus: invalid cpulist "0-x": CPU id "x" is not a non-negative integer`}},

		// Syntax errors stop parsing. On a key = value line they name the
		// key, with the section of the [table] above; an unquoted word for a
		// string key gets the line with quotes.
		{"syntax", "[policy]\nmode = packed\nspread = \"most\"", []string{`f:2: policy.mode: invalid TOML: expected value but found "packed" instead; quote strings: mode = "packed"`}},
		{"syntax cpulist", "[policy]\nreserved_cpus = 0,1", []string{`f:2: policy.reserved_cpus: invalid TOML: expected a top-level item to end with a newline, comment, or EOF, but got ',' instead; quote strings: reserved_cpus = "0,1"`}},
		{"syntax path and comment", "[nri]\nsocket = /run/nri.sock  # the socket", []string{`f:2: nri.socket: invalid TOML: expected value but found '/' instead; quote strings: socket = "/run/nri.sock"`}},
		{"syntax int too large", "[policy]\nmax_numa_nodes = 99999999999999999999", []string{`f:2: policy.max_numa_nodes: invalid TOML: 99999999999999999999 is out of range for int64`}},
		{"syntax word for int", "[policy]\nmax_numa_nodes = two", []string{`f:2: policy.max_numa_nodes: invalid TOML: expected value but found "two" instead`}},
		{"syntax after value", "[policy]\nmode = \"packed\" x", []string{`f:2: policy.mode: invalid TOML: expected a top-level item to end with a newline, comment, or EOF, but got 'x' instead`}},
		{"syntax no value", "[policy]\nmode =\n", []string{`f:2: policy.mode: invalid TOML: expected value but found '\n' instead`}},
		{"syntax unterminated string", "[policy]\nmode = \"packed", []string{`f:2: policy.mode: invalid TOML: unexpected EOF; expected '"'`}},
		{"syntax two words", "[nri]\nplugin_name = numa spread", []string{`f:2: nri.plugin_name: invalid TOML: expected value but found "numa" instead`}},
		{"syntax dotted quoted key", "# c\npolicy . \"mode\" = packed", []string{`f:2: policy.mode: invalid TOML: expected value but found "packed" instead; quote strings: policy . "mode" = "packed"`}},
		{"syntax quoted header", "# [log]\r\n[ 'policy' ] # [log]\r\n\r\nmode = packed\r\n", []string{`f:4: policy.mode: invalid TOML: expected value but found "packed" instead; quote strings: mode = "packed"`}},
		{"syntax subtable", "[policy]\n[nri.a]\nb = c", []string{`f:3: nri.a.b: invalid TOML: expected value but found "c" instead`}},
		{"syntax array of tables", "[[log]]\nlevel = warn", []string{`f:2: log.level: invalid TOML: expected value but found "warn" instead; quote strings: level = "warn"`}},
		{"syntax outside section", "mode = packed", []string{`f:1: mode: invalid TOML: expected value but found "packed" instead`}},
		{"syntax inline table", "policy = { spread = all, mode = packed }", []string{`f:1: policy.spread: invalid TOML: expected value but found "all" instead`}},
		{"syntax header in string", "[log]\nformat = \"\"\"\n[policy]\n\"\"\"\nlevel = warn", []string{`f:5: log.level: invalid TOML: expected value but found "warn" instead; quote strings: level = "warn"`}},
		{"duplicate key", "[policy]\nmode = \"packed\"\nmode = \"packed\"", []string{`f:3: policy.mode: invalid TOML: Key 'policy.mode' has already been defined.`}},
		// Elsewhere they name no key: in a [table] header, in a key, or
		// inside a value that spans lines.
		{"syntax in header", "[policy]\nmode = \"packed\"\n[lo g]", []string{`f:3: invalid TOML: expected '.' or ']' to end table name, but got 'g' instead`}},
		{"duplicate table", "[policy]\n[policy]", []string{`f:2: invalid TOML: Key 'policy' has already been defined.`}},
		{"syntax in key", "[policy]\nmo de = 1", []string{`f:2: invalid TOML: expected '.' or '=', but got 'd' instead`}},
		{"syntax in multi-line array", "[policy]\nreserved_cpus = [\n0,\nx = 1\n]", []string{`f:4: invalid TOML: expected value but found "x" instead`}},
		{"syntax in multi-line string", "[policy]\nreserved_cpus = \"\"\"\nmode = \\q\"\"\"", []string{`f:3: invalid TOML: invalid escape in string '\q'`}},
		{"syntax in multi-line inline table", "[policy]\nx = { a = 1,\nb = c }", []string{`f:3: invalid TOML: expected value but found "c" instead`}},

		// Every problem is reported, in file order.
		{"several", "[nri]\nplugin_index = 1\n[policy]\nspread = \"most\"\nfoo = 2\n[log]\nlevel = \"loud\"\n[bar]", []string{
			`f:2: nri.plugin_index: got an integer (1), want a string: write it in quotes, "1"`,
			`f:4: policy.spread: "most" is not one of all, minimal`,
			`f:5: policy.foo: unknown key ` + policyKeys,
			`f:7: log.level: "loud" is not one of debug, info, warn, error`,
			`f:8: bar: unknown section ` + sections,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f", []byte(tc.in))
			if err == nil {
				t.Fatalf("no error for %q", tc.in)
			}
			got := strings.Split(err.Error(), "\n")
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("input %q\n got: %q\nwant: %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseErrorValues(t *testing.T) {
	_, err := Parse("/etc/numaspread/config.toml", []byte("[policy]\nmode = \"packed\"\nspread = \"most\"\n"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%v is not an *Error", err)
	}
	want := Error{Source: "/etc/numaspread/config.toml", Line: 3, Key: "policy.spread", Msg: `"most" is not one of all, minimal`}
	if *e != want {
		t.Errorf("got %+v, want %+v", *e, want)
	}
	if err.Error() != `/etc/numaspread/config.toml:3: policy.spread: "most" is not one of all, minimal` {
		t.Errorf("got %q", err)
	}

	_, err = Parse("f", []byte("[policy]\n\nspread = most\n"))
	if !errors.As(err, &e) {
		t.Fatalf("%v is not an *Error", err)
	}
	if e.Line != 3 || e.Key != "policy.spread" {
		t.Errorf("syntax error: got %+v, want line 3, key policy.spread", *e)
	}
}

func TestParseConfigureSource(t *testing.T) {
	_, err := Parse(ConfigureSource, []byte("[log]\nlevel = \"loud\""))
	if got, want := err.Error(), `NRI Configure config:2: log.level: "loud" is not one of debug, info, warn, error`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParseErrorCap(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("[policy]\n")
	for i := range maxErrors + 7 {
		sb.WriteString("k")
		sb.WriteString(strings.Repeat("x", i+1))
		sb.WriteString(" = 1\n")
	}
	_, err := Parse("f", []byte(sb.String()))
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxErrors+1 || lines[maxErrors] != "f: 7 more problems not shown" {
		t.Errorf("got %d lines, last %q", len(lines), lines[len(lines)-1])
	}
}

func TestParseTooLarge(t *testing.T) {
	_, err := Parse("f", make([]byte, maxSize+1))
	if err == nil || !strings.Contains(err.Error(), "the most a configuration may have") {
		t.Errorf("got %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "none.toml")

	c, err := Load(missing, false)
	if err != nil || !c.Equal(Default()) || c.Source() != "" {
		t.Errorf("missing default file: %+v, %v", c, err)
	}
	if _, err := Load(missing, true); err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing explicit file: %v", err)
	}

	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte("[policy]\nspread = \"minimal\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, mustExist := range []bool{false, true} {
		c, err := Load(path, mustExist)
		if err != nil || c.Policy.Spread != SpreadMinimal || c.Source() != path || c.Line("policy.spread") != 2 {
			t.Errorf("existing file: %+v, %v", c, err)
		}
	}

	if err := os.WriteFile(path, []byte("[policy]\nspread = \"most\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, false); err == nil || !strings.HasPrefix(err.Error(), path+":2: policy.spread: ") {
		t.Errorf("bad file: %v", err)
	}

	// A directory, or any other read error, is an error even for the default path.
	if _, err := Load(dir, false); err == nil {
		t.Error("reading a directory: no error")
	}
	// An endless file is cut off, not read to the end.
	if _, err := os.Stat("/dev/zero"); err == nil {
		if _, err := Load("/dev/zero", true); err == nil || !strings.Contains(err.Error(), "the most a configuration may have") {
			t.Errorf("/dev/zero: %v", err)
		}
	}
}

// ReadFile reads a file Parse accepts whole, and one byte past what it
// accepts of a larger one; its errors are the os package's.
func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadFile(filepath.Join(dir, "none.toml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	for _, size := range []int{0, maxSize, maxSize + 5000} {
		path := filepath.Join(dir, "f")
		if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
		data, err := ReadFile(path)
		if want := min(size, maxSize+1); err != nil || len(data) != want {
			t.Errorf("file of %d bytes: read %d, %v; want %d", size, len(data), err, want)
		}
	}
}

func TestDiff(t *testing.T) {
	a := Default()
	if d := Diff(a, Default()); d != nil {
		t.Errorf("no change: %q", d)
	}
	b, err := Parse("f", []byte("[policy]\nspread = \"minimal\"\nreserved_cpus = \"1,0\"\nmin_shared_cpus = 2\nannotations = false\n[metrics]\naddress = \"127.0.0.1:9464\""))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`policy.spread: all → minimal`,
		`policy.reserved_cpus: "" → 0-1`,
		`policy.min_shared_cpus: 1 → 2`,
		`policy.annotations: true → false`,
		`metrics.address: "" → 127.0.0.1:9464`,
	}
	if got := Diff(a, b); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if a.Equal(b) {
		t.Error("Equal says different configs are equal")
	}

	// Where the values were written does not count.
	p, err := Parse("other.toml", []byte("[log]\nlevel = \"info\""))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Equal(a) || Diff(a, p) != nil {
		t.Error("a parsed default differs from Default()")
	}
}

// Parsing arbitrary text must not panic, must be deterministic (the line
// probes must not depend on map order), and what it accepts must be valid.
func FuzzParse(f *testing.F) {
	sample, err := os.ReadFile(samplePath)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		string(sample),
		"",
		"[policy]\nspread = \"most\"\nSpread = 1\nSPREAD = 2\n",
		"policy = { spread = \"minimal\", x = { y = 1 } }",
		"[[policy]]\n[[policy]]\n[policy.x]\n",
		"a.b.c.d = 1\n\"\" = 2\n\"a,b\" = 3\n\"-\" = 4\n[\"\"]\n",
		"[policy]\nreserved_cpus = '''\n0-3'''\nallowed_cpus = \"0-65535\"\n",
		"[metrics]\naddress = \"[::1]:9464\"\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f", data)
		_, err2 := Parse("f", data)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("two parses disagree: %v / %v", err, err2)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if n := strings.Count(string(data), "\n") + 1; e.Line > n {
				t.Fatalf("error on line %d of %d", e.Line, n)
			}
			return
		}
		// What Parse accepts, it accepts again from the same values.
		for i := range schema {
			fl := &schema[i]
			if fl.kind != kindString {
				continue
			}
			v := *fl.str(&c)
			if fl.choices != nil && !strings.Contains(","+strings.Join(fl.choices, ",")+",", ","+v+",") {
				t.Fatalf("%s = %q accepted", fl.key(), v)
			}
			if fl.check != nil {
				if norm, err := fl.check(v); err != nil || norm != v {
					t.Fatalf("%s = %q accepted but check gives %q, %v", fl.key(), v, norm, err)
				}
			}
		}
	})
}

func TestWith(t *testing.T) {
	c, err := Default().With("nri.plugin_index", "42")
	if err != nil || c.NRI.PluginIndex != "42" {
		t.Fatalf("With(plugin_index, 42) = %q, %v", c.NRI.PluginIndex, err)
	}
	if c, err = c.With("policy.min_shared_cpus", "3"); err != nil || c.Policy.MinSharedCPUs != 3 {
		t.Fatalf("With(min_shared_cpus, 3) = %d, %v", c.Policy.MinSharedCPUs, err)
	}
	for _, tc := range []struct{ key, value, want string }{
		{"nri.plugin_index", "9x", "nri.plugin_index"},
		{"log.level", "loud", `"loud" is not one of debug, info, warn, error`},
		{"policy.min_shared_cpus", "many", `"many" is not an integer`},
		{"nri.nope", "1", "nri.nope: unknown key"},
	} {
		if _, err := Default().With(tc.key, tc.value); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("With(%s, %s) error = %v, want it to contain %q", tc.key, tc.value, err, tc.want)
		}
	}
}
