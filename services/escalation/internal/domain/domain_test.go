package domain

import (
	"errors"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
)

var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// reportInBy and resolveBy are water's deadlines in routed.
var (
	reportInBy = t0.Add(30 * time.Minute)
	resolveBy  = t0.Add(2 * time.Hour)
)

// routed returns an issue with water summoned, report-in due at +30m and resolve at +2h.
func routed(t *testing.T) *Issue {
	t.Helper()
	s := &Issue{ID: "K7M3-QX9A"}
	must(t, s.Apply(1, t0, "K7M3-QX9A", Raised{GridID: "xinhua-taoyuan-01", StreetID: "xinhua", CategoryID: "water-supply"}))
	must(t, s.Apply(2, t0.Add(time.Second), "", Routed{Dispatches: []assignment.Dispatch{{DepartmentID: "water", ReportInBy: reportInBy, ResolveBy: resolveBy}}}))
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// timers returns s's timers by kind.
func timers(s *Issue) map[Kind]time.Time {
	m := map[Kind]time.Time{}
	for _, t := range s.Timers() {
		m[t.Kind] = t.At
	}
	return m
}

// stored is an event stored at a time.
type stored struct {
	at time.Duration // after t0
	e  Event
}

func TestEachClockOwesABreachExactlyWhenItsClearingEventWasStoredAfterItsDeadline(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name   string
		events []stored
		// timers is what remains owed or may become owed, by kind: the deadline, or assignment.DueNow.
		timers map[Kind]time.Time
	}{
		{"routing opens both clocks", nil, map[Kind]time.Time{ReportIn: reportInBy, Resolve: resolveBy}},
		{"an acknowledgement stored 1 ms before the deadline clears report-in",
			[]stored{{30*time.Minute - ms, Acknowledged{DepartmentID: "water"}}}, map[Kind]time.Time{Resolve: resolveBy}},
		{"an acknowledgement stored at the deadline clears report-in",
			[]stored{{30 * time.Minute, Acknowledged{DepartmentID: "water"}}}, map[Kind]time.Time{Resolve: resolveBy}},
		{"an acknowledgement stored 1 ms after the deadline owes a breach now",
			[]stored{{30*time.Minute + ms, Acknowledged{DepartmentID: "water"}}}, map[Kind]time.Time{ReportIn: assignment.DueNow, Resolve: resolveBy}},
		{"an acknowledgement an hour late owes a breach now",
			[]stored{{90 * time.Minute, Acknowledged{DepartmentID: "water"}}}, map[Kind]time.Time{ReportIn: assignment.DueNow, Resolve: resolveBy}},
		{"reporting in and resolving in time stops both",
			[]stored{{time.Minute, Acknowledged{DepartmentID: "water"}}, {2 * time.Minute, Resolved{DepartmentID: "water"}}}, nil},
		{"reporting in in time and resolving late owes resolve now",
			[]stored{{time.Minute, Acknowledged{DepartmentID: "water"}}, {3 * time.Hour, Resolved{DepartmentID: "water"}}},
			map[Kind]time.Time{Resolve: assignment.DueNow}},
		{"reporting in and resolving late owes both",
			[]stored{{3 * time.Hour, Acknowledged{DepartmentID: "water"}}, {3*time.Hour + time.Second, Resolved{DepartmentID: "water"}}},
			map[Kind]time.Time{ReportIn: assignment.DueNow, Resolve: assignment.DueNow}},
		{"a breach recorded after the deadline closes its own clock",
			[]stored{{31 * time.Minute, Breached{DepartmentID: "water", Kind: ReportIn, Deadline: reportInBy}}}, map[Kind]time.Time{Resolve: resolveBy}},
		{"a late acknowledgement after the breach owes nothing more",
			[]stored{{31 * time.Minute, Breached{DepartmentID: "water", Kind: ReportIn, Deadline: reportInBy}},
				{time.Hour, Acknowledged{DepartmentID: "water"}}}, map[Kind]time.Time{Resolve: resolveBy}},
		{"the breach recorded after a late acknowledgement settles it",
			[]stored{{time.Hour, Acknowledged{DepartmentID: "water"}},
				{time.Hour + time.Second, Breached{DepartmentID: "water", Kind: ReportIn, Deadline: reportInBy}}}, map[Kind]time.Time{Resolve: resolveBy}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := routed(t)
			for i, e := range tt.events {
				must(t, s.Apply(uint64(3+i), t0.Add(e.at), "", e.e))
			}
			got := timers(s)
			if len(got) != len(tt.timers) {
				t.Fatalf("timers %v, want %v", got, tt.timers)
			}
			for k, at := range tt.timers {
				if !got[k].Equal(at) {
					t.Fatalf("timers %v, want %v", got, tt.timers)
				}
			}
		})
	}
}

