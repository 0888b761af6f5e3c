package domain

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/quarantine"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/scorecard"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
	"github.com/whistle-dispatch/whistle/services/internal/sla"
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

func TestTimersAreTheSameClockExactlyWhenTheyHaveOneName(t *testing.T) {
	base := Timer{IssueID: "K7M3-QX9A", UnitID: "water", Kind: ReportIn, At: t0}
	for _, other := range []Timer{
		base,
		{IssueID: "K7M3-QX9A", UnitID: "water", Kind: ReportIn, At: t0.Add(time.Hour)},
		{IssueID: "K7M3-QX9B", UnitID: "water", Kind: ReportIn, At: t0},
		{IssueID: "K7M3-QX9A", UnitID: "gas", Kind: ReportIn, At: t0},
		{IssueID: "K7M3-QX9A", UnitID: "water", Kind: Resolve, At: t0},
		{IssueID: "K7M3-QX9A", UnitID: "water", Kind: ReportIn, Step: RemindStep, At: t0},
	} {
		if got, want := base.SameClock(other), base.Name() == other.Name(); got != want {
			t.Errorf("SameClock(%+v) = %v; their names are equal: %v", other, got, want)
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

// everyField is an issue with every field set, down to its assignments, breaches, supervision and
// scorecard part (the tests that take it check that none is left zero).
func everyField() *Issue {
	at := t0
	stored := func(seq uint64) *Stored { return &Stored{Seq: seq, At: at} }
	breach := Breach{IssueID: "K7M3-QX9A", DepartmentID: "water", UnitID: "water-xinhua", Kind: ReportIn, Deadline: at,
		BreachedAt: at, ClearedAt: at, GridID: "g", StreetID: "s", CategoryID: "c", Seq: 5, Round: 1, Level: 1, LevelSeq: 6}
	return &Issue{ID: "K7M3-QX9A", LastSeq: 9, Raised: true, GridID: "g", CommunityID: "m", StreetID: "s", CategoryID: "c",
		CorrelationID: "x", Calendar: plainCalendar{},
		Quarantine: &quarantine.Mark{Seq: 9, Subject: "sub", Reason: "r", StoredAt: at, Held: 1},
		Assignments: map[string]*Assignment{"water-xinhua": {DepartmentID: "water", ReportInBy: at, ResolveBy: at,
			Acknowledged: stored(3), Resolved: stored(4), Ended: stored(7),
			Breaches: map[Kind]Breach{ReportIn: breach}, Round: 1, Earlier: []Breach{breach},
			Policy:       sla.Policy{Name: "p", ReportIn: time.Hour, Resolve: time.Hour, WorkingTime: true, RemindAt: []int{80}, Chain: []sla.Level{{Target: sla.UnitHead}}},
			DispatchedAt: at, OfficerID: "o1", Reminded: map[Kind]int{ReportIn: 1}, Chain: map[Kind]ChainStep{ReportIn: {Level: 1, Repeat: 1, At: at}},
			Supervision: Supervision{Role: assignment.Lead, RequestedSeq: 8, DecidedSeq: 9, Urges: 2,
				Extension: &assignment.Extension{Kind: assignment.Resolve, Proposed: at, Reason: "r", By: "o1", At: at},
				Decision:  &assignment.Decision{Kind: assignment.ReportIn, Approved: true, Deadline: at, Granted: at, Reason: "r", By: "sup", At: at}}}},
		Scorecard: scorecard.Issue{StreetID: "s", GridID: "g", RaisedAt: at, Parts: []*scorecard.Part{{IssueID: "K7M3-QX9A", Seq: 2,
			UnitID: "water-xinhua", DepartmentID: "water", StreetID: "s", GridID: "g", Lead: true, WorkingTime: true, DispatchedAt: at,
			AcknowledgedAt: at, ResolvedAt: at, ReturnedAt: at, Withdrawn: true, Round: 1,
			Breaches: []scorecard.Breach{{Kind: ReportIn, Round: 1, Deadline: at, Level: 1}}, Urges: 1,
			ExtensionsRequested: 1, ExtensionsApproved: 1, ExtensionsDenied: 1, Rating: 4}}},
		RequestKeys: map[string]uint64{"u-1": 8}, RequestCommands: map[string]RequestCommand{"u-1": UrgeRequest}}
}

func TestACloneEqualsTheIssueAndSharesNothingWithIt(t *testing.T) {
	t.Parallel()
	orig := everyField()
	// Every field is set above, so that a field added later and left out of Clone fails here.
	for _, v := range []any{*orig, *orig.Assignments["water-xinhua"], orig.Assignments["water-xinhua"].Supervision, orig.Scorecard, *orig.Scorecard.Parts[0]} {
		rv := reflect.ValueOf(v)
		for k := range rv.NumField() {
			if rv.Field(k).IsZero() {
				t.Fatalf("the test leaves %s.%s unset", rv.Type().Name(), rv.Type().Field(k).Name)
			}
		}
	}
	before, _ := json.Marshal(orig)
	c := orig.Clone()
	if !reflect.DeepEqual(c, orig) {
		t.Fatalf("clone %+v differs from %+v", c, orig)
	}
	c.Quarantine.Held = 5
	c.RequestKeys["u-1"] = 1
	c.RequestCommands["u-1"] = DecisionRequest
	a := c.Assignments["water-xinhua"]
	a.OfficerID = "changed"
	a.Acknowledged.Seq, a.Resolved.Seq, a.Ended.Seq = 1, 1, 1
	a.Breaches[ReportIn] = Breach{}
	a.Earlier[0].Level = 7
	a.Policy.RemindAt[0] = 50
	a.Policy.Chain[0].Target = sla.CitySupervisor
	a.Reminded[ReportIn] = 3
	a.Chain[ReportIn] = ChainStep{}
	a.Extension.Reason, a.Decision.Reason = "changed", "changed"
	c.Assignments["power"] = &Assignment{}
	c.Scorecard.Parts[0].Rating = 1
	c.Scorecard.Parts[0].Breaches[0].Level = 3
	c.Scorecard.Parts = append(c.Scorecard.Parts, &scorecard.Part{})
	if after, _ := json.Marshal(orig); string(after) != string(before) {
		t.Fatalf("changing the clone changed the issue:\n%s\nwas\n%s", after, before)
	}
}

// plainCalendar counts calendar time.
type plainCalendar struct{}

func (plainCalendar) Add(from time.Time, d time.Duration) time.Time { return from.Add(d) }
func (plainCalendar) Between(a, b time.Time) time.Duration          { return b.Sub(a) }

// The breaches view keeps only each breach's name and reads its details from the document, so the
// document must hold every breach the view ever listed: a round's after a reopening, and an ended
// part's after its unit is summoned again, where a new breach of the same clock is the one listed.
func TestEveryBreachListedIsFoundInTheDocumentByItsName(t *testing.T) {
	s := routed(t)
	name := Name(s.ID, "water", ReportIn)
	found := func(name string, seq uint64) {
		t.Helper()
		b, ok := s.BreachNamed(name)
		switch {
		case seq == 0 && ok:
			t.Fatalf("%s names the breach at %d, want none", name, b.Seq)
		case seq != 0 && (!ok || b.Seq != seq):
			t.Fatalf("%s names the breach at %d (found: %v), want the one at %d", name, b.Seq, ok, seq)
		case ok && (b.ListName() != name || IssueOfListName(name) != s.ID):
			t.Fatalf("%s names %s of issue %s", name, b.ListName(), IssueOfListName(name))
		}
	}
	must(t, s.Apply(3, reportInBy, "", Breached{DepartmentID: "water", Kind: ReportIn, Deadline: reportInBy}))
	must(t, s.Apply(4, reportInBy.Add(time.Minute), "", Acknowledged{DepartmentID: "water"}))
	must(t, s.Apply(5, reportInBy.Add(2*time.Minute), "", Resolved{DepartmentID: "water"}))
	again := reportInBy.Add(time.Hour)
	must(t, s.Apply(6, reportInBy.Add(3*time.Minute), "", Reopened{DepartmentID: "water", ReportInBy: again, ResolveBy: again.Add(time.Hour)}))
	found(name, 3)
	found(name+"|1", 0)
	must(t, s.Apply(7, again, "", Breached{DepartmentID: "water", Kind: ReportIn, Deadline: again}))
	found(name, 3)
	found(name+"|1", 7)

	must(t, s.Apply(8, again.Add(time.Minute), "", Ended{DepartmentID: "water"}))
	later := again.Add(time.Hour)
	must(t, s.Apply(9, again.Add(2*time.Minute), "", Routed{Dispatches: []assignment.Dispatch{{DepartmentID: "water", ReportInBy: later, ResolveBy: later.Add(time.Hour)}}}))
	found(name, 3)
	found(name+"|1", 7)
	must(t, s.Apply(10, later, "", Breached{DepartmentID: "water", Kind: ReportIn, Deadline: later}))
	found(name, 10)
	found(name+"|1", 7)
	found(Name(s.ID, "water", Resolve), 0)
	found(Name("OTHER-CASE", "water", ReportIn), 0)
	found(Name(s.ID, "gas", ReportIn), 0)
}
