package config

import (
	"fmt"
	"strings"

	"github.com/BurntSushi/toml"
)

// syntaxError turns the TOML parser's error into an *Error. When the error is
// on a line that starts with `key =`, it also names that key with its
// section, and for an unquoted word where a string key is expected it shows
// the line with quotes.
//
// The key is worked out from the text, but not by a hand-written TOML
// scanner (see lineFinder for why): the real parser re-reads the text that
// precedes the error line, which tells whether that line starts a new
// statement (it does not inside a multi-line string, array or inline table)
// and which [table] is current there; only the key at the start of the line is
// cut out by hand, and the parser decodes it too. The answer must then agree
// with the key the parser was reading when it failed (ParseError.LastKey).
// Whenever one of these steps fails, the error names no key rather than a
// wrong one.
func syntaxError(name, text string, pe toml.ParseError) *Error {
	e := &Error{Source: name, Line: pe.Position.Line, Msg: "invalid TOML: " + pe.Message}
	lineText, start, ok := lineAt(text, e.Line)
	if !ok {
		return e
	}
	keyText, rest, ok := splitKeyLine(lineText)
	if !ok {
		return e
	}
	parts := decodeKey(keyText)
	if parts == nil {
		return e
	}
	section, ok := sectionAt(text[:start])
	if !ok {
		return e
	}
	full := append(section, parts...)
	display, ok := matchLastKey(pe.LastKey, section, full, rest)
	if !ok {
		return e
	}
	e.Key = display
	if len(full) == 2 {
		if f := lookup(full[0], full[1]); f != nil && f.kind == kindString {
			e.Msg += quoteStringHint(keyText, rest)
		}
	}
	return e
}

// lineAt returns line n (1-based) of text without its line ending, and the
// offset at which it starts.
func lineAt(text string, n int) (line string, start int, ok bool) {
	if n < 1 {
		return "", 0, false
	}
	for range n - 1 {
		i := strings.IndexByte(text[start:], '\n')
		if i < 0 {
			return "", 0, false
		}
		start += i + 1
	}
	line = text[start:]
	if i := strings.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	return strings.TrimSuffix(line, "\r"), start, true
}

// splitKeyLine cuts a line of the form `key = rest` into the key as written
// (bare, "quoted" or 'literal' parts joined by dots) and what follows the
// '='. It only finds where the key ends; decodeKey checks that it is one.
func splitKeyLine(line string) (keyText, rest string, ok bool) {
	i := skipBlank(line, 0)
	for {
		if i >= len(line) {
			return "", "", false
		}
		switch line[i] {
		case '"':
			j := i + 1
			for j < len(line) && line[j] != '"' {
				if line[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(line) {
				return "", "", false
			}
			i = j + 1
		case '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return "", "", false
			}
			i += j + 2
		default:
			j := i
			for j < len(line) && isKeyByte(line[j]) {
				j++
			}
			if j == i {
				return "", "", false // '[', '#', '=', a blank line...
			}
			i = j
		}
		i = skipBlank(line, i)
		if i < len(line) && line[i] == '.' {
			i = skipBlank(line, i+1)
			continue
		}
		break
	}
	if i >= len(line) || line[i] != '=' {
		return "", "", false
	}
	return strings.TrimSpace(line[:i]), line[i+1:], true
}

func skipBlank(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// isKeyByte reports whether b can be part of a bare key: ASCII letters,
// digits, '_' and '-', and any byte of a non-ASCII character (TOML 1.1
// allows some; decodeKey has the parser decide).
func isKeyByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '-' || b >= 0x80
}

// decodeKey has the TOML parser read keyText as a key and returns its parts,
// or nil if it is not a key.
func decodeKey(keyText string) toml.Key {
	var m map[string]any
	md, err := toml.Decode(keyText+" = 0\n", &m)
	if err != nil {
		return nil
	}
	keys := md.Keys()
	if len(keys) == 0 || len(keys[len(keys)-1]) == 0 {
		return nil
	}
	return keys[len(keys)-1]
}

// probeLine is the line sectionAt appends to find the current table, and
// probeKey its key; no configuration has it (it contains a NUL character).
const (
	probeLine = `"numaspread\u0000probe" = 0` + "\n"
	probeKey  = "numaspread\x00probe"
)

// sectionAt returns the table that a key written after prefix belongs to
// (nil at the top level). It fails when prefix does not parse on its own:
// the next line is then inside a multi-line string, array or inline table.
func sectionAt(prefix string) (toml.Key, bool) {
	var m map[string]any
	md, err := toml.Decode(prefix+probeLine, &m)
	if err != nil {
		return nil, false
	}
	keys := md.Keys()
	if len(keys) == 0 {
		return nil, false
	}
	last := keys[len(keys)-1]
	if len(last) == 0 || last[len(last)-1] != probeKey {
		return nil, false
	}
	return append(toml.Key(nil), last[:len(last)-1]...), true
}

// matchLastKey checks the key worked out from the text against lastKey, the
// key the parser was reading when it failed, and returns the key to show.
// lastKey is the full key (the error is in its value), its table (the error
// follows a complete value on the line), or, in an inline table, a key inside
// the full key; that one is shown when it is a single bare key.
func matchLastKey(lastKey string, section, full toml.Key, rest string) (string, bool) {
	want := parserKeyString(full)
	switch {
	case lastKey == want, lastKey == section.String():
		return full.String(), true
	case strings.HasPrefix(lastKey, want+"."):
		inner := lastKey[len(want)+1:]
		if strings.HasPrefix(strings.TrimLeft(rest, " \t"), "{") && isBareKey(inner) {
			return append(full[:len(full):len(full)], inner).String(), true
		}
		return full.String(), true
	}
	return "", false
}

// parserKeyString spells k the way ParseError.LastKey does: the table
// quoted as needed, the last part as is.
func parserKeyString(k toml.Key) string {
	if len(k) == 1 {
		return k[0]
	}
	return k[:len(k)-1].String() + "." + k[len(k)-1]
}

func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if !isKeyByte(s[i]) || s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// quoteStringHint returns `; quote strings: key = "value"` when rest (what
// follows the '=' of a string key) is one unquoted word that is not a TOML
// value but is a string in quotes, such as distributed, 0,1 or /run/nri.sock.
func quoteStringHint(keyText, rest string) string {
	v := rest
	if i := strings.IndexByte(v, '#'); i >= 0 {
		if i > 0 && v[i-1] != ' ' && v[i-1] != '\t' {
			return "" // a '#' inside the word: is the rest a comment?
		}
		v = v[:i]
	}
	v = strings.TrimSpace(v)
	if v == "" || strings.ContainsAny(v, "\"'\\[]{}") {
		return ""
	}
	for _, r := range v {
		if r <= ' ' || r == 0x7f {
			return "" // blanks or control characters: not one word
		}
	}
	var m map[string]any
	if _, err := toml.Decode("v = "+v, &m); err == nil {
		return ""
	}
	if _, err := toml.Decode(`v = "`+v+`"`, &m); err != nil {
		return ""
	}
	return fmt.Sprintf(`; quote strings: %s = "%s"`, keyText, v)
}
