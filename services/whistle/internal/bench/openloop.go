package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"time"
)

// OpenLoopGrace is how long after the last scheduled raise the open loop waits for issues still
// in flight; an issue not in its lead department's inbox, or not resolved by every department,
// by then is dropped.
const OpenLoopGrace = lifecycleTimeout

// OpenLoop is what the open-loop run measured.
type OpenLoop struct {
	// Rate is the raises scheduled per second, over Duration; Grace is OpenLoopGrace.
	Rate            float64
	Duration, Grace time.Duration
	// Scheduled is how many raises were due; Raised how many RaiseIssue calls succeeded, and
	// Completed how many lifecycles every department resolved, within the grace.
	Scheduled, Raised, Completed int
	// RaiseFailed, NotInInbox and NotResolved are the dropped issues by how far they got: the
	// raise failed (or had no answer), the lead department's assignment never showed on its
	// WatchInbox stream, or it showed but not every department resolved the issue (or an officer
	// failed to). They add up to Scheduled − Completed.
	RaiseFailed, NotInInbox, NotResolved int
	// Inbox holds, for each issue that showed in the lead department's inbox, the time from when
	// its raise was scheduled to when it showed: what a caller arriving at that moment waited,
	// queueing in the bench's own process included.
	Inbox []time.Duration
	// Late holds, per raise, how long after its scheduled time the call was made: the bench's
	// own lag, which a saturated machine shows here and which Inbox already includes.
	Late []time.Duration
	// Wall is the time from the first scheduled raise to the last lifecycle resolved.
	Wall time.Duration
	// Cost is what the run cost, read from the first scheduled raise until every issue completed
	// or was dropped and the services caught up.
	Cost Cost
}

// openLoop schedules raises at a fixed rate, each on a goroutine of its own, whatever became of
// the earlier ones, and follows each to its end or to the grace's.
type openLoop struct {
	rate            float64
	duration, grace time.Duration
	tr              *tracker
	// sleepUntil returns at t, or with ctx's error when ctx ends first.
	sleepUntil func(ctx context.Context, t time.Time) error
	// raise raises the i-th issue and returns its case number.
	raise func(ctx context.Context, i int) (string, error)
}

// tick is when the i-th raise of an open loop that started at start is due.
func tick(start time.Time, rate float64, i int) time.Time {
	return start.Add(time.Duration(math.Round(float64(i) * float64(time.Second) / rate)))
}

// ticks is how many raises an open loop of rate over d schedules: those due before d has passed.
func ticks(rate float64, d time.Duration) int {
	n := 0
	for float64(n)*float64(time.Second)/rate < float64(d) {
		n++
	}
	return n
}

// outcome is what became of one scheduled raise.
type outcome struct {
	at, sent        time.Time // when it was due, and when the call was made
	id              string    // empty when the raise failed
	inbox, finished time.Time // zero when it did not happen within the grace
}

// run schedules the raises from start and returns once each has completed or the grace after
// the last scheduled raise has passed. It ends early, with ctx's cause, if ctx does.
func (o *openLoop) run(ctx context.Context, start time.Time) (*OpenLoop, error) {
	end := start.Add(o.duration)
	gctx, cancel := context.WithDeadline(ctx, end.Add(o.grace))
	defer cancel()
	outcomes := make([]outcome, ticks(o.rate, o.duration))
	var raises sync.WaitGroup
	for i := range outcomes {
		at := tick(start, o.rate, i)
		if err := o.sleepUntil(gctx, at); err != nil {
			break // only ctx ending can stop the schedule: the grace begins after the last tick
		}
		raises.Go(func() { outcomes[i] = o.one(gctx, i, at) })
	}
	raises.Wait()
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}

	r := &OpenLoop{Rate: o.rate, Duration: o.duration, Grace: o.grace, Scheduled: len(outcomes)}
	last := start
	for _, oc := range outcomes {
		r.Late = append(r.Late, oc.sent.Sub(oc.at))
		switch {
		case oc.id == "":
			r.RaiseFailed++
			continue
		case oc.inbox.IsZero():
			r.NotInInbox++
		case oc.finished.IsZero():
			r.NotResolved++
		default:
			r.Completed++
			last = maxTime(last, oc.finished)
		}
		r.Raised++
		if !oc.inbox.IsZero() {
			r.Inbox = append(r.Inbox, oc.inbox.Sub(oc.at))
		}
	}
	r.Wall = last.Sub(start)
	return r, nil
}

// one raises the i-th issue, due at at, and waits for its lifecycle to end or ctx to. Its times
// are taken as they stood when it stopped waiting, so that nothing after the grace counts.
func (o *openLoop) one(ctx context.Context, i int, at time.Time) outcome {
	oc := outcome{at: at, sent: time.Now()}
	id, err := o.raise(ctx, i)
	if err != nil {
		return oc
	}
	oc.id = id
	// The time runs from when its raise was due, not from when the call was made.
	select {
	case <-o.tr.raised(id, at):
	case <-ctx.Done():
	}
	// An issue an officer failed on has no finish: it is dropped as not resolved.
	oc.inbox, oc.finished, _ = o.tr.state(id)
	if deadline, ok := ctx.Deadline(); ok {
		if oc.inbox.After(deadline) {
			oc.inbox = time.Time{}
		}
		if oc.finished.After(deadline) {
			oc.finished = time.Time{}
		}
	}
	return oc
}

// maxTime is the later of a and b.
func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// sleepUntil returns at t, or with ctx's error when ctx ends first.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// runOpenLoop raises cfg.Rate issues a second for cfg.Duration on the session's system, each
// on time whatever became of the earlier ones, and records in res what became of them and what
// they cost, as pr reads it from the first scheduled raise until the services caught up after the
// last lifecycle ended (or was dropped).
func runOpenLoop(s *session, cfg Config, pr *probe, log io.Writer, res *Result) error {
	settleOrSay(s.ctx, pr, log)
	before := pr.read(s.ctx, false)
	o := &openLoop{
		rate: cfg.Rate, duration: cfg.Duration, grace: OpenLoopGrace, tr: s.tr, sleepUntil: sleepUntil,
		raise: func(ctx context.Context, i int) (string, error) {
			return s.raiser.raise(ctx, s.pairs[i%len(s.pairs)], "open-"+strconv.Itoa(i))
		},
	}
	r, err := o.run(s.ctx, time.Now())
	if err != nil {
		return err
	}
	if r.Scheduled > r.Completed {
		fmt.Fprintf(log, "bench: open loop dropped %d of %d issues (%d raises failed, %d never in the inbox, %d not resolved within %s of the last scheduled raise)\n",
			r.Scheduled-r.Completed, r.Scheduled, r.RaiseFailed, r.NotInInbox, r.NotResolved, r.Grace)
	}
	settleOrSay(s.ctx, pr, log)
	r.Cost = costOf(before, pr.read(s.ctx, true), r.Completed, pr.local)
	res.Open = r
	return nil
}
