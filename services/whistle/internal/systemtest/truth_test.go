package systemtest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

func TestALateAcknowledgementIsABreachInTheListAndTheTimeline(t *testing.T) {
	// The services' clock stands still, so escalation's timers never fire on their own: it
	// learns of the deadline only from the acknowledgement stored after it.
	clk := clock.NewFake(time.Now())
	sys := Start(t, t.TempDir(), clk, WithCatalog(QuickCatalog(t, 2*time.Second, time.Hour)))
	super := Dial(t, sys, Supervisor())
	grid := "xinhua-taoyuan-01"
	routed, _ := routable(t, super)
	id := raise(t, Dial(t, sys, GridWorker(grid)), "late-ack", grid, routed[0]).GetId()
	assignments := waitForStatus(t, super, []string{id}, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)[id].GetAssignments()
	a := assignments[0]
	deadline := a.GetReportInBy().AsTime()
	waitUntilPast(t, deadline)
	if _, err := Dial(t, sys, Officer(a.GetUnitId())).Department.Acknowledge(t.Context(),
		&whistlev1.AcknowledgeRequest{IssueId: id, UnitId: a.GetUnitId()}); err != nil {
		t.Fatal(err)
	}

	var breach *whistlev1.Breach
	wait.For(t, waitTotal, 50*time.Millisecond, func() error {
		for _, b := range breaches(t, super) {
			if b.GetIssueId() == id && b.GetUnitId() == a.GetUnitId() {
				breach = b
				return nil
			}
		}
		return fmt.Errorf("no breach of %s by %s listed", id, a.GetUnitId())
	})
	if breach.GetKind() != whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN || !breach.GetClearedAt().AsTime().After(deadline) ||
		breach.GetBreachedAt().AsTime().Before(breach.GetClearedAt().AsTime()) {
		t.Fatalf("breach %v; want the report-in breach recorded after the late acknowledgement", breach)
	}
	var entry *whistlev1.TimelineEntry
	wait.For(t, waitTotal, 50*time.Millisecond, func() error {
		for _, e := range getIssue(t, super, id).GetTimeline() {
			if e.GetKind() == "breached" && e.GetUnitId() == a.GetUnitId() {
				entry = e
				return nil
			}
		}
		return fmt.Errorf("no breach in %s's timeline", id)
	})
	if !entry.GetAt().AsTime().Equal(breach.GetBreachedAt().AsTime()) || !strings.Contains(entry.GetSummary(), "recorded once that was stored") {
		t.Fatalf("timeline entry %v; want the breach at the time the stream stored it, saying it was recorded late", entry)
	}
	// Once the services' clock moves too, the other departments' timers fire, and the stream holds
	// exactly the breaches an auditor finds owed.
	clk.Set(deadline.Add(time.Minute))
	wait.For(t, waitTotal, 50*time.Millisecond, func() error { return Audit(t, sys, []string{id}).Agree() })
	if n := Audit(t, sys, []string{id}).Breaches(); n != len(assignments) {
		t.Fatalf("%d breaches owed, want one per assignment (%d)", n, len(assignments))
	}
}

func TestAGarbageEventQuarantinesOneIssueAloneAndReplayCountsIt(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(time.Now())
	sys := Start(t, dir, clk)
	super := Dial(t, sys, Supervisor())
	grid := "xinhua-taoyuan-01"
	worker := Dial(t, sys, GridWorker(grid))
	routed, _ := routable(t, super)
	bad := raise(t, worker, "garbage-bad", grid, routed[0]).GetId()
	good := raise(t, worker, "garbage-good", grid, routed[0]).GetId()
	dispatched := waitForStatus(t, super, []string{bad, good}, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)

	// A process holding the department's credentials stores bytes that are no event on the bad
	// issue's subjects.
	seq := PublishAs(t, dir, sys, "department", eventlog.Subject(bad, "acknowledged"), []byte("\xffnot an event"))
	Settle(t, sys) // nothing waits behind it

	// The good issue goes on through its whole life; the bad one shows its quarantine and refuses
	// commands, since its state no longer follows the stream.
	dept := dispatched[good].GetAssignments()[0].GetUnitId()
	officer := Dial(t, sys, Officer(dept))
	if _, err := officer.Department.Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: good, UnitId: dept}); err != nil {
		t.Fatalf("acknowledge the good issue: %v", err)
	}
	badDept := dispatched[bad].GetAssignments()[0].GetUnitId()
	_, err := Dial(t, sys, Officer(badDept)).Department.Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: bad, UnitId: badDept})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("acknowledging the quarantined issue: %v; want FailedPrecondition", err)
	}
	if q := getIssue(t, super, bad).GetIssue().GetQuarantine(); q.GetSeq() != seq || q.GetReason() == "" {
		t.Fatalf("the bad issue's quarantine reads %v; want event %d with its reason", q, seq)
	}
	if q := getIssue(t, super, good).GetIssue().GetQuarantine(); q != nil {
		t.Fatalf("the good issue is quarantined: %v", q)
	}
	list, err := super.Escalation.ListQuarantined(t.Context(), &whistlev1.ListQuarantinedRequest{})
	if err != nil || len(list.GetEvents()) != len(system.Names) {
		t.Fatalf("ListQuarantined = %v, %v; want the event once per service", list, err)
	}
	for _, ev := range list.GetEvents() {
		if ev.GetIssueId() != bad || ev.GetSeq() != seq {
			t.Fatalf("quarantined %v; want only %s at %d", ev, bad, seq)
		}
	}
	Settle(t, sys)
	Stop(t, sys)

	res, err := system.Replay(t.Context(), Options(dir, clk))
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	for _, name := range system.Names {
		if res.Quarantined[name] != 1 {
			t.Errorf("after the replay %s holds %d quarantined issues, want 1", name, res.Quarantined[name])
		}
	}
	if res.Appended != 0 {
		t.Errorf("the replay appended %d events", res.Appended)
	}
}
