package plugin

import (
	"fmt"
	"strings"

	"github.com/numaspread/numaspread/policy"
)

// The pod annotations numaspread reads (DESIGN.md). A key with the suffix
// ".container.NAME" applies to that container only and wins over the pod key.
const (
	annotationPrefix    = "numaspread.io/"
	annotationPolicy    = annotationPrefix + "policy"
	annotationSpread    = annotationPrefix + "spread"
	annotationExclusive = annotationPrefix + "exclusive"
)

// maxAnnotationValue bounds the value quoted back in errors and logs.
const maxAnnotationValue = 64

// annotationChoices applies the numaspread annotations of a pod to the
// options of one of its containers. It returns whether the container opted
// out of exclusive CPUs. An annotation can only narrow what the rules give:
// it never makes a container exclusive.
func annotationChoices(annotations map[string]string, container string, base policy.Options) (policy.Options, bool, error) {
	opts, optOut := base, false
	lookup := func(key string) (string, string, bool) {
		scoped := key + ".container." + container
		if v, ok := annotations[scoped]; ok {
			return scoped, v, true
		}
		v, ok := annotations[key]
		return key, v, ok
	}
	if key, v, ok := lookup(annotationPolicy); ok {
		m, err := policy.ParseMode(v)
		if err != nil {
			return base, false, badAnnotation(key, v, "distributed, packed")
		}
		opts.Mode = m
	}
	if key, v, ok := lookup(annotationSpread); ok {
		if err := opts.ApplySpread(v); err != nil {
			return base, false, badAnnotation(key, v, "all, minimal, or a number of NUMA nodes ≥ 1")
		}
	}
	if key, v, ok := lookup(annotationExclusive); ok {
		switch v {
		case "true":
		case "false":
			optOut = true
		default:
			return base, false, badAnnotation(key, v, "true, false")
		}
	}
	return opts, optOut, nil
}

// optedOut reports whether the numaspread.io/exclusive annotation that
// applies to the container (its own key first) is "false".
func optedOut(annotations map[string]string, container string) bool {
	if v, ok := annotations[annotationExclusive+".container."+container]; ok {
		return v == "false"
	}
	return annotations[annotationExclusive] == "false"
}

func badAnnotation(key, value, allowed string) error {
	if len(value) > maxAnnotationValue {
		value = value[:maxAnnotationValue] + "…"
	}
	return fmt.Errorf("annotation %s: %q is not one of %s", key, value, allowed)
}

// unknownAnnotations lists numaspread.io/ keys that numaspread does not know,
// to warn about typos without failing containers.
func unknownAnnotations(annotations map[string]string) []string {
	var out []string
	for k := range annotations {
		if !strings.HasPrefix(k, annotationPrefix) {
			continue
		}
		base, _, _ := strings.Cut(k, ".container.")
		switch base {
		case annotationPolicy, annotationSpread, annotationExclusive:
		default:
			out = append(out, k)
		}
	}
	return out
}
