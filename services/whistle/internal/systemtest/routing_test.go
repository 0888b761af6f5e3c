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
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// cityRules are the sample city's rules with the settings this test exercises: the street
// government owns what no rule decides, one return is allowed before the desk, and the grid's and
// the desk's deadlines are short enough to pass during the test.
func cityRules(t *testing.T, otherwise string) []byte {
	t.Helper()
	r := string(routing.SampleRules())
	for old, repl := range map[string]string{
		"otherwise: desk": "otherwise: " + otherwise,
		"desk: {department: dispatch-desk, within: 2h}":      "desk: {department: dispatch-desk, within: 3s}",
		"returns: {limit: 2}":                                "returns: {limit: 1}",
		"grid_matters: {within: 2h, categories: [greenery]}": "grid_matters: {within: 3s, categories: [greenery]}",
	} {
		if !strings.Contains(r, old) {
			t.Fatalf("the sample rules no longer say %q", old)
		}
		r = strings.Replace(r, old, repl, 1)
	}
	return []byte(r)
}

// router drives one system's routing through its public API and checks the answers.
type router struct {
	t       *testing.T
	c       Clients // a city supervisor
	desk    Clients // a city dispatcher
	sys     func(p authx.Principal) Clients
	answers int
	n       int
}

// raise raises an issue in a grid (or at a point when grid is empty) and returns its case number.
func (r *router) raise(grid, category, text string, urgency whistlev1.Urgency, at *whistlev1.Location) string {
	r.t.Helper()
	r.n++
	worker := r.sys(GridWorker(catalogCity))
	res, err := worker.Intake.RaiseIssue(r.t.Context(), &whistlev1.RaiseIssueRequest{RequestId: fmt.Sprintf("route-%d", r.n),
		GridId: grid, CategoryId: category, Urgency: urgency, Text: text, Location: at})
	if err != nil {
		r.t.Fatalf("raise %s in %s: %v", category, grid, err)
	}
	return res.GetIssue().GetId()
}

// catalogCity is the city scope, from which a test's grid worker raises anywhere.
const catalogCity = "city"

// expect waits until the issue's open parts are exactly the units, lead first, with the status, and
// counts one answer.
func (r *router) expect(id string, want whistlev1.IssueStatus, units ...string) *whistlev1.GetIssueResponse {
	r.t.Helper()
	var got *whistlev1.GetIssueResponse
	wait.For(r.t, waitTotal, 50*time.Millisecond, func() error {
		res, err := r.c.Intake.GetIssue(r.t.Context(), &whistlev1.GetIssueRequest{Id: id})
		if err != nil {
			return err
		}
		got = res
		if open := openUnits(res.GetIssue()); res.GetIssue().GetStatus() != want || !slices.Equal(open, units) {
			return fmt.Errorf("issue %s is %s with %v open; want %s with %v", id, res.GetIssue().GetStatus(), open, want, units)
		}
		return nil
	})
	r.answers++
	return got
}

// openUnits lists the units whose parts are open (dispatched or acknowledged), in dispatch order.
func openUnits(is *whistlev1.Issue) []string {
	var out []string
	for _, a := range is.GetAssignments() {
		if s := a.GetStatus(); s == whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_DISPATCHED || s == whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_ACKNOWLEDGED {
			out = append(out, a.GetUnitId())
		}
	}
	return out
}

// giveBack returns a unit's assignment as its officer.
func (r *router) giveBack(id, unit, reason string) {
	r.t.Helper()
	if _, err := r.sys(Officer(unit)).Department.ReturnAssignment(r.t.Context(), &whistlev1.ReturnAssignmentRequest{IssueId: id, Reason: reason}); err != nil {
		r.t.Fatalf("%s returns %s: %v", unit, id, err)
	}
}

const (
	normal    = whistlev1.Urgency_URGENCY_NORMAL
	emergency = whistlev1.Urgency_URGENCY_EMERGENCY
	routed    = whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED
	atDesk    = whistlev1.IssueStatus_ISSUE_STATUS_AWAITING_DISPATCH
	linked    = whistlev1.IssueStatus_ISSUE_STATUS_LINKED
)

// Taoyuan Road: a point in grid xinhua-taoyuan-01, one about 10 m from it, one about 300 m away.
var (
	taoyuanRoad     = &whistlev1.Location{Latitude: 22.7360, Longitude: 110.3050}
	tenMetresOn     = &whistlev1.Location{Latitude: 22.7360, Longitude: 110.30510}
	threeHundredOff = &whistlev1.Location{Latitude: 22.7360, Longitude: 110.3079}
)

