package plugin

import (
	"context"
	"strings"
	"testing"

	"github.com/containerd/nri/pkg/api"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/topology/synth"
)

// The warnings of config.Resolve (here: a reserved CPU splits a core, so
// its sibling is handed out only as a single thread) are logged when a
// configuration is installed: by New, Configure and Reload, and not again
// by every Synchronize.
func TestConfigurationWarningsAreLogged(t *testing.T) {
	log, hook := logtest.NewNullLogger()
	// warnings checks the warnings logged since the last call: none when
	// want is "", else one containing want, naming the source src if any.
	warnings := func(t *testing.T, step, want, src string) {
		t.Helper()
		var got []string
		for _, e := range hook.AllEntries() {
			if e.Level == logrus.WarnLevel {
				got = append(got, e.Message)
				if src != "" && e.Data["config"] != src {
					t.Errorf("%s: warning %q names the source %v, want %q", step, e.Message, e.Data["config"], src)
				}
			}
		}
		hook.Reset()
		if want == "" {
			if len(got) != 0 {
				t.Errorf("%s: warnings %q, want none", step, got)
			}
			return
		}
		if len(got) != 1 || !strings.Contains(got[0], want) || !strings.Contains(got[0], "single threads") {
			t.Errorf("%s: warnings %q, want one about %s", step, got, want)
		}
	}

	p, err := New(synth.SmallTwoNode().MustTopology(), mustWith(t, config.Default(), "policy.reserved_cpus", "0"), log)
	if err != nil {
		t.Fatal(err)
	}
	warnings(t, "New", "CPU 8 shares a core", "")

	ctrs := []*api.Container{shared("web", "")}
	if _, err := p.Synchronize(context.Background(), pods(ctrs...), ctrs); err != nil {
		t.Fatal(err)
	}
	warnings(t, "Synchronize", "", "")

	if _, err := p.Reload(mustWith(t, config.Default(), "policy.reserved_cpus", "1")); err != nil {
		t.Fatal(err)
	}
	warnings(t, "Reload", "CPU 9 shares a core", "")

	if _, err := p.Configure(context.Background(), "[policy]\nreserved_cpus = \"2\"\n", "containerd", "2.1"); err != nil {
		t.Fatal(err)
	}
	warnings(t, "Configure", "CPU 10 shares a core", config.ConfigureSource)
}
