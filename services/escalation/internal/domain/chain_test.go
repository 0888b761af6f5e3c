package domain

import (
	"errors"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/internal/sla"
)

// chained returns an issue with water summoned at t0 under a policy that reminds at 50 and 80
// percent and escalates a breach to the officer at once, to the head 15 minutes later and again
// 15 minutes after that, and to the street supervisor 30 minutes later.
func chained(t *testing.T) *Issue {
	t.Helper()
	policy := sla.Policy{Name: "p", ReportIn: time.Hour, Resolve: 24 * time.Hour, RemindAt: []int{50, 80}, Chain: []sla.Level{
		{Target: sla.DutyOfficer}, {Wait: 15 * time.Minute, Target: sla.UnitHead, Repeat: 1}, {Wait: 30 * time.Minute, Target: sla.StreetSupervisor},
	}}
	s := &Issue{ID: "K7M3-QX9A"}
	must(t, s.Apply(1, t0, "K7M3-QX9A", Raised{GridID: "xinhua-taoyuan-01", StreetID: "xinhua", CategoryID: "water-supply"}))
	must(t, s.Apply(2, t0, "", Routed{Dispatches: []assignment.Dispatch{{DepartmentID: "water",
		ReportInBy: t0.Add(time.Hour), ResolveBy: t0.Add(24 * time.Hour), Policy: policy}}}))
	return s
}

// stepTimer returns the issue's timer of one step of a clock of water's.
func stepTimer(s *Issue, k Kind, step Step) (time.Time, bool) {
	for _, tm := range s.Timers() {
		if tm.Kind == k && tm.Step == step {
			return tm.At, true
		}
	}
	return time.Time{}, false
}

func TestRemindersComeDueAtTheirSharesOfTheLimitAndALateOneRemindsOfTheLatestPassed(t *testing.T) {
	s := chained(t)
	a := s.Assignments["water"]
	if at, ok := stepTimer(s, ReportIn, RemindStep); !ok || !at.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("report-in reminder at %s %v, want half an hour after dispatch", at, ok)
	}
	if at, _ := stepTimer(s, Resolve, RemindStep); !at.Equal(t0.Add(12 * time.Hour)) {
		t.Fatalf("resolve reminder at %s, want 12 hours after dispatch", at)
	}
	if p, wait := a.OwedReminder("water", ReportIn, t0.Add(20*time.Minute), nil); p != 0 || wait != 10*time.Minute {
		t.Errorf("20 minutes in: reminder %d, wait %s; want none for 10 minutes", p, wait)
	}
	if p, _ := a.OwedReminder("water", ReportIn, t0.Add(50*time.Minute), nil); p != 80 {
		t.Errorf("50 minutes in, past both shares: reminder at %d%%, want 80 (the latest)", p)
	}
	if p, wait := a.OwedReminder("water", ReportIn, t0.Add(time.Hour), nil); p != 0 || wait != 0 {
		t.Errorf("at the deadline: reminder %d, wait %s; the breach is owed, not a reminder", p, wait)
	}
	err := s.Apply(3, t0.Add(29*time.Minute), "", Reminded{DepartmentID: "water", Kind: ReportIn, Percent: 50})
	if !errors.Is(err, eventlog.ErrImpossible) {
		t.Errorf("a reminder stored before its share passed: %v, want impossible", err)
	}
	must(t, s.Apply(3, t0.Add(31*time.Minute), "", Reminded{DepartmentID: "water", Kind: ReportIn, Percent: 50}))
	if at, _ := stepTimer(s, ReportIn, RemindStep); !at.Equal(t0.Add(48 * time.Minute)) {
		t.Errorf("after the first, the next reminder is at %s, want 80%% of an hour", at)
	}
	if err := s.Apply(4, t0.Add(49*time.Minute), "", Reminded{DepartmentID: "water", Kind: ReportIn, Percent: 50}); !errors.Is(err, eventlog.ErrImpossible) {
		t.Errorf("a reminder repeated: %v, want impossible", err)
	}
	must(t, s.Apply(4, t0.Add(40*time.Minute), "", Acknowledged{DepartmentID: "water"}))
	if _, ok := stepTimer(s, ReportIn, RemindStep); ok {
		t.Error("a report-in reminder is still timed after the report-in")
	}
	if err := s.Apply(5, t0.Add(49*time.Minute), "", Reminded{DepartmentID: "water", Kind: ReportIn, Percent: 80}); !errors.Is(err, eventlog.ErrImpossible) {
		t.Errorf("a reminder after the report-in: %v, want impossible", err)
	}
}

