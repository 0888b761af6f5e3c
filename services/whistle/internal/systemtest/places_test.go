package systemtest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/routing"
)

// A point in the sample city: inside grid xinhua-taoyuan-01, and one east of every grid.
var (
	inTaoyuan01 = &whistlev1.Location{Latitude: 22.7360, Longitude: 110.3050, Address: "Taoyuan Road 3"}
	eastOfCity  = &whistlev1.Location{Latitude: 22.7000, Longitude: 110.4100}
)

func TestARaiseByPointFindsItsGridAndAPointInNoGridIsRefusedNamingTheNearest(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.Real())
	worker := Dial(t, sys, GridWorker("xinhua"))
	resp, err := worker.Intake.RaiseIssue(t.Context(), &whistlev1.RaiseIssueRequest{
		RequestId: "by-point", CategoryId: "blocked-drain", Text: "Drain overflowing", Location: inTaoyuan01})
	if err != nil {
		t.Fatal(err)
	}
	is := resp.GetIssue()
	if is.GetGridId() != "xinhua-taoyuan-01" || is.GetStreetId() != "xinhua" || is.GetLocation().GetAddress() != "Taoyuan Road 3" {
		t.Errorf("raised at %s in %s with %v; want xinhua-taoyuan-01, the point kept", is.GetGridId(), is.GetStreetId(), is.GetLocation())
	}
	located, err := worker.Routing.LocateGrid(t.Context(), &whistlev1.LocateGridRequest{Latitude: inTaoyuan01.Latitude, Longitude: inTaoyuan01.Longitude})
	if err != nil || located.GetGridId() != "xinhua-taoyuan-01" || located.GetCommunityId() != "xinhua-taoyuan" {
		t.Errorf("LocateGrid = %v, %v", located, err)
	}

	waitForStatus(t, Dial(t, sys, Supervisor()), []string{is.GetId()}, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)
	Settle(t, sys)
	before := StreamMessages(t, sys)
	_, err = worker.Intake.RaiseIssue(t.Context(), &whistlev1.RaiseIssueRequest{RequestId: "outside", CategoryId: "blocked-drain", Text: "x", Location: eastOfCity})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "location") || !strings.Contains(err.Error(), "nearest is hexi-") {
		t.Errorf("a raise outside every grid: %v; want InvalidArgument naming location and the nearest grid", err)
	}
	_, err = worker.Routing.LocateGrid(t.Context(), &whistlev1.LocateGridRequest{Latitude: eastOfCity.Latitude, Longitude: eastOfCity.Longitude})
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "nearest is hexi-") {
		t.Errorf("LocateGrid outside every grid: %v; want NotFound naming the nearest", err)
	}
	if _, err := worker.Routing.LocateGrid(t.Context(), &whistlev1.LocateGridRequest{Latitude: 91}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("LocateGrid at latitude 91: %v; want InvalidArgument", err)
	}
	if _, err := worker.Intake.RaiseIssue(t.Context(), &whistlev1.RaiseIssueRequest{RequestId: "nowhere", CategoryId: "noise", Text: "x"}); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "grid_id") {
		t.Errorf("a raise with neither grid nor point: %v", err)
	}
	if after := StreamMessages(t, sys); after != before {
		t.Errorf("refused raises wrote %d events", after-before)
	}
}

