package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/numaspread/numaspread/topology"
)

// kind is the TOML type a key takes.
type kind int

const (
	kindString kind = iota
	kindInt
	kindBool
)

// field describes one key of the file: its type, what values it takes, and
// where it lives in Config. The schema table below is the single description
// of the file that Parse, Diff and the tests all walk, so adding a key means
// adding one line here (and one to deploy/config.toml, which a test enforces).
type field struct {
	section, name string
	kind          kind

	// kindString: the allowed values (nil: any value check accepts), and a
	// check that validates a free-form value and returns its normal form.
	choices []string
	check   func(string) (string, error)
	// kindInt: the allowed range.
	min, max int

	str  func(*Config) *string
	num  func(*Config) *int
	flag func(*Config) *bool
}

func (f *field) key() string { return f.section + "." + f.name }

// value returns the field's value in c, for Diff.
func (f *field) value(c *Config) any {
	switch f.kind {
	case kindString:
		return *f.str(c)
	case kindInt:
		return *f.num(c)
	default:
		return *f.flag(c)
	}
}

func choice(section, name string, p func(*Config) *string, choices ...string) field {
	return field{section: section, name: name, kind: kindString, choices: choices, str: p}
}

func text(section, name string, p func(*Config) *string, check func(string) (string, error)) field {
	return field{section: section, name: name, kind: kindString, check: check, str: p}
}

func integer(section, name string, p func(*Config) *int, lo, hi int) field {
	return field{section: section, name: name, kind: kindInt, min: lo, max: hi, num: p}
}

func boolean(section, name string, p func(*Config) *bool) field {
	return field{section: section, name: name, kind: kindBool, flag: p}
}

// schema lists every key in file order. The int bounds above 0 are only
// sanity limits (no machine has more than topology.MaxCPUID CPUs or NUMA
// nodes); they keep absurd values out of int arithmetic on 32-bit builds.
var schema = []field{
	text("nri", "socket", func(c *Config) *string { return &c.NRI.Socket }, nonEmpty("the path of the runtime's NRI socket")),
	text("nri", "plugin_name", func(c *Config) *string { return &c.NRI.PluginName }, checkPluginName),
	text("nri", "plugin_index", func(c *Config) *string { return &c.NRI.PluginIndex }, checkPluginIndex),

	text("topology", "sysfs", func(c *Config) *string { return &c.Topology.Sysfs }, nonEmpty(`a sysfs root such as "/sys", or a .tar.gz/.tar.xz of one`)),

	choice("policy", "mode", func(c *Config) *string { return &c.Policy.Mode }, ModeDistributed, ModePacked),
	choice("policy", "spread", func(c *Config) *string { return &c.Policy.Spread }, SpreadAll, SpreadMinimal),
	integer("policy", "max_numa_nodes", func(c *Config) *int { return &c.Policy.MaxNUMANodes }, 0, topology.MaxCPUID),
	choice("policy", "full_cores", func(c *Config) *string { return &c.Policy.FullCores }, FullCoresPrefer, FullCoresRequire, FullCoresOff),
	text("policy", "reserved_cpus", func(c *Config) *string { return &c.Policy.ReservedCPUs }, checkCPUList),
	boolean("policy", "strict_reserved", func(c *Config) *bool { return &c.Policy.StrictReserved }),
	text("policy", "allowed_cpus", func(c *Config) *string { return &c.Policy.AllowedCPUs }, checkCPUList),
	integer("policy", "min_shared_cpus", func(c *Config) *int { return &c.Policy.MinSharedCPUs }, 0, topology.MaxCPUID),
	choice("policy", "memory", func(c *Config) *string { return &c.Policy.Memory }, MemoryLocal, MemoryAll, MemoryNone),
	choice("policy", "on_insufficient", func(c *Config) *string { return &c.Policy.OnInsufficient }, InsufficientReject, InsufficientShared),
	boolean("policy", "annotations", func(c *Config) *bool { return &c.Policy.Annotations }),

	choice("log", "level", func(c *Config) *string { return &c.Log.Level }, LogDebug, LogInfo, LogWarn, LogError),
	choice("log", "format", func(c *Config) *string { return &c.Log.Format }, LogFormatText, LogFormatJSON),

	text("metrics", "address", func(c *Config) *string { return &c.Metrics.Address }, checkAddress),
}

// sections returns the section names in file order.
func sections() []string {
	var out []string
	for i := range schema {
		if len(out) == 0 || out[len(out)-1] != schema[i].section {
			out = append(out, schema[i].section)
		}
	}
	return out
}

// keysOf returns the key names of a section in file order (nil if there is no such section).
func keysOf(section string) []string {
	var out []string
	for i := range schema {
		if schema[i].section == section {
			out = append(out, schema[i].name)
		}
	}
	return out
}

// lookup returns the field of section.name, matching exactly: TOML keys are
// case-sensitive, and accepting "Spread" would let two spellings of one key
// disagree silently.
func lookup(section, name string) *field {
	for i := range schema {
		if schema[i].section == section && schema[i].name == name {
			return &schema[i]
		}
	}
	return nil
}

func nonEmpty(what string) func(string) (string, error) {
	return func(s string) (string, error) {
		if s == "" {
			return "", fmt.Errorf("must not be empty: give %s", what)
		}
		return s, nil
	}
}

// checkPluginName applies NRI's own rule (api.CheckPluginName), so that a bad
// name fails here, with a line number, instead of at registration.
func checkPluginName(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("must not be empty")
	}
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		case r == '-', r == '_', r == '.', r == '+':
		default:
			return "", fmt.Errorf("%q contains %q; NRI plugin names use only a-z A-Z 0-9 _ . + -", s, r)
		}
	}
	return s, nil
}

// checkPluginIndex applies NRI's rule (api.CheckPluginIndex): exactly two digits.
func checkPluginIndex(s string) (string, error) {
	if len(s) != 2 || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' {
		return "", fmt.Errorf("%q is not two digits (\"00\" to \"99\")", s)
	}
	return s, nil
}

// checkCPUList checks the syntax of a cpulist and normalises it, so that
// "1,0" and "0-1" are the same value to Diff. Whether the CPUs exist is
// Resolve's business: it needs the machine.
func checkCPUList(s string) (string, error) {
	m, err := topology.ParseMask(s)
	if err != nil {
		return "", err
	}
	return m.String(), nil
}

// checkAddress accepts "" (metrics off) or host:port with a numeric port; the
// host may be empty (all interfaces), as net.Listen allows.
func checkAddress(s string) (string, error) {
	if s == "" {
		return s, nil
	}
	const hint = `write host:port such as "127.0.0.1:9464", or "" to turn metrics off`
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("%q is not host:port; %s", s, hint)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strings.HasPrefix(port, "+") {
		return "", fmt.Errorf("%q: port %q is not a number from 1 to 65535; %s", s, port, hint)
	}
	return s, nil
}
