package plugin

import (
	"context"
	"io"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/topology/synth"
)

// createStopAllocs returns the allocations of one exclusive create and
// stop with the log at level.
func createStopAllocs(t *testing.T, level logrus.Level) float64 {
	t.Helper()
	log := logrus.New()
	log.SetOutput(io.Discard)
	log.SetLevel(level)
	p, err := New(synth.SmallTwoNode().MustTopology(), config.Default(), log)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := guaranteed("x", 2, "", 1)
	pod := pods(c)[0]
	return testing.AllocsPerRun(200, func() {
		if _, _, err := p.CreateContainer(ctx, pod, c); err != nil {
			t.Fatal(err)
		}
		if _, err := p.StopContainer(ctx, pod, c); err != nil {
			t.Fatal(err)
		}
	})
}

// The request path builds no log entry the level drops: at level error an
// exclusive create and stop allocate much less than at level info. When
// the two info lines (container placed, exclusive CPUs released) were
// built at every level, the difference was only what writing them costs
// (63 allocations at error, 86 at info); building them is about as much
// again (28 at error now).
func TestDroppedLogLinesCostNoAllocations(t *testing.T) {
	quiet := createStopAllocs(t, logrus.ErrorLevel)
	info := createStopAllocs(t, logrus.InfoLevel)
	t.Logf("allocations per exclusive create+stop: level=error %.0f, level=info %.0f", quiet, info)
	if info-quiet < 40 || 2*quiet >= info {
		t.Errorf("level=error %.0f allocations, level=info %.0f: the dropped lines are still built", quiet, info)
	}
}

// BenchmarkCreateStopLogLevel is BenchmarkCreateStopWithSharedContainers
// without shared containers, with the log at each level: the lines a level
// drops must cost nothing.
func BenchmarkCreateStopLogLevel(b *testing.B) {
	for _, level := range []logrus.Level{logrus.ErrorLevel, logrus.InfoLevel} {
		b.Run("level="+level.String(), func(b *testing.B) {
			log := logrus.New()
			log.SetOutput(io.Discard)
			log.SetLevel(level)
			p, err := New(synth.SmallTwoNode().MustTopology(), config.Default(), log)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			c := guaranteed("x", 2, "", 1)
			pod := pods(c)[0]
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := p.CreateContainer(ctx, pod, c); err != nil {
					b.Fatal(err)
				}
				if _, err := p.StopContainer(ctx, pod, c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
