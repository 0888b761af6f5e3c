package escalation_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	"github.com/whistle-dispatch/whistle/services/escalation"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/app"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/store"
)

// lastReconciliation reads what the last complete reconciliation found.
func (h *harness) lastReconciliation() store.Reconciliation {
	h.T.Helper()
	r, err := store.New(h.Deps.Redis, h.Deps.Catalog.Calendar(), nil).LastReconciliation(context.Background())
	if err != nil {
		h.T.Fatal(err)
	}
	return r
}

// waitReconciled waits until a reconciliation that began at or after from has completed, and
// returns what it found.
func (h *harness) waitReconciled(from time.Time) store.Reconciliation {
	h.T.Helper()
	var r store.Reconciliation
	wait.For(h.T, 10*time.Second, 5*time.Millisecond, func() error {
		if r = h.lastReconciliation(); r.At.Before(from) {
			return fmt.Errorf("the last reconciliation began at %s, before %s", r.At, from)
		}
		return nil
	})
	return r
}

func TestTheReconciliationPutsBackATimerLostBehindTheStoresBackAndOneMovedLateAndCountsThem(t *testing.T) {
	h := newHarness(t)
	const every = time.Hour
	h.runWith(escalation.Config{ReconcileEvery: every})
	ctx := context.Background()

	// The first pass runs when the loop first holds the lease, and finds nothing.
	if r := h.waitReconciled(h.t0); r.Repaired != 0 {
		t.Fatalf("the first reconciliation repaired %d timers of an empty projection", r.Repaired)
	}

	lost, moved, intact := issue(t, 1), issue(t, 2), issue(t, 3)
	for _, id := range []string{lost, moved, intact} {
		h.raiseAndRoute(id, "xinhua-taoyuan-01", "water-supply", "water", 10*every, 20*every)
		h.waitTimer(id, "water", "report-in", true)
	}
	h.Settled(app.ServiceName)
	want := h.timerAt(moved, "water", "report-in")

	// Writes lost behind the projection's back: one timer gone, another due an hour late.
	if err := h.Deps.Redis.ZRem(ctx, store.TimersKey(lost), lost+"|water|report-in").Err(); err != nil {
		t.Fatal(err)
	}
	late := redis.Z{Score: float64(want.Add(time.Hour).UnixMilli()), Member: moved + "|water|report-in"}
	if err := h.Deps.Redis.ZAdd(ctx, store.TimersKey(moved), late).Err(); err != nil {
		t.Fatal(err)
	}

	// Nothing is repaired before the next pass is due.
	from := h.Clock.Now().Add(every)
	h.idle(1, every-2*app.LeaseCheck)
	if h.timerArmed(lost, "water", "report-in") {
		t.Fatal("the lost timer came back before a reconciliation was due")
	}
	h.idle(1, 2*app.LeaseCheck)

	r := h.waitReconciled(from)
	if r.Repaired != 2 {
		t.Errorf("the reconciliation repaired %d timers, want 2 (one missing, one late)", r.Repaired)
	}
	if !h.timerArmed(lost, "water", "report-in") {
		t.Error("the lost timer was not put back")
	}
	if got := h.timerAt(moved, "water", "report-in"); !got.Equal(want) {
		t.Errorf("the late timer is due at %s, want %s as the state owes", got, want)
	}
	if got, want := h.timerAt(intact, "water", "report-in"), h.t0.Add(10*every); !got.Equal(want) {
		t.Errorf("an intact timer is due at %s, want %s", got, want)
	}
	if !h.timerArmed(intact, "water", "resolve") || !h.timerArmed(lost, "water", "resolve") {
		t.Error("a resolve timer the state owes is missing")
	}

	// The next pass finds nothing more.
	from = h.Clock.Now().Add(every)
	h.idle(1, every+app.LeaseCheck)
	if r := h.waitReconciled(from); r.Repaired != 0 {
		t.Errorf("a pass after the repair repaired %d timers, want none", r.Repaired)
	}
}

func TestTheReconciliationLeavesTheTimersOfAnIssueTheStreamHasMovedPastItsState(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	s := store.New(h.Deps.Redis, h.Deps.Catalog.Calendar(), nil)
	id := issue(t, 1)
	h.raiseAndRoute(id, "xinhua-taoyuan-01", "water-supply", "water", farOff, 2*farOff)
	h.applyStream(s, id) // raised and routed: both timers armed
	var repaired []store.Repair
	reconcile := func() {
		t.Helper()
		repaired = nil
		if err := s.Reconcile(ctx, h.Deps.Log, func(r store.Repair) { repaired = append(repaired, r) }); err != nil {
			t.Fatal(err)
		}
	}

	// The stream moves on (water reports in) before the projection does, and both timers go
	// missing, as the loop drops a fired breach's timer before its own fold of the breach.
	h.acknowledge(id, "water")
	for _, kind := range []string{"report-in", "resolve"} {
		if err := h.Deps.Redis.ZRem(ctx, store.TimersKey(id), id+"|water|"+kind).Err(); err != nil {
			t.Fatal(err)
		}
	}
	reconcile()
	if len(repaired) != 0 {
		t.Fatalf("the reconciliation repaired %v on a state the stream has moved past", repaired)
	}
	// It took the stream's events into the state instead: a write of the projection lost in a
	// failover is mended so, and the fold wrote the index.
	if st, err := s.Issue(ctx, id); err != nil || st.LastSeq != h.lastSeq(id) {
		t.Fatalf("the state stands at %d (%v) after the reconciliation, the stream at %d", st.LastSeq, err, h.lastSeq(id))
	}

	// Its state, now past the report-in, owes the resolve timer alone, which the fold left as it
	// was: missing. That one the next pass puts back.
	reconcile()
	if len(repaired) != 1 || repaired[0].Timer.Name() != id+"|water|resolve" || repaired[0].Mismatch != store.Missing {
		t.Fatalf("the reconciliation repaired %v, want the resolve timer, missing", repaired)
	}
	if h.timerArmed(id, "water", "report-in") {
		t.Fatal("the report-in timer, cleared in time, was put back")
	}
}

