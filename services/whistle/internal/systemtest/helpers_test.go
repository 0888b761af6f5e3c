package systemtest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
)

// waitTotal bounds every wait for the system to catch up; it is generous because the
// race detector and a shared machine slow everything down.
const waitTotal = 2 * time.Minute

// grids returns every grid of the sample city.
func grids(t *testing.T) []string {
	t.Helper()
	cat, err := catalog.Sample()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range cat.Areas() {
		if a.Level == catalog.LevelGrid {
			ids = append(ids, a.ID)
		}
	}
	return ids
}

// routable returns the categories a routing rule dispatches (in every grid), and those
// that wait at the dispatch desk, as the routing service explains them.
func routable(t *testing.T, c Clients) (routed, unrouted []string) {
	t.Helper()
	cat, err := catalog.Sample()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range cat.Categories() {
		res, err := c.Routing.ExplainRoute(t.Context(), &whistlev1.ExplainRouteRequest{
			GridId: "xinhua-taoyuan-01", CategoryId: k.ID, Urgency: whistlev1.Urgency_URGENCY_NORMAL,
		})
		if err != nil {
			t.Fatalf("explain the route of %s: %v", k.ID, err)
		}
		switch res.GetOutcome() { // a grid matter is neither: its grid's worker holds it first
		case "rules":
			routed = append(routed, k.ID)
		case "desk":
			unrouted = append(unrouted, k.ID)
		}
	}
	if len(routed) == 0 {
		t.Fatal("no category is routed by a rule")
	}
	return routed, unrouted
}

// raise raises an issue as a grid worker of its grid and returns it.
func raise(t *testing.T, sys Clients, requestID, grid, category string) *whistlev1.Issue {
	t.Helper()
	res, err := sys.Intake.RaiseIssue(t.Context(), &whistlev1.RaiseIssueRequest{
		RequestId:  requestID,
		GridId:     grid,
		CategoryId: category,
		Urgency:    whistlev1.Urgency_URGENCY_NORMAL,
		Text:       fmt.Sprintf("%s in %s (%s)", category, grid, requestID),
	})
	if err != nil {
		t.Fatalf("raise %s: %v", requestID, err)
	}
	return res.GetIssue()
}

// getIssue returns an issue with its timeline as the intake view holds it.
func getIssue(t *testing.T, c Clients, id string) *whistlev1.GetIssueResponse {
	t.Helper()
	res, err := c.Intake.GetIssue(t.Context(), &whistlev1.GetIssueRequest{Id: id})
	if err != nil {
		t.Fatalf("get issue %s: %v", id, err)
	}
	return res
}

// waitForStatus waits until every issue in ids has the status in the intake view, and
// returns the issues as they then are.
func waitForStatus(t *testing.T, c Clients, ids []string, want whistlev1.IssueStatus) map[string]*whistlev1.Issue {
	t.Helper()
	got := make(map[string]*whistlev1.Issue, len(ids))
	wait.For(t, waitTotal, 100*time.Millisecond, func() error {
		for _, id := range ids {
			if got[id] != nil {
				continue
			}
			res, err := c.Intake.GetIssue(t.Context(), &whistlev1.GetIssueRequest{Id: id})
			if err != nil {
				return err
			}
			if s := res.GetIssue().GetStatus(); s != want {
				return fmt.Errorf("issue %s is %s, want %s", id, s, want)
			}
			got[id] = res.GetIssue()
		}
		return nil
	})
	return got
}

// inbox returns every item of a department's inbox with the status (all for UNSPECIFIED),
// following the pages.
func inbox(t *testing.T, c Clients, dept string, status whistlev1.AssignmentStatus) []*whistlev1.InboxItem {
	t.Helper()
	return allPages(t, "the inbox of "+dept, func(token string) ([]*whistlev1.InboxItem, string, error) {
		res, err := c.Department.ListInbox(t.Context(), &whistlev1.ListInboxRequest{
			UnitId: dept, Status: status, PageSize: 200, PageToken: token})
		return res.GetItems(), res.GetNextPageToken(), err
	})
}

// allPages asks list for each page, from the first, until one comes back without a next page
// token, and gathers what the pages hold; what names the list in a failure.
func allPages[T any](t *testing.T, what string, list func(token string) ([]T, string, error)) []T {
	t.Helper()
	var all []T
	for token := ""; ; {
		items, next, err := list(token)
		if err != nil {
			t.Fatalf("list %s: %v", what, err)
		}
		all = append(all, items...)
		if next == "" {
			return all
		}
		token = next
	}
}

// breaches returns every breach the escalation service lists city-wide, following the pages.
func breaches(t *testing.T, c Clients) []*whistlev1.Breach {
	t.Helper()
	return breachPages(t, c, 200)
}

// itemIDs returns the issue ids of inbox items, sorted.
func itemIDs(items []*whistlev1.InboxItem) []string {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.GetIssueId()
	}
	slices.Sort(ids)
	return ids
}

// departments returns every unit id of the sample city, the inboxes there are.
func departments(t *testing.T) []string {
	t.Helper()
	cat, err := catalog.Sample()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range cat.Departments() {
		for _, u := range d.Units {
			ids = append(ids, u.ID)
		}
	}
	return ids
}

// assignmentKey names one department's part of one issue.
type assignmentKey struct{ issue, dept string }