func TestAChainClimbsItsLevelsAWaitApartRepeatsAsToldAndEnds(t *testing.T) {
	s := chained(t)
	deadline := t0.Add(time.Hour)
	if _, ok := stepTimer(s, ReportIn, EscalateStep); ok {
		t.Fatal("a chain is timed before its breach")
	}
	must(t, s.Apply(3, deadline, "", Breached{DepartmentID: "water", Kind: ReportIn, Deadline: deadline}))
	steps := []struct {
		level, repeat int
		due           time.Duration // after the deadline
	}{{1, 0, 0}, {2, 0, 15 * time.Minute}, {2, 1, 30 * time.Minute}, {3, 0, time.Hour}}
	for i, st := range steps {
		at, ok := stepTimer(s, ReportIn, EscalateStep)
		if !ok || !at.Equal(deadline.Add(st.due)) {
			t.Fatalf("step %d: timed at %s %v, want %s", i, at, ok, deadline.Add(st.due))
		}
		if err := s.Apply(uint64(4+2*i), at.Add(-time.Millisecond), "", Escalated{DepartmentID: "water", Kind: ReportIn, Level: st.level, Repeat: st.repeat, Person: "p"}); !errors.Is(err, eventlog.ErrImpossible) {
			t.Fatalf("step %d stored before it was due: %v, want impossible", i, err)
		}
		if err := s.Apply(uint64(4+2*i), at, "", Escalated{DepartmentID: "water", Kind: ReportIn, Level: st.level, Repeat: st.repeat + 1, Person: "p"}); !errors.Is(err, eventlog.ErrImpossible) {
			t.Fatalf("step %d out of turn: %v, want impossible", i, err)
		}
		must(t, s.Apply(uint64(4+2*i), at, "", Escalated{DepartmentID: "water", Kind: ReportIn, Level: st.level, Repeat: st.repeat, Person: "p"}))
		if b, _ := s.Breach("water", ReportIn); b.Level != st.level {
			t.Fatalf("step %d: the breach shows level %d", i, b.Level)
		}
	}
	if at, ok := stepTimer(s, ReportIn, EscalateStep); ok {
		t.Errorf("the chain ran to its end, yet a step is timed at %s", at)
	}
}

func TestALevelWithNobodyIsPassedOverAtOnceAndAReportInStopsItsChain(t *testing.T) {
	s := chained(t)
	deadline := t0.Add(time.Hour)
	must(t, s.Apply(3, deadline, "", Breached{DepartmentID: "water", Kind: ReportIn, Deadline: deadline}))
	must(t, s.Apply(4, deadline, "", Escalated{DepartmentID: "water", Kind: ReportIn, Level: 1, Person: "p"}))
	// The head's level comes due 15 minutes on and names nobody: the street supervisor is told then.
	must(t, s.Apply(5, deadline.Add(15*time.Minute), "", Escalated{DepartmentID: "water", Kind: ReportIn, Level: 3, Person: "s", Skipped: []int{2}}))
	if st := s.Assignments["water"].Chain[ReportIn]; st.Level != 3 || !st.At.Equal(deadline.Add(15*time.Minute)) {
		t.Errorf("the chain stands at %+v, want level 3 due when the level passed over was", st)
	}
	s = chained(t)
	must(t, s.Apply(3, deadline, "", Breached{DepartmentID: "water", Kind: ReportIn, Deadline: deadline}))
	must(t, s.Apply(4, deadline, "", Escalated{DepartmentID: "water", Kind: ReportIn, Level: 3, Repeat: 0, Person: "", Skipped: []int{1, 2, 3}}))
	if _, ok := stepTimer(s, ReportIn, EscalateStep); ok {
		t.Error("nobody was left to tell, yet the chain is still timed")
	}
	s = chained(t)
	must(t, s.Apply(3, deadline, "", Breached{DepartmentID: "water", Kind: ReportIn, Deadline: deadline}))
	must(t, s.Apply(4, deadline.Add(time.Minute), "", Acknowledged{DepartmentID: "water"}))
	if _, ok := stepTimer(s, ReportIn, EscalateStep); ok {
		t.Error("the report-in chain runs on after the report-in")
	}
	if err := s.Apply(5, deadline.Add(20*time.Minute), "", Escalated{DepartmentID: "water", Kind: ReportIn, Level: 2, Person: "h"}); !errors.Is(err, eventlog.ErrImpossible) {
		t.Errorf("a step after the report-in: %v, want impossible", err)
	}
	must(t, s.Apply(5, t0.Add(25*time.Hour), "", Breached{DepartmentID: "water", Kind: Resolve, Deadline: t0.Add(24 * time.Hour)}))
	if _, ok := stepTimer(s, Resolve, EscalateStep); !ok {
		t.Error("the resolve chain does not run after its breach")
	}
	must(t, s.Apply(6, t0.Add(26*time.Hour), "", Resolved{DepartmentID: "water"}))
	if len(s.Timers()) != 0 {
		t.Errorf("a resolution left timers %+v", s.Timers())
	}
}

