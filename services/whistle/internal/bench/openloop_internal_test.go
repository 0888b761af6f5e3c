package bench

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestTicksScheduleEveryRaiseDueBeforeTheDurationEnds(t *testing.T) {
	cases := []struct {
		rate float64
		d    time.Duration
		want int
	}{
		{200, 10 * time.Second, 2000},
		{3, time.Second, 3},
		{0.5, 3 * time.Second, 2}, // at 0s and 2s
		{1000, 10 * time.Millisecond, 10},
		{1, 500 * time.Millisecond, 1},
	}
	for _, c := range cases {
		if got := ticks(c.rate, c.d); got != c.want {
			t.Errorf("ticks(%g/s, %s) = %d, want %d", c.rate, c.d, got, c.want)
		}
	}
	start := time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)
	if got, want := tick(start, 3, 2), start.Add(666666667*time.Nanosecond); !got.Equal(want) {
		t.Errorf("the third raise at 3/s is due at %s, want %s", got, want)
	}
}

func TestTheOpenLoopTimesEachIssueFromWhenItsRaiseWasDueAndCountsTheDropped(t *testing.T) {
	t.Parallel()
	p := pair{"grid", "category"}
	tr := newTracker(map[pair][]string{p: {"lead"}})
	const (
		rate     = 1000
		duration = 10 * time.Millisecond // ten raises, due a millisecond apart
		failing  = 3                     // its raise fails
		lost     = 5                     // never shows in the inbox
		stalled  = 7                     // shows, but is never resolved
	)
	start := time.Now()
	var mu sync.Mutex
	var asked []time.Time
	o := &openLoop{
		rate: rate, duration: duration, grace: 100 * time.Millisecond, tr: tr,
		// A scheduler that never waits sends every raise at once, as a stalled machine would
		// once it came back; each issue's time must still run from when it was due.
		sleepUntil: func(_ context.Context, at time.Time) error {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, at)
			return nil
		},
		raise: func(_ context.Context, i int) (string, error) {
			if i == failing {
				return "", errors.New("unavailable")
			}
			id := "case-" + strconv.Itoa(i)
			due := tick(start, rate, i)
			if i != lost {
				// Issue i shows in the inbox (i+1) ms after it was due: the officer may see it
				// before the raise returns.
				tr.arrived(id, "lead", true, due.Add(time.Duration(i+1)*time.Millisecond))
			}
			if i != lost && i != stalled {
				tr.resolvedBy(id, p, due.Add(time.Duration(2*i+2)*time.Millisecond))
			}
			return id, nil
		},
	}
	r, err := o.run(t.Context(), start)
	if err != nil {
		t.Fatal(err)
	}
	for i, at := range asked {
		if want := start.Add(time.Duration(i) * time.Millisecond); !at.Equal(want) {
			t.Errorf("raise %d was scheduled at %s after the start, want %s", i, at.Sub(start), want.Sub(start))
		}
	}
	if r.Scheduled != 10 || r.Raised != 9 || r.Completed != 7 || r.RaiseFailed != 1 || r.NotInInbox != 1 || r.NotResolved != 1 {
		t.Errorf("scheduled %d, raised %d, completed %d; dropped: %d raises failed, %d never in the inbox, %d not resolved; want 10, 9, 7; 1, 1, 1",
			r.Scheduled, r.Raised, r.Completed, r.RaiseFailed, r.NotInInbox, r.NotResolved)
	}
	var want []time.Duration
	for i := range 10 {
		if i != failing && i != lost {
			want = append(want, time.Duration(i+1)*time.Millisecond)
		}
	}
	if got := slices.Sorted(slices.Values(r.Inbox)); !slices.Equal(got, want) {
		t.Errorf("raise → inbox times %v, want %v: each from when its raise was due", got, want)
	}
	// The last completed lifecycle is the ninth raise, due at 9 ms and resolved 20 ms later.
	if want := 29 * time.Millisecond; r.Wall != want {
		t.Errorf("first scheduled raise → last resolve is %s, want %s", r.Wall, want)
	}
	if len(r.Late) != 10 {
		t.Errorf("%d send lags recorded, want one per scheduled raise", len(r.Late))
	}
}

func TestAnOpenLoopPercentileCountsADroppedRaiseAsSlowerThanAnyThatArrived(t *testing.T) {
	o := &OpenLoop{Scheduled: 4, Inbox: []time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond}}
	if got := openPercentile(o, 50); got.dropped || got.d != 2*time.Millisecond {
		t.Errorf("p50 of 1, 2, 3 ms and one dropped = %v, want 2 ms", got)
	}
	if got := openPercentile(o, 75); got.dropped || got.d != 3*time.Millisecond {
		t.Errorf("p75 = %v, want 3 ms", got)
	}
	if got := openPercentile(o, 99); !got.dropped || got.String() != "never (dropped)" {
		t.Errorf("p99 = %v, want it to fall on the dropped raise", got)
	}
}
