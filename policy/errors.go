package policy

import (
	"fmt"
	"strings"

	"github.com/numaspread/numaspread/topology"
)

// InsufficientError says that a request cannot be met with the CPUs that are
// free. The plugin adds the container's name; the error carries the rest.
type InsufficientError struct {
	Requested int
	Free      []NodeShare // free CPUs per node with CPUs, ascending by node id
	Reason    string      // why, when it is not simply "too few free CPUs"
}

func (e *InsufficientError) Error() string {
	var sb strings.Builder
	total := 0
	for _, f := range e.Free {
		total += f.CPUs
	}
	fmt.Fprintf(&sb, "cannot allocate %d exclusive CPUs: %d free", e.Requested, total)
	if len(e.Free) > 1 {
		sb.WriteString(" (")
		for i, f := range e.Free {
			if i > 0 {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "node %d: %d", f.Node, f.CPUs)
		}
		sb.WriteString(")")
	}
	if e.Reason != "" {
		sb.WriteString("; ")
		sb.WriteString(e.Reason)
	}
	return sb.String()
}

// ConflictError says that a claimed CPU is already held by another owner.
type ConflictError struct {
	Owner   string
	CPUs    topology.Mask
	Holders []string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s claims CPUs %s already held by %s", e.Owner, e.CPUs, strings.Join(e.Holders, ", "))
}
