package systemtest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
	"github.com/whistle-dispatch/whistle/services/internal/evidence/evidencetest"
	"github.com/whistle-dispatch/whistle/services/routing"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// dayGrid is where the day's issues are raised.
const dayGrid = "xinhua-taoyuan-01"

// soleLead finds a category the rules send, in dayGrid, to one unit alone, and that unit.
func soleLead(t *testing.T, catalogPath string) (category, unit string) {
	t.Helper()
	ex, err := routing.NewExplainer(routing.Config{CatalogPath: catalogPath})
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Load(catalogPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range cat.Categories() {
		units, err := ex.Explain(t.Context(), routing.Hypothetical{Grid: dayGrid, Category: k.ID, Text: "a day's work"})
		if err == nil && len(units) == 1 && !strings.HasPrefix(units[0], dayGrid) && units[0] != catalog.DeskDepartment {
			return k.ID, units[0]
		}
	}
	t.Fatal("no category goes to one unit alone")
	return "", ""
}

// officerOf is a person acting for unit.
func officerOf(unit, id string) authx.Principal {
	return authx.Principal{Subject: id, Role: authx.RoleOfficer, Scope: unit}
}

// TestADayOfADepartment runs a unit's day through the gRPC API on real NATS and Redis, with the
// services on an injected clock: the rotation's officer receives the morning's assignment, hands
// it over to a colleague, an override takes over at its hand-over and receives the next one, which
// is returned; an extension is asked; a resolve with a photo is failed on site and reopened with new
// deadlines, resolved again and passed; the raiser rates it; the city's webhook, which fails each
// notification twice, tells the officer on its third attempt. Then Redis is wiped and the replay
// rebuilds the same views, key for key.
func TestADayOfADepartment(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(time.Now())
	quickPath := QuickCatalog(t, time.Hour, 4*time.Hour)
	category, unit := soleLead(t, quickPath)

	// The rotation puts wang on duty all day; an override puts li on duty from a hand-over a few
	// seconds from now (judged, like every push, on the stream's clock); zhou is a colleague on
	// a weekend shift.
	handOver := time.Now().Add(6 * time.Second).Truncate(time.Second)
	rosterPath := filepath.Join(t.TempDir(), "rosters.yaml")
	rosters := fmt.Sprintf(`people:
  - {id: wang, name: 王伟}
  - {id: li, name: 李娜}
  - {id: zhou, name: 周杰}
  - {id: head, name: 张强}
rosters:
  - unit: %s
    head: head
    shifts:
      - {name: all-day, days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "00:00", people: [wang]}
      - {name: weekend, days: [sat, sun], start: "08:00", end: "09:00", people: [zhou]}
    overrides:
      - {people: [li], from: %s, to: %s, reason: cover for wang}
`, unit, handOver.Format(time.RFC3339), handOver.Add(2*time.Hour).Format(time.RFC3339))
	if err := os.WriteFile(rosterPath, []byte(rosters), 0o600); err != nil {
		t.Fatal(err)
	}
	// The city's webhook fails each notification twice before it takes it.
	h := &hook{codes: []int{http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusOK}}
	opts := []Option{WithCatalog(quickPath), WithRoster(rosterPath), withWebhook(serveHook(t, h), 5*time.Second, time.Second)}
	sys := Start(t, dir, clk, opts...)
	super := Dial(t, sys, Supervisor())
	worker := Dial(t, sys, GridWorker(dayGrid))
	wang, li, zhou := Dial(t, sys, officerOf(unit, "wang")), Dial(t, sys, officerOf(unit, "li")), Dial(t, sys, officerOf(unit, "zhou"))
	ctx := t.Context()

	// Morning: the first issue goes to wang, who is on duty.
	morning := raise(t, worker, "day-morning", dayGrid, category).GetId()
	pushedTo(t, super, morning, unit, "wang")
	// Wang is told through the webhook, on its third attempt: the back-off runs on the services'
	// clock, which the test moves on.
	wait.For(t, waitTotal, 50*time.Millisecond, func() error {
		clk.Advance(time.Second)
		res, err := super.Department.ListNotifications(ctx, &whistlev1.ListNotificationsRequest{IssueId: morning,
			Status: whistlev1.NotificationStatus_NOTIFICATION_STATUS_DELIVERED})
		if err != nil {
			return err
		}
		for _, n := range res.GetNotifications() {
			if n.GetRecipientId() == "wang" && n.GetEventKind() == "pushed" && len(n.GetAttempts()) == 3 {
				return nil
			}
		}
		return fmt.Errorf("wang is not told yet: %v", res.GetNotifications())
	})
	for _, r := range h.requests() {
		if r.sigErr != nil {
			t.Errorf("a notification's signature does not verify: %v", r.sigErr)
		}
	}
	who, err := wang.Department.WhoIsOnDuty(ctx, &whistlev1.WhoIsOnDutyRequest{At: timestamppb.Now()})
	if err != nil || who.GetOnDuty()[0].GetId() != "wang" || who.GetShift() != "all-day" {
		t.Fatalf("who is on duty this morning: %v %v", who, err)
	}
	if _, err := wang.Department.Acknowledge(ctx, &whistlev1.AcknowledgeRequest{IssueId: morning}); err != nil {
		t.Fatal(err)
	}
	if _, err := wang.Department.HandOver(ctx, &whistlev1.HandOverRequest{IssueId: morning, ToOfficerId: "zhou", Note: "the valve is in the yard"}); err != nil {
		t.Fatal(err)
	}

	// The override's hand-over: the next issue goes to li, who returns it.
	waitUntilPast(t, handOver)
	afternoon := raise(t, worker, "day-afternoon", dayGrid, category).GetId()
	pushedTo(t, super, afternoon, unit, "li")
	if _, err := li.Department.ReturnAssignment(ctx, &whistlev1.ReturnAssignmentRequest{IssueId: afternoon, Reason: "a private pipe: not ours"}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, waitTotal, 50*time.Millisecond, func() error {
		is := getIssue(t, super, afternoon).GetIssue()
		if is.GetAssignments()[0].GetStatus() != whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_RETURNED || len(openUnits(is)) == 0 {
			return fmt.Errorf("after the return: %v", is)
		}
		return nil
	})

	// Zhou asks for more time, adds a note and resolves.
	a := getIssue(t, super, morning).GetIssue().GetAssignments()[0]
	if _, err := zhou.Department.RequestExtension(ctx, &whistlev1.RequestExtensionRequest{IssueId: morning,
		Proposed: timestamppb.New(a.GetResolveBy().AsTime().Add(24 * time.Hour)), Reason: "a part is on order"}); err != nil {
		t.Fatal(err)
	}
	// A supervisor grants it and urges the part: the inbox and the issue show the new deadline, the
	// decision and the urge, and zhou, who holds the part, is told of both.
	granted := a.GetResolveBy().AsTime().Add(24 * time.Hour)
	decided, err := super.Escalation.DecideExtension(ctx, &whistlev1.DecideExtensionRequest{IssueId: morning, UnitId: unit, Approve: true})
	if err != nil || !decided.GetAssignment().GetResolveBy().AsTime().Equal(granted) {
		t.Fatalf("the approval: %v %v", decided, err)
	}
	if _, err := super.Escalation.Urge(ctx, &whistlev1.UrgeRequest{IssueId: morning, Note: "the school opens on Monday", RequestId: "day-urge"}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, waitTotal, 50*time.Millisecond, func() error {
		items, err := zhou.Department.ListInbox(ctx, &whistlev1.ListInboxRequest{})
		if err != nil {
			return err
		}
		for _, it := range items.GetItems() {
			if x := it.GetAssignment(); it.GetIssueId() == morning && x.GetResolveBy().AsTime().Equal(granted) && x.GetExtensionRequested() == nil &&
				x.GetExtensionDecided().GetApproved() && x.GetExtensionDecided().GetDecidedBy() == Supervisor().Subject && x.GetUrges() == 1 {
				return nil
			}
		}
		return fmt.Errorf("zhou's inbox does not show the approval and the urge yet: %v", items.GetItems())
	})
	wait.For(t, waitTotal, 50*time.Millisecond, func() error {
		x := getIssue(t, super, morning).GetIssue().GetAssignments()[0]
		if !x.GetResolveBy().AsTime().Equal(granted) || !x.GetExtensionDecided().GetGranted().AsTime().Equal(granted) || x.GetUrges() != 1 {
			return fmt.Errorf("the issue does not show the approval and the urge yet: %v", x)
		}
		return nil
	})
	wait.For(t, waitTotal, 50*time.Millisecond, func() error {
		res, err := super.Department.ListNotifications(ctx, &whistlev1.ListNotificationsRequest{IssueId: morning, PageSize: 200})
		if err != nil {
			return err
		}
		told := map[string]bool{}
		for _, n := range res.GetNotifications() {
			if n.GetRecipientId() == "zhou" {
				told[n.GetEventKind()] = true
			}
		}
		if !told["extension-decided"] || !told["urged"] {
			return fmt.Errorf("zhou is told of %v", told)
		}
		return nil
	})
	if _, err := zhou.Department.AddNote(ctx, &whistlev1.AddNoteRequest{IssueId: morning, Note: "part fitted", RequestId: "zhou-1"}); err != nil {
		t.Fatal(err)
	}
	photo, err := evidence.Upload(ctx, zhou.Intake, "", morning, evidencetest.JPEGWithGPS(64, 48))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zhou.Department.Resolve(ctx, &whistlev1.ResolveRequest{IssueId: morning, Note: "valve replaced", PhotoIds: []string{photo.GetId()}}); err != nil {
		t.Fatal(err)
	}
	waitForStatus(t, super, []string{morning}, whistlev1.IssueStatus_ISSUE_STATUS_RESOLVED)
	if got, data, err := evidence.Fetch(ctx, worker.Intake, morning, photo.GetId()); err != nil || got.GetDigest() != photo.GetDigest() || len(data) == 0 {
		t.Fatalf("the grid's worker fetching the resolve's photo: %v %v", got, err)
	}

	// The grid's worker fails it on site: the lead's part runs again with new deadlines.
	clk.Advance(3 * time.Hour)
	failed, err := worker.Intake.VerifyIssue(ctx, &whistlev1.VerifyIssueRequest{IssueId: morning, Reason: "the road is still wet"})
	if err != nil {
		t.Fatal(err)
	}
	reopened := failed.GetIssue().GetAssignments()[0]
	if reopened.GetStatus() != whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_DISPATCHED || reopened.GetReopened() != 1 ||
		!reopened.GetReportInBy().AsTime().Equal(clk.Now().Add(time.Hour)) || reopened.GetOfficerId() != "zhou" {
		t.Fatalf("reopened: %v", reopened)
	}
	for _, step := range []func() error{
		func() error {
			_, err := zhou.Department.Acknowledge(ctx, &whistlev1.AcknowledgeRequest{IssueId: morning})
			return err
		},
		func() error {
			_, err := zhou.Department.Resolve(ctx, &whistlev1.ResolveRequest{IssueId: morning, Note: "drain cleared too"})
			return err
		},
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	waitForStatus(t, super, []string{morning}, whistlev1.IssueStatus_ISSUE_STATUS_RESOLVED)
	if _, err := worker.Intake.VerifyIssue(ctx, &whistlev1.VerifyIssueRequest{IssueId: morning, Passed: true}); err != nil {
		t.Fatal(err)
	}
	rated, err := worker.Intake.RateIssue(ctx, &whistlev1.RateIssueRequest{IssueId: morning, Score: 4, Comment: "quick the second time"})
	if err != nil || rated.GetIssue().GetStatus() != whistlev1.IssueStatus_ISSUE_STATUS_CLOSED || rated.GetIssue().GetRating().GetScore() != 4 {
		t.Fatalf("rating: %v %v", rated, err)
	}

	// The timeline tells the day in the stream's order.
	var kinds []string
	for _, e := range super.getTimeline(t, morning) {
		kinds = append(kinds, e.GetKind())
	}
	want := []string{"raised", "routed", "pushed", "acknowledged", "handed-over", "extension-requested", "extension-decided", "urged",
		"noted", "resolved", "verified", "acknowledged", "resolved", "verified", "rated"}
	if !slices.Equal(kinds, want) {
		t.Errorf("the morning's timeline is %v, want %v", kinds, want)
	}

	// Wiping Redis and replaying rebuilds the same views, rosters' pushes and the closing loop
	// included.
	ids := []string{morning, afternoon}
	Settle(t, sys)
	before := readViews(t, super, ids)
	Stop(t, sys)
	derived := dumpRedis(t, filepath.Join(dir, "redis"), true)
	rctx, cancel := context.WithTimeout(ctx, waitTotal)
	defer cancel()
	if _, err := system.Replay(rctx, Options(dir, clk, opts...)); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if got := dumpRedis(t, filepath.Join(dir, "redis"), false); got != derived {
		t.Errorf("the rebuilt Redis differs from what the live system kept:\n--- rebuilt\n%s\n--- live\n%s", got, derived)
	}
	sys = Start(t, dir, clk, opts...)
	before.diff(t, readViews(t, Dial(t, sys, Supervisor()), ids))
}

// pushedTo waits until the issue's assignment of unit was pushed to officer.
func pushedTo(t *testing.T, c Clients, id, unit, officer string) {
	t.Helper()
	wait.For(t, waitTotal, 50*time.Millisecond, func() error {
		for _, a := range getIssue(t, c, id).GetIssue().GetAssignments() {
			if a.GetUnitId() == unit && a.GetOfficerId() == officer {
				return nil
			}
		}
		return fmt.Errorf("issue %s's assignment of %s is not pushed to %s", id, unit, officer)
	})
}
