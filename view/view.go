// Package view draws allocation maps: for each NUMA node, which container
// holds which CPUs, which CPUs are reserved and which form the shared pool.
// `numaspread demo` and `numaspread status` print them. The drawing fits an
// 80-column terminal on any machine: cores wrap onto further lines.
package view

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/numaspread/numaspread/topology"
)

// Holder is one container as the map shows it.
type Holder struct {
	Name      string // namespace/pod/container
	Exclusive bool
	CPUs      topology.Mask
	Mems      string
}

// Map is what to draw.
type Map struct {
	Topology *topology.Topology
	Holders  []Holder // exclusive holders get letters in this order
	Shared   topology.Mask
	Reserved topology.Mask
	Width    int // terminal width; 0 means 80
}

// Marks used in the drawing.
const (
	markShared   = '.'
	markReserved = 'r'
	markOther    = '-' // online CPU outside the managed set (isolated, not allowed)
)

// letter returns the mark of the i-th exclusive holder: a-z, then A-Z, then '*'.
func letter(i int) byte {
	switch {
	case i < 26:
		return byte('a' + i)
	case i < 52:
		return byte('A' + i - 26)
	}
	return '*'
}

// Draw writes the map.
func Draw(w io.Writer, m Map) {
	width := m.Width
	if width <= 0 {
		width = 80
	}
	t := m.Topology
	marks := make(map[int]byte, t.Online.Count())
	t.Online.ForEach(func(c int) bool {
		switch {
		case m.Reserved.Has(c):
			marks[c] = markReserved
		case m.Shared.Has(c):
			marks[c] = markShared
		default:
			marks[c] = markOther
		}
		return true
	})
	exclusive := 0
	for _, h := range m.Holders {
		if !h.Exclusive {
			continue
		}
		l := letter(exclusive)
		exclusive++
		h.CPUs.ForEach(func(c int) bool { marks[c] = l; return true })
	}

	idWidth := len(strconv.Itoa(max(t.MaxCPU-1, 0)))
	for _, n := range t.Nodes {
		if !n.HasCPUs() {
			fmt.Fprintf(w, "NUMA node %d: no CPUs (memory only)\n", n.ID)
			continue
		}
		drawNode(w, t, &n, marks, idWidth, width)
	}
	drawLegend(w, m)
}

// drawNode writes two rows per line of cores: CPU ids, then their marks.
func drawNode(w io.Writer, t *topology.Topology, n *topology.Node, marks map[int]byte, idWidth, width int) {
	header := fmt.Sprintf("NUMA node %d: ", n.ID)
	indent := strings.Repeat(" ", len(header))
	cell := func(c *topology.Core) int { return len(c.Threads) * (idWidth + 1) }
	var ids, owners strings.Builder
	lineLen, first := len(header), true
	flush := func() {
		prefix := indent
		if first {
			prefix = header
			first = false
		}
		fmt.Fprintf(w, "%s[%s]\n%s[%s]\n", prefix, ids.String(), indent, owners.String())
		ids.Reset()
		owners.Reset()
		lineLen = len(header)
	}
	for i, ci := range n.Cores {
		c := &t.Cores[ci]
		need := cell(c) + 3
		if i > 0 && lineLen+need > width {
			flush()
		} else if i > 0 {
			ids.WriteString(" |")
			owners.WriteString(" |")
		}
		for _, th := range c.Threads {
			fmt.Fprintf(&ids, " %*d", idWidth, th)
			fmt.Fprintf(&owners, " %*c", idWidth, marks[th])
		}
		lineLen += need
	}
	flush()
}

func drawLegend(w io.Writer, m Map) {
	fmt.Fprintln(w)
	exclusive := 0
	var shared []string
	for _, h := range m.Holders {
		if !h.Exclusive {
			shared = append(shared, h.Name)
			continue
		}
		fmt.Fprintf(w, "  %c  %s: %d CPUs, cpus %s, mems %s\n", letter(exclusive), h.Name, h.CPUs.Count(), h.CPUs, orDash(h.Mems))
		exclusive++
	}
	fmt.Fprintf(w, "  %c  shared pool: %d CPUs, cpus %s\n", markShared, m.Shared.Difference(m.Reserved).Count(), orDash(m.Shared.String()))
	if len(shared) > maxListed {
		shared = append(shared[:maxListed], fmt.Sprintf("and %d more", len(shared)-maxListed))
	}
	if len(shared) > 0 {
		fmt.Fprintf(w, "     used by %s\n", strings.Join(shared, ", "))
	}
	if !m.Reserved.IsEmpty() {
		fmt.Fprintf(w, "  %c  reserved: %s\n", markReserved, m.Reserved)
	}
}

// maxListed bounds how many shared containers the legend names.
const maxListed = 4

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
