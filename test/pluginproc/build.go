package pluginproc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Command is the import path of the numaspread command.
const Command = "github.com/numaspread/numaspread/cmd/numaspread"

// builds remembers BuildBinary's results, by output folder.
var builds struct {
	mu sync.Mutex
	m  map[string]*build
}

type build struct {
	once sync.Once
	env  []string
	path string
	err  error
}

// BuildBinary builds the numaspread command with `go build` into
// dir/numaspread, the environment extended by env (e.g. "CGO_ENABLED=0",
// "GOFLAGS=-trimpath"), and returns its path. It builds once per test
// process for each dir: later calls return the first build's path, or fail
// the same way. dir must outlive every test that uses the binary (make it in
// TestMain, not with t.TempDir, when several tests share it). A failed build
// fails tb.
//
// The build runs in a child process, whose reads go test does not see: so
// that an edit anywhere in the module still invalidates a cached test
// result, BuildBinary also stats every Go source file of the module, plus
// go.mod and go.sum, from the calling test (go test records the files a
// test touches while tests run, not in TestMain before m.Run).
func BuildBinary(tb testing.TB, dir string, env ...string) string {
	tb.Helper()
	statSources()
	builds.mu.Lock()
	if builds.m == nil {
		builds.m = map[string]*build{}
	}
	b := builds.m[dir]
	if b == nil {
		b = &build{env: slices.Clone(env)}
		builds.m[dir] = b
	}
	builds.mu.Unlock()
	if !slices.Equal(b.env, env) {
		tb.Fatalf("BuildBinary: %s was built with environment %q, asked for %q", dir, b.env, env)
	}
	b.once.Do(func() { b.path, b.err = goBuild(dir, env) })
	if b.err != nil {
		tb.Fatal(b.err)
	}
	return b.path
}

func goBuild(dir string, env []string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	// go test puts $GOROOT/bin first in PATH.
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("go build %s: %w", Command, err)
	}
	out := filepath.Join(dir, "numaspread")
	cmd := exec.Command(goTool, "build", "-o", out, Command)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s (%s): %v\n%s", Command, strings.Join(env, " "), err, b)
	}
	return out, nil
}

// moduleRoot is the folder of the go.mod above the working directory (a
// test runs in its package's folder).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("pluginproc: no go.mod above the working directory")
		}
		dir = parent
	}
}

// statSources stats every Go source file of the module and its go.mod and
// go.sum (see BuildBinary), once per process.
var statSources = sync.OnceFunc(func() {
	root, err := moduleRoot()
	if err != nil {
		return
	}
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return nil
		case d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata"):
			return filepath.SkipDir
		case !d.IsDir() && (strings.HasSuffix(path, ".go") || d.Name() == "go.mod" || d.Name() == "go.sum"):
			_, _ = os.Stat(path)
		}
		return nil
	})
})
