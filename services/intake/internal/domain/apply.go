package domain

import (
	"fmt"
	"strings"
	"time"

	"github.com/whistle-dispatch/whistle/services/internal/assignment"
)

// Meta is what every event brings besides its payload: its place in the stream, when it happened
// and who did it.
type Meta struct {
	Seq   uint64
	At    time.Time
	Actor string
}

// record adds the event's timeline entry and marks it applied. Every apply rule ends here, so the
// timeline holds exactly one entry per event.
func (is *Issue) record(m Meta, kind string, a *assignment.Assignment, summary string) {
	e := Entry{Seq: m.Seq, At: m.At, Kind: kind, Actor: m.Actor, Summary: summary}
	if a != nil {
		e.DepartmentID, e.UnitID = a.DepartmentID, a.UnitID
	}
	is.Timeline = append(is.Timeline, e)
	is.UpdatedAt = m.At
	is.LastSeq = m.Seq
}

// OnRaised applies the raise that creates the issue.
func (is *Issue) OnRaised(m Meta, r Raise) {
	is.RequestID, is.RaisedBy = r.RequestID, r.RaisedBy
	is.GridID, is.CommunityID, is.StreetID = r.GridID, r.CommunityID, r.StreetID
	is.CategoryID, is.Urgency, is.Text, is.Location, is.CompoundID = r.CategoryID, r.Urgency, r.Text, r.Location, r.CompoundID
	is.Status, is.RaisedAt = StatusRaised, m.At
	is.record(m, "raised", nil, fmt.Sprintf("Raised in %s as %s (%s)", r.GridID, r.CategoryID, r.Urgency))
}

// OnRouted applies routing's decision: each unit summoned gets an assignment with its deadlines.
// A unit already summoned keeps its assignment, so routing again after a return adds only the
// units that are new (assignment.Summon).
func (is *Issue) OnRouted(m Meta, ruleID, rulesVersion string, dispatches []assignment.Dispatch) {
	names := make([]string, 0, len(dispatches))
	for _, d := range dispatches {
		names = append(names, fmt.Sprintf("%s (%s)", assignment.UnitOf(d.DepartmentID, d.UnitID), d.Role))
	}
	for _, a := range assignment.Summon(dispatches, m.At, func(unit string) bool { return is.Assignment(unit) != nil }) {
		is.Assignments = append(is.Assignments, &a)
	}
	is.RuleID, is.RulesVersion = ruleID, rulesVersion
	is.Status = is.statusFromAssignments()
	var lead *assignment.Assignment
	if len(dispatches) > 0 {
		lead = is.Assignment(assignment.UnitOf(dispatches[0].DepartmentID, dispatches[0].UnitID))
	}
	is.record(m, "routed", lead, fmt.Sprintf("Routed by rule %s to %s", ruleID, strings.Join(names, ", ")))
}

// OnNeedsDispatch applies routing's report that no rule matched.
func (is *Issue) OnNeedsDispatch(m Meta, reason string) {
	is.Status = StatusAwaitingDispatch
	is.record(m, "needs-dispatch", nil, "Waiting for a dispatcher: "+reason)
}

// OnAcknowledged applies a duty officer's report-in for their unit. One the assignment machine
// forbids is impossible and changes nothing.
func (is *Issue) OnAcknowledged(m Meta, e assignment.Acknowledgement) error {
	a := is.Assignment(assignment.UnitOf(e.DepartmentID, e.UnitID))
	e.At, e.By = m.At, m.Actor
	if err := a.Acknowledge(e); err != nil {
		return err
	}
	is.Status = is.statusFromAssignments()
	is.record(m, "acknowledged", a, a.Unit()+" reported in")
	return nil
}

// OnResolved applies a unit's resolution of its part; the issue is resolved when every part is.
// One the assignment machine forbids is impossible and changes nothing.
func (is *Issue) OnResolved(m Meta, e assignment.Resolution) error {
	a := is.Assignment(assignment.UnitOf(e.DepartmentID, e.UnitID))
	e.At, e.By = m.At, m.Actor
	if err := a.Resolve(e); err != nil {
		return err
	}
	is.Status = is.statusFromAssignments()
	is.record(m, "resolved", a, a.Unit()+" resolved its part: "+firstLine(e.Note))
	return nil
}

// OnBreached applies a deadline that passed before the event that clears it, stored as b.At.
// clearedAt, when set, is when the stream stored the event that cleared it late, after which the
// breach was recorded. A breach the assignment machine forbids (one the stream's times contradict)
// is impossible and changes nothing.
func (is *Issue) OnBreached(m Meta, b assignment.Breach, clearedAt time.Time) error {
	a := is.Assignment(assignment.UnitOf(b.DepartmentID, b.UnitID))
	if err := a.Breach(b); err != nil {
		return err
	}
	summary := fmt.Sprintf("%s missed its %s deadline of %s", a.Unit(), b.Kind, b.Deadline.UTC().Format(time.RFC3339))
	if !clearedAt.IsZero() {
		summary += fmt.Sprintf(", cleared %s after it; recorded once that was stored", clearedAt.Sub(b.Deadline).Round(time.Millisecond))
	}
	is.record(m, "breached", a, summary)
	return nil
}

// OnOther applies an event whose payload the view does not show; it still takes its place in the
// timeline, so that the view's last sequence stays exact.
func (is *Issue) OnOther(m Meta, kind string) {
	is.record(m, kind, nil, "Recorded "+kind)
}

// statusFromAssignments is the issue's status once departments were summoned: resolved when every
// part is, in progress once any department reported in, dispatched before that.
func (is *Issue) statusFromAssignments() Status {
	if len(is.Assignments) == 0 {
		return is.Status
	}
	resolved, started := 0, false
	for _, a := range is.Assignments {
		switch a.Status {
		case assignment.Resolved:
			resolved++
			started = true
		case assignment.Acknowledged:
			started = true
		}
	}
	switch {
	case resolved == len(is.Assignments):
		return StatusResolved
	case started:
		return StatusInProgress
	default:
		return StatusDispatched
	}
}

// firstLine shortens a note to its first line for the timeline.
func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
