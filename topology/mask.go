package topology

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// Mask is a set of CPU ids stored as a bitset. It is the representation the
// policy computes with: set operations on a 4096-CPU machine touch 64 words.
//
// The zero Mask is the empty set. Methods that return a Mask never modify
// their receiver or arguments; the *InPlace methods and Set/Clear do, and
// grow the receiver as needed.
type Mask struct {
	words []uint64
}

// NewMask returns a Mask holding the given CPU ids.
func NewMask(cpus ...int) Mask {
	var m Mask
	for _, c := range cpus {
		m.Set(c)
	}
	return m
}

// NewMaskRange returns a Mask holding first..last (inclusive), set a word
// at a time; it is empty when last < first. Negative ids are ignored.
func NewMaskRange(first, last int) Mask {
	var m Mask
	first = max(first, 0)
	if last >= first {
		m.setRange(first, last)
	}
	return m
}

// MaskWithCapacity returns an empty Mask that can hold ids below n without
// growing, so that filling it in a loop does not allocate.
func MaskWithCapacity(n int) Mask {
	return Mask{words: make([]uint64, 0, (n+63)/64)}
}

// Clone returns an independent copy of m.
func (m Mask) Clone() Mask {
	if len(m.words) == 0 {
		return Mask{}
	}
	return Mask{words: append([]uint64(nil), m.words...)}
}

func (m *Mask) grow(word int) {
	for len(m.words) <= word {
		m.words = append(m.words, 0)
	}
}

// Set adds cpu to m. Negative ids are ignored.
func (m *Mask) Set(cpu int) {
	if cpu < 0 {
		return
	}
	w := cpu >> 6
	m.grow(w)
	m.words[w] |= 1 << (uint(cpu) & 63)
}

// Clear removes cpu from m.
func (m *Mask) Clear(cpu int) {
	w := cpu >> 6
	if cpu < 0 || w >= len(m.words) {
		return
	}
	m.words[w] &^= 1 << (uint(cpu) & 63)
}

// Has reports whether cpu is in m.
func (m Mask) Has(cpu int) bool {
	w := cpu >> 6
	if cpu < 0 || w >= len(m.words) {
		return false
	}
	return m.words[w]&(1<<(uint(cpu)&63)) != 0
}

// Count returns the number of CPUs in m.
func (m Mask) Count() int {
	n := 0
	for _, w := range m.words {
		n += bits.OnesCount64(w)
	}
	return n
}

// IsEmpty reports whether m holds no CPU.
func (m Mask) IsEmpty() bool {
	for _, w := range m.words {
		if w != 0 {
			return false
		}
	}
	return true
}

// Equals reports whether m and o hold the same CPUs.
func (m Mask) Equals(o Mask) bool {
	a, b := m.words, o.words
	if len(a) < len(b) {
		a, b = b, a
	}
	for i := range a {
		var bw uint64
		if i < len(b) {
			bw = b[i]
		}
		if a[i] != bw {
			return false
		}
	}
	return true
}

// IsSubsetOf reports whether every CPU of m is in o.
func (m Mask) IsSubsetOf(o Mask) bool {
	for i, w := range m.words {
		var ow uint64
		if i < len(o.words) {
			ow = o.words[i]
		}
		if w&^ow != 0 {
			return false
		}
	}
	return true
}

// Intersects reports whether m and o share a CPU.
func (m Mask) Intersects(o Mask) bool {
	n := min(len(m.words), len(o.words))
	for i := 0; i < n; i++ {
		if m.words[i]&o.words[i] != 0 {
			return true
		}
	}
	return false
}

// Union returns m ∪ o.
func (m Mask) Union(o Mask) Mask {
	r := m.Clone()
	r.UnionInPlace(o)
	return r
}

// Intersection returns m ∩ o.
func (m Mask) Intersection(o Mask) Mask {
	r := m.Clone()
	r.IntersectInPlace(o)
	return r
}

// Difference returns m − o.
func (m Mask) Difference(o Mask) Mask {
	r := m.Clone()
	r.SubtractInPlace(o)
	return r
}

// UnionInPlace sets m to m ∪ o.
func (m *Mask) UnionInPlace(o Mask) {
	if len(o.words) > 0 {
		m.grow(len(o.words) - 1)
	}
	for i, w := range o.words {
		m.words[i] |= w
	}
}