func TestABreachIsOwedOnlyOnceTheStreamsClockHasReachedTheDeadline(t *testing.T) {
	s := routed(t)
	if _, owed, wait := s.Owes("water", ReportIn, reportInBy.Add(-time.Minute)); owed || wait != time.Minute {
		t.Fatalf("a minute before the deadline on the stream's clock: owed %v, wait %v; want not owed, a minute to wait", owed, wait)
	}
	o, owed, _ := s.Owes("water", ReportIn, reportInBy)
	if !owed || !o.Deadline.Equal(reportInBy) || o.Cleared != nil {
		t.Fatalf("at the deadline: %+v, %v", o, owed)
	}
	must(t, s.Apply(3, reportInBy.Add(time.Millisecond), "", Breached{DepartmentID: "water", Kind: ReportIn, Deadline: reportInBy}))
	if _, owed, _ := s.Owes("water", ReportIn, t0.Add(time.Hour)); owed {
		t.Fatal("a breached deadline is owed again")
	}
	b, ok := s.Breach("water", ReportIn)
	if !ok || b.Seq != 3 || b.GridID != "xinhua-taoyuan-01" || b.StreetID != "xinhua" || !b.BreachedAt.Equal(reportInBy.Add(time.Millisecond)) {
		t.Fatalf("breach recorded as %+v, %v", b, ok)
	}
	if _, owed, _ := s.Owes("gas", Resolve, t0.Add(time.Hour)); owed {
		t.Fatal("a department never summoned owes a breach")
	}
	if s.CorrelationID != "K7M3-QX9A" {
		t.Fatalf("correlation id %q, want the one of the first event", s.CorrelationID)
	}
}

func TestALateClearingEventOwesABreachThatNamesIt(t *testing.T) {
	s := routed(t)
	late := reportInBy.Add(time.Hour)
	must(t, s.Apply(3, late, "", Acknowledged{DepartmentID: "water"}))
	// Whatever the stream's clock says now, the breach is owed: the record shows it.
	o, owed, _ := s.Owes("water", ReportIn, t0)
	if !owed || o.Cleared == nil || o.Cleared.Seq != 3 || !o.Cleared.At.Equal(late) {
		t.Fatalf("owed %+v, %v; want one naming the acknowledgement", o, owed)
	}
	must(t, s.Apply(4, late.Add(time.Second), "", Breached{DepartmentID: "water", Kind: ReportIn, Deadline: reportInBy}))
	if b, _ := s.Breach("water", ReportIn); !b.ClearedAt.Equal(late) {
		t.Fatalf("the breach %+v does not say it was recorded after the late acknowledgement", b)
	}
}

func TestBreachesTheStreamsTimesContradictAreImpossible(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name   string
		before []stored
		breach stored
	}{
		{"stored before its deadline", nil, stored{30*time.Minute - ms, Breached{DepartmentID: "water", Kind: ReportIn, Deadline: reportInBy}}},
		{"after the deadline was cleared in time", []stored{{time.Minute, Acknowledged{DepartmentID: "water"}}},
			stored{time.Hour, Breached{DepartmentID: "water", Kind: ReportIn, Deadline: reportInBy}}},
		{"a second time", []stored{{time.Hour, Breached{DepartmentID: "water", Kind: ReportIn, Deadline: reportInBy}}},
			stored{2 * time.Hour, Breached{DepartmentID: "water", Kind: ReportIn, Deadline: reportInBy}}},
		{"of another deadline than the one frozen", nil, stored{time.Hour, Breached{DepartmentID: "water", Kind: ReportIn, Deadline: t0}}},
		{"of a department never summoned", nil, stored{time.Hour, Breached{DepartmentID: "gas", Kind: ReportIn, Deadline: reportInBy}}},
		{"of no kind", nil, stored{time.Hour, Breached{DepartmentID: "water", Deadline: reportInBy}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := routed(t)
			for i, e := range tt.before {
				must(t, s.Apply(uint64(3+i), t0.Add(e.at), "", e.e))
			}
			last := s.LastSeq
			if err := s.Apply(10, t0.Add(tt.breach.at), "", tt.breach.e); !errors.Is(err, eventlog.ErrImpossible) {
				t.Fatalf("Apply = %v, want ErrImpossible", err)
			}
			if s.LastSeq != last {
				t.Fatal("a refused breach moved the state")
			}
		})
	}
}

