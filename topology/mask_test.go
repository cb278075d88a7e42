package topology

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseMask(t *testing.T) {
	tests := []struct {
		in, want string // want "" with err set means an error
		err      string
	}{
		{in: "", want: ""},
		{in: "\n", want: ""},
		{in: "0", want: "0"},
		{in: "0-3\n", want: "0-3"},
		{in: " 0-3 , 8,10-11 ", want: "0-3,8,10-11"},
		{in: "3,1,2", want: "1-3"},
		{in: "5-5", want: "5"},
		{in: "0-2,1-4", want: "0-4"},
		{in: "63-65", want: "63-65"},
		{in: "65535", want: "65535"},
		{in: "3-1", err: "reversed"},
		{in: "1,,2", err: "empty CPU id"},
		{in: "-1", err: "empty CPU id"},
		{in: "1-", err: "empty CPU id"},
		{in: "x", err: "not a non-negative integer"},
		{in: "+1", err: "not a non-negative integer"},
		{in: "0 - 3", err: "not a non-negative integer"},
		{in: "65536", err: "out of range"},
		{in: "99999999999999999999", err: "out of range"},
	}
	for _, tt := range tests {
		m, err := ParseMask(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseMask(%q) = %s, %v; want error containing %q", tt.in, m, err, tt.err)
			}
			continue
		}
		if err != nil || m.String() != tt.want {
			t.Errorf("ParseMask(%q) = %q, %v; want %q", tt.in, m.String(), err, tt.want)
		}
	}
}

func TestMaskOps(t *testing.T) {
	a := MustParseMask("0-3,64,130")
	b := MustParseMask("2-5")
	aCopy, bCopy := a.Clone(), b.Clone()

	for _, tt := range []struct {
		name string
		got  Mask
		want string
	}{
		{"union", a.Union(b), "0-5,64,130"},
		{"intersection", a.Intersection(b), "2-3"},
		{"difference", a.Difference(b), "0-1,64,130"},
		{"reverse difference", b.Difference(a), "4-5"},
		{"empty union", Mask{}.Union(b), "2-5"},
		{"empty intersection", b.Intersection(Mask{}), ""},
	} {
		if got := tt.got.String(); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, got, tt.want)
		}
	}
	if !a.Equals(aCopy) || !b.Equals(bCopy) {
		t.Fatalf("set operations modified their operands: a=%s b=%s", a, b)
	}
	if got, want := a.Count(), 6; got != want {
		t.Errorf("Count = %d, want %d", got, want)
	}
	if got := a.CountAnd(b); got != 2 {
		t.Errorf("CountAnd = %d, want 2", got)
	}
	if !a.Intersects(b) || a.Intersects(MustParseMask("4-5,200")) {
		t.Errorf("Intersects is wrong")
	}
	if !MustParseMask("2-3").IsSubsetOf(a) || b.IsSubsetOf(a) || !(Mask{}).IsSubsetOf(a) {
		t.Errorf("IsSubsetOf is wrong")
	}
	if a.First() != 0 || a.Last() != 130 || (Mask{}).First() != -1 || (Mask{}).Last() != -1 {
		t.Errorf("First/Last = %d/%d", a.First(), a.Last())
	}
	if got := a.Slice(); len(got) != 6 || got[4] != 64 || got[5] != 130 {
		t.Errorf("Slice = %v", got)
	}
}

func TestMaskSetClear(t *testing.T) {
	var m Mask
	if !m.IsEmpty() || m.String() != "" || m.Has(0) || m.Has(-1) {
		t.Fatalf("zero Mask is not empty")
	}
	m.Set(200)
	m.Set(-5) // ignored
	m.Set(3)
	if m.String() != "3,200" || !m.Has(200) || m.Has(199) || m.Has(1<<20) {
		t.Fatalf("after Set: %s", m)
	}
	m.Clear(200)
	m.Clear(1 << 20) // beyond the words: no-op
	m.Clear(-1)
	if m.String() != "3" {
		t.Fatalf("after Clear: %s", m)
	}
	// Equality ignores trailing zero words left by Clear.
	if !m.Equals(NewMask(3)) || !NewMask(3).Equals(m) {
		t.Errorf("Equals depends on capacity")
	}
	m.Clear(3)
	if !m.IsEmpty() || !m.Equals(Mask{}) {
		t.Errorf("cleared Mask is not empty: %s", m)
	}
}

