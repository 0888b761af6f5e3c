package app

import (
	"slices"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/services/escalation/internal/domain"
)

// A pass's groups share no issue, keep each issue's timers in their order, take the issues in
// turn earliest first, and together hold every timer once.
func TestGroupsOfDealsIssuesOutInTurnAndKeepsEachIssuesTimersTogether(t *testing.T) {
	at := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	timer := func(issue string, step domain.Step, minute int) domain.Timer {
		return domain.Timer{IssueID: issue, UnitID: "water", Kind: "report-in", Step: step, At: at.Add(time.Duration(minute) * time.Minute)}
	}
	due := []domain.Timer{
		timer("A", domain.BreachStep, 0),
		timer("B", domain.BreachStep, 1),
		timer("A", domain.EscalateStep, 2),
		timer("C", domain.BreachStep, 3),
		timer("D", domain.BreachStep, 4),
		timer("B", domain.RemindStep, 5),
		timer("E", domain.BreachStep, 6),
	}
	got := groupsOf(due, 3)
	want := [][]domain.Timer{
		{due[0], due[2], due[4]}, // A, then D
		{due[1], due[5], due[6]}, // B, then E
		{due[3]},                 // C
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("groups:\n got %v\nwant %v", got, want)
	}
	if few := groupsOf(due[:2], 4); len(few) != 2 {
		t.Fatalf("two issues make %d groups, want 2 (no empty group)", len(few))
	}
	if none := groupsOf(nil, 4); len(none) != 0 {
		t.Fatalf("no timers make %d groups, want none", len(none))
	}
}
