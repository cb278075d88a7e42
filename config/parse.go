package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// maxErrors bounds how many problems Parse reports; past it, one more error
// says how many were left out. Each reported problem re-reads the text to
// find its line, and nobody reads fifty errors anyway.
const maxErrors = 20

// Parse reads a configuration from TOML text. name is the file name (or
// ConfigureSource) that error messages start with. Keys that are not written
// keep their defaults, so empty text gives Default().
//
// Parsing is strict: a TOML syntax error, an unknown section or key (names
// are case-sensitive), a value of the wrong TOML type, or a value outside the
// key's allowed values are errors. Each is an *Error that names the file,
// the line and the key, for example
//
//	/etc/numaspread/config.toml:14: policy.spread: "most" is not one of all, minimal
//
// Parse reports every problem it finds (the first 20, then a count), joined with
// errors.Join in file order, so that one edit can fix them all. A syntax
// error stops parsing and is reported alone; it names the key when it is on
// a key = value line:
//
//	/etc/numaspread/config.toml:3: policy.mode: invalid TOML: expected value but found "packed" instead; quote strings: mode = "packed"
//
// Parse checks cpulists for syntax only; Resolve checks them against the machine.
func Parse(name string, data []byte) (Config, error) {
	if name == "" {
		name = "config"
	}
	if len(data) > maxSize {
		return Config{}, &Error{Source: name, Msg: fmt.Sprintf("is larger than %d bytes, the most a configuration may have", maxSize)}
	}
	text := string(data)

	// Decoding into a generic map rather than into Config is deliberate: the
	// TOML decoder matches struct fields case-insensitively and stops at the
	// first type error, while walking the map against the schema gives exact
	// key names, every error, and messages in our own terms.
	var raw map[string]any
	md, err := toml.Decode(text, &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return Config{}, syntaxError(name, text, pe)
		}
		return Config{}, &Error{Source: name, Msg: "invalid TOML: " + err.Error()}
	}

	p := &parser{
		cfg:   Default(),
		lines: lineFinder{text: text, raw: raw},
		done:  map[string]bool{},
	}
	p.cfg.origin = origin{source: name, lines: map[string]int{}}
	for _, k := range md.Keys() {
		p.key(k)
	}
	if len(p.errs) == 0 {
		return p.cfg, nil
	}
	if p.dropped > 0 {
		p.errs = append(p.errs, &Error{Source: name, Msg: fmt.Sprintf("%d more problems not shown", p.dropped)})
	}
	return Config{}, errors.Join(p.errs...)
}

// parser holds the state of one Parse.
type parser struct {
	cfg     Config
	lines   lineFinder
	done    map[string]bool // sections and keys already checked (Keys lists a table's keys after it)
	errs    []error
	dropped int
}

// fail records a problem with key k, found at (or under) the written key at.
func (p *parser) fail(k string, at toml.Key, format string, args ...any) {
	if len(p.errs) >= maxErrors {
		p.dropped++
		return
	}
	p.errs = append(p.errs, &Error{
		Source: p.cfg.origin.source,
		Line:   p.lines.line(at),
		Key:    k,
		Msg:    fmt.Sprintf(format, args...),
	})
}

// key checks one key as toml.MetaData.Keys lists it: a [table] header, a
// key = value, or a dotted key of any depth. Problems are reported at the
// section (depth 1) or the section's key (depth 2); anything deeper is
// reported once, at its depth-2 prefix.
func (p *parser) key(k toml.Key) {
	secName := k[0]
	secKeys := keysOf(secName)
	if secKeys == nil {
		if p.once(k[:1]) {
			p.unknownTopLevel(k)
		}
		return
	}
	sec, isTable := p.lines.raw[secName].(map[string]any)
	if len(k) == 1 || !isTable {
		if p.once(k[:1]) && !isTable {
			p.fail(secName, k, "got %s, want a table: write [%s] and its keys below it", describe(p.lines.raw[secName]), secName)
		}
		return
	}
	if !p.once(k[:2]) {
		return
	}
	f := lookup(secName, k[1])
	if f == nil {
		p.fail(k[:2].String(), k, "unknown key%s (%s keys: %s)", suggest(k[1], secKeys), secName, strings.Join(secKeys, ", "))
		return
	}
	if p.set(f, sec[k[1]], k) {
		p.cfg.origin.lines[f.key()] = p.lines.line(k)
	}
}