func TestMaskInPlace(t *testing.T) {
	m := MustParseMask("0-7")
	m.SubtractInPlace(MustParseMask("2-3,100"))
	m.UnionInPlace(MustParseMask("70"))
	m.IntersectInPlace(MustParseMask("0-2,6-70"))
	if got := m.String(); got != "0-1,6-7,70" {
		t.Errorf("in-place ops = %q", got)
	}
	c := m.Clone()
	c.Set(5)
	if m.Has(5) {
		t.Errorf("Clone shares storage")
	}
}

func TestMaskForEachStops(t *testing.T) {
	var seen []int
	MustParseMask("1,5,64,65").ForEach(func(c int) bool {
		seen = append(seen, c)
		return c < 64
	})
	if len(seen) != 3 || seen[2] != 64 {
		t.Errorf("ForEach visited %v, want [1 5 64]", seen)
	}
}

func TestMaskWithCapacityDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(10, func() {
		m := MaskWithCapacity(4096)
		for c := 0; c < 4096; c += 3 {
			m.Set(c)
		}
	})
	if allocs > 1 {
		t.Errorf("filling a MaskWithCapacity allocated %v times, want 1", allocs)
	}
}

func FuzzParseMask(f *testing.F) {
	for _, s := range []string{"", "0", "0-3,8,10-11", "1,,2", "3-1", "65535", "0-65535", " 4 ,5\n", "63-64,127-128"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMask(s)
		if err != nil {
			return
		}
		if m.Last() >= MaxCPUID {
			t.Fatalf("ParseMask(%q) accepted CPU %d", s, m.Last())
		}
		again, err := ParseMask(m.String())
		if err != nil {
			t.Fatalf("ParseMask(%q).String() = %q does not parse: %v", s, m.String(), err)
		}
		if !again.Equals(m) {
			t.Fatalf("round trip of %q: %q != %q", s, again, m)
		}
		if again.Count() != m.Count() {
			t.Fatalf("round trip of %q changed the count", s)
		}
	})
}

func TestParseMaskRangesMatchCPUByCPU(t *testing.T) {
	for _, r := range [][2]int{{0, 0}, {0, 63}, {1, 62}, {63, 64}, {60, 130}, {64, 127}, {5, 300}, {4095, 4095}} {
		got := MustParseMask(fmt.Sprintf("%d-%d", r[0], r[1]))
		var want Mask
		for c := r[0]; c <= r[1]; c++ {
			want.Set(c)
		}
		if !got.Equals(want) || got.Count() != r[1]-r[0]+1 {
			t.Errorf("%d-%d parsed as %s", r[0], r[1], got)
		}
	}
}

// BenchmarkParseMaskRepeatedRanges parses the widest range ParseMask accepts
// ("0-65535") 100 times over, comma-separated: the cost of a hostile or
// corrupt cpulist, which setRange keeps to words rather than CPUs.
func BenchmarkParseMaskRepeatedRanges(b *testing.B) {
	s := strings.Repeat("0-65535,", 99) + "0-65535"
	if m, err := ParseMask(s); err != nil || m.Count() != MaxCPUID {
		b.Fatalf("ParseMask: %d CPUs, %v", m.Count(), err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseMask(s); err != nil {
			b.Fatal(err)
		}
	}
}

func TestNewMaskRange(t *testing.T) {
	for _, r := range [][2]int{{0, -1}, {5, 4}, {-3, 2}, {0, 0}, {0, 63}, {60, 130}, {0, 4095}} {
		got := NewMaskRange(r[0], r[1])
		var want Mask
		for c := max(r[0], 0); c <= r[1]; c++ {
			want.Set(c)
		}
		if !got.Equals(want) || got.Count() != want.Count() {
			t.Errorf("NewMaskRange(%d, %d) = %s, want %s", r[0], r[1], got, want)
		}
	}
}
