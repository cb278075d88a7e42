package config

import (
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// lineFinder finds the line on which a key was written.
//
// BurntSushi/toml v1.6 records every key's position but has no method that
// returns it. It does put the position into the ParseError it returns when an
// Unmarshaler fails. So to learn where key a.b is, we decode the text once more
// into a struct that has only the field a.b, of a type whose UnmarshalTOML
// always fails, and read the position off the error. This reuses the real
// parser's positions instead of re-lexing TOML ourselves (multi-line strings,
// inline tables and quoted keys make a hand-written scanner easy to get
// wrong). Each lookup costs one parse of the text; Parse does at most one per
// schema key plus one per reported problem, on text of at most maxSize.
//
// The parser records a value's position where the value ends, so for a
// multi-line string the line is that of its closing quotes.
type lineFinder struct {
	text string
	raw  map[string]any // the decoded text, to build the probe's nested tables
}

// line returns the line of k, or of its nearest prefix with a known line
// (tables that are only implied by a dotted key have none), or 0.
func (lf *lineFinder) line(k toml.Key) int {
	for n := len(k); n > 0; n-- {
		if l := lf.probe(k[:n]); l > 0 {
			return l
		}
	}
	return 0
}

// errProbe is the error the probe's UnmarshalTOML returns.
var errProbe = errors.New("config: position probe")

// probeField is the type of the one field a probe decodes into.
type probeField struct{}

// UnmarshalTOML fails, so that the decoder reports the position of the key
// being decoded.
func (probeField) UnmarshalTOML(any) error { return errProbe }

var (
	probeFieldType = reflect.TypeFor[probeField]()
	anyType        = reflect.TypeFor[any]()
)

func (lf *lineFinder) probe(k toml.Key) int {
	t := probeType(k, lf.raw)
	if t == nil {
		return 0
	}
	_, err := toml.Decode(lf.text, reflect.New(t).Interface())
	var pe toml.ParseError
	// ParseError does not unwrap to errProbe; its Message is errProbe's text.
	if !errors.As(err, &pe) || pe.Message != errProbe.Error() || pe.LastKey != k.String() {
		return 0
	}
	return pe.Position.Line
}

// probeType builds struct{ K0 struct{ K1 ... probeField } } along the path k
// through the decoded tables data, or returns nil when the path cannot be
// expressed (an array of tables on the way, a key that a toml struct tag
// cannot spell).
//
// The decoder falls back to a case-insensitive match when no field matches a
// key exactly, so a probe for "spread" would also catch "Spread". To keep it
// to the exact key, each level also gets a field of type any for every key
// that differs from the path's only in case; exact matches win.
func probeType(k []string, data map[string]any) reflect.Type {
	name := k[0]
	if name == "" || name == "-" || strings.Contains(name, ",") {
		return nil
	}
	var t reflect.Type
	if len(k) == 1 {
		t = probeFieldType
	} else {
		sub, ok := data[name].(map[string]any)
		if !ok {
			return nil
		}
		if t = probeType(k[1:], sub); t == nil {
			return nil
		}
	}
	var twins []string
	for other := range data {
		if other != name && strings.EqualFold(other, name) {
			twins = append(twins, other)
		}
	}
	slices.Sort(twins) // map order is random; a stable order keeps reflect.StructOf's type cache small
	fields := []reflect.StructField{{Name: "F0", Type: t, Tag: tomlTag(name)}}
	for i, tw := range twins {
		// A twin differs from name only in case, so it has no comma either
		// and can be spelt in a tag.
		fields = append(fields, reflect.StructField{Name: "F" + strconv.Itoa(i+1), Type: anyType, Tag: tomlTag(tw)})
	}
	return reflect.StructOf(fields)
}

// tomlTag is the struct tag `toml:"name"`, quoted so that any key survives.
func tomlTag(name string) reflect.StructTag {
	return reflect.StructTag("toml:" + strconv.Quote(name))
}
