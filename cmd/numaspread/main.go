// Command numaspread is the numaspread NRI plugin and its tools: run (the
// plugin, the default command), demo, topology, plan, status, check and
// sysfs-dump. `numaspread help` lists them; `numaspread CMD -h` shows a
// command's flags.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/numaspread/numaspread/config"
)

// command is one subcommand. run returns the process exit status.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

// commands in the order `numaspread help` lists them.
var commands = []command{
	{"run", "run the NRI plugin (the default; with no arguments also as a pre-installed plugin)", runPlugin},
	{"demo", "run a built-in scenario against an embedded NRI runtime and draw the result", runDemo},
	{"topology", "print the discovered machine (like numactl --hardware and lscpu -e)", runTopology},
	{"plan", "dry-run one allocation on this (or a captured) machine", runPlan},
	{"status", "draw the running plugin's allocation map (from its [metrics] address)", runStatus},
	{"check", "validate the config and this node before rollout", runCheck},
	{"sysfs-dump", "capture the sysfs files topology discovery reads, as a .tar.gz", runSysfsDump},
}

func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// isHelp reports whether arg asks for help as the flag package understands it.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "--h"
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

// dispatch runs the command args name. With no command (no arguments, or
// flags only) it runs `run`, as DESIGN.md fixes; a lone -h/--help, like
// `numaspread help`, lists the commands instead of showing run's flags.
func dispatch(args []string, stdout, stderr io.Writer) int {
	name := "run"
	switch {
	case len(args) == 1 && isHelp(args[0]):
		usage(stdout)
		return 0
	case len(args) > 0 && !strings.HasPrefix(args[0], "-"):
		name, args = args[0], args[1:]
	}
	if name == "help" {
		if len(args) == 0 {
			usage(stdout)
			return 0
		}
		// numaspread help CMD: CMD's flags.
		name, args = args[0], []string{"-h"}
	}
	cmd, ok := lookup(name)
	if !ok {
		fmt.Fprintf(stderr, "numaspread: unknown command %q\n\n", name)
		usage(stderr)
		return 2
	}
	return cmd.run(args, stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: numaspread [command] [flags]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nWith no command, numaspread runs 'run' with the flags given.")
	fmt.Fprintln(w, "Run 'numaspread COMMAND -h' (or 'numaspread help COMMAND') for a command's flags.")
}

// newFlags returns a FlagSet that reports errors instead of exiting, so
// every command returns its status through dispatch. Its usage message is
// "usage: numaspread NAME [flags]" and the flag defaults; a command may set
// its own.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("numaspread "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s [flags]\n\nflags:\n", fs.Name())
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and returns the exit status to use when parsing
// did not succeed (0 for -h), or -1 to go on. Its messages start with
// "numaspread CMD: " like every other error of the command.
func parseFlags(fs *flag.FlagSet, args []string) int {
	out := fs.Output()
	fs.SetOutput(io.Discard) // the flag package prints errors unprefixed
	err := fs.Parse(args)
	fs.SetOutput(out)
	switch {
	case err == nil && fs.NArg() > 0:
		fmt.Fprintf(out, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return 2
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return 0
	case err != nil:
		fmt.Fprintf(out, "%s: %v\n", fs.Name(), err)
		fs.Usage()
		return 2
	}
	return -1
}

// fail reports an error of command cmd ("numaspread CMD: …") and returns
// exit status 1.
func fail(stderr io.Writer, cmd, format string, args ...any) int {
	return report(stderr, 1, cmd, format, args...)
}

// usageError reports a misuse of command cmd ("numaspread CMD: …") and
// returns exit status 2.
func usageError(stderr io.Writer, cmd, format string, args ...any) int {
	return report(stderr, 2, cmd, format, args...)
}

// report writes "numaspread CMD: …" to stderr and returns status.
func report(stderr io.Writer, status int, cmd, format string, args ...any) int {
	fmt.Fprintf(stderr, "numaspread "+cmd+": "+format+"\n", args...)
	return status
}

// configFlags are the flags that say which configuration a command uses:
// --config, and the flags that override one of its keys (--socket and
// --sysfs for every command that reads it; `run` adds more with override).
type configFlags struct {
	file          string // "" means config.DefaultPath, which may be missing
	socket, sysfs string // "" keeps the file's nri.socket and topology.sysfs
	extra         []configOverride
}

// configOverride is a flag that sets one configuration key when given.
type configOverride struct {
	flag, key string
	value     *string
}

func (c *configFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.file, "config", "", "TOML configuration file (default "+config.DefaultPath+" if it exists)")
	fs.StringVar(&c.socket, "socket", "", "NRI socket of the runtime (overrides nri.socket)")
	fs.StringVar(&c.sysfs, "sysfs", "", "sysfs root or tarball (overrides topology.sysfs)")
}

// override registers --name, which sets the configuration key.
func (c *configFlags) override(fs *flag.FlagSet, name, key, usage string) {
	o := configOverride{flag: name, key: key, value: new(string)}
	fs.StringVar(o.value, name, "", usage+" (overrides "+key+")")
	c.extra = append(c.extra, o)
}

// path returns the configuration file to read and whether it must exist:
// a --config file must, the default one may be missing.
func (c *configFlags) path() (string, bool) {
	if c.file == "" {
		return config.DefaultPath, false
	}
	return c.file, true
}

// apply sets the keys of the flags given on cfg, a configuration read from
// the file (at start, and by `run` at every reload). It applies every flag
// it can and returns the others' errors ("--socket: nri.socket: …"), joined.
func (c *configFlags) apply(cfg config.Config) (config.Config, error) {
	var errs []error
	for _, o := range append([]configOverride{
		{"socket", "nri.socket", &c.socket}, {"sysfs", "topology.sysfs", &c.sysfs},
	}, c.extra...) {
		if *o.value == "" {
			continue
		}
		next, err := cfg.With(o.key, *o.value)
		var ce *config.Error
		if errors.As(err, &ce) {
			e := *ce
			e.Source = "" // "command line": the flag's name says more
			err = &e
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", o.flag, err))
			continue
		}
		cfg = next
	}
	return cfg, errors.Join(errs...)
}

// load reads the configuration file and applies the flags.
func (c *configFlags) load() (config.Config, error) {
	cfg, err := config.Load(c.path())
	if err != nil {
		return cfg, err
	}
	return c.apply(cfg)
}
