package escalation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/escalation"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/app"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/grpcapi"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/store"
	"github.com/whistle-dispatch/whistle/services/internal/casenum"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/internal/platform"
	"github.com/whistle-dispatch/whistle/services/internal/servicetest"
)

// Deadlines are judged on the stream's clock, the real one, so a deadline a test means to pass
// lies this little ahead of now; one it means never to pass lies far ahead.
const (
	soon   = 400 * time.Millisecond
	farOff = 30 * time.Minute
)

var (
	citySupervisor = authx.Principal{Subject: "sup-city", Role: authx.RoleSupervisor, Scope: catalog.CityScope}
	waterOfficer   = authx.Principal{Subject: "duty-water", Role: authx.RoleOfficer, Scope: "water"}
)

// harness is one test's world: real NATS and Redis, the sample catalog and a fake clock, on
// which any number of escalation instances run as replicas. The fake clock starts at the real
// time, so that deadlines set from it fall on the stream's clock where the test means them to;
// it only wakes the timer loops, and a test moves it once the stream's clock has passed a deadline.
type harness struct {
	*servicetest.Env
	t0 time.Time // when the fake clock started
}

// newHarness starts the servers of one test; they stop when it ends.
func newHarness(t *testing.T) *harness {
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	return &harness{Env: servicetest.NewEnv(t, t0), t0: t0}
}

// instance is one running escalation service, served over gRPC.
type instance struct {
	svc  *escalation.Service
	addr string
	stop func()
}

// run starts an instance; stop (also called at cleanup) ends its consumer and timer loop and
// checks that they stopped cleanly. Its gRPC server serves until the test ends.
func (h *harness) run() *instance {
	h.T.Helper()
	return h.runWith(escalation.Config{})
}

// runWith starts an instance configured by cfg, as run does.
func (h *harness) runWith(cfg escalation.Config) *instance {
	h.T.Helper()
	svc, err := escalation.New(h.Deps, cfg)
	if err != nil {
		h.T.Fatal(err)
	}
	return &instance{svc: svc, addr: h.Serve(svc.Register), stop: h.Run(svc)}
}

// client calls an instance as p.
func (h *harness) client(in *instance, p authx.Principal) whistlev1.EscalationServiceClient {
	return whistlev1.NewEscalationServiceClient(h.Dial(in.addr, p))
}

// issue returns a fresh case number.
func issue(t *testing.T, n int) string {
	return casenum.FromKey(fmt.Sprintf("%s/%d", t.Name(), n))
}

// append adds an event as the issue's next, as another service would; on a lost race it reads
// the new last sequence and tries again, as a duty officer acknowledging late still does.
func (h *harness) append(id, issueID string, payload func(*whistlev1.Event)) {
	h.T.Helper()
	ev := &whistlev1.Event{Id: id, IssueId: issueID, Actor: &whistlev1.Actor{Subject: "test", Role: "service"}}
	payload(ev)
	h.Append(ev)
}

// raiseAndRoute raises an issue in grid and routes it to dept with deadlines reportIn and
// resolve after the start of the clock, and returns the report-in deadline.
func (h *harness) raiseAndRoute(issueID, grid, category, dept string, reportIn, resolve time.Duration) time.Time {
	_, community, street, err := h.Deps.Catalog.Grid(grid)
	if err != nil {
		h.T.Fatal(err)
	}
	h.append(issueID+".raised", issueID, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Raised{Raised: &whistlev1.IssueRaised{GridId: grid, CommunityId: community.ID, StreetId: street.ID, CategoryId: category,
			Urgency: whistlev1.Urgency_URGENCY_NORMAL, Text: "a test issue"}}
	})
	h.append(issueID+".routed", issueID, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Routed{Routed: &whistlev1.IssueRouted{RuleId: "test", Dispatches: []*whistlev1.Dispatch{{
			DepartmentId: dept, Role: whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD,
			ReportInBy: timestamppb.New(h.t0.Add(reportIn)), ResolveBy: timestamppb.New(h.t0.Add(resolve)),
		}}}}
	})
	return h.t0.Add(reportIn)
}

