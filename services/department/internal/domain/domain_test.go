package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/services/department/internal/domain"
)

func TestAnAssignmentIsAcknowledgedThenResolvedByItsOfficers(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	i := &domain.Issue{ID: "K7M3-QX9A"}
	if _, err := i.CheckAcknowledge("water", "o1"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("before dispatch: %v; want ErrNotFound", err)
	}
	i.Dispatch(domain.Assignment{Department: "water", Role: domain.Lead, DispatchedAt: at})
	var te *domain.TransitionError
	if _, err := i.CheckResolve("water", "o1", "cleared"); !errors.As(err, &te) || te.Reason != "report in before resolving" {
		t.Fatalf("resolve before reporting in: %v", err)
	}
	if done, err := i.CheckAcknowledge("water", "o1"); done || err != nil {
		t.Fatalf("first report-in: %v, %v", done, err)
	}
	i.Acknowledge("water", at, "o1")
	if done, err := i.CheckAcknowledge("water", "o1"); !done || err != nil {
		t.Fatalf("same officer again: %v, %v; want done", done, err)
	}
	if _, err := i.CheckAcknowledge("water", "o2"); !errors.As(err, &te) {
		t.Fatalf("another officer: %v; want a TransitionError", err)
	}
	i.Dispatch(domain.Assignment{Department: "water", Role: domain.Assisting}) // a second dispatch changes nothing
	i.Resolve("water", at, "o2", "cleared")
	a := i.Assignment("water")
	if a.Status != domain.Resolved || a.Role != domain.Lead || a.AcknowledgedBy != "o1" || a.ResolvedBy != "o2" {
		t.Fatalf("assignment %+v", a)
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
