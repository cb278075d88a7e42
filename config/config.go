// Package config owns numaspread's configuration: the TOML file's schema and
// built-in defaults (Default), strict parsing whose every error names the
// file, line and key (Parse, Load), the check of the configured CPU lists
// against the machine (Config.Resolve), and the list of changed keys for
// reload logs (Diff).
//
// The same Parse reads the configuration file and the text a runtime passes to
// a pre-installed plugin in NRI Configure. The package imports topology (for
// cpulists and the machine) and nothing of NRI or the policy: the plugin maps a
// Config onto the policy's own option types.
package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// DefaultPath is where the plugin looks for its configuration file when none
// is given on the command line.
const DefaultPath = "/etc/numaspread/config.toml"

// ConfigureSource is the name Parse errors use for the configuration text the
// runtime hands to a pre-installed plugin in NRI Configure (there is no file
// name to show).
const ConfigureSource = "NRI Configure config"

// maxSize bounds the text Parse accepts. A real configuration is about 1 KiB;
// the bound keeps a corrupt or hostile input from costing much, since finding
// the line of a key re-reads the text (see lines.go).
const maxSize = 1 << 20

// The allowed values of the choice keys. They are plain strings, not types of
// their own, because the policy package has its own option types and must not
// import config; the plugin maps one onto the other.
const (
	ModeDistributed = "distributed"
	ModePacked      = "packed"

	SpreadAll     = "all"
	SpreadMinimal = "minimal"

	FullCoresPrefer  = "prefer"
	FullCoresRequire = "require"
	FullCoresOff     = "off"

	MemoryLocal = "local"
	MemoryAll   = "all"
	MemoryNone  = "none"

	InsufficientReject = "reject"
	InsufficientShared = "shared"

	LogDebug = "debug"
	LogInfo  = "info"
	LogWarn  = "warn"
	LogError = "error"

	LogFormatText = "text"
	LogFormatJSON = "json"
)

// Config is the whole configuration; each field mirrors one [section] of the
// file and each of their fields one key (the toml tag is the key's name).
//
// Config is not comparable with ==, on purpose: it also remembers where each
// key was written, which is not part of its value. Use Equal or Diff.
type Config struct {
	NRI      NRIConfig      `toml:"nri"`
	Topology TopologyConfig `toml:"topology"`
	Policy   PolicyConfig   `toml:"policy"`
	Log      LogConfig      `toml:"log"`
	Metrics  MetricsConfig  `toml:"metrics"`

	origin origin
}

// NRIConfig is the [nri] section: how the plugin connects to the runtime.
type NRIConfig struct {
	Socket      string `toml:"socket"`       // the runtime's NRI socket
	PluginName  string `toml:"plugin_name"`  // [a-zA-Z0-9_.+-]+
	PluginIndex string `toml:"plugin_index"` // two digits, "00".."99": the plugin's place in NRI's order
}

// TopologyConfig is the [topology] section: where the machine is read from.
type TopologyConfig struct {
	// Sysfs is a directory that contains devices/system/..., or a
	// .tar.gz/.tar.xz of one.
	Sysfs string `toml:"sysfs"`
}

// PolicyConfig is the [policy] section: how CPUs and memory nodes are handed out.
type PolicyConfig struct {
	Mode         string `toml:"mode"`           // ModeDistributed or ModePacked
	Spread       string `toml:"spread"`         // SpreadAll or SpreadMinimal
	MaxNUMANodes int    `toml:"max_numa_nodes"` // ≥ 0; 0: no cap
	FullCores    string `toml:"full_cores"`     // FullCoresPrefer, FullCoresRequire or FullCoresOff
	// ReservedCPUs is a cpulist, normalised by Parse ("0,1" becomes "0-1");
	// "" reserves nothing. Resolve turns it into a Mask.
	ReservedCPUs   string `toml:"reserved_cpus"`
	StrictReserved bool   `toml:"strict_reserved"` // keep reserved CPUs out of the shared pool too
	// AllowedCPUs is a cpulist, normalised like ReservedCPUs; "" means all
	// online, non-isolated CPUs. Resolve turns it into a Mask.
	AllowedCPUs    string `toml:"allowed_cpus"`
	MinSharedCPUs  int    `toml:"min_shared_cpus"` // ≥ 0
	Memory         string `toml:"memory"`          // MemoryLocal, MemoryAll or MemoryNone
	OnInsufficient string `toml:"on_insufficient"` // InsufficientReject or InsufficientShared
	Annotations    bool   `toml:"annotations"`     // honour numaspread.io/ pod annotations
}

