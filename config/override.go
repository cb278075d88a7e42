package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// With returns c with one key set from a command-line flag's text, checked
// like the same key in the file. key is "section.name", e.g. "nri.socket".
func (c Config) With(key, value string) (Config, error) {
	section, name, _ := strings.Cut(key, ".")
	f := lookup(section, name)
	if f == nil {
		return c, fmt.Errorf("%s: unknown key", key)
	}
	var v any = value
	switch f.kind {
	case kindInt:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return c, fmt.Errorf("%s: %q is not an integer", key, value)
		}
		v = n
	case kindBool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return c, fmt.Errorf("%s: %q is not true or false", key, value)
		}
		v = b
	}
	// set writes only the value (and, on failure, an error naming the
	// source): the copy of c shares c's line map, which it never writes.
	p := &parser{cfg: c}
	p.cfg.origin.source = "command line"
	if !p.set(f, v, nil) {
		return c, errors.Join(p.errs...)
	}
	p.cfg.origin.source = c.origin.source
	return p.cfg, nil
}
