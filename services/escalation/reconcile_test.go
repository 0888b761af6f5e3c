package escalation_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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