func TestAReopeningStartsTheRemindersAgainFromItsOwnTime(t *testing.T) {
	s := chained(t)
	must(t, s.Apply(3, t0.Add(40*time.Minute), "", Reminded{DepartmentID: "water", Kind: ReportIn, Percent: 50}))
	must(t, s.Apply(4, t0.Add(50*time.Minute), "", Acknowledged{DepartmentID: "water"}))
	must(t, s.Apply(5, t0.Add(2*time.Hour), "", Resolved{DepartmentID: "water"}))
	again := t0.Add(3 * time.Hour)
	must(t, s.Apply(6, again, "", Reopened{DepartmentID: "water", ReportInBy: again.Add(time.Hour), ResolveBy: again.Add(24 * time.Hour)}))
	if at, _ := stepTimer(s, ReportIn, RemindStep); !at.Equal(again.Add(30 * time.Minute)) {
		t.Errorf("the reopened part is reminded at %s, want half an hour after the reopening", at)
	}
}

func TestWorkingTimeRemindersAndStepsCountByTheCalendar(t *testing.T) {
	cat, err := catalog.Sample()
	if err != nil {
		t.Fatal(err)
	}
	zone, _ := time.LoadLocation("Asia/Shanghai")
	friday := time.Date(2025, 9, 26, 16, 0, 0, 0, zone) // the Friday before National Day 2025
	policy := sla.Policy{ReportIn: 7*time.Hour + 30*time.Minute, Resolve: 75 * time.Hour, WorkingTime: true, RemindAt: []int{50},
		Chain: []sla.Level{{Wait: 2 * time.Hour, Target: sla.UnitHead}}}
	reportInBy, resolveBy := policy.Deadlines(cat.Calendar(), friday)
	s := &Issue{ID: "K7M3-QX9A", Calendar: cat.Calendar()}
	must(t, s.Apply(1, friday, "", Raised{StreetID: "xinhua"}))
	must(t, s.Apply(2, friday, "", Routed{Dispatches: []assignment.Dispatch{{DepartmentID: "water", ReportInBy: reportInBy, ResolveBy: resolveBy, Policy: policy}}}))
	// Half of 7.5 working hours: 16:00 to 17:30 on Friday, then 09:00 to 11:15 on Sunday 28
	// September, an adjusted working day.
	if at, _ := stepTimer(s, ReportIn, RemindStep); !at.Equal(time.Date(2025, 9, 28, 11, 15, 0, 0, zone)) {
		t.Errorf("the working-time reminder is at %s, want Sunday 28 September 11:15", at.In(zone))
	}
	// The report-in deadline is Sunday 16:30; the head is told two working hours later: the last
	// hour of Sunday and the first of Monday.
	must(t, s.Apply(3, reportInBy, "", Breached{DepartmentID: "water", Kind: ReportIn, Deadline: reportInBy}))
	if at, _ := stepTimer(s, ReportIn, EscalateStep); !at.Equal(time.Date(2025, 9, 29, 10, 0, 0, 0, zone)) {
		t.Errorf("the working-time chain step is at %s, want Monday 29 September 10:00", at.In(zone))
	}
}
