package churn

import (
	"errors"
	"fmt"
	"io"
	"os"

	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/numaspread/numaspread/test/pluginproc"
	"github.com/numaspread/numaspread/topology/synth"
)

// Environment:
//
//	CHURN_SEED=N    the seed (default: today's date, YYYYMMDD, so CI rotates)
//	CHURN_OPS=N     operations per machine (default 400; 100 under -race)
//	CHURN_FULL=1    also run TestChurnScale at full size: 100 000 operations,
//	                up to 1 000 live containers on EightNode512
//	CHURN_SCALE_OPS=N  operations of TestChurnScale (default 1500; 100 000 with CHURN_FULL)
//	CHURN_HEAP_PROFILES=DIR  TestChurnScale writes heap-mid.pprof and heap-end.pprof there
//	CHURN_BINARY=1  also run TestChurnBinary (the built binary, SIGKILL)
//	CHURN_VERBOSE=1 progress lines

func TestMain(m *testing.M) {
	// The NRI adaptation (the runtime side) logs through the standard
	// logrus logger: keep it quiet.
	logrus.SetOutput(io.Discard)
	os.Exit(m.Run())
}

func seed(t *testing.T) int64 {
	if s := os.Getenv("CHURN_SEED"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("CHURN_SEED=%q: %v", s, err)
		}
		return n
	}
	n, _ := strconv.ParseInt(time.Now().UTC().Format("20060102"), 10, 64)
	return n
}

func envInt(t *testing.T, key string, def int) int {
	s := os.Getenv(key)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", key, s)
	}
	return n
}

func opsDefault(n int) int {
	if raceEnabled {
		return max(50, n/4)
	}
	return n
}

// machines are the synthetic machines the churn runs on, small to large.
func machines() []synth.Spec {
	return []synth.Spec{synth.SmallTwoNode(), synth.FourNode(), synth.SNC(), synth.AMDLike(), synth.EightNode512()}
}

func logf(t *testing.T) func(string, ...any) {
	if os.Getenv("CHURN_VERBOSE") == "" {
		return nil
	}
	return t.Logf
}

// runChurn runs one churn and reports it; on failure it prints the seed
// and how to replay it.
func runChurn(t *testing.T, base int64, o Options) *Report {
	t.Helper()
	if o.Replay == "" {
		o.Replay = fmt.Sprintf("CHURN_SEED=%d CHURN_OPS=%d go test ./test/churn/ -run '^%s$'", base, o.Ops, t.Name())
	}
	if o.Binary != "" {
		o.Replay = "CHURN_BINARY=1 " + o.Replay
	}
	t.Logf("run seed %d; replay: %s", o.Seed, o.Replay)
	rep, err := Run(o)
	if rep != nil {
		t.Logf("%s", rep)
	}
	if err != nil {
		var f *Failure
		if errors.As(err, &f) {
			t.Fatalf("%v", f)
		}
		t.Fatal(err)
	}
	if rep.Violations != 0 {
		t.Fatalf("%d violations", rep.Violations)
	}
	return rep
}

// TestChurn: model-based churn with faults on every machine, in-process.
func TestChurn(t *testing.T) {
	s := seed(t)
	ops := envInt(t, "CHURN_OPS", opsDefault(400))
	for i, m := range machines() {
		t.Run(m.Name, func(t *testing.T) {
			runChurn(t, s, Options{Seed: s + int64(i), Ops: ops, Machine: m, Faults: true, Logf: logf(t), Progress: 1000})
		})
	}
}

// TestChurnWithoutFaults: the same churn with no faults, so that every
// operation's decision is predicted (no outage windows).
func TestChurnWithoutFaults(t *testing.T) {
	s := seed(t)
	ops := envInt(t, "CHURN_OPS", opsDefault(400))
	for i, m := range []synth.Spec{synth.SmallTwoNode(), synth.FourNode()} {
		t.Run(m.Name, func(t *testing.T) {
			runChurn(t, s, Options{Seed: s + 100 + int64(i), Ops: ops, Machine: m, Logf: logf(t)})
		})
	}
}