func TestIssuesAcrossTheSampleCityGoWhereTheRulesAndTheDeskSay(t *testing.T) {
	dir := t.TempDir()
	rulesPath := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rulesPath, cityRules(t, "street-government"), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	sys := Start(t, dataDir, clock.Real(), WithRules(rulesPath))
	r := &router{t: t, c: Dial(t, sys, Supervisor()), desk: Dial(t, sys, authx.Principal{Subject: "dispatcher@city", Role: authx.RoleDispatcher, Scope: "city"}),
		sys: func(p authx.Principal) Clients { return Dial(t, sys, p) }}

	// Units by street, joint whistles and the rules' conditions.
	drainX := r.raise("xinhua-taoyuan-01", "blocked-drain", "Drain overflowing", normal, nil)
	drainH := r.raise("hexi-binjiang-01", "blocked-drain", "Drain overflowing", normal, nil)
	drainD := r.raise("dongfeng-jinqiao-01", "blocked-drain", "Drain overflowing", normal, nil)
	gas := r.raise("xinhua-hebin-01", "gas-leak", "Smell of gas on the stairs", emergency, nil)
	stallX := r.raise("xinhua-hebin-02", "unsafe-stall", "Stall blocks the exit", normal, nil)
	stallH := r.raise("hexi-binjiang-02", "unsafe-stall", "Stall blocks the exit", normal, nil)
	rubbishH := r.raise("hexi-binjiang-01", "sanitation", "Rubbish by the river", normal, nil)
	rubbishD := r.raise("dongfeng-yuanlin-01", "sanitation", "Rubbish and rats in the lane", normal, nil)
	rubbishX := r.raise("xinhua-taoyuan-03", "sanitation", "Bins overflowing", normal, nil)
	disputeD := r.raise("dongfeng-jinqiao-02", "neighbour-dispute", "Dispute over a wall", normal, nil)
	fightX := r.raise("xinhua-taoyuan-02", "neighbour-dispute", "邻居打人了", normal, nil)
	orderH := r.raise("hexi-binjiang-02", "public-order", "Crowd blocking the road", normal, nil)
	otherD := r.raise("dongfeng-yuanlin-02", "other", "Something else", normal, nil)
	otherH := r.raise("hexi-binjiang-01", "other", "Something else", normal, nil)
	buildX := r.raise("xinhua-hebin-01", "illegal-construction", "A new floor on the roof", normal, nil)
	roadD := r.raise("dongfeng-jinqiao-01", "road-damage", "Pothole", normal, nil)
	power := r.raise("hexi-binjiang-02", "power-outage", "No power", normal, nil)
	water := r.raise("dongfeng-yuanlin-02", "water-supply", "No water", normal, nil)
	treeX := r.raise("xinhua-taoyuan-02", "greenery", "A branch hangs over the path", normal, nil)
	treeH := r.raise("hexi-binjiang-02", "greenery", "A dead tree", normal, nil)

	r.expect(drainX, routed, "water", "urban-management-xinhua")
	r.expect(drainH, routed, "water", "urban-management-hexi")
	r.expect(drainD, routed, "water", "urban-management-dongfeng")
	r.expect(gas, routed, "gas", "fire-rescue", "emergency")
	r.expect(stallX, routed, "market-regulation-xinhua", "urban-management-xinhua")
	r.expect(stallH, routed, "market-regulation-hexi", "urban-management-hexi")
	r.expect(rubbishH, routed, "greening", "urban-management-hexi")
	r.expect(rubbishD, routed, "urban-management-dongfeng", "environment", "health")
	r.expect(rubbishX, routed, "urban-management-xinhua", "environment")
	r.expect(disputeD, routed, "legal-team-dongfeng", "civil-affairs")
	r.expect(fightX, routed, "public-security-xinhua", "legal-team-xinhua")
	r.expect(orderH, routed, "public-security-hexi", "urban-management-hexi")
	r.expect(otherD, routed, "street-government-dongfeng")
	r.expect(otherH, routed, "street-government-hexi")
	r.expect(buildX, routed, "urban-management-xinhua", "housing")
	r.expect(roadD, routed, "transport", "urban-management-dongfeng")
	r.expect(power, routed, "power")
	r.expect(water, routed, "water")
	// Small matters stay in the grid: the grid's worker holds them first.
	r.expect(treeX, routed, "xinhua-taoyuan-02")
	r.expect(treeH, routed, "hexi-binjiang-02")

	// Noise: the police lead at night, the environment bureau by day, by the time the raise was
	// stored in the city's time zone.
	noise := r.raise("dongfeng-jinqiao-02", "noise", "Loud music", normal, nil)
	raisedAt := r.c.getTimeline(t, noise)[0].GetAt().AsTime().In(shanghai(t))
	if h := raisedAt.Hour(); h >= 22 || h < 6 {
		r.expect(noise, routed, "public-security-dongfeng", "environment")
	} else {
		r.expect(noise, routed, "environment", "public-security-dongfeng")
	}

	// Duplicates: a second report 10 m from an open one of its category joins it; another category
	// at the same place, or the same category 300 m away, does not.
	first := r.raise("", "blocked-drain", "Drain blocked at No. 3", normal, taoyuanRoad)
	r.expect(first, routed, "water", "urban-management-xinhua")
	metoo := r.raise("", "blocked-drain", "Same drain", normal, tenMetresOn)
	got := r.expect(metoo, linked)
	if got.GetIssue().GetLinkedTo() != first {
		t.Errorf("the duplicate joined %q, want %s", got.GetIssue().GetLinkedTo(), first)
	}
	wait.For(t, waitTotal, 50*time.Millisecond, func() error {
		if d := getIssue(t, r.c, first).GetIssue().GetDuplicates(); !slices.Equal(d, []string{metoo}) {
			return fmt.Errorf("the original counts duplicates %v", d)
		}
		return nil
	})
	r.answers++
	r.expect(r.raise("", "road-damage", "Pothole at No. 3", normal, taoyuanRoad), routed, "transport", "urban-management-xinhua")
	r.expect(r.raise("", "blocked-drain", "Another drain", normal, threeHundredOff), routed, "water", "urban-management-xinhua")
	// A dispatcher unlinks it: it is routed as a case of its own, and the original no longer
	// counts it.
	if _, err := r.desk.Routing.UnlinkIssue(t.Context(), &whistlev1.UnlinkIssueRequest{IssueId: metoo, Reason: "another drain, across the road"}); err != nil {
		t.Fatal(err)
	}
	r.expect(metoo, routed, "water", "urban-management-xinhua")
	wait.For(t, waitTotal, 50*time.Millisecond, func() error {
		if d := getIssue(t, r.c, first).GetIssue().GetDuplicates(); len(d) != 0 {
			return fmt.Errorf("the original still counts %v", d)
		}
		return nil
	})
	r.answers++

	// Returns: an assisting unit's return routes it on without that department; the lead's goes to
	// the desk; so does a second return when the rules allow one.
	r.giveBack(drainX, "urban-management-xinhua", "the drain is the water bureau's alone")
	r.expect(drainX, routed, "water")
	r.giveBack(stallX, "market-regulation-xinhua", "the stall is licensed: not a market matter")
	r.expect(stallX, atDesk, "urban-management-xinhua", "dispatch-desk")
	r.giveBack(gas, "fire-rescue", "no fire risk found")
	r.expect(gas, routed, "gas", "emergency")
	r.giveBack(gas, "emergency", "no emergency")
	r.expect(gas, atDesk, "gas", "dispatch-desk")

	// The desk: oldest first, with how long each waited; dispatch by hand. The desk is routing's
	// view, which may show the last return a moment after intake's view above does.
	wait.For(t, waitTotal, 50*time.Millisecond, func() error {
		items := deskItems(t, r.desk)
		if len(items) != 2 || items[0].GetIssueId() != stallX || items[1].GetIssueId() != gas || items[0].GetWaiting().AsDuration() <= 0 ||
			items[0].GetDeskUnitId() != "dispatch-desk" || !slices.Equal(items[1].GetReturnedBy(), []string{"fire-rescue", "emergency"}) {
			return fmt.Errorf("the desk lists %v; want %s, then %s returned by fire-rescue and emergency", items, stallX, gas)
		}
		return nil
	})
	r.answers++
	if _, err := r.desk.Routing.DispatchIssue(t.Context(), &whistlev1.DispatchIssueRequest{IssueId: stallX, Lead: "public-security",
		Assisting: []string{"market-regulation-city"}, Note: "a blocked exit is a safety matter"}); err != nil {
		t.Fatal(err)
	}
	r.expect(stallX, routed, "urban-management-xinhua", "public-security-xinhua", "market-regulation-city")
	if _, err := r.desk.Routing.DispatchIssue(t.Context(), &whistlev1.DispatchIssueRequest{IssueId: drainH, Lead: "water"}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("dispatching an issue not at the desk: %v; want FailedPrecondition", err)
	}
	r.answers++

	// Grid matters: the worker says it is beyond the grid, or its deadline passes; either way the
	// rules send it to departments.
	if _, err := r.sys(GridWorker("xinhua-taoyuan-02")).Department.ReturnAssignment(t.Context(),
		&whistlev1.ReturnAssignmentRequest{IssueId: treeX, Reason: "needs a crane"}); err != nil {
		t.Fatal(err)
	}
	r.expect(treeX, routed, "greening")
	tree := r.expect(treeH, routed, "greening")
	if !slices.ContainsFunc(tree.GetIssue().GetAssignments(), func(a *whistlev1.Assignment) bool {
		return a.GetUnitId() == "hexi-binjiang-02" && a.GetStatus() == whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_WITHDRAWN
	}) {
		t.Errorf("the grid's part of %s was not withdrawn when its deadline passed: %v", treeH, tree.GetIssue().GetAssignments())
	}

	// A dispatcher changes a category (the rules route it again) and re-assigns an issue.
	if _, err := r.desk.Routing.ChangeCategory(t.Context(), &whistlev1.ChangeCategoryRequest{IssueId: power, CategoryId: "water-supply", Reason: "it is the water pump"}); err != nil {
		t.Fatal(err)
	}
	r.expect(power, routed, "water")
	if _, err := r.desk.Routing.ReassignIssue(t.Context(), &whistlev1.ReassignIssueRequest{IssueId: water, Lead: "housing", Reason: "a burst pipe inside the building"}); err != nil {
		t.Fatal(err)
	}
	r.expect(water, routed, "housing")

	// The rules are reloaded in the middle: what no rule decides now waits at the desk, whose
	// deadline passes and is breached like any unit's.
	if err := os.WriteFile(rulesPath, cityRules(t, "desk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := r.desk.Routing.ReloadRules(t.Context(), &whistlev1.ReloadRulesRequest{}); err != nil {
		t.Fatal(err)
	}
	otherX := r.raise("xinhua-hebin-02", "other", "Something else", normal, nil)
	r.expect(otherX, atDesk, "dispatch-desk")
	if a, b := getIssue(t, r.c, otherD).GetIssue().GetRulesVersion(), getIssue(t, r.c, otherX).GetIssue().GetRulesVersion(); a == b || a == "" {
		t.Errorf("the routes before and after the reload record versions %q and %q", a, b)
	}
	r.answers++
	wait.For(t, waitTotal, 100*time.Millisecond, func() error {
		for _, b := range breaches(t, r.c) {
			if b.GetIssueId() == otherX && b.GetUnitId() == "dispatch-desk" {
				return nil
			}
		}
		return fmt.Errorf("no breach of the desk's deadline on %s yet", otherX)
	})
	r.answers++

	// Returns are counted per department.
	depts, err := r.c.Routing.ListDepartments(t.Context(), &whistlev1.ListDepartmentsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	returns := map[string]int64{}
	for _, d := range depts.GetDepartments() {
		returns[d.GetId()] = d.GetReturns()
	}
	if returns["urban-management"] != 1 || returns["market-regulation"] != 1 || returns["fire-rescue"] != 1 || returns["emergency"] != 1 || returns["water"] != 0 {
		t.Errorf("returns counted %v", returns)
	}
	r.answers++

	// Everything routing keeps (the issues, the desk's queue, the open issues by place, the returns
	// counted) is rebuilt exactly from the stream.
	Settle(t, sys)
	Stop(t, sys)
	derived := dumpRedis(t, filepath.Join(dataDir, "redis"), true)
	for _, key := range []string{"routing:desk", "routing:returned", "routing:places:{blocked-drain}"} {
		if !strings.Contains(derived, key) {
			t.Errorf("Redis holds no %s: the replay would prove nothing of it", key)
		}
	}
	if _, err := system.Replay(t.Context(), Options(dataDir, clock.Real(), WithRules(rulesPath))); err != nil {
		t.Fatal(err)
	}
	if got := dumpRedis(t, filepath.Join(dataDir, "redis"), false); got != derived {
		t.Errorf("the rebuilt Redis differs from what the live system kept:\n--- rebuilt\n%s\n--- live\n%s", got, derived)
	}

	if r.answers < 40 {
		t.Fatalf("the test checked %d answers; it should check at least 40", r.answers)
	}
	t.Logf("%d routing answers checked", r.answers)
}

// deskItems lists the city desk's queue.
func deskItems(t *testing.T, c Clients) []*whistlev1.DeskItem {
	t.Helper()
	res, err := c.Routing.ListDesk(t.Context(), &whistlev1.ListDeskRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return res.GetItems()
}

// shanghai is the sample city's time zone.
func shanghai(t *testing.T) *time.Location {
	z, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// getTimeline returns an issue's timeline.
func (c Clients) getTimeline(t *testing.T, id string) []*whistlev1.TimelineEntry {
	t.Helper()
	return getIssue(t, c, id).GetTimeline()
}
