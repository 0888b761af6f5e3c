package domain_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/quarantine"
	"github.com/whistle-dispatch/whistle/services/department/internal/domain"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
	"github.com/whistle-dispatch/whistle/services/internal/sla"
)

func TestAnAssignmentIsAcknowledgedThenResolvedByItsOfficers(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	i := &domain.Issue{ID: "K7M3-QX9A"}
	if _, err := i.CheckAcknowledge("water", "o1"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("before dispatch: %v; want ErrNotFound", err)
	}
	if err := i.Acknowledge(assignment.Acknowledgement{DepartmentID: "water", At: at, By: "o1"}); !errors.Is(err, eventlog.ErrImpossible) {
		t.Fatalf("a report-in before dispatch folded: %v; want it impossible", err)
	}
	i.Dispatch([]assignment.Dispatch{{DepartmentID: "water", Role: assignment.Lead}}, at, 1)
	var te *assignment.TransitionError
	if _, err := i.CheckResolve("water", "o1", "cleared"); !errors.As(err, &te) || te.Reason != "report in before resolving" {
		t.Fatalf("resolve before reporting in: %v", err)
	}
	if done, err := i.CheckAcknowledge("water", "o1"); done || err != nil {
		t.Fatalf("first report-in: %v, %v", done, err)
	}
	if err := i.Acknowledge(assignment.Acknowledgement{DepartmentID: "water", At: at, By: "o1"}); err != nil {
		t.Fatal(err)
	}
	if done, err := i.CheckAcknowledge("water", "o1"); !done || err != nil {
		t.Fatalf("same officer again: %v, %v; want done", done, err)
	}
	if _, err := i.CheckAcknowledge("water", "o2"); !errors.As(err, &te) {
		t.Fatalf("another officer: %v; want a TransitionError", err)
	}
	i.Dispatch([]assignment.Dispatch{{DepartmentID: "water", Role: assignment.Assisting}}, at.Add(time.Hour), 2) // a second dispatch changes nothing
	if err := i.Resolve(assignment.Resolution{DepartmentID: "water", At: at, By: "o2", Note: "cleared"}); err != nil {
		t.Fatal(err)
	}
	a := i.Assignment("water")
	if len(i.Assignments) != 1 || a.Status != assignment.Resolved || a.Role != assignment.Lead || !a.DispatchedAt.Equal(at) ||
		a.AcknowledgedBy != "o1" || a.ResolvedBy != "o2" {
		t.Fatalf("assignments %+v", i.Assignments)
	}
	if done, err := i.CheckResolve("water", "o2", "cleared"); !done || err != nil {
		t.Fatalf("same resolver again: %v, %v; want done", done, err)
	}
	if _, err := i.CheckResolve("water", "o2", "cleared, and the grate replaced"); !errors.As(err, &te) {
		t.Fatalf("same resolver with another note: %v; want a TransitionError", err)
	}
	if _, err := i.CheckResolve("water", "o1", "cleared"); !errors.As(err, &te) {
		t.Fatalf("another resolver: %v; want a TransitionError", err)
	}
	if _, err := i.CheckAcknowledge("water", "o1"); !errors.As(err, &te) {
		t.Fatalf("report in after resolution: %v; want a TransitionError", err)
	}
}

func TestACloneEqualsTheIssueAndSharesNothingWithIt(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	orig := &domain.Issue{ID: "K7M3-QX9A", LastSeq: 9, Grid: "g", Street: "s", Category: "c", Urgency: 2,
		Text: "t", CorrelationID: "x", Changed: map[string]uint64{"water": 7},
		Unpushed: []string{"water"}, SummonedSeq: 8, SummonedAt: at, NoteKeys: []string{"n-1"},
		Quarantine: &quarantine.Mark{Seq: 9, Subject: "sub", Reason: "r", StoredAt: at, Held: 1},
		Assignments: []assignment.Assignment{{DepartmentID: "water", UnitID: "water", EndedAt: at, EndedBy: "o2", EndReason: "r", Role: assignment.Lead, Status: assignment.Acknowledged,
			DispatchedAt: at, ReportInBy: at, ResolveBy: at, AcknowledgedAt: at, AcknowledgedBy: "o1", Note: "n",
			Breached:  []assignment.DeadlineKind{assignment.ReportIn},
			Policy:    sla.Policy{ReportIn: time.Hour, Resolve: time.Hour, RemindAt: []int{80}, Chain: []sla.Level{{Target: sla.UnitHead}}},
			OfficerID: "o1", Reopened: 1, EscalationLevel: 2,
			Extension: &assignment.Extension{Kind: assignment.Resolve, Proposed: at, Reason: "r", By: "o1", At: at},
			Photos:    []evidence.Photo{{ID: "ph_A", Digest: "sha256:00", ContentType: "image/png", Size: 1}},
			Decision:  &assignment.Decision{Kind: assignment.ReportIn, Approved: true, Deadline: at, Granted: at, Reason: "r", By: "sup", At: at},
			Urges:     2}}}
	// Every field is set above, so that a field added later and left out of Clone fails here.
	v := reflect.ValueOf(*orig)
	for k := range v.NumField() {
		if v.Field(k).IsZero() {
			t.Fatalf("the test leaves Issue.%s unset", v.Type().Field(k).Name)
		}
	}
	a := reflect.ValueOf(orig.Assignments[0])
	for k := range a.NumField() {
		if name := a.Type().Field(k).Name; a.Field(k).IsZero() && name != "ResolvedAt" && name != "ResolvedBy" {
			t.Fatalf("the test leaves Assignment.%s unset", name)
		}
	}
	before, _ := json.Marshal(orig)
	c := orig.Clone()
	if !reflect.DeepEqual(c, orig) {
		t.Fatalf("clone %+v differs from %+v", c, orig)
	}
	c.Changed["water"] = 8
	c.Quarantine.Held = 5
	c.Assignments[0].Note = "changed"
	c.Assignments[0].Extension.Reason = "changed"
	c.Assignments[0].Decision.Reason = "changed"
	c.Unpushed[0] = "changed"
	c.NoteKeys[0] = "changed"
	c.Assignments[0].Breached[0] = assignment.Resolve
	c.Assignments[0].Photos[0].ID = "ph_B"
	c.Assignments[0].Policy.RemindAt[0] = 50
	c.Assignments[0].Policy.Chain[0].Target = sla.CitySupervisor
	c.Assignments = append(c.Assignments, assignment.Assignment{DepartmentID: "power"})
	if after, _ := json.Marshal(orig); string(after) != string(before) {
		t.Fatalf("changing the clone changed the issue:\n%s\nwas\n%s", after, before)
	}
}