func TestATimerWhoseIssuesStateLostItsDispatchTakesTheStreamsEventsAndBreaches(t *testing.T) {
	h := newHarness(t)
	first := h.run()
	ctx := context.Background()
	id := issue(t, 1)
	deadline := h.raiseAndRoute(id, "xinhua-taoyuan-01", "water-supply", "water", soon, farOff)
	h.waitTimer(id, "water", "report-in", true)
	h.Settled(app.ServiceName)
	first.stop()
	// A failover loses the document's writes (the timers, in another slot, survive): the state
	// is back before the dispatch, and no fold of it is coming. The replica that fires next has
	// not held the issue.
	raised := h.Stored(id, "raised")
	s := store.New(h.Deps.Redis, h.Deps.Catalog.Calendar(), nil)
	if err := h.Deps.Redis.Del(ctx, s.Key(id), "escalation:seq:{"+id+"}").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, raised); err != nil {
		t.Fatal(err)
	}
	h.run()
	h.pass(deadline, 1)
	h.drive(func() error {
		if n := len(h.breaches(id)); n != 1 {
			return fmt.Errorf("%d breaches so far", n)
		}
		return nil
	})
}

// applyStream applies the issue's events in the stream to s, as its consumer would.
func (h *harness) applyStream(s *store.Store, id string) {
	h.T.Helper()
	recs, err := h.Deps.Log.Read(context.Background(), id, 0)
	if err != nil {
		h.T.Fatal(err)
	}
	for _, rec := range recs {
		if err := s.Apply(context.Background(), rec); err != nil {
			h.T.Fatal(err)
		}
	}
}

// agedStream is the stream as it reads when its events were stored age ago: what a
// reconciliation that runs that long after a failover sees.
type agedStream struct {
	*eventlog.Log
	age time.Duration
}

func (s agedStream) CatchupTo(ctx context.Context, p eventlog.Projection, issueID string, seq uint64) ([]eventlog.Record, error) {
	recs, err := s.Log.CatchupTo(ctx, p, issueID, seq)
	for i := range recs {
		recs[i].Time = recs[i].Time.Add(-s.age)
	}
	return recs, err
}

func TestTheReconciliationFindsAnIssueWhoseDocumentWasLostWithItsTimersAndWritesBothAgain(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	s := store.New(h.Deps.Redis, h.Deps.Catalog.Calendar(), nil)
	lost, kept := issue(t, 1), issue(t, 2)
	for _, id := range []string{lost, kept} {
		h.raiseAndRoute(id, "xinhua-taoyuan-01", "water-supply", "water", farOff, 2*farOff)
		h.applyStream(s, id)
	}
	before, err := s.Issue(ctx, lost)
	if err != nil {
		t.Fatal(err)
	}
	// A failover loses every write of the issue: its document, its sequence and both timers.
	// Nothing is left in Redis to compare, and no fold is coming.
	lose := func() {
		t.Helper()
		if err := h.Deps.Redis.Del(ctx, s.Key(lost), "escalation:seq:{"+lost+"}", store.TimersKey(lost)).Err(); err != nil {
			t.Fatal(err)
		}
		s = store.New(h.Deps.Redis, h.Deps.Catalog.Calendar(), nil) // a process that never held it
		if h.timerArmed(lost, "water", "report-in") {
			t.Fatal("the timer is still armed")
		}
	}
	reconcile := func(stream store.Stream) []store.Repair {
		t.Helper()
		var repaired []store.Repair
		if err := s.Reconcile(ctx, stream, func(r store.Repair) { repaired = append(repaired, r) }); err != nil {
			t.Fatal(err)
		}
		return repaired
	}

	// Within the grace the issue may only be waiting for its consumer: written again, not counted.
	lose()
	if repaired := reconcile(h.Deps.Log); len(repaired) != 0 {
		t.Errorf("a loss within the grace was counted: %v", repaired)
	}
	if !h.timerArmed(lost, "water", "report-in") || !h.timerArmed(lost, "water", "resolve") {
		t.Fatal("the reconciliation did not write the lost issue's timers again")
	}

	// Past the grace it is a lost write: written again and counted, a timer at a time.
	lose()
	repaired := reconcile(agedStream{h.Deps.Log, store.BehindGrace + time.Minute})
	var names []string
	for _, r := range repaired {
		if r.Mismatch != store.Lost {
			t.Errorf("%s was counted %s, want %s", r.Timer.Name(), r.Mismatch, store.Lost)
		}
		names = append(names, r.Timer.Name())
	}
	slices.Sort(names)
	if want := []string{lost + "|water|report-in", lost + "|water|resolve"}; !slices.Equal(names, want) {
		t.Errorf("the reconciliation counted %v, want %v", names, want)
	}
	after, err := s.Issue(ctx, lost)
	if err != nil || after.LastSeq != before.LastSeq || !h.timerArmed(lost, "water", "report-in") || !h.timerArmed(lost, "water", "resolve") {
		t.Fatalf("after the reconciliation the issue stands at %d (%v), want %d, with both timers armed", after.LastSeq, err, before.LastSeq)
	}
	// The issue whose writes survived is left as it was, and a pass after the repair finds nothing.
	if repaired := reconcile(agedStream{h.Deps.Log, store.BehindGrace + time.Minute}); len(repaired) != 0 {
		t.Errorf("a pass after the repair repaired %v", repaired)
	}
}
