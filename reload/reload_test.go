package reload

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/numaspread/numaspread/config"
)

// rig runs a Watcher on a temporary config file with an Apply that records
// what it is given.
type rig struct {
	t       *testing.T
	dir     string
	path    string
	log     *test.Hook
	results chan Result

	mu      sync.Mutex
	applied []config.Config
	fail    error // Apply's answer
}

const baseConfig = "[policy]\nmode = \"distributed\"\n"

func newRig(t *testing.T, write func(r *rig), opts ...func(*Watcher)) *rig {
	t.Helper()
	r := &rig{t: t, dir: t.TempDir(), results: make(chan Result, 100)}
	r.path = filepath.Join(r.dir, "config.toml")
	if write != nil {
		write(r)
	} else {
		r.write(baseConfig)
	}
	running, err := config.Load(r.path, true)
	if err != nil {
		t.Fatal(err)
	}
	log, hook := test.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	r.log = hook
	w := &Watcher{
		Path:     r.path,
		Running:  running,
		Debounce: 50 * time.Millisecond,
		Log:      log,
		Apply: func(c config.Config) ([]string, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.fail != nil {
				return nil, r.fail
			}
			prev := running
			if len(r.applied) > 0 {
				prev = r.applied[len(r.applied)-1]
			}
			r.applied = append(r.applied, c)
			return config.Diff(prev, c), nil
		},
		OnResult: func(res Result) { r.results <- res },
	}
	for _, o := range opts {
		o(w)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	// Run adds its watch before it logs this line: edits after it are seen.
	deadline := time.Now().Add(5 * time.Second)
	for r.logged(logrus.InfoLevel, "watching the configuration file") == nil {
		select {
		case err := <-done:
			t.Fatalf("Run: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the watcher did not start")
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return r
}

// write replaces the file the way editors do: a new file renamed over it.
func (r *rig) write(text string) {
	r.t.Helper()
	tmp := r.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Rename(tmp, r.path); err != nil {
		r.t.Fatal(err)
	}
}

// next waits for the next result.
func (r *rig) next() Result {
	r.t.Helper()
	select {
	case res := <-r.results:
		return res
	case <-time.After(10 * time.Second):
		r.t.Fatal("no reload result")
	}
	return Result{}
}

// quiet checks that no result comes for a while.
func (r *rig) quiet(d time.Duration) {
	r.t.Helper()
	select {
	case res := <-r.results:
		r.t.Fatalf("unexpected reload result %+v", res)
	case <-time.After(d):
	}
}

func (r *rig) appliedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.applied)
}

func (r *rig) logged(level logrus.Level, msg string) *logrus.Entry {
	for _, e := range r.log.AllEntries() {
		if e.Level == level && strings.Contains(e.Message, msg) {
			return e
		}
	}
	return nil
}

func TestValidChangeApplied(t *testing.T) {
	r := newRig(t, nil)
	r.quiet(150 * time.Millisecond) // the initial check finds nothing new
	r.write("[policy]\nmode = \"packed\"\nreserved_cpus = \"0,1\"\n")
	res := r.next()
	if res.Err != nil || strings.Join(res.Changed, "; ") != `policy.mode: distributed → packed; policy.reserved_cpus: "" → 0-1` {
		t.Errorf("result %+v", res)
	}
	if r.applied[0].Policy.Mode != "packed" || r.applied[0].Source() != r.path {
		t.Errorf("applied %+v", r.applied[0])
	}
	e := r.logged(logrus.InfoLevel, "configuration file reloaded")
	if e == nil || e.Data["file"] != r.path || len(e.Data["changed"].([]string)) != 2 {
		t.Errorf("log entry %+v", e)
	}
	// Writing the same bytes again is no change.
	r.write("[policy]\nmode = \"packed\"\nreserved_cpus = \"0,1\"\n")
	r.quiet(200 * time.Millisecond)
	// A comment is a change of the file but of no setting: reported, not applied.
	r.write("# hello\n[policy]\nmode = \"packed\"\nreserved_cpus = \"0,1\"\n")
	if res := r.next(); res.Err != nil || len(res.Changed) != 0 || r.appliedCount() != 1 {
		t.Errorf("comment-only change: %+v, applied %d", res, r.appliedCount())
	}
}

func TestInvalidChangeRejected(t *testing.T) {
	r := newRig(t, nil)
	r.write("[policy]\nmode = \"distributed\"\nspread = \"most\"\n")
	res := r.next()
	var ce *config.Error
	if !errors.As(res.Err, &ce) || ce.Source != r.path || ce.Line != 3 || ce.Key != "policy.spread" {
		t.Fatalf("result %+v, want an error at %s:3", res, r.path)
	}
	if !strings.Contains(res.Err.Error(), r.path+":3: policy.spread") {
		t.Errorf("error %q does not name the file and line", res.Err)
	}
	if r.appliedCount() != 0 {
		t.Error("an invalid configuration was applied")
	}
	if e := r.logged(logrus.ErrorLevel, "invalid configuration: ignored"); e == nil || e.Data["file"] != r.path {
		t.Errorf("log entry %+v", e)
	}
	// A TOML syntax error names its line too.
	r.write("[policy]\nmode = \n")
	if res := r.next(); !errors.As(res.Err, &ce) || ce.Line != 2 {
		t.Errorf("syntax error result %+v", res)
	}
	// The plugin may reject it too (a CPU list that does not fit the machine).
	r.mu.Lock()
	r.fail = errors.New(r.path + ":2: policy.reserved_cpus: CPU 999 does not exist")
	r.mu.Unlock()
	r.write("[policy]\nreserved_cpus = \"999\"\n")
	if res := r.next(); res.Err == nil || !strings.Contains(res.Err.Error(), "CPU 999") {
		t.Errorf("rejected by Apply: %+v", res)
	}
	r.mu.Lock()
	r.fail = nil
	r.mu.Unlock()
	// Going back to the running configuration clears the failure.
	r.write(baseConfig)
	if res := r.next(); res.Err != nil || r.appliedCount() != 0 {
		t.Errorf("back to the running configuration: %+v, applied %d", res, r.appliedCount())
	}
}

func TestDebounce(t *testing.T) {
	r := newRig(t, nil)
	for _, mode := range []string{"packed", "distributed", "packed", "distributed", "packed"} {
		f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		// Two writes per version, as a truncate-and-write editor does.
		f.WriteString("[policy]\n")
		f.WriteString("mode = \"" + mode + "\"\n")
		f.Close()
	}
	if res := r.next(); res.Err != nil || len(res.Changed) != 1 {
		t.Errorf("result %+v", res)
	}
	r.quiet(200 * time.Millisecond)
	if n := r.appliedCount(); n != 1 || r.applied[0].Policy.Mode != "packed" {
		t.Errorf("applied %d times: %+v", n, r.applied)
	}
}

// TestNeighbourFilesIgnored: other files of the directory (a log file, an
// editor's swap file) neither trigger reloads nor delay them.
func TestNeighbourFilesIgnored(t *testing.T) {
	r := newRig(t, nil)
	logFile := filepath.Join(r.dir, "numaspread.log")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err == nil {
				f.WriteString("a log line\n")
				f.Close()
			}
		}
	}()
	defer func() { close(stop); <-done }()
	time.Sleep(100 * time.Millisecond)
	r.write("[policy]\nmode = \"packed\"\n")
	start := time.Now()
	if res := r.next(); res.Err != nil || len(res.Changed) != 1 {
		t.Errorf("result %+v", res)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the reload took %v while a neighbour was written", d)
	}
	for _, e := range r.log.AllEntries() {
		if e.Data["name"] == logFile {
			t.Fatalf("an event of %s was handled: %v", logFile, e.Message)
		}
	}
}

