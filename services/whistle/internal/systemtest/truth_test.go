package systemtest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
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
	if _, err := Dial(t, sys, Officer(a.GetDepartmentId())).Department.Acknowledge(t.Context(),
		&whistlev1.AcknowledgeRequest{IssueId: id, DepartmentId: a.GetDepartmentId()}); err != nil {
		t.Fatal(err)
	}

	var breach *whistlev1.Breach
	wait.For(t, waitTotal, 50*time.Millisecond, func() error {
		for _, b := range breaches(t, super) {
			if b.GetIssueId() == id && b.GetDepartmentId() == a.GetDepartmentId() {
				breach = b
				return nil
			}
		}
		return fmt.Errorf("no breach of %s by %s listed", id, a.GetDepartmentId())
	})
	if breach.GetKind() != whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN || !breach.GetClearedAt().AsTime().After(deadline) ||
		breach.GetBreachedAt().AsTime().Before(breach.GetClearedAt().AsTime()) {
		t.Fatalf("breach %v; want the report-in breach recorded after the late acknowledgement", breach)
	}
	var entry *whistlev1.TimelineEntry
	wait.For(t, waitTotal, 50*time.Millisecond, func() error {
		for _, e := range getIssue(t, super, id).GetTimeline() {
			if e.GetKind() == "breached" && e.GetDepartmentId() == a.GetDepartmentId() {
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