func TestTheIssuesStreetPicksTheUnitAndOnlyThatUnitsOfficerActs(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.Real())
	super := Dial(t, sys, Supervisor())
	ids := map[string]string{} // street -> issue
	for _, grid := range []string{"xinhua-hebin-01", "hexi-binjiang-01", "dongfeng-jinqiao-02"} {
		ids[grid[:strings.Index(grid, "-")]] = raise(t, Dial(t, sys, GridWorker(grid)), "unit-"+grid, grid, "unsafe-stall").GetId()
	}
	got := waitForStatus(t, super, []string{ids["xinhua"], ids["hexi"], ids["dongfeng"]}, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)
	for street, id := range ids {
		as := got[id].GetAssignments()
		if len(as) != 2 || as[0].GetUnitId() != "market-regulation-"+street || as[0].GetDepartmentId() != "market-regulation" ||
			as[1].GetUnitId() != "urban-management-"+street {
			t.Fatalf("%s: assignments %v; want the street's market office leading and its squad assisting", street, as)
		}
		if got[id].GetRulesVersion() == "" {
			t.Errorf("%s: the route records no rules version", id)
		}
	}
	xinhua := ids["xinhua"]
	wrong := Dial(t, sys, Officer("market-regulation-hexi"))
	if _, err := wrong.Department.Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: xinhua}); status.Code(err) != codes.NotFound {
		t.Errorf("another street's office acknowledges: %v; want NotFound", err)
	}
	if _, err := wrong.Department.Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: xinhua, UnitId: "market-regulation-xinhua"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("acting for another unit: %v; want PermissionDenied", err)
	}
	right := Dial(t, sys, Officer("market-regulation-xinhua"))
	if _, err := right.Department.Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: xinhua}); err != nil {
		t.Fatal(err)
	}
	if items := inbox(t, right, "", whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_UNSPECIFIED); len(items) != 1 || items[0].GetIssueId() != xinhua {
		t.Errorf("the xinhua office's inbox holds %v; want its one issue", itemIDs(items))
	}
	// Intake's view follows the stream, so the report-in reaches its timeline soon after the
	// department answered. The department's push of the routing may be stored before the
	// report-in or after it.
	wait.For(t, waitTotal, 20*time.Millisecond, func() error {
		timeline := getIssue(t, super, xinhua).GetTimeline()
		acks := slices.DeleteFunc(slices.Clone(timeline), func(e *whistlev1.TimelineEntry) bool { return e.GetKind() != "acknowledged" })
		if len(acks) != 1 || acks[0].GetUnitId() != "market-regulation-xinhua" || acks[0].GetDepartmentId() != "market-regulation" {
			return fmt.Errorf("the timeline's report-ins are %v", acks)
		}
		return nil
	})

	explained, err := super.Routing.ExplainRoute(t.Context(), &whistlev1.ExplainRouteRequest{IssueId: xinhua})
	if err != nil || explained.GetRuleId() != "unsafe-stall" || explained.GetAssignments()[0].GetUnitId() != "market-regulation-xinhua" ||
		explained.GetTrials()[len(explained.GetTrials())-1].GetRuleId() != "unsafe-stall" || explained.GetRulesVersion() != got[xinhua].GetRulesVersion() {
		t.Errorf("ExplainRoute of the real issue: %v, %v", explained, err)
	}
	grid, err := super.Routing.ExplainRoute(t.Context(), &whistlev1.ExplainRouteRequest{GridId: "hexi-binjiang-01", CategoryId: "greenery"})
	if err != nil || grid.GetOutcome() != "grid-matter" || len(grid.GetAssignments()) != 1 || grid.GetAssignments()[0].GetUnitId() != "hexi-binjiang-01" {
		t.Errorf("ExplainRoute of a grid matter: %v, %v; want the grid's worker", grid, err)
	}
}

func TestRulesReloadOnChangeAndABrokenFileIsRefusedKeepingTheRulesInForce(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rules, routing.SampleRules(), 0o600); err != nil {
		t.Fatal(err)
	}
	sys := Start(t, t.TempDir(), clock.Real(), WithRules(rules))
	super := Dial(t, sys, Supervisor())
	first, err := super.Routing.ListRules(t.Context(), &whistlev1.ListRulesRequest{})
	if err != nil || len(first.GetRules()) == 0 {
		t.Fatalf("ListRules = %v, %v", first, err)
	}
	grid := "dongfeng-yuanlin-02"
	worker := Dial(t, sys, GridWorker(grid))
	before := raise(t, worker, "other-before", grid, "other").GetId()
	waitForStatus(t, super, []string{before}, whistlev1.IssueStatus_ISSUE_STATUS_AWAITING_DISPATCH)

	// The file changes: what no rule decides now goes to the street government.
	changed := strings.Replace(string(routing.SampleRules()), "otherwise: desk", "otherwise: street-government", 1)
	if err := os.WriteFile(rules, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	var second string
	wait.For(t, waitTotal, 20*time.Millisecond, func() error {
		l, err := super.Routing.ListRules(t.Context(), &whistlev1.ListRulesRequest{})
		if second = l.GetRulesVersion(); err == nil && second == first.GetRulesVersion() {
			err = status.Error(codes.Unavailable, "not reloaded yet")
		}
		return err
	})
	after := raise(t, worker, "other-after", grid, "other").GetId()
	routed := waitForStatus(t, super, []string{after}, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)[after]
	if as := routed.GetAssignments(); len(as) != 1 || as[0].GetUnitId() != "street-government-dongfeng" || routed.GetRulesVersion() != second {
		t.Errorf("after the reload: %v at version %s; want the Dongfeng street government at %s", as, routed.GetRulesVersion(), second)
	}
	if is := getIssue(t, super, before).GetIssue(); is.GetStatus() != whistlev1.IssueStatus_ISSUE_STATUS_AWAITING_DISPATCH {
		t.Errorf("the issue routed before the reload changed: %v", is.GetStatus())
	}

	// A broken file is refused, by the watcher and by the command, and the rules in force stay.
	if err := os.WriteFile(rules, []byte("rules:\n  - {id: broken, lead: nobody}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = super.Routing.ReloadRules(t.Context(), &whistlev1.ReloadRulesRequest{})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "rules.yaml:2") || !strings.Contains(err.Error(), second) {
		t.Errorf("reloading a broken file: %v; want FailedPrecondition naming the line and the version in force", err)
	}
	if l, _ := super.Routing.ListRules(t.Context(), &whistlev1.ListRulesRequest{}); l.GetRulesVersion() != second {
		t.Errorf("the rules in force became %s after a refused reload", l.GetRulesVersion())
	}
	street := authx.Principal{Subject: "d@xinhua", Role: authx.RoleDispatcher, Scope: "xinhua"}
	if _, err := Dial(t, sys, street).Routing.ReloadRules(t.Context(), &whistlev1.ReloadRulesRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a street dispatcher reloads the city's rules: %v; want PermissionDenied", err)
	}
}
