package main

// The runner parses and prints cpulists itself rather than with
// topology.ParseMask: it is an oracle independent of the plugin's code. The
// guest topology check (guest.go) compares what `numaspread topology` says
// with sysfs read through these functions, and every cpuset check compares
// the plugin's result with lists canonicalized here; sharing numaspread's
// parser would let a bug in it make both sides agree on a wrong answer. The
// runner imports nothing of numaspread but test/kubelet.

import (
	"sort"
	"strconv"
	"strings"
)

// parseList parses a Linux cpulist ("0-3,8"); ok is false when it is not one.
func parseList(s string) (ids []int, ok bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, true
	}
	seen := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, false
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, false
			}
		}
		for i := a; i <= b; i++ {
			seen[i] = true
		}
	}
	for id := range seen {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids, true
}

// formatList formats ids as a canonical cpulist.
func formatList(ids []int) string {
	ids = append([]int(nil), ids...)
	sort.Ints(ids)
	var parts []string
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(ids[i]))
		} else {
			parts = append(parts, strconv.Itoa(ids[i])+"-"+strconv.Itoa(ids[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// canon returns s as a canonical cpulist, or s itself (trimmed) when it is
// not one.
func canon(s string) string {
	ids, ok := parseList(s)
	if !ok {
		return strings.TrimSpace(s)
	}
	return formatList(ids)
}

// minus returns a − b as a canonical cpulist.
func minus(a, b string) string {
	x, _ := parseList(a)
	y, _ := parseList(b)
	drop := map[int]bool{}
	for _, id := range y {
		drop[id] = true
	}
	var out []int
	for _, id := range x {
		if !drop[id] {
			out = append(out, id)
		}
	}
	return formatList(out)
}

func count(list string) int {
	ids, _ := parseList(list)
	return len(ids)
}
