package assignment_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
)

// t0 is when water was dispatched; its report-in deadline is an hour later, its resolve deadline a
// day later.
var (
	t0         = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	reportInBy = t0.Add(time.Hour)
	resolveBy  = t0.Add(24 * time.Hour)
)

// none is the status of an assignment that does not exist: its department was never summoned.
const none assignment.Status = ""

// statuses is every status an assignment may be in, none first.
var statuses = []assignment.Status{none, assignment.Dispatched, assignment.Acknowledged, assignment.Resolved}

// in returns water's assignment in status s, nil for none: dispatched at t0, reported in by o1 ten
// minutes later and resolved by o1 ten minutes after that, so both clocks were cleared in time.
func in(s assignment.Status) *assignment.Assignment {
	if s == none {
		return nil
	}
	a := &assignment.Assignment{DepartmentID: "water", Role: assignment.Lead, Status: assignment.Dispatched, DispatchedAt: t0,
		ReportInBy: reportInBy, ResolveBy: resolveBy}
	if s == assignment.Acknowledged || s == assignment.Resolved {
		a.Status, a.AcknowledgedAt, a.AcknowledgedBy = assignment.Acknowledged, t0.Add(10*time.Minute), "o1"
	}
	if s == assignment.Resolved {
		a.Status, a.ResolvedAt, a.ResolvedBy, a.Note = assignment.Resolved, t0.Add(20*time.Minute), "o1", "drain cleared"
	}
	return a
}

// clone copies an assignment, so that a test can tell whether a transition changed it.
func clone(a *assignment.Assignment) *assignment.Assignment {
	if a == nil {
		return nil
	}
	c := *a
	c.Breached = slices.Clone(a.Breached)
	return &c
}

