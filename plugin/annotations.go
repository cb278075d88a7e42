package plugin

import (
	"fmt"
	"strings"
	"unicode/utf8"

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
// it never makes a container exclusive. With an error about one
// annotation it returns base, and still the opt-out of a valid
// numaspread.io/exclusive, for a caller that ignores the bad one.
func annotationChoices(annotations map[string]string, container string, base policy.Options) (policy.Options, bool, error) {
	lookup := func(key string) (string, string, bool) {
		scoped := key + ".container." + container
		if v, ok := annotations[scoped]; ok {
			return scoped, v, true
		}
		v, ok := annotations[key]
		return key, v, ok
	}
	optOut, errExclusive := false, error(nil)
	if key, v, ok := lookup(annotationExclusive); ok {
		switch v {
		case "true":
		case "false":
			optOut = true
		default:
			errExclusive = badAnnotation(key, v, "true, false")
		}
	}
	opts := base
	if key, v, ok := lookup(annotationPolicy); ok {
		m, err := policy.ParseMode(v)
		if err != nil {
			return base, optOut, badAnnotation(key, v, "distributed, packed")
		}
		opts.Mode = m
	}
	if key, v, ok := lookup(annotationSpread); ok {
		if err := opts.ApplySpread(v); err != nil {
			return base, optOut, badAnnotation(key, v, "all, minimal, or a number of NUMA nodes ≥ 1")
		}
	}
	if errExclusive != nil {
		return base, false, errExclusive
	}
	return opts, optOut, nil
}

// maxAnnotationKey bounds the key quoted back in errors: a Kubernetes
// annotation key has at most 253 + 1 + 63 bytes.
const maxAnnotationKey = 320

func badAnnotation(key, value, allowed string) error {
	if len(value) > maxAnnotationValue {
		value = value[:maxAnnotationValue] + "…"
	}
	// The error travels in a protobuf string, which must be valid UTF-8;
	// the value is quoted (%q escapes what is not), the key, which carries
	// the container's name, is cleaned.
	key = strings.ToValidUTF8(key, "\uFFFD")
	if len(key) > maxAnnotationKey {
		cut := maxAnnotationKey
		for !utf8.RuneStart(key[cut]) {
			cut--
		}
		key = key[:cut] + "…"
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