// IntersectInPlace sets m to m ∩ o.
func (m *Mask) IntersectInPlace(o Mask) {
	for i := range m.words {
		if i < len(o.words) {
			m.words[i] &= o.words[i]
		} else {
			m.words[i] = 0
		}
	}
}

// SubtractInPlace sets m to m − o.
func (m *Mask) SubtractInPlace(o Mask) {
	n := min(len(m.words), len(o.words))
	for i := 0; i < n; i++ {
		m.words[i] &^= o.words[i]
	}
}

// CountAnd returns |m ∩ o| without building the intersection.
func (m Mask) CountAnd(o Mask) int {
	n, c := min(len(m.words), len(o.words)), 0
	for i := 0; i < n; i++ {
		c += bits.OnesCount64(m.words[i] & o.words[i])
	}
	return c
}

// ForEach calls fn for every CPU of m in ascending order until fn returns false.
func (m Mask) ForEach(fn func(cpu int) bool) {
	for i, w := range m.words {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			if !fn(i<<6 | b) {
				return
			}
			w &= w - 1
		}
	}
}

// Last returns the highest CPU of m, or -1 when m is empty.
func (m Mask) Last() int {
	for i := len(m.words) - 1; i >= 0; i-- {
		if w := m.words[i]; w != 0 {
			return i<<6 | (63 - bits.LeadingZeros64(w))
		}
	}
	return -1
}

// Slice returns the CPUs of m in ascending order.
func (m Mask) Slice() []int {
	out := make([]int, 0, m.Count())
	m.ForEach(func(c int) bool { out = append(out, c); return true })
	return out
}

// First returns the lowest CPU of m, or -1 when m is empty.
func (m Mask) First() int {
	for i, w := range m.words {
		if w != 0 {
			return i<<6 | bits.TrailingZeros64(w)
		}
	}
	return -1
}

// String formats m as a Linux cpulist ("0-3,8,10-11"); the empty set is "".
func (m Mask) String() string {
	var sb strings.Builder
	start, prev := -1, -2
	flush := func() {
		if start < 0 {
			return
		}
		if sb.Len() > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.Itoa(start))
		if prev > start {
			sb.WriteByte('-')
			sb.WriteString(strconv.Itoa(prev))
		}
	}
	m.ForEach(func(c int) bool {
		if c != prev+1 {
			flush()
			start = c
		}
		prev = c
		return true
	})
	flush()
	return sb.String()
}

// MaxCPUID bounds the ids ParseMask accepts, so that a hostile or corrupt
// cpulist cannot make us allocate gigabytes. Linux's NR_CPUS tops out at 8192.
const MaxCPUID = 1 << 16

// ParseMask parses a Linux cpulist such as "0-3,8,10-11" (whitespace around
// the list and a trailing newline are allowed; the empty string is the empty set).
func ParseMask(s string) (Mask, error) {
	var m Mask
	s = strings.TrimSpace(s)
	if s == "" {
		return m, nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := parseCPUID(lo)
		if err != nil {
			return Mask{}, fmt.Errorf("invalid cpulist %q: %w", s, err)
		}
		last := first
		if isRange {
			if last, err = parseCPUID(hi); err != nil {
				return Mask{}, fmt.Errorf("invalid cpulist %q: %w", s, err)
			}
			if last < first {
				return Mask{}, fmt.Errorf("invalid cpulist %q: range %q is reversed", s, part)
			}
		}
		m.setRange(first, last)
	}
	return m, nil
}

// setRange adds first..last (inclusive) a word at a time, so that a
// hostile cpulist of wide, repeated ranges costs words, not CPUs.
func (m *Mask) setRange(first, last int) {
	m.grow(last >> 6)
	for w := first >> 6; w <= last>>6; w++ {
		lo, hi := max(first, w<<6)&63, min(last, w<<6|63)&63
		m.words[w] |= (^uint64(0) >> (63 - hi)) &^ (1<<lo - 1)
	}
}

func parseCPUID(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("empty CPU id")
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("CPU id %q is not a non-negative integer", s)
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil || v >= MaxCPUID {
		return 0, fmt.Errorf("CPU id %q is out of range (max %d)", s, MaxCPUID-1)
	}
	return v, nil
}

// MustParseMask is ParseMask for constants in tests and examples; it panics on error.
func MustParseMask(s string) Mask {
	m, err := ParseMask(s)
	if err != nil {
		panic(err)
	}
	return m
}
