// Package view draws allocation maps: for each NUMA node, which container
// holds which CPUs, which CPUs are reserved and which form the shared pool.
// `numaspread demo` and `numaspread status` print them. The drawing fits a
// terminal of Map.Width columns (80 by default) on any machine: the detailed
// layout wraps cores onto further lines, and machines with more than
// CompactAbove CPUs get the compact layout (one cell per core, no CPU ids);
// the legend wraps long CPU lists.
package view

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/numaspread/numaspread/topology"
)

// Holder is one container as the map shows it.
type Holder struct {
	Name      string // namespace/pod/container
	Exclusive bool
	CPUs      topology.Mask
	Mems      string
}

// Layout chooses how CPUs are drawn.
type Layout int

const (
	// LayoutAuto is LayoutDetailed up to CompactAbove online CPUs and
	// LayoutCompact above.
	LayoutAuto Layout = iota
	// LayoutDetailed draws every CPU id above its mark, core by core.
	LayoutDetailed
	// LayoutCompact draws one cell per core (its threads' marks side by side),
	// rows labelled with the first CPU of their first core.
	LayoutCompact
)

// CompactAbove is the number of online CPUs above which LayoutAuto draws
// the compact layout: the detailed one would take about 12 lines per node
// of 64 CPUs.
const CompactAbove = 128

// ParseLayout reads "auto", "detailed" or "compact".
func ParseLayout(s string) (Layout, error) {
	switch s {
	case "auto", "":
		return LayoutAuto, nil
	case "detailed":
		return LayoutDetailed, nil
	case "compact":
		return LayoutCompact, nil
	}
	return LayoutAuto, fmt.Errorf("%q is not one of auto, detailed, compact", s)
}

// Map is what to draw.
type Map struct {
	Topology *topology.Topology
	Holders  []Holder // exclusive holders get letters in this order
	Shared   topology.Mask
	Reserved topology.Mask
	Width    int // terminal width; 0 means 80
	Layout   Layout
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
		h.CPUs.ForEach(func(c int) bool {
			if t.Online.Has(c) {
				marks[c] = l
			}
			return true
		})
	}

	layout := m.Layout
	if layout == LayoutAuto {
		layout = LayoutDetailed
		if t.Online.Count() > CompactAbove {
			layout = LayoutCompact
		}
	}
	idWidth := len(strconv.Itoa(max(t.MaxCPU-1, 0)))
	for _, n := range t.Nodes {
		if !n.HasCPUs() {
			fmt.Fprintf(w, "NUMA node %d: no CPUs (memory only)\n", n.ID)
			continue
		}
		if layout == LayoutCompact {
			drawNodeCompact(w, t, &n, marks, idWidth, width)
		} else {
			drawNode(w, t, &n, marks, idWidth, width)
		}
	}
	drawLegend(w, m, layout, width)
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

// drawNodeCompact writes a header with the node's counts, then rows of
// cores, one cell per core holding its threads' marks.
func drawNodeCompact(w io.Writer, t *topology.Topology, n *topology.Node, marks map[int]byte, idWidth, width int) {
	var held, shared, reserved, other int
	n.CPUs.ForEach(func(c int) bool {
		switch marks[c] {
		case markShared:
			shared++
		case markReserved:
			reserved++
		case markOther:
			other++
		default:
			held++
		}
		return true
	})
	counts := []string{fmt.Sprintf("%d exclusive", held), fmt.Sprintf("%d free", shared)}
	if reserved > 0 {
		counts = append(counts, fmt.Sprintf("%d reserved", reserved))
	}
	if other > 0 {
		counts = append(counts, fmt.Sprintf("%d unmanaged", other))
	}
	fmt.Fprintf(w, "NUMA node %d: %d CPUs, %s\n", n.ID, n.CPUs.Count(), strings.Join(counts, ", "))

	tpc := max(t.ThreadsPerCore, 1)
	perRow := coresPerRow(width-(2+idWidth+2+1), tpc) // "  511 [" … "]"
	for start := 0; start < len(n.Cores); start += perRow {
		end := min(start+perRow, len(n.Cores))
		var row strings.Builder
		for i, ci := range n.Cores[start:end] {
			switch {
			case i > 0 && i%compactGroup == 0:
				row.WriteString("  ")
			case i > 0:
				row.WriteByte(' ')
			}
			c := &t.Cores[ci]
			for _, th := range c.Threads {
				row.WriteByte(marks[th])
			}
			for k := len(c.Threads); k < tpc; k++ {
				row.WriteByte(' ') // an offline thread
			}
		}
		fmt.Fprintf(w, "  %*d [%s]\n", idWidth, t.Cores[n.Cores[start]].Threads[0], row.String())
	}
}

