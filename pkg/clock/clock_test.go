package clock_test

import (
	"errors"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
)

var start = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// fired reports whether ch has a value ready, without waiting.
func fired(ch <-chan time.Time) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestFakeAfterFiresOnlyWhenTheClockReachesTheDeadline(t *testing.T) {
	t.Parallel()
	f := clock.NewFake(start)
	ch := f.After(time.Minute)
	f.Advance(59 * time.Second)
	if fired(ch) {
		t.Fatal("fired before the deadline")
	}
	f.Advance(time.Second)
	select {
	case got := <-ch:
		if !got.Equal(start.Add(time.Minute)) {
			t.Fatalf("fired with %v, want %v", got, start.Add(time.Minute))
		}
	default:
		t.Fatal("did not fire at the deadline")
	}
	if n := f.Waiters(); n != 0 {
		t.Fatalf("Waiters() = %d after firing, want 0", n)
	}
}

func TestFakeAfterWithNoDurationFiresAtOnce(t *testing.T) {
	t.Parallel()
	f := clock.NewFake(start)
	for _, d := range []time.Duration{0, -time.Second} {
		if !fired(f.After(d)) {
			t.Fatalf("After(%v) did not fire at once", d)
		}
	}
	if n := f.Waiters(); n != 0 {
		t.Fatalf("Waiters() = %d, want 0", n)
	}
}

func TestFakeSetFiresDueWaitersAndKeepsTheRest(t *testing.T) {
	t.Parallel()
	f := clock.NewFake(start)
	early, late := f.After(time.Hour), f.After(2*time.Hour)
	f.Set(start.Add(90 * time.Minute))
	if !fired(early) || fired(late) {
		t.Fatal("Set fired the wrong waiters")
	}
	if n := f.Waiters(); n != 1 {
		t.Fatalf("Waiters() = %d, want 1", n)
	}
	if got := f.Now(); !got.Equal(start.Add(90 * time.Minute)) {
		t.Fatalf("Now() = %v after Set", got)
	}
}

func TestFakeWakesAGoroutineThatSleepsOnIt(t *testing.T) {
	t.Parallel()
	f := clock.NewFake(start)
	woke := make(chan time.Time)
	go func() { woke <- <-f.After(10 * time.Second) }()

	wait.For(t, 5*time.Second, time.Millisecond, func() error {
		if f.Waiters() != 1 {
			return errors.New("goroutine not asleep yet")
		}
		return nil
	})
	f.Advance(10 * time.Second)
	if got := <-woke; !got.Equal(start.Add(10 * time.Second)) {
		t.Fatalf("woke at %v", got)
	}
}

func TestRealClockMovesForward(t *testing.T) {
	t.Parallel()
	c := clock.Real()
	before := c.Now()
	<-c.After(time.Millisecond)
	if !c.Now().After(before) {
		t.Fatal("real clock did not move")
	}
}
