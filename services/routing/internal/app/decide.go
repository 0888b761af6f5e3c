package app

import (
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/otelx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
	"github.com/whistle-dispatch/whistle/services/internal/assignment/assignmentpb"
	"github.com/whistle-dispatch/whistle/services/internal/sla"
	"github.com/whistle-dispatch/whistle/services/routing/internal/domain"
)

// ReactsTo names the events React acts on: those that leave routing owing a decision, and the
// links whose other side it must record.
var ReactsTo = []string{"raised", "returned", "recategorised", "unlinked", "breached", "linked"}

// MaxDuplicateCandidates bounds how many open issues near a new one a duplicate search reads.
const MaxDuplicateCandidates = 10

// React makes the decision routing owes the record's issue, if it owes one, and records the other
// side of a link. It is the consumer's reaction, so it runs again on redelivery and on replay: the
// projection then already knows the decision, or the conditional append loses to the event
// already in the stream, and nothing is appended twice.
func (a *App) React(ctx context.Context, rec eventlog.Record) error {
	id := rec.Event.GetIssueId()
	switch p := rec.Event.GetPayload().(type) {
	case *whistlev1.Event_Linked:
		return a.recordLink(ctx, p.Linked.GetOriginalId(), id, true)
	case *whistlev1.Event_Unlinked:
		if err := a.recordLink(ctx, p.Unlinked.GetOriginalId(), id, false); err != nil {
			return err
		}
	}
	st, err := a.store.Current(ctx, id) // the consumer that runs this reaction just wrote it
	if err != nil || !st.AwaitsDecision() {
		return err
	}
	ctx, span := tracer.Start(ctx, "app.App.React", traceIssue(id))
	defer span.End()
	out, err := a.log.Decide(ctx, a.store, id, func(ctx context.Context) (*whistlev1.Event, error) {
		st, err := a.store.Current(ctx, id)
		if err != nil || !st.AwaitsDecision() {
			return nil, err
		}
		return a.decide(ctx, st)
	})
	if err != nil {
		return fmt.Errorf("route %s: %w", id, err)
	}
	if out != nil {
		decisions.Add(ctx, 1, otelx.Attributes("outcome", eventlog.Kind(out.Event)))
	}
	return nil
}

// recordLink appends, on the original case, that a duplicate joined it (or left it), unless the
// original already says so.
func (a *App) recordLink(ctx context.Context, original, duplicate string, joined bool) error {
	_, err := a.log.Decide(ctx, a.store, original, func(ctx context.Context) (*whistlev1.Event, error) {
		st, err := a.store.Current(ctx, original)
		if err != nil || !st.Raised || slices.Contains(st.Duplicates, duplicate) == joined {
			return nil, err
		}
		ev := a.envelope(st, actor)
		if joined {
			ev.Payload = &whistlev1.Event_Joined{Joined: &whistlev1.IssueJoined{DuplicateId: duplicate}}
		} else {
			ev.Payload = &whistlev1.Event_Left{Left: &whistlev1.IssueLeft{DuplicateId: duplicate}}
		}
		return ev, nil
	})
	if err != nil {
		return fmt.Errorf("record the link of %s to %s: %w", duplicate, original, err)
	}
	return nil
}

// envelope is an event on an issue, conditional on the state it was decided on.
func (a *App) envelope(st domain.Issue, by *whistlev1.Actor) *whistlev1.Event {
	return &whistlev1.Event{
		IssueId:       st.ID,
		OccurredAt:    timestamppb.New(a.clock.Now()),
		PrevSeq:       st.LastSeq,
		Actor:         by,
		CorrelationId: st.CorrelationID,
	}
}

// causes maps what routing owes to the cause its decision records.
var causes = map[string]whistlev1.RouteCause{
	domain.OweRaised:        whistlev1.RouteCause_ROUTE_CAUSE_RAISED,
	domain.OweReturned:      whistlev1.RouteCause_ROUTE_CAUSE_RETURNED,
	domain.OweRecategorised: whistlev1.RouteCause_ROUTE_CAUSE_RECATEGORISED,
	domain.OweUnlinked:      whistlev1.RouteCause_ROUTE_CAUSE_UNLINKED,
	domain.OweBeyondGrid:    whistlev1.RouteCause_ROUTE_CAUSE_BEYOND_GRID,
}

