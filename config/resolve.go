package config

import (
	"errors"
	"fmt"

	"github.com/numaspread/numaspread/topology"
)

// Resolved is what a Config's CPU lists mean on a given machine.
type Resolved struct {
	// Allowed is the set of CPUs numaspread manages: the CPUs it hands out
	// exclusively and the shared pool they come out of. It is allowed_cpus
	// when that is set, otherwise every online CPU that is not isolated.
	Allowed topology.Mask
	// Reserved is reserved_cpus, a subset of Allowed: never handed out
	// exclusively (and kept out of the shared pool when strict_reserved).
	Reserved topology.Mask
	// Warnings are settings that are valid but probably not what was meant;
	// the plugin logs them when it installs the configuration (at start,
	// from the runtime's Configure, and on reload).
	Warnings []string
}

// Resolve checks the configuration's CPU lists against the machine t and
// returns them as masks. The rules:
//
//   - allowed_cpus, when set, must name online CPUs. It may include isolated
//     (isolcpus=) CPUs: listing them is how one asks numaspread to manage them,
//     and Resolve returns a warning so the choice is visible. When unset, the
//     managed CPUs are the online CPUs minus the isolated ones.
//   - The managed set must not be empty.
//   - reserved_cpus must name online CPUs inside the managed set: reserving a
//     CPU numaspread does not manage would mean nothing.
//   - The shared pool before any exclusive allocation (managed CPUs, minus the
//     reserved ones when strict_reserved) must hold at least min_shared_cpus
//     CPUs, and with strict_reserved it must not be empty, or no shared
//     container could ever run.
//
// Errors are *Error values that name the key and, for a parsed Config, the
// file and line, e.g.
//
//	/etc/numaspread/config.toml:9: policy.reserved_cpus: CPU 200 does not exist (online: 0-15)
//
// The checks run in three stages (cpulist syntax, then membership, then the
// shared pool); all problems of the first stage that fails are reported,
// joined with errors.Join.
func (c Config) Resolve(t *topology.Topology) (Resolved, error) {
	var (
		r    Resolved
		errs []error
	)
	fail := func(key, format string, args ...any) {
		errs = append(errs, &Error{Source: c.origin.source, Line: c.Line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	const allowedKey, reservedKey = "policy.allowed_cpus", "policy.reserved_cpus"
	const minSharedKey, strictKey = "policy.min_shared_cpus", "policy.strict_reserved"

	// Parse already checked the syntax, but a Config may also be built by hand.
	allowed, err := topology.ParseMask(c.Policy.AllowedCPUs)
	if err != nil {
		fail(allowedKey, "%v", err)
	}
	reserved, err := topology.ParseMask(c.Policy.ReservedCPUs)
	if err != nil {
		fail(reservedKey, "%v", err)
	}
	if len(errs) > 0 {
		return Resolved{}, errors.Join(errs...)
	}

	explicit := !allowed.IsEmpty()
	if explicit {
		if msg := notOnline(t, allowed); msg != "" {
			fail(allowedKey, "%s", msg)
		}
		allowed.IntersectInPlace(t.Online)
		if iso := allowed.Intersection(t.Isolated); !iso.IsEmpty() {
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s includes isolated CPUs %s; numaspread will hand them out like the others", allowedKey, iso))
		}
	} else {
		allowed = t.Online.Difference(t.Isolated)
		if allowed.IsEmpty() {
			fail(allowedKey, "no CPUs to manage: every online CPU (%s) is isolated; list the CPUs numaspread may use", t.Online)
		}
	}

	if msg := notOnline(t, reserved); msg != "" {
		fail(reservedKey, "%s", msg)
	}
	reserved.IntersectInPlace(t.Online)
	if out := reserved.Difference(allowed); !out.IsEmpty() {
		if explicit {
			fail(reservedKey, "%s not in allowed_cpus (%s); reserved CPUs must be managed CPUs", CPUPhrase(out, "is", "are"), allowed)
		} else {
			fail(reservedKey, "%s isolated; reserved CPUs must be managed CPUs (the online, non-isolated ones: %s), or list them in allowed_cpus", CPUPhrase(out, "is", "are"), allowed)
		}
	}
	if len(errs) > 0 {
		return Resolved{}, errors.Join(errs...)
	}

	pool, poolDesc := allowed, fmt.Sprintf("the managed CPUs %s", allowed)
	if c.Policy.StrictReserved && !reserved.IsEmpty() {
		pool = allowed.Difference(reserved)
		poolDesc += fmt.Sprintf(" minus the strictly reserved %s", reserved)
	}
	switch {
	case pool.IsEmpty():
		fail(strictKey, "every managed CPU (%s) is reserved, so shared containers would have no CPU", allowed)
	case pool.Count() < c.Policy.MinSharedCPUs:
		fail(minSharedKey, "%d is more than the %d CPUs the shared pool can ever have (%s)", c.Policy.MinSharedCPUs, pool.Count(), poolDesc)
	}
	if len(errs) > 0 {
		return Resolved{}, errors.Join(errs...)
	}

	if allowed.IsSubsetOf(reserved) {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%s reserves every managed CPU (%s): no container can get exclusive CPUs", reservedKey, allowed))
	} else if t.ThreadsPerCore > 1 && c.Policy.FullCores != FullCoresOff {
		if lone := splitCores(t, allowed, reserved); !lone.IsEmpty() {
			r.Warnings = append(r.Warnings, fmt.Sprintf(
				"%s a core with CPUs that are reserved or not managed, so they are handed out only as single threads, never as part of a whole core (full_cores = %q)",
				CPUPhrase(lone, "shares", "share"), c.Policy.FullCores))
		}
	}
	r.Allowed, r.Reserved = allowed, reserved
	return r, nil
}

// notOnline describes the CPUs of m that are not online ("CPU 200 does not
// exist, CPUs 6-7 are offline (online: 0-5)"), or returns "" when all are.
func notOnline(t *topology.Topology, m topology.Mask) string {
	bad := m.Difference(t.Online)
	if bad.IsEmpty() {
		return ""
	}
	offline := bad.Intersection(t.Offline)
	missing := bad.Difference(t.Offline)
	msg := ""
	if !missing.IsEmpty() {
		msg = CPUPhrase(missing, "does not exist", "do not exist")
	}
	if !offline.IsEmpty() {
		if msg != "" {
			msg += ", "
		}
		msg += CPUPhrase(offline, "is offline", "are offline")
	}
	return fmt.Sprintf("%s (online: %s)", msg, t.Online)
}

// splitCores returns the exclusive-capable CPUs (allowed − reserved) whose
// core also has an online thread outside that set: such a core is never a
// whole free core, so its other threads serve only as single threads.
func splitCores(t *topology.Topology, allowed, reserved topology.Mask) topology.Mask {
	usable := allowed.Difference(reserved)
	var lone topology.Mask
	for i := range t.Cores {
		core := &t.Cores[i]
		if n := core.Mask.CountAnd(usable); n > 0 && n < len(core.Threads) {
			lone.UnionInPlace(core.Mask.Intersection(usable))
		}
	}
	return lone
}

// CPUPhrase formats m as "CPU 3 <one>" or "CPUs 3-4 <many>", with the verb
// agreeing in number (empty verbs: just the CPUs). Configuration errors and
// the CLI word CPU lists this one way.
func CPUPhrase(m topology.Mask, one, many string) string {
	s := "CPU " + m.String()
	verb := one
	if m.Count() > 1 {
		s, verb = "CPUs "+m.String(), many
	}
	if verb == "" {
		return s
	}
	return s + " " + verb
}
