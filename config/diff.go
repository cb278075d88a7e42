package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Equal reports whether c and o configure the same thing. Where the values
// were written (Source, Line) does not count.
func (c Config) Equal(o Config) bool {
	return c.NRI == o.NRI && c.Topology == o.Topology && c.Policy == o.Policy &&
		c.Log == o.Log && c.Metrics == o.Metrics
}

// Diff lists the keys whose values differ between from and to, in file
// order, as "policy.spread: all → minimal", for the log line of a reload.
// It returns nil when the configurations are Equal.
func Diff(from, to Config) []string {
	var out []string
	for i := range schema {
		f := &schema[i]
		a, b := f.value(&from), f.value(&to)
		if a != b {
			out = append(out, fmt.Sprintf("%s: %s → %s", f.key(), show(a), show(b)))
		}
	}
	return out
}

// show formats a value for Diff: strings bare, unless they are empty or
// contain characters that would make the line ambiguous.
func show(v any) string {
	if s, ok := v.(string); ok {
		if s == "" || strings.ContainsAny(s, " \t\n\"→") || !strconv.CanBackquote(s) {
			return strconv.Quote(s)
		}
		return s
	}
	return fmt.Sprint(v)
}