// decide builds the event routing owes an issue, by the rules in force, with every policy frozen
// now and every deadline counted from the raise:
//   - a new issue near an open one of its category joins it (linked);
//   - a grid matter goes to its grid's worker first;
//   - a return by the lead, or one return more than the rules allow, goes to the desk;
//   - otherwise the rules route it, without the departments that returned it, summoning only
//     units not already at work on it and withdrawing (after a change of category, or when a grid
//     matter goes beyond the grid) the live assignments the new route leaves out.
func (a *App) decide(ctx context.Context, st domain.Issue) (*whistlev1.Event, error) {
	l := a.tables.Current()
	t, cause := l.Table, causes[st.Owe]
	ev := a.envelope(st, actor)
	owe := st.Owe
	if owe == domain.OweReturned && st.Returns[len(st.Returns)-1] == domain.GridDepartment {
		owe, cause = domain.OweBeyondGrid, whistlev1.RouteCause_ROUTE_CAUSE_BEYOND_GRID // the worker said it is beyond the grid
	}
	if owe == domain.OweRaised {
		if linked, err := a.duplicate(ctx, t, st); err != nil || linked != nil {
			ev.Payload = linked
			return ev, err
		}
	}
	if (owe == domain.OweRaised || owe == domain.OweUnlinked) && t.GridMatter(st.Category) {
		p := firstPlan(l, st.Case())
		ev.Payload = &whistlev1.Event_Routed{Routed: &whistlev1.IssueRouted{RulesVersion: p.Version, Cause: cause,
			Explanation: p.Explanation, Dispatches: []*whistlev1.Dispatch{gridDispatch(p.Assignments[0], st.RaisedAt)}}}
		return ev, nil
	}
	if owe == domain.OweReturned && a.toDesk(t, st) {
		return a.desk(l, st, ev, cause, fmt.Sprintf("returned by %s", st.Returns[len(st.Returns)-1]), nil), nil
	}
	var without []string
	if owe == domain.OweReturned || owe == domain.OweBeyondGrid {
		without = slices.Clone(st.Returns)
	}
	p := plan(l, st.Case(), without)
	// The route replaces what is live when the category changed or the grid gave up, and adds to it
	// after a return.
	var withdraw []*whistlev1.Withdrawal
	if owe == domain.OweRecategorised || owe == domain.OweBeyondGrid {
		for _, as := range st.Assignments {
			if as.Status.Open() && as.Role != assignment.Desk && !slices.ContainsFunc(p.Assignments, func(pa Planned) bool { return pa.Unit == as.Unit() }) {
				withdraw = append(withdraw, &whistlev1.Withdrawal{UnitId: as.Unit(), Reason: withdrawReason(owe)})
			}
		}
	}
	if len(p.Assignments) == 0 {
		return a.desk(l, st, ev, cause, p.Explanation, withdraw), nil
	}
	routed := &whistlev1.IssueRouted{RuleId: p.RuleID, RulesVersion: p.Version, Cause: cause,
		MatchedRules: p.Matched, Explanation: p.Explanation, Withdrawn: withdraw}
	if desk := st.AtDesk(); desk != nil { // the rules decide it now: the desk no longer holds it
		routed.Withdrawn = append(routed.Withdrawn, &whistlev1.Withdrawal{UnitId: desk.Unit(), Reason: "routed by the rules"})
	}
	for _, pa := range p.Assignments {
		if as := st.Assignment(pa.Unit); as != nil && as.Status.Open() {
			continue // at work on it already: it keeps its assignment and its clocks
		}
		routed.Dispatches = append(routed.Dispatches, dispatch(l.Catalog.Calendar(), pa, st.RaisedAt))
	}
	ev.Payload = &whistlev1.Event_Routed{Routed: routed}
	return ev, nil
}

// withdrawReason says why a decision ends a live assignment.
func withdrawReason(owe string) string {
	if owe == domain.OweBeyondGrid {
		return "beyond the grid: its deadline passed"
	}
	return "the category changed"
}