// TestChurnBinary: the churn against the built numaspread binary, killed
// with SIGKILL (CHURN_BINARY=1; make test-churn sets it).
func TestChurnBinary(t *testing.T) {
	if os.Getenv("CHURN_BINARY") == "" {
		t.Skip("CHURN_BINARY not set")
	}
	dir := t.TempDir()
	bin := pluginproc.BuildBinary(t, dir)
	s := seed(t)
	ops := envInt(t, "CHURN_OPS", opsDefault(400)) / 2
	for i, m := range []synth.Spec{synth.SmallTwoNode(), synth.FourNode()} {
		t.Run(m.Name, func(t *testing.T) {
			work := filepath.Join(dir, m.Name)
			if err := os.MkdirAll(work, 0o755); err != nil {
				t.Fatal(err)
			}
			runChurn(t, s, Options{Seed: s + 200 + int64(i), Ops: ops, Machine: m, Faults: true, FaultEvery: 25,
				Binary: bin, WorkDir: work, Logf: logf(t)})
		})
	}
}

// TestChurnScale: many operations with many live containers; memory and
// goroutines must stay flat. Full size (CHURN_FULL=1): 100 000 operations,
// up to 1 000 live containers on EightNode512. Otherwise a short run
// that exercises the same checks.
func TestChurnScale(t *testing.T) {
	full := os.Getenv("CHURN_FULL") != ""
	ops, live := opsDefault(1500), 300
	if full {
		ops, live = 100_000, 1000
	}
	ops = envInt(t, "CHURN_SCALE_OPS", ops)
	base := seed(t)
	replay := fmt.Sprintf("CHURN_SEED=%d CHURN_SCALE_OPS=%d go test ./test/churn/ -run '^TestChurnScale$' -timeout 60m", base, ops)
	if full {
		replay = "CHURN_FULL=1 " + replay
	}
	rep := runChurn(t, base, Options{
		Seed: base + 300, Ops: ops, Machine: synth.EightNode512(), MaxLive: live, Replay: replay,
		Faults: true, FaultEvery: 400, CrossCheckEvery: 50, Samples: 10, Scale: true,
		Logf: logf(t), Progress: 10_000, HeapProfiles: os.Getenv("CHURN_HEAP_PROFILES"),
	})
	if len(rep.Samples) < 3 {
		t.Fatalf("only %d samples", len(rep.Samples))
	}
	first, mid, last := rep.Samples[0], rep.Samples[len(rep.Samples)/2], rep.Samples[len(rep.Samples)-1]
	t.Logf("RSS start %.1f MiB, middle %.1f MiB, end %.1f MiB; goroutines %d / %d / %d",
		mib(first.RSS), mib(mid.RSS), mib(last.RSS), first.Goroutines, mid.Goroutines, last.Goroutines)
	// Between the middle and the end the node is in a steady state (as
	// many live containers on average): memory must not keep growing.
	if bound := mid.RSS + mid.RSS/2 + 32<<20; last.RSS > bound {
		t.Errorf("RSS grew from %.1f MiB (middle) to %.1f MiB (end), bound %.1f MiB", mib(mid.RSS), mib(last.RSS), mib(bound))
	}
	if bound := mid.HeapInuse + mid.HeapInuse/2 + 16<<20; last.HeapInuse > bound {
		t.Errorf("heap in use grew from %.1f MiB (middle) to %.1f MiB (end)", float64(mid.HeapInuse)/(1<<20), float64(last.HeapInuse)/(1<<20))
	}
	if last.Goroutines > first.Goroutines+goroutineSlack {
		t.Errorf("goroutines: %d at the start, %d at the end", first.Goroutines, last.Goroutines)
	}
	fmt.Fprintf(os.Stderr, "churn scale: %d ops, %d faults, %d violations; create handler p50 %v p99 %v; round trip p50 %v p99 %v\n",
		rep.Ops, rep.TotalFaults(), rep.Violations, rep.CreateHandler.P50, rep.CreateHandler.P99, rep.CreateRoundTrip.P50, rep.CreateRoundTrip.P99)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