func TestEventsBeforeTheRaiseOrASecondRaiseAreImpossible(t *testing.T) {
	s := &Issue{ID: "K7M3-QX9A"}
	if err := s.Apply(1, t0, "", Acknowledged{DepartmentID: "water"}); !errors.Is(err, eventlog.ErrImpossible) {
		t.Fatalf("an event before the raise: %v", err)
	}
	s = routed(t)
	if err := s.Apply(3, t0, "", Raised{}); !errors.Is(err, eventlog.ErrImpossible) {
		t.Fatalf("a second raise: %v", err)
	}
}

func TestAssignmentEventsTheMachineForbidsAreImpossibleAndMoveNoClock(t *testing.T) {
	tests := []struct {
		name   string
		before []stored
		event  stored
	}{
		{"a report-in of a department never summoned", nil, stored{time.Minute, Acknowledged{DepartmentID: "gas"}}},
		{"a resolution of a department never summoned", nil, stored{time.Minute, Resolved{DepartmentID: "gas"}}},
		{"a resolution of a part that never reported in", nil, stored{time.Minute, Resolved{DepartmentID: "water"}}},
		{"a second report-in", []stored{{time.Minute, Acknowledged{DepartmentID: "water"}}}, stored{2 * time.Minute, Acknowledged{DepartmentID: "water"}}},
		{"a report-in after the resolution", []stored{{time.Minute, Acknowledged{DepartmentID: "water"}}, {2 * time.Minute, Resolved{DepartmentID: "water"}}},
			stored{3 * time.Minute, Acknowledged{DepartmentID: "water"}}},
		{"a second resolution", []stored{{time.Minute, Acknowledged{DepartmentID: "water"}}, {2 * time.Minute, Resolved{DepartmentID: "water"}}},
			stored{3 * time.Hour, Resolved{DepartmentID: "water"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := routed(t)
			for i, e := range tt.before {
				must(t, s.Apply(uint64(3+i), t0.Add(e.at), "", e.e))
			}
			last, before := s.LastSeq, timers(s)
			if err := s.Apply(10, t0.Add(tt.event.at), "", tt.event.e); !errors.Is(err, eventlog.ErrImpossible) {
				t.Fatalf("Apply = %v, want ErrImpossible", err)
			}
			if after := timers(s); s.LastSeq != last || len(after) != len(before) || len(s.Assignments) != 1 {
				t.Fatalf("a refused event moved the state: timers %v, then %v", before, after)
			}
		})
	}
}

func TestTimerNamesReadBack(t *testing.T) {
	for _, tm := range []Timer{
		{IssueID: "K7M3-QX9A", UnitID: "water", Kind: Resolve},
		{IssueID: "K7M3-QX9A", UnitID: "water", Kind: ReportIn, Step: RemindStep},
		{IssueID: "K7M3-QX9A", UnitID: "water", Kind: Resolve, Step: EscalateStep},
	} {
		if got, err := ParseName(tm.Name()); err != nil || got != tm {
			t.Fatalf("ParseName(%q) = %+v, %v", tm.Name(), got, err)
		}
	}
	for _, bad := range []string{"", "a|b", "a|b|late", "|b|resolve", "a|b|resolve|later", "a|b|resolve|remind|x"} {
		if _, err := ParseName(bad); err == nil {
			t.Errorf("ParseName(%q) accepted", bad)
		}
	}
}

func TestASecondDispatchOfADepartmentKeepsTheDeadlinesFrozenAtTheFirst(t *testing.T) {
	s := routed(t)
	must(t, s.Apply(3, t0.Add(time.Minute), "", Routed{Dispatches: []assignment.Dispatch{
		{DepartmentID: "water", ReportInBy: t0.Add(5 * time.Minute), ResolveBy: t0.Add(10 * time.Minute)},
		{DepartmentID: "gas", ReportInBy: t0.Add(15 * time.Minute), ResolveBy: t0.Add(time.Hour)},
	}}))
	open := map[string]time.Time{}
	for _, tm := range s.Timers() {
		open[tm.Name()] = tm.At
	}
	want := map[string]time.Time{
		Name(s.ID, "water", ReportIn): reportInBy,
		Name(s.ID, "water", Resolve):  resolveBy,
		Name(s.ID, "gas", ReportIn):   t0.Add(15 * time.Minute),
		Name(s.ID, "gas", Resolve):    t0.Add(time.Hour),
	}
	if len(open) != len(want) {
		t.Fatalf("open clocks %v, want %v", open, want)
	}
	for name, at := range want {
		if !open[name].Equal(at) {
			t.Errorf("%s runs until %s, want %s", name, open[name], at)
		}
	}
}
