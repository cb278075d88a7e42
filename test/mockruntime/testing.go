package mockruntime

import (
	"context"
	"testing"
	"time"
)

// NewForTest creates and starts a runtime for t, and at cleanup closes it
// and reports every recorded invariant violation as a test error.
func NewForTest(t testing.TB, opts ...Option) *Runtime {
	t.Helper()
	r, err := New(opts...)
	if err != nil {
		t.Fatalf("mockruntime: %v", err)
	}
	t.Cleanup(func() {
		for _, v := range r.Violations() {
			t.Errorf("mockruntime: invariant violated %v", v)
		}
		if err := r.Close(); err != nil {
			t.Errorf("mockruntime: close: %v", err)
		}
	})
	if err := r.Start(); err != nil {
		t.Fatalf("mockruntime: start: %v", err)
	}
	return r
}

// MustWaitForSync is WaitForSync with a timeout that fails the test.
func (r *Runtime) MustWaitForSync(t testing.TB, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := r.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
}