// compactGroup is how many cores the compact layout groups between wider gaps.
const compactGroup = 8

// coresPerRow returns how many cells of tpc marks fit in avail columns: a
// power of two from 4 on, so that row labels stay round.
func coresPerRow(avail, tpc int) int {
	fits := func(n int) bool {
		cols := n*tpc + n - 1
		if n > compactGroup {
			cols += (n - 1) / compactGroup
		}
		return cols <= avail
	}
	n := 1
	for fits(n + 1) {
		n++
	}
	if n >= 4 {
		p := 1
		for p*2 <= n {
			p *= 2
		}
		n = p
	}
	return n
}

func drawLegend(w io.Writer, m Map, layout Layout, width int) {
	const indent = "     "
	put := func(mark byte, text string) {
		for _, l := range Wrap(fmt.Sprintf("  %c  %s", mark, text), width, indent) {
			fmt.Fprintln(w, l)
		}
	}
	fmt.Fprintln(w)
	if layout == LayoutCompact {
		tpc := max(m.Topology.ThreadsPerCore, 1)
		for _, l := range Wrap(fmt.Sprintf("  one cell per core (its %d threads); each row is labelled with its first CPU", tpc), width, indent) {
			fmt.Fprintln(w, l)
		}
	}
	exclusive := 0
	var shared []string
	for _, h := range m.Holders {
		if !h.Exclusive {
			shared = append(shared, h.Name)
			continue
		}
		put(letter(exclusive), fmt.Sprintf("%s: %d CPUs, cpus %s, mems %s", h.Name, h.CPUs.Count(), h.CPUs, orDash(h.Mems)))
		exclusive++
	}
	pool := fmt.Sprintf("shared pool: %d CPUs, cpus %s", m.Shared.Count(), orDash(m.Shared.String()))
	if r := m.Shared.CountAnd(m.Reserved); r > 0 {
		pool += fmt.Sprintf(" (%d of them reserved)", r)
	}
	put(markShared, pool)
	if len(shared) > maxListed {
		shared = append(shared[:maxListed], fmt.Sprintf("and %d more", len(shared)-maxListed))
	}
	if len(shared) > 0 {
		for _, l := range Wrap(indent+"used by "+strings.Join(shared, ", "), width, indent) {
			fmt.Fprintln(w, l)
		}
	}
	if !m.Reserved.IsEmpty() {
		put(markReserved, fmt.Sprintf("reserved: %s", m.Reserved))
	}
	other := m.Topology.Online.Difference(m.Shared).Difference(m.Reserved)
	for _, h := range m.Holders {
		if h.Exclusive {
			other.SubtractInPlace(h.CPUs)
		}
	}
	if !other.IsEmpty() {
		put(markOther, fmt.Sprintf("not managed (isolated, or outside allowed_cpus): %s", other))
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

// Wrap breaks text into lines of at most width columns (runes). It breaks
// after a comma or at a space; continuation lines start with indent. A
// word longer than a whole line is cut where the line ends.
func Wrap(text string, width int, indent string) []string {
	if width <= 0 {
		width = 80
	}
	if utf8.RuneCountInString(indent) >= width {
		indent = ""
	}
	var pieces []string // each ends after a comma or with its one space
	start := 0
	for i, r := range text {
		if r == ',' || r == ' ' {
			pieces = append(pieces, text[start:i+1])
			start = i + 1
		}
	}
	if start < len(text) {
		pieces = append(pieces, text[start:])
	}
	var lines []string
	line := ""
	cols := utf8.RuneCountInString
	for _, p := range pieces {
		if cols(strings.TrimRight(line+p, " ")) <= width {
			line += p
			continue
		}
		if strings.TrimSpace(line) != "" {
			lines = append(lines, strings.TrimRight(line, " "))
			line = indent
		}
		line += strings.TrimLeft(p, " ")
		for cols(strings.TrimRight(line, " ")) > width {
			r := []rune(line)
			lines = append(lines, string(r[:width]))
			line = indent + string(r[width:])
		}
	}
	if strings.TrimSpace(line) != "" || len(lines) == 0 {
		lines = append(lines, strings.TrimRight(line, " "))
	}
	return lines
}