// pass lets a deadline pass as the world does: it waits until the stream's clock has passed it,
// then, with the loops asleep, moves the services' clock past it by a lease check, which wakes
// every loop.
func (h *harness) pass(deadline time.Time, loops int) {
	h.T.Helper()
	wait.For(h.T, 10*time.Second, 5*time.Millisecond, func() error {
		now, err := h.Deps.Log.Now(context.Background())
		if err != nil || !now.After(deadline) {
			return fmt.Errorf("the stream's clock reads %s (%v), not past %s yet", now, err, deadline)
		}
		return nil
	})
	h.waitAsleep(loops)
	h.Clock.Set(later(h.Clock.Now(), deadline).Add(app.LeaseCheck))
}

// later returns the later of two times.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// acknowledge reports in for dept on the issue, as the department service would.
func (h *harness) acknowledge(issueID, dept string) {
	h.append(issueID+".acknowledged."+dept, issueID, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Acknowledged{Acknowledged: &whistlev1.AssignmentAcknowledged{DepartmentId: dept}}
	})
}

// events returns the issue's events in stream order.
func (h *harness) events(issueID string) []*whistlev1.Event {
	h.T.Helper()
	recs, err := h.Deps.Log.Read(context.Background(), issueID, 0)
	if err != nil {
		h.T.Fatal(err)
	}
	out := make([]*whistlev1.Event, len(recs))
	for i, r := range recs {
		out[i] = r.Event
	}
	return out
}

// lastSeq returns the sequence of the issue's latest event.
func (h *harness) lastSeq(issueID string) uint64 {
	h.T.Helper()
	seq, err := h.Deps.Log.Last(context.Background(), issueID)
	if err != nil {
		h.T.Fatal(err)
	}
	return seq
}

// breaches returns the issue's breach events.
func (h *harness) breaches(issueID string) []*whistlev1.DeadlineBreached {
	var out []*whistlev1.DeadlineBreached
	for _, ev := range h.events(issueID) {
		if b := ev.GetBreached(); b != nil {
			out = append(out, b)
		}
	}
	return out
}

// timerArmed reports whether the issue's deadline of a kind is in its timers shard.
func (h *harness) timerArmed(issueID, dept, kind string) bool {
	err := h.Deps.Redis.ZScore(context.Background(), store.TimersKey(issueID), issueID+"|"+dept+"|"+kind).Err()
	return err == nil
}

// waitTimer waits until the timer is armed (true) or gone (false).
func (h *harness) waitTimer(issueID, dept, kind string, armed bool) {
	h.T.Helper()
	wait.For(h.T, 10*time.Second, 5*time.Millisecond, func() error {
		if h.timerArmed(issueID, dept, kind) != armed {
			return fmt.Errorf("timer %s %s %s: armed is not %v", issueID, dept, kind, armed)
		}
		return nil
	})
}

// waitAsleep waits until n timer loops sleep on the fake clock, so that advancing it wakes them.
func (h *harness) waitAsleep(n int) {
	h.T.Helper()
	wait.For(h.T, 10*time.Second, 2*time.Millisecond, func() error {
		if got := h.Clock.Waiters(); got < n {
			return fmt.Errorf("%d timer loops asleep, want %d", got, n)
		}
		return nil
	})
}

// waitBreaches waits until the issue has n breach events.
func (h *harness) waitBreaches(issueID string, n int) []*whistlev1.DeadlineBreached {
	h.T.Helper()
	var got []*whistlev1.DeadlineBreached
	wait.For(h.T, 10*time.Second, 5*time.Millisecond, func() error {
		if got = h.breaches(issueID); len(got) != n {
			return fmt.Errorf("%d breaches of %s, want %d", len(got), issueID, n)
		}
		return nil
	})
	return got
}

// idle advances the clock once more by d with the loops asleep and waits until they sleep again,
// so that anything a loop would still fire has been fired.
func (h *harness) idle(loops int, d time.Duration) {
	h.T.Helper()
	h.waitAsleep(loops)
	h.Clock.Advance(d)
	h.waitAsleep(loops)
}

