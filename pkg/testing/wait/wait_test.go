package wait_test

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
)

func TestForReturnsOnceTheCheckPasses(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	wait.For(t, 5*time.Second, time.Millisecond, func() error {
		if calls.Add(1) < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if got := calls.Load(); got != 3 {
		t.Fatalf("check called %d times, want 3", got)
	}
}

// recorder stands in for the test given to For, so that the failing path can be
// observed without failing this test; like the real Fatalf, its Fatalf stops the goroutine.
type recorder struct {
	testing.TB
	err error
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(_ string, args ...any) {
	r.err, _ = args[len(args)-1].(error)
	panic(r)
}

func TestForFailsWithTheLastErrorAfterTheTimeout(t *testing.T) {
	t.Parallel()
	r := &recorder{TB: t}
	n := 0
	func() {
		defer func() {
			if p := recover(); p != r {
				t.Fatalf("For did not fail the test: recovered %v", p)
			}
		}()
		wait.For(r, 20*time.Millisecond, time.Millisecond, func() error {
			n++
			return fmt.Errorf("attempt %d", n)
		})
	}()
	if want := fmt.Sprintf("attempt %d", n); n < 2 || r.err == nil || r.err.Error() != want {
		t.Fatalf("failed with %v after %d attempts, want %q", r.err, n, want)
	}
}
