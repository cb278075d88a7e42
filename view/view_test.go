package view

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/numaspread/numaspread/topology"
	"github.com/numaspread/numaspread/topology/synth"
)

func TestWrap(t *testing.T) {
	tests := []struct {
		text   string
		width  int
		indent string
		want   []string
	}{
		{"short", 80, "  ", []string{"short"}},
		{"", 80, "  ", []string{""}},
		{"cpus 0-7,32-39,64-71,96-103", 16, "  ", []string{"cpus 0-7,32-39,", "  64-71,96-103"}},
		{"a b c d e f", 5, "", []string{"a b c", "d e f"}},
		{"abcdefghij", 4, " ", []string{"abcd", " efg", " hij"}},
		{"x, y, z", 3, "", []string{"x,", "y,", "z"}},
	}
	for _, tt := range tests {
		got := Wrap(tt.text, tt.width, tt.indent)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("Wrap(%q, %d) = %q, want %q", tt.text, tt.width, got, tt.want)
		}
		for _, l := range got {
			if utf8.RuneCountInString(l) > tt.width {
				t.Errorf("Wrap(%q, %d): line %q too long", tt.text, tt.width, l)
			}
		}
	}
}

// sampleMap holds a few exclusive containers with long CPU lists and long
// names on topo, the rest in the shared pool.
func sampleMap(topo *topology.Topology, layout Layout, width int) Map {
	m := Map{Topology: topo, Layout: layout, Width: width}
	var held topology.Mask
	for i, n := range topo.Nodes {
		if !n.HasCPUs() {
			continue
		}
		// Every other CPU of each node to one holder: the longest cpulists.
		var cpus topology.Mask
		k := 0
		n.CPUs.ForEach(func(c int) bool {
			if k%2 == 0 && k < 16 {
				cpus.Set(c)
			}
			k++
			return true
		})
		held.UnionInPlace(cpus)
		m.Holders = append(m.Holders, Holder{Name: "a-rather-long-namespace/some-pod-name-0123456789/container-" + string(rune('a'+i%26)), Exclusive: true, CPUs: cpus, Mems: "0"})
	}
	m.Reserved = topology.NewMask(topo.Online.First() + 1) // not held: holders take every other CPU
	m.Shared = topo.Online.Difference(held)
	m.Holders = append(m.Holders, Holder{Name: "default/web/nginx", CPUs: m.Shared}, Holder{Name: "default/logs/fluentbit", CPUs: m.Shared})
	return m
}

// TestEveryLineFits draws every preset in each layout and checks the width.
func TestEveryLineFits(t *testing.T) {
	for _, spec := range synth.Presets() {
		topo := spec.MustTopology()
		for _, layout := range []Layout{LayoutAuto, LayoutDetailed, LayoutCompact} {
			for _, width := range []int{80, 60} {
				var buf bytes.Buffer
				Draw(&buf, sampleMap(topo, layout, width))
				for i, l := range strings.Split(buf.String(), "\n") {
					if n := utf8.RuneCountInString(l); n > width {
						t.Errorf("%s layout %d width %d: line %d is %d columns: %q", spec.Name, layout, width, i+1, n, l)
					}
				}
			}
		}
	}
}

func TestAutoLayout(t *testing.T) {
	var small, big bytes.Buffer
	Draw(&small, sampleMap(synth.FourNode().MustTopology(), LayoutAuto, 0))
	Draw(&big, sampleMap(synth.EightNode512().MustTopology(), LayoutAuto, 0))
	if !strings.Contains(small.String(), "NUMA node 0: [  0 16 |") {
		t.Errorf("FourNode should be detailed:\n%s", small.String())
	}
	if !strings.Contains(big.String(), "NUMA node 0: 64 CPUs, 8 exclusive, 55 free, 1 reserved\n    0 [a. r. a. .. a.") ||
		!strings.Contains(big.String(), "one cell per core") {
		t.Errorf("EightNode512 should be compact:\n%s", big.String())
	}
	if lines := strings.Count(big.String(), "\n"); lines > 60 {
		t.Errorf("EightNode512 takes %d lines", lines)
	}
}

// TestCompactMarks checks that a compact cell shows each thread's holder.
func TestCompactMarks(t *testing.T) {
	topo := synth.SmallTwoNode().MustTopology() // node 0: cores (0,8) (1,9) (2,10) (3,11)
	m := Map{Topology: topo, Layout: LayoutCompact,
		Holders:  []Holder{{Name: "x", Exclusive: true, CPUs: topology.MustParseMask("1,9,2")}},
		Reserved: topology.NewMask(0),
		Shared:   topology.MustParseMask("0,3-8,10-15"),
	}
	var buf bytes.Buffer
	Draw(&buf, m)
	want := "NUMA node 0: 8 CPUs, 3 exclusive, 4 free, 1 reserved\n   0 [r. aa a. ..]\n"
	if !strings.Contains(buf.String(), want) {
		t.Errorf("got\n%s\nwant it to contain\n%s", buf.String(), want)
	}
}

func TestParseLayout(t *testing.T) {
	for s, want := range map[string]Layout{"auto": LayoutAuto, "detailed": LayoutDetailed, "compact": LayoutCompact} {
		if got, err := ParseLayout(s); err != nil || got != want {
			t.Errorf("ParseLayout(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseLayout("fancy"); err == nil {
		t.Error("ParseLayout(fancy) did not fail")
	}
}