func TestAMissedReportInBreachesOnceAndShowsInListAndWatch(t *testing.T) {
	h := newHarness(t)
	in := h.run()
	sup := h.client(in, citySupervisor)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watch, err := sup.WatchBreaches(ctx, &whistlev1.WatchBreachesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Header(); err != nil { // the watch listens from here on
		t.Fatal(err)
	}

	id := issue(t, 1)
	deadline := h.raiseAndRoute(id, "xinhua-taoyuan-01", "water-supply", "water", soon, farOff)
	h.waitTimer(id, "water", "report-in", true)
	h.pass(deadline, 1)

	got := h.waitBreaches(id, 1)[0]
	if got.GetKind() != whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN || got.GetDepartmentId() != "water" ||
		!got.GetDeadline().AsTime().Equal(deadline) || got.GetClearedSeq() != 0 {
		t.Fatalf("breach %v, want water's report-in at %s, with nothing cleared", got, deadline)
	}
	h.waitTimer(id, "water", "report-in", false)
	if !h.timerArmed(id, "water", "resolve") {
		t.Fatal("the resolve deadline was dropped with the report-in one")
	}

	stored := h.Stored(id, "breached")
	if stored.Time.Before(deadline) {
		t.Fatalf("the breach was stored at %s, before its deadline %s", stored.Time, deadline)
	}
	want := &whistlev1.Breach{
		IssueId: id, DepartmentId: "water", Kind: whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN,
		Deadline: timestamppb.New(deadline), BreachedAt: timestamppb.New(stored.Time),
		GridId: "xinhua-taoyuan-01", StreetId: "xinhua", CategoryId: "water-supply", Seq: stored.Seq, UnitId: "water",
	}
	msg, err := watch.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(msg.GetBreach(), want) {
		t.Fatalf("watched %v, want %v", msg.GetBreach(), want)
	}
	list, err := sup.ListBreaches(ctx, &whistlev1.ListBreachesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetBreaches()) != 1 || !proto.Equal(list.GetBreaches()[0], want) {
		t.Fatalf("listed %v, want only %v", list.GetBreaches(), want)
	}

	h.idle(1, 10*time.Minute)
	if n := len(h.breaches(id)); n != 1 {
		t.Fatalf("%d breaches after the loop ran again, want 1", n)
	}

	// A watch resumed after a dropped stream gets what was recorded after the last breach it saw.
	resumed, err := sup.WatchBreaches(ctx, &whistlev1.WatchBreachesRequest{AfterSeq: stored.Seq - 1})
	if err != nil {
		t.Fatal(err)
	}
	if md, err := resumed.Header(); err != nil || !slices.Equal(md.Get(grpcapi.WatchAfterHeader), []string{fmt.Sprint(stored.Seq - 1)}) {
		t.Fatalf("resumed watch headers %v, %v; want it to follow from %d", md, err, stored.Seq-1)
	}
	if msg, err := resumed.Recv(); err != nil || !proto.Equal(msg.GetBreach(), want) {
		t.Fatalf("resumed watch sent %v, %v; want %v", msg, err, want)
	}
	past, err := sup.WatchBreaches(ctx, &whistlev1.WatchBreachesRequest{AfterSeq: 1 << 40})
	if err == nil {
		_, err = past.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a watch after a sequence the stream never reached: %v, want InvalidArgument", err)
	}
}

func TestAnAcknowledgedAssignmentNeverBreachesReportInButStillBreachesResolve(t *testing.T) {
	h := newHarness(t)
	h.run()
	id := issue(t, 1)
	h.raiseAndRoute(id, "hexi-binjiang-01", "gas-leak", "gas", farOff, soon)
	h.waitTimer(id, "gas", "report-in", true)
	h.acknowledge(id, "gas")
	h.waitTimer(id, "gas", "report-in", false)
	h.pass(h.t0.Add(soon), 1)

	got := h.waitBreaches(id, 1)[0]
	if got.GetKind() != whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE || !got.GetDeadline().AsTime().Equal(h.t0.Add(soon)) {
		t.Fatalf("breach %v, want gas's resolve", got)
	}
	h.idle(1, 24*time.Hour)
	if n := len(h.breaches(id)); n != 1 {
		t.Fatalf("%d breaches, want only the resolve one", n)
	}
}

func TestADeadlinePassingWhileTheServiceIsDownBreachesOnceAfterItRestarts(t *testing.T) {
	h := newHarness(t)
	first := h.run()
	id := issue(t, 1)
	deadline := h.raiseAndRoute(id, "dongfeng-yuanlin-02", "water-supply", "water", soon, farOff)
	h.waitTimer(id, "water", "report-in", true)
	h.waitAsleep(1)
	first.stop()
	h.pass(deadline, 0)

	h.run()
	h.waitBreaches(id, 1)
	h.idle(1, 10*time.Minute)
	if n := len(h.breaches(id)); n != 1 {
		t.Fatalf("%d breaches after the restart, want 1", n)
	}
}

func TestAnAcknowledgementStoredAfterTheDeadlineWhileEscalationIsStoppedIsOneBreachOnceItRuns(t *testing.T) {
	h := newHarness(t)
	first := h.run()
	id := issue(t, 1)
	deadline := h.raiseAndRoute(id, "xinhua-hebin-01", "blocked-drain", "water", soon, farOff)
	h.waitTimer(id, "water", "report-in", true)
	h.waitAsleep(1)
	first.stop()
	// Escalation is down at the deadline; the duty officer reports in after it.
	h.pass(deadline, 0)
	h.acknowledge(id, "water")
	ack := h.Stored(id, "acknowledged")
	if !ack.Time.After(deadline) {
		t.Fatalf("the acknowledgement was stored at %s, not after the deadline %s", ack.Time, deadline)
	}

	in := h.run()
	got := h.waitBreaches(id, 1)[0]
	if got.GetKind() != whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN || got.GetClearedSeq() != ack.Seq ||
		!got.GetClearedAt().AsTime().Equal(ack.Time) || !got.GetDeadline().AsTime().Equal(deadline) {
		t.Fatalf("breach %v; want the report-in breach recorded after the acknowledgement %d at %s", got, ack.Seq, ack.Time)
	}
	// The list is escalation's view, which shows the breach once its consumer applied it.
	wait.For(t, 10*time.Second, 5*time.Millisecond, func() error {
		list, err := h.client(in, citySupervisor).ListBreaches(context.Background(), &whistlev1.ListBreachesRequest{})
		if err != nil || len(list.GetBreaches()) != 1 || !list.GetBreaches()[0].GetClearedAt().AsTime().Equal(ack.Time) {
			return fmt.Errorf("listed %v, %v; want the breach saying it was recorded after the late acknowledgement", list, err)
		}
		return nil
	})
	h.idle(1, time.Hour)
	if n := len(h.breaches(id)); n != 1 {
		t.Fatalf("%d breaches, want 1", n)
	}
}

func TestAClockAheadOfTheStreamsBreachesNothingTheStreamHasNotSeenPass(t *testing.T) {
	// Escalation's clock runs an hour ahead of the stream's: by its own clock every deadline has
	// passed, but none has on the stream's, and the acknowledgements stored now are in time.
	h := newHarness(t)
	h.run()
	const n = 10
	ids := make([]string, n)
	for i := range ids {
		ids[i] = issue(t, i)
		h.raiseAndRoute(ids[i], "dongfeng-jinqiao-01", "blocked-drain", "water", 2*time.Minute, farOff)
	}
	for _, id := range ids {
		h.waitTimer(id, "water", "report-in", true)
	}
	h.waitAsleep(1)
	h.Clock.Advance(time.Hour)
	for _, id := range ids {
		h.acknowledge(id, "water")
	}
	for _, id := range ids {
		h.waitTimer(id, "water", "report-in", false)
	}
	h.idle(1, time.Hour)
	for _, id := range ids {
		if got := h.breaches(id); len(got) != 0 {
			t.Fatalf("%s: breaches %v, want none: every acknowledgement was stored before its deadline", id, got)
		}
	}
}

func TestAClockBehindTheStreamsStillBreachesALateAcknowledgementAtOnce(t *testing.T) {
	// Escalation's clock lags the stream's by an hour: its timers have not come due, but an
	// acknowledgement stored after its deadline owes the breach whatever that clock says.
	h := newHarness(t)
	h.Clock.Set(h.t0.Add(-time.Hour))
	h.run()
	id := issue(t, 1)
	deadline := h.raiseAndRoute(id, "xinhua-hebin-02", "blocked-drain", "water", soon, farOff)
	h.waitTimer(id, "water", "report-in", true)
	wait.For(t, 10*time.Second, 5*time.Millisecond, func() error {
		if now, _ := h.Deps.Log.Now(context.Background()); !now.After(deadline) {
			return fmt.Errorf("the stream's clock has not passed the deadline")
		}
		return nil
	})
	h.acknowledge(id, "water")
	got := h.waitBreaches(id, 1)[0]
	if got.GetClearedSeq() == 0 {
		t.Fatalf("breach %v; want one recorded after the late acknowledgement", got)
	}
}

func TestTwoReplicasBreachADeadlineOnce(t *testing.T) {
	h := newHarness(t)
	h.run()
	h.run()
	id := issue(t, 1)
	deadline := h.raiseAndRoute(id, "xinhua-hebin-02", "power-outage", "power", soon, farOff)
	h.waitTimer(id, "power", "report-in", true)
	h.pass(deadline, 2)

	h.waitBreaches(id, 1)
	h.idle(2, 10*time.Minute)
	if n := len(h.breaches(id)); n != 1 {
		t.Fatalf("%d breaches with two replicas, want 1", n)
	}
}

func TestAWipedRedisRebuildsTheSameViewWithoutASecondBreach(t *testing.T) {
	h := newHarness(t)
	first := h.run()
	id := issue(t, 1)
	deadline := h.raiseAndRoute(id, "xinhua-taoyuan-02", "noise", "environment", soon, farOff)
	h.waitTimer(id, "environment", "report-in", true)
	h.pass(deadline, 1)
	h.waitBreaches(id, 1)
	h.waitTimer(id, "environment", "report-in", false)

	ctx := context.Background()
	before, err := h.client(first, citySupervisor).ListBreaches(ctx, &whistlev1.ListBreachesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	timersBefore := h.Deps.Redis.ZRangeWithScores(ctx, store.TimersKey(id), 0, -1).Val()
	first.stop()
	if err := platform.Reset(ctx, h.Deps, first.svc); err != nil {
		t.Fatal(err)
	}
	if keys, err := redistest.Keys(ctx, h.Deps.Redis, store.Prefix+"*"); err != nil || len(keys) != 0 {
		t.Fatalf("escalation keys %v survived the reset (%v)", keys, err)
	}

	second := h.run()
	sup := h.client(second, citySupervisor)
	wait.For(t, 10*time.Second, 5*time.Millisecond, func() error {
		after, err := sup.ListBreaches(ctx, &whistlev1.ListBreachesRequest{})
		if err != nil {
			return err
		}
		if !proto.Equal(before, after) {
			return fmt.Errorf("rebuilt view %v, want %v", after, before)
		}
		return nil
	})
	h.waitTimer(id, "environment", "resolve", true)
	if after := h.Deps.Redis.ZRangeWithScores(ctx, store.TimersKey(id), 0, -1).Val(); !slices.Equal(after, timersBefore) {
		t.Fatalf("rebuilt timers %v, want %v", after, timersBefore)
	}
	h.idle(1, time.Minute)
	if n := len(h.breaches(id)); n != 1 {
		t.Fatalf("%d breaches after the rebuild, want 1", n)
	}
}

func TestATimerRacingALateAcknowledgementBreachesExactlyOnceWhoeverWins(t *testing.T) {
	h := newHarness(t)
	h.run()
	const n = 60
	ids := make([]string, n)
	var deadline time.Time
	for i := range ids {
		ids[i] = issue(t, i)
		deadline = h.raiseAndRoute(ids[i], "dongfeng-jinqiao-01", "blocked-drain", "water", soon, farOff)
	}
	for _, id := range ids {
		h.waitTimer(id, "water", "report-in", true)
	}
	// Once the deadline has passed, the loop fires the timers in name order while the officers
	// report in from the other end, so that the two meet somewhere in the middle, issue by issue.
	// Every acknowledgement is late, so every issue owes one breach: recorded by the timer before
	// the acknowledgement, or after it, naming it.
	slices.Sort(ids)
	h.pass(deadline, 1)
	for _, id := range slices.Backward(ids) {
		h.acknowledge(id, "water")
	}
	for _, id := range ids {
		h.waitTimer(id, "water", "report-in", false)
	}
	h.idle(1, time.Minute)

	afterAck := 0
	for _, id := range ids {
		evs := h.events(id)
		ack := slices.IndexFunc(evs, func(ev *whistlev1.Event) bool { return ev.GetAcknowledged() != nil })
		breach := slices.IndexFunc(evs, func(ev *whistlev1.Event) bool {
			return ev.GetBreached().GetKind() == whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN
		})
		if ack < 0 || breach < 0 {
			t.Fatalf("%s: acknowledgement at %d, breach at %d; want both", id, ack, breach)
		}
		if got := len(h.breaches(id)); got != 1 {
			t.Errorf("%s: %d breaches, want 1", id, got)
		}
		if b := evs[breach].GetBreached(); breach > ack {
			afterAck++
			if b.GetClearedSeq() == 0 {
				t.Errorf("%s: the breach recorded after the acknowledgement does not name it", id)
			}
		} else if b.GetClearedSeq() != 0 {
			t.Errorf("%s: the breach recorded before the acknowledgement names a clearing event", id)
		}
	}
	t.Logf("%d of %d breaches were recorded after their late acknowledgement", afterAck, n)
}

func TestTheDeadlineFrozenAtDispatchIsTheOneThatBreaches(t *testing.T) {
	h := newHarness(t)
	h.run()
	noise, err := h.Deps.Catalog.Category("noise")
	if err != nil {
		t.Fatal(err)
	}
	frozen := 2 * soon
	if noise.Policy(whistlev1.Urgency_URGENCY_NORMAL).ReportIn == frozen {
		t.Fatal("the catalog agrees with the frozen policy, so this test proves nothing")
	}
	id := issue(t, 1)
	deadline := h.raiseAndRoute(id, "hexi-binjiang-02", "noise", "environment", frozen, time.Hour)
	h.waitTimer(id, "environment", "report-in", true)
	h.pass(h.t0.Add(soon), 1)
	if n := len(h.breaches(id)); n != 0 {
		t.Fatalf("%d breaches before the frozen deadline", n)
	}
	h.pass(deadline, 1)
	got := h.waitBreaches(id, 1)[0]
	if !got.GetDeadline().AsTime().Equal(deadline) {
		t.Fatalf("breached deadline %s, want the frozen %s", got.GetDeadline().AsTime(), deadline)
	}
}

func TestListBreachesShowsEachCallerOnlyTheirScope(t *testing.T) {
	h := newHarness(t)
	in := h.run()
	water, power := issue(t, 1), issue(t, 2)
	first := h.raiseAndRoute(water, "xinhua-taoyuan-01", "water-supply", "water", soon, farOff)
	h.waitTimer(water, "water", "report-in", true)
	h.pass(first, 1)
	h.waitBreaches(water, 1)
	second := h.raiseAndRoute(power, "hexi-binjiang-01", "power-outage", "power", 2*soon, farOff)
	h.waitTimer(power, "power", "report-in", true)
	h.pass(second, 1)
	h.waitBreaches(power, 1)
	ctx := context.Background()

	tests := []struct {
		name   string
		caller authx.Principal
		req    *whistlev1.ListBreachesRequest
		want   []string
		code   codes.Code
	}{
		{"a city supervisor sees all, newest first", citySupervisor, &whistlev1.ListBreachesRequest{}, []string{power, water}, codes.OK},
		{"a street supervisor sees their street", authx.Principal{Subject: "s", Role: authx.RoleSupervisor, Scope: "xinhua"}, &whistlev1.ListBreachesRequest{}, []string{water}, codes.OK},
		{"a dispatcher may narrow to a grid", authx.Principal{Subject: "d", Role: authx.RoleDispatcher, Scope: "hexi"}, &whistlev1.ListBreachesRequest{AreaId: "hexi-binjiang-01"}, []string{power}, codes.OK},
		{"a department filter narrows the city", citySupervisor, &whistlev1.ListBreachesRequest{DepartmentId: "water"}, []string{water}, codes.OK},
		{"an officer sees their department", waterOfficer, &whistlev1.ListBreachesRequest{}, []string{water}, codes.OK},
		{"a street supervisor may not look at another street", authx.Principal{Subject: "s", Role: authx.RoleSupervisor, Scope: "xinhua"}, &whistlev1.ListBreachesRequest{AreaId: "hexi"}, nil, codes.PermissionDenied},
		{"an officer may not look at another department", waterOfficer, &whistlev1.ListBreachesRequest{DepartmentId: "power"}, nil, codes.PermissionDenied},
		{"a grid worker may not list breaches", authx.Principal{Subject: "g", Role: authx.RoleGridWorker, Scope: "xinhua-taoyuan-01"}, &whistlev1.ListBreachesRequest{}, nil, codes.PermissionDenied},
		{"an unknown area is refused", citySupervisor, &whistlev1.ListBreachesRequest{AreaId: "atlantis"}, nil, codes.InvalidArgument},
		{"an unknown department is refused", citySupervisor, &whistlev1.ListBreachesRequest{DepartmentId: "wizards"}, nil, codes.InvalidArgument},
		{"a page size over the limit is refused", citySupervisor, &whistlev1.ListBreachesRequest{PageSize: 201}, nil, codes.InvalidArgument},
		{"a forged page token is refused", citySupervisor, &whistlev1.ListBreachesRequest{PageToken: "not-a-token"}, nil, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := h.client(in, tt.caller).ListBreaches(ctx, tt.req)
			if status.Code(err) != tt.code {
				t.Fatalf("code %v (%v), want %v", status.Code(err), err, tt.code)
			}
			var got []string
			for _, b := range resp.GetBreaches() {
				got = append(got, b.GetIssueId())
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("issues %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("pages follow one another to the end", func(t *testing.T) {
		sup := h.client(in, citySupervisor)
		var got []string
		token := ""
		for range 3 {
			resp, err := sup.ListBreaches(ctx, &whistlev1.ListBreachesRequest{PageSize: 1, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range resp.GetBreaches() {
				got = append(got, b.GetIssueId())
			}
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
		if !slices.Equal(got, []string{power, water}) || token != "" {
			t.Fatalf("paged through %v (next token %q), want [%s %s] and an end", got, token, power, water)
		}
	})

	t.Run("a level and a period narrow the list", func(t *testing.T) {
		// The chain that sets a breach's level records it in the issue's document, from which the
		// list reads every breach's details: water's breach reached level 2.
		key := store.Prefix + "issue:{" + water + "}"
		raw, err := h.Deps.Redis.Get(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal([]byte(raw), &doc); err != nil {
			t.Fatal(err)
		}
		field := func(m any, name string) map[string]any { return m.(map[string]any)[name].(map[string]any) }
		field(field(field(doc["assignments"], "water"), "breaches"), "report-in")["level"] = 2
		leveled, _ := json.Marshal(doc)
		if err := h.Deps.Redis.Set(ctx, key, leveled, 0).Err(); err != nil {
			t.Fatal(err)
		}
		wAt, pAt := h.Stored(water, "breached").Time, h.Stored(power, "breached").Time
		ts := timestamppb.New
		sup := h.client(in, citySupervisor)
		for _, tt := range []struct {
			name string
			req  *whistlev1.ListBreachesRequest
			want []string
			code codes.Code
		}{
			{"a level reached keeps the breaches at it or above", &whistlev1.ListBreachesRequest{MinLevel: 2}, []string{water}, codes.OK},
			{"a level no breach reached keeps none", &whistlev1.ListBreachesRequest{MinLevel: 3}, nil, codes.OK},
			{"from a breach's time keeps it and what followed", &whistlev1.ListBreachesRequest{From: ts(pAt)}, []string{power}, codes.OK},
			{"until a breach's time keeps what came before it", &whistlev1.ListBreachesRequest{Until: ts(pAt)}, []string{water}, codes.OK},
			{"a period around the first breach keeps it alone", &whistlev1.ListBreachesRequest{From: ts(wAt), Until: ts(wAt.Add(time.Millisecond))}, []string{water}, codes.OK},
			{"a period after every breach keeps none", &whistlev1.ListBreachesRequest{From: ts(pAt.Add(time.Microsecond))}, nil, codes.OK},
			{"a period and a level together", &whistlev1.ListBreachesRequest{MinLevel: 1, From: ts(pAt)}, nil, codes.OK},
			{"a negative level is refused", &whistlev1.ListBreachesRequest{MinLevel: -1}, nil, codes.InvalidArgument},
			{"a level past any chain is refused", &whistlev1.ListBreachesRequest{MinLevel: grpcapi.MaxLevel + 1}, nil, codes.InvalidArgument},
			{"until before from is refused", &whistlev1.ListBreachesRequest{From: ts(pAt), Until: ts(wAt)}, nil, codes.InvalidArgument},
			{"a time that is no time is refused", &whistlev1.ListBreachesRequest{Until: &timestamppb.Timestamp{Nanos: -1}}, nil, codes.InvalidArgument},
		} {
			resp, err := sup.ListBreaches(ctx, tt.req)
			if status.Code(err) != tt.code {
				t.Errorf("%s: code %v (%v), want %v", tt.name, status.Code(err), err, tt.code)
				continue
			}
			var got []string
			for _, b := range resp.GetBreaches() {
				got = append(got, b.GetIssueId())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("%s: issues %v, want %v", tt.name, got, tt.want)
			}
		}
	})
}

func TestWatchBreachesSendsOnlyWhatTheCallerMaySee(t *testing.T) {
	h := newHarness(t)
	in := h.run()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watch, err := h.client(in, waterOfficer).WatchBreaches(ctx, &whistlev1.WatchBreachesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Header(); err != nil {
		t.Fatal(err)
	}
	water, power := issue(t, 1), issue(t, 2)
	first := h.raiseAndRoute(power, "hexi-binjiang-01", "power-outage", "power", soon, farOff)
	h.waitTimer(power, "power", "report-in", true)
	h.pass(first, 1)
	h.waitBreaches(power, 1)
	second := h.raiseAndRoute(water, "xinhua-taoyuan-01", "water-supply", "water", 2*soon, farOff)
	h.waitTimer(water, "water", "report-in", true)
	h.pass(second, 1)
	h.waitBreaches(water, 1)

	msg, err := watch.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.GetBreach().GetIssueId(); got != water {
		t.Fatalf("the water officer watched %s's breach first, want only %s's", got, water)
	}

	grid := h.client(in, authx.Principal{Subject: "g", Role: authx.RoleGridWorker, Scope: "xinhua-taoyuan-01"})
	denied, err := grid.WatchBreaches(ctx, &whistlev1.WatchBreachesRequest{})
	if err == nil {
		_, err = denied.Recv() // a stream's status arrives with its first receive
	}
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a grid worker's watch: %v, want PermissionDenied", err)
	}
}

func TestAQuarantinedIssueLosesItsTimersAndNeverBreaches(t *testing.T) {
	h := newHarness(t)
	h.run()
	id := issue(t, 1)
	deadline := h.raiseAndRoute(id, "xinhua-taoyuan-01", "water-supply", "water", soon, farOff)
	h.waitTimer(id, "water", "report-in", true)
	js, err := jetstream.New(h.Deps.NATS)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(context.Background(), eventlog.Subject(id, "acknowledged"), []byte("\xffnot an event")); err != nil {
		t.Fatal(err)
	}
	h.waitTimer(id, "water", "report-in", false)
	h.waitTimer(id, "water", "resolve", false)
	h.pass(deadline, 1)
	h.idle(1, time.Hour)
	stream, err := js.Stream(context.Background(), "WHISTLE")
	if err != nil {
		t.Fatal(err)
	}
	if msg, err := stream.GetLastMsgForSubject(context.Background(), eventlog.Subject(id, "breached")); err == nil {
		t.Fatalf("a breach was stored at %d on a quarantined issue", msg.Sequence)
	}
}