func TestEveryTransitionFromEveryStatus(t *testing.T) {
	t.Parallel()
	at := t0.Add(30 * time.Minute)
	ack := func(a *assignment.Assignment) error {
		return a.Acknowledge(assignment.Acknowledgement{DepartmentID: "water", At: at, By: "o2"})
	}
	resolve := func(a *assignment.Assignment) error {
		return a.Resolve(assignment.Resolution{DepartmentID: "water", At: at, By: "o2", Note: "valve shut"})
	}
	// The breaches are stored long after both deadlines, and in clears in time every clock its status
	// clears, so whether a breach is allowed turns on the status alone.
	breach := func(k assignment.DeadlineKind) func(a *assignment.Assignment) error {
		return func(a *assignment.Assignment) error {
			return a.Breach(assignment.Breach{DepartmentID: "water", Kind: k, Deadline: in(assignment.Dispatched).Deadline(k), At: t0.Add(48 * time.Hour)})
		}
	}
	tests := []struct {
		from  assignment.Status
		event string
		apply func(*assignment.Assignment) error
		// to is the status the event leads to; none means the machine forbids it.
		to assignment.Status
	}{
		{none, "a report-in", ack, none},
		{assignment.Dispatched, "a report-in", ack, assignment.Acknowledged},
		{assignment.Acknowledged, "a report-in", ack, none},
		{assignment.Resolved, "a report-in", ack, none},

		{none, "a resolution", resolve, none},
		{assignment.Dispatched, "a resolution", resolve, none},
		{assignment.Acknowledged, "a resolution", resolve, assignment.Resolved},
		{assignment.Resolved, "a resolution", resolve, none},

		{none, "a report-in breach", breach(assignment.ReportIn), none},
		{assignment.Dispatched, "a report-in breach", breach(assignment.ReportIn), assignment.Dispatched},
		{assignment.Acknowledged, "a report-in breach", breach(assignment.ReportIn), none},
		{assignment.Resolved, "a report-in breach", breach(assignment.ReportIn), none},

		{none, "a resolve breach", breach(assignment.Resolve), none},
		{assignment.Dispatched, "a resolve breach", breach(assignment.Resolve), assignment.Dispatched},
		{assignment.Acknowledged, "a resolve breach", breach(assignment.Resolve), assignment.Acknowledged},
		{assignment.Resolved, "a resolve breach", breach(assignment.Resolve), none},
	}
	for _, tt := range tests {
		verdict := "is impossible"
		switch {
		case tt.to == tt.from:
			verdict = "is recorded, the part staying " + string(tt.to)
		case tt.to != none:
			verdict = "leads to " + string(tt.to)
		}
		t.Run(fmt.Sprintf("%s from %s %s", tt.event, or(tt.from), verdict), func(t *testing.T) {
			a := in(tt.from)
			before := clone(a)
			err := tt.apply(a)
			if tt.to == none {
				if !errors.Is(err, eventlog.ErrImpossible) {
					t.Fatalf("got %v, want an error wrapping eventlog.ErrImpossible", err)
				}
				if !reflect.DeepEqual(a, before) {
					t.Fatalf("a refused event changed the assignment: %+v, was %+v", a, before)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Status != tt.to {
				t.Fatalf("status %s, want %s", a.Status, tt.to)
			}
		})
	}
}

// or names a status for a test's name.
func or(s assignment.Status) string {
	if s == none {
		return "none (never summoned)"
	}
	return string(s)
}

func TestATransitionRecordsWhenAndByWhom(t *testing.T) {
	t.Parallel()
	a := in(assignment.Dispatched)
	if err := a.Acknowledge(assignment.Acknowledgement{DepartmentID: "water", At: t0.Add(time.Minute), By: "o1"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Resolve(assignment.Resolution{DepartmentID: "water", At: t0.Add(time.Hour), By: "o2", Note: "drain cleared"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Breach(assignment.Breach{DepartmentID: "water", Kind: assignment.Resolve, Deadline: resolveBy, At: resolveBy}); !errors.Is(err, eventlog.ErrImpossible) {
		t.Fatalf("a resolve breach after resolving in time: %v", err)
	}
	want := assignment.Assignment{DepartmentID: "water", Role: assignment.Lead, Status: assignment.Resolved, DispatchedAt: t0,
		ReportInBy: reportInBy, ResolveBy: resolveBy, AcknowledgedAt: t0.Add(time.Minute), AcknowledgedBy: "o1",
		ResolvedAt: t0.Add(time.Hour), ResolvedBy: "o2", Note: "drain cleared"}
	if !reflect.DeepEqual(*a, want) {
		t.Fatalf("got %+v\nwant %+v", *a, want)
	}
}

func TestADispatchOpensAnAssignmentOnlyForADepartmentNotSummonedBefore(t *testing.T) {
	t.Parallel()
	ds := []assignment.Dispatch{
		{DepartmentID: "water", Role: assignment.Lead, ReportInBy: t0.Add(5 * time.Minute), ResolveBy: t0.Add(10 * time.Minute)},
		{DepartmentID: "gas", Role: assignment.Assisting, ReportInBy: reportInBy, ResolveBy: resolveBy},
		{DepartmentID: "gas", Role: assignment.Lead},
	}
	for _, from := range statuses {
		t.Run("water "+or(from), func(t *testing.T) {
			water := in(from)
			got := assignment.Summon(ds, t0.Add(time.Minute), func(dept string) bool { return dept == "water" && water != nil })
			want := []assignment.Assignment{{DepartmentID: "gas", Role: assignment.Assisting, Status: assignment.Dispatched,
				DispatchedAt: t0.Add(time.Minute), ReportInBy: reportInBy, ResolveBy: resolveBy}}
			if from == none {
				want = append([]assignment.Assignment{{DepartmentID: "water", Role: assignment.Lead, Status: assignment.Dispatched,
					DispatchedAt: t0.Add(time.Minute), ReportInBy: t0.Add(5 * time.Minute), ResolveBy: t0.Add(10 * time.Minute)}}, want...)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("opened %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestABreachIsAllowedExactlyWhenTheStreamsTimesShowItsDeadlinePassedUncleared(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	acknowledged := func(at time.Time) *assignment.Assignment {
		a := in(assignment.Dispatched)
		a.Status, a.AcknowledgedAt, a.AcknowledgedBy = assignment.Acknowledged, at, "o1"
		return a
	}
	reportIn := func(at time.Time) assignment.Breach {
		return assignment.Breach{DepartmentID: "water", Kind: assignment.ReportIn, Deadline: reportInBy, At: at}
	}
	tests := []struct {
		name    string
		a       *assignment.Assignment
		breach  assignment.Breach
		allowed bool
	}{
		{"stored at its deadline", in(assignment.Dispatched), reportIn(reportInBy), true},
		{"stored 1 ms before its deadline", in(assignment.Dispatched), reportIn(reportInBy.Add(-ms)), false},
		{"after a report-in stored 1 ms after the deadline", acknowledged(reportInBy.Add(ms)), reportIn(reportInBy.Add(time.Hour)), true},
		{"after a report-in stored at the deadline", acknowledged(reportInBy), reportIn(reportInBy.Add(time.Hour)), false},
		{"after a report-in stored 1 ms before the deadline", acknowledged(reportInBy.Add(-ms)), reportIn(reportInBy.Add(time.Hour)), false},
		{"naming another deadline than the one frozen", in(assignment.Dispatched),
			assignment.Breach{DepartmentID: "water", Kind: assignment.ReportIn, Deadline: t0, At: reportInBy.Add(time.Hour)}, false},
		{"a second time", func() *assignment.Assignment {
			a := in(assignment.Dispatched)
			a.Breached = []assignment.DeadlineKind{assignment.ReportIn}
			return a
		}(), reportIn(reportInBy.Add(time.Hour)), false},
		{"of no kind", in(assignment.Dispatched), assignment.Breach{DepartmentID: "water", Kind: "late", Deadline: reportInBy, At: reportInBy}, false},
		{"of a clock that does not run", func() *assignment.Assignment {
			a := in(assignment.Dispatched)
			a.ReportInBy = time.Time{}
			return a
		}(), assignment.Breach{DepartmentID: "water", Kind: assignment.ReportIn, At: reportInBy}, false},
		{"of report-in on a part resolved late without reporting in, as folded before that was refused", func() *assignment.Assignment {
			a := in(assignment.Dispatched)
			a.Status, a.ResolvedAt = assignment.Resolved, reportInBy.Add(ms)
			return a
		}(), reportIn(reportInBy.Add(time.Hour)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := clone(tt.a)
			err := tt.a.Breach(tt.breach)
			switch {
			case tt.allowed && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.allowed && !tt.a.IsBreached(tt.breach.Kind):
				t.Fatal("allowed but not recorded")
			case !tt.allowed && !errors.Is(err, eventlog.ErrImpossible):
				t.Fatalf("got %v, want an error wrapping eventlog.ErrImpossible", err)
			case !tt.allowed && !reflect.DeepEqual(tt.a, before):
				t.Fatalf("a refused breach changed the assignment: %+v", tt.a)
			}
		})
	}
}

func TestEachClockComesDueAtItsDeadlineAtOnceWhenClearedLateOrNever(t *testing.T) {
	t.Parallel()
	late := in(assignment.Dispatched)
	late.Status, late.AcknowledgedAt = assignment.Acknowledged, reportInBy.Add(time.Minute)
	breached := in(assignment.Dispatched)
	breached.Breached = []assignment.DeadlineKind{assignment.ReportIn}
	noClock := in(assignment.Dispatched)
	noClock.ResolveBy = time.Time{}
	tests := []struct {
		name string
		a    *assignment.Assignment
		want map[assignment.DeadlineKind]time.Time // the clocks that come due, and when
	}{
		{"dispatched", in(assignment.Dispatched), map[assignment.DeadlineKind]time.Time{assignment.ReportIn: reportInBy, assignment.Resolve: resolveBy}},
		{"reported in in time", in(assignment.Acknowledged), map[assignment.DeadlineKind]time.Time{assignment.Resolve: resolveBy}},
		{"reported in late", late, map[assignment.DeadlineKind]time.Time{assignment.ReportIn: assignment.DueNow, assignment.Resolve: resolveBy}},
		{"resolved in time", in(assignment.Resolved), map[assignment.DeadlineKind]time.Time{}},
		{"breached", breached, map[assignment.DeadlineKind]time.Time{assignment.Resolve: resolveBy}},
		{"without a resolve deadline", noClock, map[assignment.DeadlineKind]time.Time{assignment.ReportIn: reportInBy}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[assignment.DeadlineKind]time.Time{}
			for _, k := range assignment.DeadlineKinds() {
				if at, ok := tt.a.Due(k); ok {
					got[k] = at
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("due %v, want %v", got, tt.want)
			}
		})
	}
}

func TestABreachIsOwedOnceTheStreamsClockReachesTheDeadlineOrAtOnceWhenClearedLate(t *testing.T) {
	t.Parallel()
	a := in(assignment.Dispatched)
	if owed, wait := a.Owes(assignment.ReportIn, reportInBy.Add(-time.Minute)); owed || wait != time.Minute {
		t.Fatalf("a minute before: owed %v, wait %v; want a minute to wait", owed, wait)
	}
	if owed, wait := a.Owes(assignment.ReportIn, reportInBy); !owed || wait != 0 {
		t.Fatalf("at the deadline: owed %v, wait %v", owed, wait)
	}
	a.Status, a.AcknowledgedAt = assignment.Acknowledged, reportInBy.Add(time.Millisecond)
	if owed, _ := a.Owes(assignment.ReportIn, t0); !owed {
		t.Fatal("a report-in stored after the deadline owes no breach on an early clock")
	}
	if owed, wait := in(assignment.Acknowledged).Owes(assignment.ReportIn, resolveBy); owed || wait != 0 {
		t.Fatalf("cleared in time: owed %v, wait %v", owed, wait)
	}
}

func TestACommandIsAllowedExactlyWhenTheEventItWritesIsLegal(t *testing.T) {
	t.Parallel()
	at := t0.Add(30 * time.Minute)
	type verdict string
	const (
		allowed verdict = "allowed"
		done    verdict = "done"
		refused verdict = "refused"
	)
	judge := func(isDone bool, err error) verdict {
		var te *assignment.TransitionError
		switch {
		case err == nil && isDone:
			return done
		case err == nil:
			return allowed
		case errors.As(err, &te):
			return refused
		}
		return verdict(err.Error())
	}
	commands := []struct {
		name  string
		check func(*assignment.Assignment) (bool, error)
		event func(*assignment.Assignment) error
	}{
		{"o1 reports in", func(a *assignment.Assignment) (bool, error) { return a.CheckAcknowledge("o1") },
			func(a *assignment.Assignment) error {
				return a.Acknowledge(assignment.Acknowledgement{At: at, By: "o1"})
			}},
		{"o2 reports in", func(a *assignment.Assignment) (bool, error) { return a.CheckAcknowledge("o2") },
			func(a *assignment.Assignment) error {
				return a.Acknowledge(assignment.Acknowledgement{At: at, By: "o2"})
			}},
		{"o1 resolves with the same note", func(a *assignment.Assignment) (bool, error) { return a.CheckResolve("o1", "drain cleared") },
			func(a *assignment.Assignment) error {
				return a.Resolve(assignment.Resolution{At: at, By: "o1", Note: "drain cleared"})
			}},
		{"o1 resolves with another note", func(a *assignment.Assignment) (bool, error) { return a.CheckResolve("o1", "valve shut") },
			func(a *assignment.Assignment) error {
				return a.Resolve(assignment.Resolution{At: at, By: "o1", Note: "valve shut"})
			}},
		{"o2 resolves with the same note", func(a *assignment.Assignment) (bool, error) { return a.CheckResolve("o2", "drain cleared") },
			func(a *assignment.Assignment) error {
				return a.Resolve(assignment.Resolution{At: at, By: "o2", Note: "drain cleared"})
			}},
	}
	// The verdict on each command above, in order, from each status (o1 reported in and resolved
	// with "drain cleared" where the status says so).
	want := map[assignment.Status][]verdict{
		assignment.Dispatched:   {allowed, allowed, refused, refused, refused},
		assignment.Acknowledged: {done, refused, allowed, allowed, allowed},
		assignment.Resolved:     {refused, refused, done, refused, refused},
	}
	for _, from := range statuses[1:] {
		for i, c := range commands {
			t.Run(fmt.Sprintf("%s on %s is %s", c.name, from, want[from][i]), func(t *testing.T) {
				a := in(from)
				if got := judge(c.check(a)); got != want[from][i] {
					t.Fatalf("the check says %s, want %s", got, want[from][i])
				}
				// What a command may write, the machine folds; what it refuses, or has already
				// done, a projection would refuse as impossible if it were in the stream.
				err := c.event(a)
				if legal := err == nil; legal != (want[from][i] == allowed) {
					t.Fatalf("the event it would write folds with %v; the check says %s", err, want[from][i])
				}
			})
		}
	}
	if _, err := (*assignment.Assignment)(nil).CheckAcknowledge("o1"); !errors.Is(err, assignment.ErrNotSummoned) {
		t.Errorf("a report-in for a department never summoned: %v", err)
	}
	if _, err := (*assignment.Assignment)(nil).CheckResolve("o1", "x"); !errors.Is(err, assignment.ErrNotSummoned) {
		t.Errorf("a resolution for a department never summoned: %v", err)
	}
}

func TestARefusedCommandSaysWhoActedFirst(t *testing.T) {
	t.Parallel()
	var te *assignment.TransitionError
	if _, err := in(assignment.Dispatched).CheckResolve("o1", "x"); !errors.As(err, &te) || te.Reason != "report in before resolving" {
		t.Errorf("resolve before reporting in: %v", err)
	}
	if _, err := in(assignment.Acknowledged).CheckAcknowledge("o2"); !errors.As(err, &te) || te.Reason != "o1 already reported in for water" {
		t.Errorf("a second officer reporting in: %v", err)
	}
	_, err := in(assignment.Resolved).CheckResolve("o1", "another note")
	if want := "water's part is already resolved, at 2025-03-03T09:20:00Z by o1 with another note; a resolution is not changed"; !errors.As(err, &te) || te.Reason != want {
		t.Errorf("a second resolution: %v; want %q", err, want)
	}
}

func TestAReturnOrAWithdrawalEndsAnOpenPartStopsItsClocksAndLetsTheUnitBeSummonedAgain(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	d := assignment.Dispatch{DepartmentID: "urban-management", UnitID: "urban-management-xinhua", Role: assignment.Assisting,
		ReportInBy: t0.Add(time.Hour), ResolveBy: t0.Add(4 * time.Hour)}
	a := assignment.Summon([]assignment.Dispatch{d}, t0, func(string) bool { return false })[0]
	if a.Unit() != "urban-management-xinhua" {
		t.Fatalf("the part belongs to %q", a.Unit())
	}
	late := assignment.Ending{UnitID: a.Unit(), At: t0.Add(2 * time.Hour), By: "o1", Reason: "not ours"}
	if err := a.Return(late); err != nil {
		t.Fatal(err)
	}
	if a.Status != assignment.Returned || !a.Status.Ended() || a.Status.Open() {
		t.Fatalf("status %s after a return", a.Status)
	}
	// Returned after the report-in deadline: that breach is owed; the resolve clock stopped in time.
	if due, ok := a.Due(assignment.ReportIn); !ok || !due.Equal(assignment.DueNow) {
		t.Errorf("report-in due %v, %v; want a breach owed now", due, ok)
	}
	if _, ok := a.Due(assignment.Resolve); ok {
		t.Error("the resolve clock still runs after a return")
	}
	if done, err := a.CheckReturn("o1", "not ours"); !done || err != nil {
		t.Errorf("the same return again: done %v, %v", done, err)
	}
	var te *assignment.TransitionError
	if _, err := a.CheckReturn("o2", "other"); !errors.As(err, &te) {
		t.Errorf("another return of a returned part: %v", err)
	}
	for name, err := range map[string]error{
		"a second return":         a.Return(late),
		"a withdrawal":            a.Withdraw(late),
		"a report-in":             a.Acknowledge(assignment.Acknowledgement{UnitID: a.Unit(), At: late.At}),
		"a return of the desk":    (&assignment.Assignment{Role: assignment.Desk, Status: assignment.Dispatched}).Return(late),
		"a withdrawal of nothing": (*assignment.Assignment)(nil).Withdraw(late),
	} {
		if !errors.Is(err, eventlog.ErrImpossible) {
			t.Errorf("%s: %v; want impossible", name, err)
		}
	}
	// An ended part does not count as live: summoned again, the unit gets a new assignment.
	again := assignment.Summon([]assignment.Dispatch{d}, t0.Add(3*time.Hour), func(string) bool { return !a.Status.Ended() })
	if len(again) != 1 || again[0].Status != assignment.Dispatched || !again[0].DispatchedAt.Equal(t0.Add(3*time.Hour)) {
		t.Errorf("summoned again: %+v", again)
	}
	w := assignment.Summon([]assignment.Dispatch{d}, t0, func(string) bool { return false })[0]
	if err := w.Withdraw(assignment.Ending{UnitID: w.Unit(), At: t0.Add(30 * time.Minute), By: "dispatcher"}); err != nil || w.Status != assignment.Withdrawn {
		t.Fatalf("withdraw: %v, %s", err, w.Status)
	}
	if _, ok := w.Due(assignment.ReportIn); ok {
		t.Error("a part withdrawn before its deadline still owes a breach")
	}
}
