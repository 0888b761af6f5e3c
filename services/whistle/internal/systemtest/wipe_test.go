package systemtest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// The wipe test's deadlines. The raises are spread over wipeRaising, and Redis is wiped once they
// are all in: by then report-ins have been falling due for a while, the last of them fall due
// while the system is down, and the resolutions fall due until well after it runs again. On a
// loaded machine the raising has taken twice wipeRaising and the stop, replay and start 25 s, so
// the last resolutions fall due wipeResolve after the wipe, with room beyond that.
const (
	wipeReportIn = 4 * time.Second
	wipeResolve  = 40 * time.Second
	wipeRaising  = 15 * time.Second
	// wipeIssues is how many issues are raised; the sample city routes each to one unit or more,
	// each part with both deadlines.
	wipeIssues = 600
)

// TestWipingRedisAndReplayingWhileThousandsOfDeadlinesFallDueFiresEachOnce raises six hundred
// issues over some seconds, whose parts' deadlines fall due over as many, and, once a share of
// them has fired, wipes Redis (FLUSHALL) under the running system, stops it, replays the stream
// as `whistle replay` does, and starts it again, while deadlines go on falling due: some pass
// while nothing runs, and the rest after. Then every deadline must have exactly one breach in the stream,
// none missing and none twice, naming the frozen deadline and stored no earlier than it; and
// escalation's breaches, rebuilt from the stream, must list exactly those breach events, once each.
func TestWipingRedisAndReplayingWhileThousandsOfDeadlinesFallDueFiresEachOnce(t *testing.T) {
	dir := t.TempDir()
	quick := WithCatalog(QuickCatalog(t, wipeReportIn, wipeResolve))
	sys := Start(t, dir, clock.Real(), quick)
	routed, _ := routable(t, Dial(t, sys, Supervisor()))
	began := time.Now()
	ids := raiseMany(t, sys, "wipe", wipeIssues, wipeRaising, grids(t), routed)
	last := time.Now().Add(wipeResolve) // every deadline was counted from a raise stored before now
	t.Logf("raised %d issues in %s", len(ids), time.Since(began).Round(time.Millisecond))

	before, err := ReadFirings(t.Context(), sys.Deps().Log)
	if err != nil {
		t.Fatal(err)
	}
	wiped := time.Now()
	if err := sys.Deps().Redis.FlushAll(t.Context()).Err(); err != nil {
		t.Fatalf("flush redis: %v", err)
	}
	Stop(t, sys)
	ctx, cancel := context.WithTimeout(t.Context(), waitTotal)
	defer cancel()
	res, err := system.Replay(ctx, Options(dir, clock.Real(), quick))
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if res.Appended != 0 {
		t.Errorf("the stream gained %d events while the replay ran, with nothing else running", res.Appended)
	}
	sys = Start(t, dir, clock.Real(), quick)
	restarted := time.Now()
	t.Logf("wiped after %d breaches, replayed %d events in %s, started again %s after the wipe",
		before.Breaches(), res.Events, res.Elapsed.Round(time.Millisecond), restarted.Sub(wiped).Round(time.Millisecond))

	WaitFired(t, sys.Deps().Log, last, waitTotal, time.Second)
	// No breach more can follow once every service has applied everything and escalation keeps
	// no timer; only then is the check that none fired twice final.
	Settle(t, sys)
	wait.For(t, waitTotal, 100*time.Millisecond, func() error { return NoTimers(t.Context(), sys.Deps().Redis) })
	fs, err := ReadFirings(t.Context(), sys.Deps().Log)
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.Check(); err != nil {
		t.Error(err)
	}

	// The rebuilt breaches view lists each breach event of the stream once, as the stream holds it.
	recorded := map[uint64]eventlog.Record{}
	for _, f := range fs.Clocks {
		for _, b := range f.Breaches {
			recorded[b.Seq] = b
		}
	}
	listed := map[uint64]int{}
	for _, b := range breaches(t, Dial(t, sys, Supervisor())) {
		listed[b.GetSeq()]++
		rec, ok := recorded[b.GetSeq()]
		switch {
		case !ok:
			t.Errorf("escalation lists a breach of %s %s %s at %d, which the stream does not hold",
				b.GetIssueId(), b.GetUnitId(), b.GetKind(), b.GetSeq())
		case !b.GetDeadline().AsTime().Equal(rec.Event.GetBreached().GetDeadline().AsTime()) ||
			!b.GetBreachedAt().AsTime().Equal(rec.Time) || b.GetIssueId() != rec.Event.GetIssueId() ||
			b.GetUnitId() != rec.Event.GetBreached().GetUnitId() || b.GetKind() != rec.Event.GetBreached().GetKind():
			t.Errorf("escalation lists the breach at %d as %v; the stream holds %v stored at %s", b.GetSeq(), b, rec.Event, rec.Time)
		}
	}
	for seq, n := range listed {
		if n != 1 {
			t.Errorf("escalation lists the breach at %d %d times", seq, n)
		}
	}
	for seq, rec := range recorded {
		if listed[seq] == 0 {
			t.Errorf("escalation does not list the breach at %d of %s %s", seq, rec.Event.GetIssueId(), rec.Event.GetBreached().GetUnitId())
		}
	}

	// The test proves nothing unless thousands of deadlines fell due, every issue's among them,
	// some while nothing ran after the wipe and some once the system ran again.
	issues := map[string]bool{}
	down, after := 0, 0
	for c, f := range fs.Clocks {
		issues[c.Issue] = true
		switch {
		case !f.Deadline.Before(wiped) && f.Deadline.Before(restarted):
			down++
		case !f.Deadline.Before(restarted):
			after++
		}
	}
	for _, id := range ids {
		if !issues[id] {
			t.Errorf("issue %s was raised and has no deadline in the stream", id)
		}
	}
	if len(fs.Clocks) < 2000 || before.Breaches() == 0 || down == 0 || after == 0 {
		t.Errorf("%d deadlines fell due, %d fired before the wipe, %d fell due between the wipe and the start after the replay, "+
			"%d after it; want at least 2000, and some of each", len(fs.Clocks), before.Breaches(), down, after)
	}
	t.Logf("%d deadlines fell due: %d fired before the wipe, %d between the wipe and the start after the replay, %d after; each fired once",
		len(fs.Clocks), before.Breaches(), down, after)
}

// raiseMany raises n issues, one every span/n (up to sixteen at a time), each grid and category in
// turn, as each grid's worker, and returns their ids.
func raiseMany(t *testing.T, sys *system.System, prefix string, n int, span time.Duration, grids, categories []string) []string {
	t.Helper()
	workers := map[string]Clients{}
	for _, g := range grids {
		workers[g] = Dial(t, sys, GridWorker(g))
	}
	ids := make([]string, n)
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for range 16 {
		wg.Go(func() {
			for i := range next {
				grid := grids[i%len(grids)]
				res, err := workers[grid].Intake.RaiseIssue(t.Context(), &whistlev1.RaiseIssueRequest{
					RequestId: fmt.Sprintf("%s-%d", prefix, i), GridId: grid, CategoryId: categories[i%len(categories)],
					Urgency: whistlev1.Urgency_URGENCY_NORMAL, Text: "left to breach",
				})
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("raise %d: %w", i, err))
				}
				ids[i] = res.GetIssue().GetId()
				mu.Unlock()
			}
		})
	}
	pace := time.NewTicker(span / time.Duration(n))
	defer pace.Stop()
	for i := range n {
		<-pace.C
		next <- i
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d raises failed, the first: %v", len(errs), errs[0])
	}
	return ids
}