// LogConfig is the [log] section.
type LogConfig struct {
	Level  string `toml:"level"`  // LogDebug, LogInfo, LogWarn or LogError
	Format string `toml:"format"` // LogFormatText or LogFormatJSON
}

// MetricsConfig is the [metrics] section.
type MetricsConfig struct {
	// Address is the host:port of the Prometheus endpoint; "" turns it off.
	Address string `toml:"address"`
}

// origin records where a Config came from, so that errors found later (by
// Resolve, against the machine) can still point at the file and line.
type origin struct {
	source string         // file name or ConfigureSource; "" for Default()
	lines  map[string]int // "policy.reserved_cpus" → line; a map also makes Config non-comparable
}

// Default returns the built-in configuration, the one a missing default file
// means. It matches the commented sample deploy/config.toml (a test keeps them equal).
func Default() Config {
	return Config{
		NRI: NRIConfig{
			Socket:      "/var/run/nri/nri.sock",
			PluginName:  "numaspread",
			PluginIndex: "90",
		},
		Topology: TopologyConfig{Sysfs: "/sys"},
		Policy: PolicyConfig{
			Mode:           ModeDistributed,
			Spread:         SpreadAll,
			MaxNUMANodes:   0,
			FullCores:      FullCoresPrefer,
			ReservedCPUs:   "",
			StrictReserved: false,
			AllowedCPUs:    "",
			MinSharedCPUs:  1,
			Memory:         MemoryLocal,
			OnInsufficient: InsufficientReject,
			Annotations:    true,
		},
		Log:     LogConfig{Level: LogInfo, Format: LogFormatText},
		Metrics: MetricsConfig{Address: ""},
	}
}

// Source returns the name the configuration was parsed from (a file name or
// ConfigureSource), or "" for Default().
func (c Config) Source() string { return c.origin.source }

// Line returns the line of the file on which key ("policy.reserved_cpus") was
// written, or 0 when the key was not written (it has its default) or the
// Config was not parsed. The plugin can use it to point its own messages at
// the file.
func (c Config) Line(key string) int { return c.origin.lines[key] }

// Load reads and parses the configuration file at path. A missing file is
// an error only when mustExist is set (the path was given explicitly);
// otherwise it means the built-in defaults.
func Load(path string, mustExist bool) (Config, error) {
	data, err := ReadFile(path)
	if err != nil {
		if !mustExist && errors.Is(err, fs.ErrNotExist) {
			return Default(), nil
		}
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// ReadFile reads the configuration file at path for Parse, bounded: it
// reads one byte past the most Parse accepts, so that Parse can tell a
// file that is too large (or a path such as /dev/zero) from one that just
// fits. Its errors are the os package's, unwrapped.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxSize+1))
}

// Error is one problem with a configuration: a TOML syntax error, an unknown
// key, a value of the wrong type or outside its allowed values, or (from
// Resolve) a CPU list that does not fit the machine. Parse and Resolve return
// every problem they find, joined with errors.Join; errors.As finds the first.
type Error struct {
	Source string // file name or ConfigureSource; "" when the Config was not parsed
	Line   int    // 1-based; 0 when unknown (e.g. a key left at its default)
	Key    string // "policy.spread"; "" when no key is known (e.g. a syntax error in a [table] header)
	Msg    string
}

// Error formats the problem as "file:line: key: message", leaving out the
// parts that are unknown.
func (e *Error) Error() string {
	var sb strings.Builder
	if e.Source != "" {
		sb.WriteString(e.Source)
		if e.Line > 0 {
			sb.WriteString(":" + strconv.Itoa(e.Line))
		}
		sb.WriteString(": ")
	} else if e.Line > 0 {
		sb.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Key != "" {
		sb.WriteString(e.Key + ": ")
	}
	sb.WriteString(e.Msg)
	return sb.String()
}