// TestConfigMapSwap updates the file as the kubelet updates a mounted
// ConfigMap: config.toml → ..data/config.toml, and ..data is a symlink to a
// timestamped folder that is replaced by renaming a new symlink over it.
func TestConfigMapSwap(t *testing.T) {
	version := func(r *rig, name, text string) {
		d := filepath.Join(r.dir, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "config.toml"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := newRig(t, func(r *rig) {
		version(r, "..2024_01_01", baseConfig)
		if err := os.Symlink("..2024_01_01", filepath.Join(r.dir, "..data")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("..data/config.toml", r.path); err != nil {
			t.Fatal(err)
		}
	})
	version(r, "..2024_01_02", "[policy]\nmode = \"packed\"\n")
	if err := os.Symlink("..2024_01_02", filepath.Join(r.dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(r.dir, "..data_tmp"), filepath.Join(r.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(r.dir, "..2024_01_01")); err != nil {
		t.Fatal(err)
	}
	if res := r.next(); res.Err != nil || len(res.Changed) != 1 || r.applied[0].Policy.Mode != "packed" {
		t.Errorf("result %+v", res)
	}
}

// TestSymlinkTarget edits the target of a symlinked config file in another
// directory.
func TestSymlinkTarget(t *testing.T) {
	other := t.TempDir()
	target := filepath.Join(other, "real.toml")
	r := newRig(t, func(r *rig) {
		if err := os.WriteFile(target, []byte(baseConfig), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, r.path); err != nil {
			t.Fatal(err)
		}
	})
	if err := os.WriteFile(target, []byte("[policy]\nspread = \"minimal\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if res := r.next(); res.Err != nil || len(res.Changed) != 1 || r.applied[0].Policy.Spread != "minimal" {
		t.Errorf("result %+v", res)
	}
}

func TestRemovedFile(t *testing.T) {
	r := newRig(t, nil)
	if err := os.Remove(r.path); err != nil {
		t.Fatal(err)
	}
	if res := r.next(); res.Err == nil || !errors.Is(res.Err, os.ErrNotExist) {
		t.Errorf("removed: %+v", res)
	}
	r.write(baseConfig)
	if res := r.next(); res.Err != nil || r.appliedCount() != 0 {
		t.Errorf("restored: %+v", res)
	}
}

// TestChangeBeforeWatch: a file changed between the plugin's load and the
// watch is applied when the watcher starts.
func TestChangeBeforeWatch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	os.WriteFile(path, []byte(baseConfig), 0o644)
	running, err := config.Load(path, true)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, []byte("[policy]\nmode = \"packed\"\n"), 0o644)
	applied := make(chan config.Config, 1)
	w := &Watcher{Path: path, Running: running, Log: logrus.New(),
		Apply: func(c config.Config) ([]string, error) { applied <- c; return config.Diff(running, c), nil }}
	w.Log.SetOutput(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case c := <-applied:
		if c.Policy.Mode != "packed" {
			t.Errorf("applied %+v", c.Policy)
		}
	case <-time.After(5 * time.Second):
		t.Error("the change was not applied")
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

func TestRunFailsWithoutDirectory(t *testing.T) {
	w := &Watcher{Path: filepath.Join(t.TempDir(), "nope", "config.toml"), Apply: func(config.Config) ([]string, error) { return nil, nil }}
	if err := w.Run(context.Background()); err == nil {
		t.Error("Run watched a directory that does not exist")
	}
}

// A configuration the plugin refused for the node's present state applies
// by itself once that state allows it; one the parser rejected is not
// retried, and a file change cancels the retry of the refused one.
func TestRefusedConfigurationRetried(t *testing.T) {
	r := newRig(t, nil, func(w *Watcher) { w.Retry = 100 * time.Millisecond })
	r.mu.Lock()
	r.fail = errors.New("the shared pool would be empty")
	r.mu.Unlock()
	r.write("[policy]\nreserved_cpus = \"0-1\"\nstrict_reserved = true\n")
	if res := r.next(); res.Err == nil {
		t.Fatalf("result %+v, want the refusal", res)
	}
	r.quiet(350 * time.Millisecond) // retries that fail report nothing
	if e := r.logged(logrus.DebugLevel, "still refused on retry"); e == nil {
		t.Error("no retry was made")
	}
	r.mu.Lock()
	r.fail = nil
	r.mu.Unlock()
	res := r.next()
	if res.Err != nil || len(res.Changed) != 2 || r.appliedCount() != 1 || r.applied[0].Policy.ReservedCPUs != "0-1" {
		t.Fatalf("after the state allows it: %+v, applied %d", res, r.appliedCount())
	}
	if r.logged(logrus.InfoLevel, "a configuration refused earlier applies now") == nil {
		t.Error("the late reload was not logged")
	}
	r.quiet(300 * time.Millisecond) // applied once, not again

	// A refused configuration replaced by an invalid file is not retried.
	r.mu.Lock()
	r.fail = errors.New("refused")
	r.mu.Unlock()
	r.write("[policy]\nmode = \"packed\"\n")
	if res := r.next(); res.Err == nil {
		t.Fatalf("result %+v, want the refusal", res)
	}
	r.write("[policy]\nmode = \"sideways\"\n")
	if res := r.next(); res.Err == nil {
		t.Fatalf("result %+v, want the parse error", res)
	}
	r.mu.Lock()
	r.fail = nil
	r.mu.Unlock()
	r.quiet(350 * time.Millisecond)
	if r.appliedCount() != 1 {
		t.Errorf("applied %d configurations, want 1", r.appliedCount())
	}
}

// A refused configuration is not retried once its file is gone: a deleted
// file counts as invalid, not as the last refused contents.
func TestRefusedConfigurationNotRetriedAfterDelete(t *testing.T) {
	r := newRig(t, nil, func(w *Watcher) { w.Retry = 100 * time.Millisecond })
	r.mu.Lock()
	r.fail = errors.New("the shared pool would be empty")
	r.mu.Unlock()
	r.write("[policy]\nmode = \"packed\"\n")
	if res := r.next(); res.Err == nil {
		t.Fatalf("result %+v, want the refusal", res)
	}
	if err := os.Remove(r.path); err != nil {
		t.Fatal(err)
	}
	if res := r.next(); res.Err == nil {
		t.Fatalf("result %+v, want the read error", res)
	}
	r.mu.Lock()
	r.fail = nil
	r.mu.Unlock()
	r.quiet(400 * time.Millisecond)
	if r.appliedCount() != 0 {
		t.Errorf("applied %d configurations after the file was deleted", r.appliedCount())
	}
}
