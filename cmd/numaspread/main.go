// Command numaspread is the numaspread NRI plugin and its tools: run (the
// plugin, default), topology, plan, demo, status and sysfs-dump.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one subcommand. run returns the process exit status.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{
	"run":      {"run the NRI plugin (the default; with no arguments also as a pre-installed plugin)", runPlugin},
	"topology": {"print the discovered machine (like numactl --hardware and lscpu -e)", runTopology},
	"demo":     {"run a built-in scenario against an embedded NRI runtime and draw the result", runDemo},
	"plan":     {"dry-run one allocation on this (or a captured) machine", runPlan},
	"check":    {"validate the config and this node before rollout", runCheck},

	"status":     {"draw the running plugin's allocation map (from its [metrics] address)", runStatus},
	"sysfs-dump": {"capture the sysfs files topology discovery reads, as a .tar.gz", runSysfsDump},
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	name := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if name == "help" {
		usage(stdout)
		return 0
	}
	cmd, ok := commands[name]
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
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-11s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'numaspread COMMAND -h' for a command's flags.")
}

// newFlags returns a FlagSet that reports errors instead of exiting, so
// every command returns its status through dispatch.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("numaspread "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args and returns the exit status to use when parsing
// did not succeed (0 for -h), or -1 to go on.
func parseFlags(fs *flag.FlagSet, args []string) int {
	err := fs.Parse(args)
	switch {
	case err == nil && fs.NArg() > 0:
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return 2
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		return 2
	}
	return -1
}

func fail(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "numaspread: "+format+"\n", args...)
	return 1
}