// toDesk reports whether a return sends the issue to the desk: the lead returned it, or it was
// returned more often than the rules allow.
func (a *App) toDesk(t *domain.Table, st domain.Issue) bool {
	departments := slices.DeleteFunc(slices.Clone(st.Returns), func(d string) bool { return d == domain.GridDepartment })
	if len(departments) > t.ReturnLimit { // a grid matter gone beyond the grid is no department's return
		return true
	}
	for _, as := range st.Assignments {
		if as.Status == assignment.Returned && as.Role == assignment.Lead && as.EndedAt.Equal(st.OweSince) {
			return true
		}
	}
	return false
}

// desk is the decision that leaves the issue for a dispatcher: the desk's unit for the issue's
// place is summoned, its deadline counted from the event that sent it there.
func (a *App) desk(l *Loaded, st domain.Issue, ev *whistlev1.Event, cause whistlev1.RouteCause, reason string, withdraw []*whistlev1.Withdrawal) *whistlev1.Event {
	n := &whistlev1.IssueNeedsDispatch{Reason: reason, RulesVersion: l.Table.Version(), Cause: cause, Withdrawn: withdraw}
	if st.AtDesk() == nil {
		if u, err := l.Catalog.UnitFor(l.Table.Desk.Department, st.Grid); err == nil { // checked when the rules loaded
			n.Desk = &whistlev1.Dispatch{DepartmentId: u.DepartmentID, UnitId: u.ID, Role: whistlev1.AssignmentRole_ASSIGNMENT_ROLE_DESK,
				ResolveBy: timestamppb.New(st.OweSince.Add(l.Table.Desk.Within))}
		}
	}
	ev.Payload = &whistlev1.Event_NeedsDispatch{NeedsDispatch: n}
	return ev
}

// gridDispatch is the summons of a grid's worker for a grid matter: only a resolve clock runs.
func gridDispatch(pa Planned, raisedAt time.Time) *whistlev1.Dispatch {
	return &whistlev1.Dispatch{
		DepartmentId: pa.Department, UnitId: pa.Unit, Role: pa.Role,
		Policy:    &whistlev1.SlaPolicy{ResolveWithin: durationpb.New(pa.Policy.Resolve)},
		ResolveBy: timestamppb.New(raisedAt.Add(pa.Policy.Resolve)),
	}
}

// duplicate finds an open issue of the same category within the rules' distance and time of a new
// one, and returns the link to it; nil when there is none.
func (a *App) duplicate(ctx context.Context, t *domain.Table, st domain.Issue) (*whistlev1.Event_Linked, error) {
	if t.Duplicates.Meters <= 0 || !st.HasPoint {
		return nil, nil
	}
	near, dist, err := a.store.Near(ctx, st.Category, st.Latitude, st.Longitude, t.Duplicates.Meters, MaxDuplicateCandidates)
	if err != nil {
		return nil, err
	}
	for k, o := range near {
		after := st.RaisedAt.Sub(o.RaisedAt)
		if o.ID == st.ID || !o.Open() || o.Category != st.Category || after < 0 || after > t.Duplicates.Within {
			continue
		}
		return &whistlev1.Event_Linked{Linked: &whistlev1.IssueLinked{OriginalId: o.ID, DistanceMeters: dist[k], After: durationpb.New(after)}}, nil
	}
	return nil, nil
}

// dispatch is a planned unit's summons, with its policy frozen and its deadlines counted from the
// raise in the policy's kind of time.
func dispatch(cal sla.Calendar, pa Planned, raisedAt time.Time) *whistlev1.Dispatch {
	reportInBy, resolveBy := pa.Policy.Deadlines(cal, raisedAt)
	return &whistlev1.Dispatch{
		DepartmentId: pa.Department,
		UnitId:       pa.Unit,
		Role:         pa.Role,
		Policy:       SLAPolicy(pa.Policy),
		ReportInBy:   assignmentpb.Timestamp(reportInBy),
		ResolveBy:    assignmentpb.Timestamp(resolveBy),
	}
}
