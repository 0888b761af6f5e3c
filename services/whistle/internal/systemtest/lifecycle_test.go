package systemtest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

func TestTwoHundredIssuesRaisedAtOnceAreAllRoutedAcknowledgedAndResolved(t *testing.T) {
	const n = 200
	// The fake clock never moves, so no deadline passes and no breach may appear.
	sys := Start(t, t.TempDir(), clock.NewFake(Epoch))
	super := Dial(t, sys, Supervisor())
	categories, _ := routable(t, super)
	gridIDs := grids(t)

	workers := map[string]Clients{}
	for _, g := range gridIDs {
		workers[g] = Dial(t, sys, GridWorker(g))
	}
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		grid, category := gridIDs[i%len(gridIDs)], categories[i%len(categories)]
		wg.Go(func() {
			res, err := workers[grid].Intake.RaiseIssue(t.Context(), &whistlev1.RaiseIssueRequest{
				RequestId:  fmt.Sprintf("load-%03d", i),
				GridId:     grid,
				CategoryId: category,
				Urgency:    whistlev1.Urgency_URGENCY_NORMAL,
				Text:       fmt.Sprintf("%s number %d in %s", category, i, grid),
			})
			if err != nil {
				t.Errorf("raise %d: %v", i, err)
				return
			}
			ids[i] = res.GetIssue().GetId()
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if distinct := len(slices.Compact(slices.Sorted(slices.Values(ids)))); distinct != n {
		t.Fatalf("%d raises gave %d distinct case numbers", n, distinct)
	}

	dispatched := waitForStatus(t, super, ids, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)
	byDept := map[string][]string{} // department -> issues it was summoned to
	for id, issue := range dispatched {
		if len(issue.GetAssignments()) == 0 {
			t.Fatalf("issue %s is dispatched to no department", id)
		}
		for _, a := range issue.GetAssignments() {
			byDept[a.GetUnitId()] = append(byDept[a.GetUnitId()], id)
		}
	}

	// Every summoned department works its assignments, all departments at once.
	for dept, issues := range byDept {
		officer := Dial(t, sys, Officer(dept))
		for _, id := range issues {
			wg.Go(func() {
				ack, err := officer.Department.Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: id, UnitId: dept})
				if err != nil {
					t.Errorf("%s acknowledges %s: %v", dept, id, err)
					return
				}
				if s := ack.GetAssignment().GetStatus(); s != whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_ACKNOWLEDGED {
					t.Errorf("%s acknowledged %s, assignment is %s", dept, id, s)
				}
				res, err := officer.Department.Resolve(t.Context(), &whistlev1.ResolveRequest{IssueId: id, UnitId: dept, Note: "done on site"})
				if err != nil {
					t.Errorf("%s resolves %s: %v", dept, id, err)
					return
				}
				if s := res.GetAssignment().GetStatus(); s != whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_RESOLVED {
					t.Errorf("%s resolved %s, assignment is %s", dept, id, s)
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	waitForStatus(t, super, ids, whistlev1.IssueStatus_ISSUE_STATUS_RESOLVED)
	Settle(t, sys)
	for dept, issues := range byDept {
		for _, open := range []whistlev1.AssignmentStatus{
			whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_DISPATCHED,
			whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_ACKNOWLEDGED,
		} {
			if items := inbox(t, super, dept, open); len(items) > 0 {
				t.Errorf("%s still has %d %s items: %v", dept, len(items), open, itemIDs(items))
			}
		}
		resolved := itemIDs(inbox(t, super, dept, whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_RESOLVED))
		want := slices.Sorted(slices.Values(issues))
		if !slices.Equal(resolved, want) {
			t.Errorf("%s lists %d resolved items, want its %d issues", dept, len(resolved), len(want))
		}
	}
	if b := breaches(t, super); len(b) > 0 {
		t.Errorf("%d breaches listed although no deadline passed: %v", len(b), b)
	}
	t.Logf("%d issues raised, routed to %d departments, acknowledged and resolved", n, len(byDept))
}

func TestRestartingOnTheSameDataFolderKeepsEveryIssueAndStillFiresPendingDeadlines(t *testing.T) {
	dir := t.TempDir()
	// Deadlines pass on the stream's clock while the system is down; the services' clock, which
	// only wakes the escalation loop, stands still until the test moves it.
	clk := clock.NewFake(time.Now())
	quick := WithCatalog(QuickCatalog(t, quickReportIn, time.Hour))
	sys := Start(t, dir, clk, quick)
	super := Dial(t, sys, Supervisor())
	categories, _ := routable(t, super)
	// One category for every issue, so that every assignment has the same policy and a
	// time exists past every report-in deadline but before any resolve deadline.
	category := categories[0]

	gridIDs := grids(t)
	var ids []string
	for i := range 6 {
		grid := gridIDs[i%len(gridIDs)]
		ids = append(ids, raise(t, Dial(t, sys, GridWorker(grid)), fmt.Sprintf("restart-%d", i), grid, category).GetId())
	}
	dispatched := waitForStatus(t, super, ids, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)

	// Every assignment of the even issues is acknowledged; the odd ones are left waiting.
	var acked []string
	unacked := map[assignmentKey]bool{}
	for i, id := range ids {
		for _, a := range dispatched[id].GetAssignments() {
			dept := a.GetUnitId()
			if i%2 == 1 {
				unacked[assignmentKey{id, dept}] = true
				continue
			}
			if _, err := Dial(t, sys, Officer(dept)).Department.Acknowledge(t.Context(),
				&whistlev1.AcknowledgeRequest{IssueId: id, UnitId: dept}); err != nil {
				t.Fatalf("%s acknowledges %s: %v", dept, id, err)
			}
		}
		if i%2 == 0 {
			acked = append(acked, id)
		}
	}
	waitForStatus(t, super, acked, whistlev1.IssueStatus_ISSUE_STATUS_IN_PROGRESS)
	Settle(t, sys)
	before := map[string]*whistlev1.GetIssueResponse{}
	for _, id := range ids {
		before[id] = getIssue(t, super, id)
	}
	Stop(t, sys)
	var reportInBy, resolveBy []time.Time
	for _, res := range before {
		for _, a := range res.GetIssue().GetAssignments() {
			reportInBy = append(reportInBy, a.GetReportInBy().AsTime())
			resolveBy = append(resolveBy, a.GetResolveBy().AsTime())
		}
	}
	past := slices.MaxFunc(reportInBy, time.Time.Compare)
	if firstResolve := slices.MinFunc(resolveBy, time.Time.Compare); !past.Before(firstResolve) {
		t.Fatalf("category %s: report-in deadlines end at %s, not before the first resolve deadline %s", category, past, firstResolve)
	}
	waitUntilPast(t, past)

	sys = Start(t, dir, clk, quick)
	super = Dial(t, sys, Supervisor())
	for _, id := range ids {
		if got := getIssue(t, super, id); !proto.Equal(got, before[id]) {
			t.Errorf("after the restart issue %s reads\n%v\nwant\n%v", id, got, before[id])
		}
	}

	clk.Set(past.Add(time.Minute))

	// The breaches the stream holds are those an auditor finds owed on its clock: one for every
	// assignment not acknowledged, and one for any acknowledgement that happened to be stored late.
	wait.For(t, waitTotal, 100*time.Millisecond, func() error { return Audit(t, sys, ids).Agree() })
	Settle(t, sys)
	if v := Audit(t, sys, ids); v.Breaches() < len(unacked) {
		t.Fatalf("%d breaches owed, want at least the %d unacknowledged assignments", v.Breaches(), len(unacked))
	}
	late := Audit(t, sys, ids).Owed
	for _, b := range breaches(t, super) {
		k := assignmentKey{b.GetIssueId(), b.GetUnitId()}
		if b.GetKind() != whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN {
			t.Errorf("breach of %s by %s is %s, want the report-in deadline", b.GetIssueId(), b.GetUnitId(), b.GetKind())
		} else if !unacked[k] && late[Clock{k.issue, k.dept, b.GetKind()}] == 0 {
			t.Errorf("%s breached %s although it acknowledged in time", k.dept, k.issue)
		}
	}
	t.Logf("%d assignments unacknowledged, %d breaches owed and recorded", len(unacked), len(late))
}

// quickReportIn is the report-in limit of tests whose deadlines pass: long enough for a test to
// act in time, short enough to wait out.
const quickReportIn = 5 * time.Second

// waitUntilPast waits until the stream's clock, the real one on this machine, has passed t.
func waitUntilPast(tb testing.TB, t time.Time) {
	tb.Helper()
	wait.For(tb, quickReportIn+time.Minute, 20*time.Millisecond, func() error {
		if now := time.Now(); !now.After(t) {
			return fmt.Errorf("now is %s, not past %s", now, t)
		}
		return nil
	})
}