// once reports whether prefix is seen for the first time, and marks it.
func (p *parser) once(prefix toml.Key) bool {
	s := prefix.String()
	if p.done[s] {
		return false
	}
	p.done[s] = true
	return true
}

// unknownTopLevel reports a section, or a key outside any section, that the
// file does not have. A key that exists in some section most likely lost its
// [section] header, so say which.
func (p *parser) unknownTopLevel(k toml.Key) {
	name := k[0]
	all := sections()
	switch p.lines.raw[name].(type) {
	case map[string]any, []map[string]any:
		p.fail(name, k, "unknown section%s (sections: %s)", suggest(name, all), strings.Join(all, ", "))
	default:
		for _, s := range all {
			if lookup(s, name) != nil {
				p.fail(name, k, "keys must be inside a section: did you mean %s under [%s]?", name, s)
				return
			}
		}
		p.fail(name, k, "unknown key outside any section (sections: %s)", strings.Join(all, ", "))
	}
}

// set checks v against f and stores it in p.cfg; it reports whether v was good.
func (p *parser) set(f *field, v any, at toml.Key) bool {
	key := f.key()
	switch f.kind {
	case kindString:
		s, ok := v.(string)
		if !ok {
			p.fail(key, at, "got %s, want a string%s", describe(v), quoteHint(v))
			return false
		}
		if f.choices != nil && !slices.Contains(f.choices, s) {
			p.fail(key, at, "%q is not one of %s", s, strings.Join(f.choices, ", "))
			return false
		}
		if f.check != nil {
			var err error
			if s, err = f.check(s); err != nil {
				p.fail(key, at, "%v", err)
				return false
			}
		}
		*f.str(&p.cfg) = s
	case kindInt:
		n, ok := v.(int64)
		if !ok {
			p.fail(key, at, "got %s, want an integer%s", describe(v), unquoteHint(v, func(s string) bool {
				_, err := strconv.ParseInt(s, 10, 64)
				return err == nil
			}))
			return false
		}
		if n < int64(f.min) || n > int64(f.max) {
			p.fail(key, at, "%d is out of range (%d to %d)", n, f.min, f.max)
			return false
		}
		*f.num(&p.cfg) = int(n)
	case kindBool:
		b, ok := v.(bool)
		if !ok {
			p.fail(key, at, "got %s, want true or false%s", describe(v), unquoteHint(v, func(s string) bool {
				return s == "true" || s == "false"
			}))
			return false
		}
		*f.flag(&p.cfg) = b
	}
	return true
}

// describe names the TOML type of a decoded value, with the value when it is short.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		if len(v) > 40 {
			return "a string"
		}
		return fmt.Sprintf("a string (%q)", v)
	case int64:
		return fmt.Sprintf("an integer (%d)", v)
	case float64:
		return fmt.Sprintf("a float (%v)", v)
	case bool:
		return fmt.Sprintf("a boolean (%v)", v)
	case time.Time:
		return "a date/time"
	case []map[string]any:
		return "an array of tables"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

// quoteHint helps with the common slip of an unquoted number or boolean
// where a string is wanted (plugin_index = 90).
func quoteHint(v any) string {
	switch v := v.(type) {
	case int64, bool:
		return fmt.Sprintf(`: write it in quotes, "%v"`, v)
	}
	return ""
}

// unquoteHint helps with the reverse slip: a quoted number or boolean.
func unquoteHint(v any, parses func(string) bool) string {
	if s, ok := v.(string); ok && parses(s) {
		return fmt.Sprintf(": write %s without quotes", s)
	}
	return ""
}

// suggest returns `; did you mean "x"?` for the candidate closest to name
// (same letters in another case, or a few edits away), or "".
func suggest(name string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		// A short name that is two edits away is a different word, not a
		// typo ("foo" is not "log"), so allow one edit per three letters.
		d := editDistance(strings.ToLower(name), c)
		if d < bestDist && 3*d <= len(c) {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// editDistance is the Levenshtein distance of a and b, in bytes (key names are ASCII).
func editDistance(a, b string) int {
	if len(a) > 64 {
		return len(a) // not a typo of any key; spare the quadratic work
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
