package domain

import (
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// routed returns an issue with water summoned, report-in due at +30m and resolve at +2h.
func routed() *Issue {
	s := &Issue{ID: "K7M3-QX9A"}
	s.Apply(1, "K7M3-QX9A", Raised{GridID: "xinhua-taoyuan-01", StreetID: "xinhua", CategoryID: "water-supply"})
	s.Apply(2, "", Routed{Dispatches: []Dispatch{{DepartmentID: "water", ReportInBy: t0.Add(30 * time.Minute), ResolveBy: t0.Add(2 * time.Hour)}}})
	return s
}

// openKinds returns the kinds of s's open clocks with their deadlines.
func openKinds(s *Issue) map[Kind]time.Time {
	m := map[Kind]time.Time{}
	for _, t := range s.Timers() {
		m[t.Kind] = t.At
	}
	return m
}

func TestClocksCloseOnTheEventsThatClearOrBreachThem(t *testing.T) {
	tests := []struct {
		name   string
		events []Event
		open   []Kind
	}{
		{"routing opens both clocks", nil, []Kind{ReportIn, Resolve}},
		{"acknowledging stops report-in only", []Event{Acknowledged{DepartmentID: "water"}}, []Kind{Resolve}},
		{"resolving stops both", []Event{Resolved{DepartmentID: "water"}}, nil},
		{"a breach closes its own clock", []Event{Breached{DepartmentID: "water", Kind: ReportIn, Deadline: t0.Add(30 * time.Minute), At: t0.Add(31 * time.Minute)}}, []Kind{Resolve}},
		{"another department's event changes nothing", []Event{Resolved{DepartmentID: "gas"}}, []Kind{ReportIn, Resolve}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := routed()
			for i, e := range tt.events {
				s.Apply(uint64(3+i), "", e)
			}
			open := openKinds(s)
			if len(open) != len(tt.open) {
				t.Fatalf("open clocks %v, want %v", open, tt.open)
			}
			for _, k := range tt.open {
				if _, ok := open[k]; !ok {
					t.Fatalf("open clocks %v, want %v", open, tt.open)
				}
			}
		})
	}
}

func TestADeadlineIsDueOnlyOnceItHasPassedAndWhileItIsOpen(t *testing.T) {
	s := routed()
	if _, due := s.Due("water", ReportIn, t0.Add(29*time.Minute)); due {
		t.Fatal("report-in is due before its deadline")
	}
	deadline, due := s.Due("water", ReportIn, t0.Add(30*time.Minute))
	if !due || !deadline.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("report-in at its deadline: due %v, deadline %v", due, deadline)
	}
	s.Apply(3, "", Breached{DepartmentID: "water", Kind: ReportIn, Deadline: deadline, At: t0.Add(30 * time.Minute)})
	if _, due := s.Due("water", ReportIn, t0.Add(time.Hour)); due {
		t.Fatal("a breached deadline is due again")
	}
	b, ok := s.Breach("water", ReportIn)
	if !ok || b.Seq != 3 || b.GridID != "xinhua-taoyuan-01" || b.StreetID != "xinhua" {
		t.Fatalf("breach recorded as %+v, %v", b, ok)
	}
	if _, due := s.Due("gas", Resolve, t0.Add(time.Hour)); due {
		t.Fatal("a department never summoned has a due deadline")
	}
	if s.CorrelationID != "K7M3-QX9A" {
		t.Fatalf("correlation id %q, want the one of the first event", s.CorrelationID)
	}
}

func TestTimerNamesReadBack(t *testing.T) {
	tm := Timer{IssueID: "K7M3-QX9A", DepartmentID: "water", Kind: Resolve}
	issue, dept, kind, err := ParseName(tm.Name())
	if err != nil || issue != tm.IssueID || dept != tm.DepartmentID || kind != tm.Kind {
		t.Fatalf("ParseName(%q) = %q %q %q %v", tm.Name(), issue, dept, kind, err)
	}
	for _, bad := range []string{"", "a|b", "a|b|late", "|b|resolve"} {
		if _, _, _, err := ParseName(bad); err == nil {
			t.Errorf("ParseName(%q) accepted", bad)
		}
	}
}

func TestASecondDispatchOfADepartmentKeepsTheDeadlinesFrozenAtTheFirst(t *testing.T) {
	s := routed()
	s.Apply(3, "", Routed{Dispatches: []Dispatch{
		{DepartmentID: "water", ReportInBy: t0.Add(5 * time.Minute), ResolveBy: t0.Add(10 * time.Minute)},
		{DepartmentID: "gas", ReportInBy: t0.Add(15 * time.Minute), ResolveBy: t0.Add(time.Hour)},
	}})
	open := map[string]time.Time{}
	for _, tm := range s.Timers() {
		open[tm.Name()] = tm.At
	}
	want := map[string]time.Time{
		Name(s.ID, "water", ReportIn): t0.Add(30 * time.Minute),
		Name(s.ID, "water", Resolve):  t0.Add(2 * time.Hour),
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
