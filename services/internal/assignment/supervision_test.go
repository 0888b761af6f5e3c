package assignment_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
)

// asking returns water's assignment in status s with a request, asked ten minutes after dispatch,
// to move its deadline of kind k two hours later.
func asking(s assignment.Status, k assignment.DeadlineKind) *assignment.Assignment {
	a := in(s)
	a.Extension = &assignment.Extension{Kind: k, Proposed: a.Deadline(k).Add(2 * time.Hour), Reason: "a part is on order", By: "o1", At: t0.Add(10 * time.Minute)}
	return a
}

func TestAnApprovalMovesTheDeadlineOnlyWhenStoredBeforeIt(t *testing.T) {
	t.Parallel()
	granted := reportInBy.Add(2 * time.Hour)
	for _, tc := range []struct {
		name  string
		at    time.Time
		moved bool
	}{
		{"a millisecond before the deadline", reportInBy.Add(-time.Millisecond), true},
		{"at the deadline", reportInBy, false},
		{"a millisecond after it", reportInBy.Add(time.Millisecond), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := asking(assignment.Dispatched, assignment.ReportIn)
			err := a.DecideExtension(assignment.Decision{Kind: assignment.ReportIn, Approved: true, Deadline: reportInBy, Granted: granted, By: "sup", At: tc.at})
			if err != nil {
				t.Fatal(err)
			}
			if a.Extension != nil || a.Decision == nil || a.Decision.Moved() != tc.moved || a.Decision.Late == tc.moved {
				t.Fatalf("after the decision: pending %v, decision %+v; want moved %v", a.Extension, a.Decision, tc.moved)
			}
			want := reportInBy
			if tc.moved {
				want = granted
			}
			if !a.ReportInBy.Equal(want) || !a.ResolveBy.Equal(resolveBy) {
				t.Fatalf("deadlines %s and %s, want report-in by %s and resolve by %s", a.ReportInBy, a.ResolveBy, want, resolveBy)
			}
			// The deadline in force is the one a breach must name, and the one its timer runs to.
			owed, _ := a.Owes(assignment.ReportIn, reportInBy.Add(time.Minute))
			if owed == tc.moved {
				t.Fatalf("a breach of report-in a minute after the first deadline owed: %v; want %v", owed, !tc.moved)
			}
			breach := a.Breach(assignment.Breach{DepartmentID: "water", Kind: assignment.ReportIn, Deadline: reportInBy, At: reportInBy.Add(time.Minute)})
			if (breach == nil) == tc.moved {
				t.Fatalf("a breach of the first deadline: %v", breach)
			}
		})
	}
}

func TestASupervisorsDecisionIsAllowedExactlyWhenItsEventIsLegal(t *testing.T) {
	t.Parallel()
	before := reportInBy.Add(-time.Minute) // the stream's clock, before the report-in deadline
	breached := func(a *assignment.Assignment) *assignment.Assignment {
		if err := a.Breach(assignment.Breach{DepartmentID: "water", Kind: assignment.ReportIn, Deadline: reportInBy, At: reportInBy}); err != nil {
			panic(err)
		}
		return a
	}
	for _, tc := range []struct {
		name    string
		part    *assignment.Assignment
		approve bool
		granted time.Time
		now     time.Time
		want    string // allowed, refused, invalid (naming granted)
	}{
		{"an approval of a pending request", asking(assignment.Dispatched, assignment.ReportIn), true, time.Time{}, before, "allowed"},
		{"an approval granting less than asked", asking(assignment.Dispatched, assignment.ReportIn), true, reportInBy.Add(time.Hour), before, "allowed"},
		{"an approval once the stream's clock reached the deadline", asking(assignment.Dispatched, assignment.ReportIn), true, time.Time{}, reportInBy, "refused"},
		{"a denial once the stream's clock passed the deadline", asking(assignment.Dispatched, assignment.ReportIn), false, time.Time{}, reportInBy.Add(time.Hour), "allowed"},
		{"an approval of a breached deadline", breached(asking(assignment.Dispatched, assignment.ReportIn)), true, time.Time{}, before, "refused"},
		{"a denial of a breached deadline's request", breached(asking(assignment.Dispatched, assignment.ReportIn)), false, time.Time{}, before, "allowed"},
		{"an approval of a cleared clock", asking(assignment.Acknowledged, assignment.ReportIn), true, time.Time{}, before, "refused"},
		{"an approval for a resolved part", asking(assignment.Resolved, assignment.Resolve), true, time.Time{}, before, "refused"},
		{"a denial for a resolved part", asking(assignment.Resolved, assignment.Resolve), false, time.Time{}, before, "allowed"},
		{"an approval with nothing pending", in(assignment.Dispatched), true, time.Time{}, before, "refused"},
		{"a denial with nothing pending", in(assignment.Dispatched), false, time.Time{}, before, "refused"},
		{"an approval granting the deadline as it stands", asking(assignment.Dispatched, assignment.ReportIn), true, reportInBy, before, "invalid"},
		{"an approval granting more than the limit", asking(assignment.Dispatched, assignment.ReportIn), true, reportInBy.Add(assignment.MaxExtension + time.Second), before, "invalid"},
	} {
		t.Run(fmt.Sprintf("%s is %s", tc.name, tc.want), func(t *testing.T) {
			a := tc.part
			d, done, err := a.CheckDecision(tc.approve, tc.granted, "", tc.now)
			var te *assignment.TransitionError
			var ie *assignment.InvalidError
			got := "allowed"
			switch {
			case done:
				got = "done"
			case errors.As(err, &te):
				got = "refused"
			case errors.As(err, &ie) && ie.Field == "granted":
				got = "invalid"
			case err != nil:
				got = err.Error()
			}
			if got != tc.want {
				t.Fatalf("the check says %s (%v), want %s", got, err, tc.want)
			}
			if got != "allowed" {
				return
			}
			if tc.approve && tc.granted.IsZero() && !d.Granted.Equal(a.Extension.Proposed) {
				t.Fatalf("an approval granting nothing grants %s, want the proposal %s", d.Granted, a.Extension.Proposed)
			}
			// What the check allows, stored when the stream's clock read, folds.
			d.By, d.At = "sup", tc.now
			if err := a.DecideExtension(d); err != nil {
				t.Fatalf("the decision it allows folds with %v", err)
			}
			// The same decision again has nothing to do.
			if _, done, err := a.CheckDecision(tc.approve, tc.granted, "", tc.now); !done || err != nil {
				t.Fatalf("the same decision again: done %v, %v", done, err)
			}
		})
	}
	if _, _, err := (*assignment.Assignment)(nil).CheckDecision(true, time.Time{}, "", before); !errors.Is(err, assignment.ErrNotSummoned) {
		t.Errorf("a decision for a unit never summoned: %v", err)
	}
}

func TestOnlyAnOpenPartIsUrgedAndEachUrgeCounts(t *testing.T) {
	t.Parallel()
	for _, s := range statuses[1:] {
		a := in(s)
		check := a.CheckUrge()
		folded := a.Urge("water")
		if open := s.Open(); (check == nil) != open || (folded == nil) != open {
			t.Errorf("an urge of a %s part: check %v, fold %v", s, check, folded)
		}
		if s.Open() && a.Urge("water") == nil && a.Urges != 2 {
			t.Errorf("two urges of a %s part count %d", s, a.Urges)
		}
		if folded != nil && !errors.Is(folded, eventlog.ErrImpossible) {
			t.Errorf("an urge of a %s part is refused with %v, not as impossible", s, folded)
		}
	}
	if err := (*assignment.Assignment)(nil).CheckUrge(); !errors.Is(err, assignment.ErrNotSummoned) {
		t.Errorf("an urge of a unit never summoned: %v", err)
	}
	// A reopened part keeps its urges and its latest decision; its pending request is gone.
	a := asking(assignment.Resolved, assignment.Resolve)
	a.Urges = 3
	a.Decision = &assignment.Decision{Kind: assignment.ReportIn, By: "sup"}
	if err := a.Reopen(assignment.Reopening{DepartmentID: "water", At: t0.Add(48 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if a.Urges != 3 || a.Decision == nil || a.Extension != nil {
		t.Errorf("reopened: urges %d, decision %v, pending %v", a.Urges, a.Decision, a.Extension)
	}
}
