// Package scorecard keeps what the scorecards count of every part of every issue, and computes
// the figures of a department, a unit or a street over a period (see docs/architecture.md,
// Scorecards).
//
// The facts of an issue's parts ride in escalation's document of the issue, folded from its
// events in stream order by the escalation store, which calls Fold once per event. Fold also
// writes them to keys of their own, each part's facts in a hash and the part's name in sorted sets
// by dispatch time, one per department, unit and street and one of every part, so that a query
// for a period reads only the parts dispatched in it. Every key is sharded by the issue's
// partition, like the timers and the breaches: every routed event writes them, and the shards
// spread over a Redis Cluster's masters. Every time in the facts is a time the stream stored an
// event (eventlog.Record.Time), so a replay rebuilds the same keys.
package scorecard

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
	"github.com/whistle-dispatch/whistle/services/internal/assignment/assignmentpb"
)

// Issue is what the scorecards count of one issue: where it is and its parts, in the order they
// were dispatched.
type Issue struct {
	StreetID string `json:"street,omitempty"`
	GridID   string `json:"grid,omitempty"`
	// RaisedAt is when the stream stored the raise: the whistle, which its street counts.
	RaisedAt time.Time `json:"raised_at,omitzero"`
	Parts    []*Part   `json:"parts,omitempty"`
}

// Clone returns a copy of the facts that shares nothing with them.
func (is Issue) Clone() Issue {
	if is.Parts != nil {
		parts := make([]*Part, len(is.Parts))
		for i, p := range is.Parts {
			c := *p
			c.Breaches = slices.Clone(p.Breaches) // a Breach holds no references
			parts[i] = &c
		}
		is.Parts = parts
	}
	return is
}

// Part is one unit's assignment on an issue, from the event that dispatched it until it ended:
// the unit summoned again after a return or a withdrawal is a new part. A reopening (a failed
// verification, an unsatisfied rating) runs the same part again, in a new round. The dispatch
// desk's holding of an issue is no part here: it is a dispatcher's queue, not a unit's answer.
type Part struct {
	IssueID string `json:"issue"`
	// Seq is the stream sequence of the event that dispatched it; with the issue and the unit, it
	// names the part.
	Seq          uint64 `json:"seq"`
	UnitID       string `json:"unit"`
	DepartmentID string `json:"department"`
	StreetID     string `json:"street,omitempty"`
	GridID       string `json:"grid,omitempty"`
	// Lead is set for the lead (主办), unset for an assisting part (协办).
	Lead bool `json:"lead,omitempty"`
	// WorkingTime is set when the policy frozen at dispatch counts working time.
	WorkingTime  bool      `json:"working_time,omitempty"`
	DispatchedAt time.Time `json:"dispatched_at"`
	// AcknowledgedAt is the first report-in; a reopening does not clear it.
	AcknowledgedAt time.Time `json:"acknowledged_at,omitzero"`
	// ResolvedAt is the resolution that stands: a reopening clears it until the part resolves again.
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	// ReturnedAt is when the unit returned it (退单), which ended it.
	ReturnedAt time.Time `json:"returned_at,omitzero"`
	// Withdrawn is set once routing took it away; a withdrawn part counts in no scorecard, so it
	// is kept in the issue's document only, to tell the part from a later one of the unit.
	Withdrawn bool `json:"withdrawn,omitempty"`
	// Round counts its reopenings.
	Round    int      `json:"round,omitempty"`
	Breaches []Breach `json:"breaches,omitempty"`
	// Urges counts supervisors' urges (督办).
	Urges               int `json:"urges,omitempty"`
	ExtensionsRequested int `json:"extensions_requested,omitempty"`
	ExtensionsApproved  int `json:"extensions_approved,omitempty"`
	ExtensionsDenied    int `json:"extensions_denied,omitempty"`
	// Rating is the latest rating (1 to 5) of the issue stored while this was its lead part; 0
	// for none.
	Rating int `json:"rating,omitempty"`
}

// Breach is one deadline of a part that was breached, with the highest level of its escalation
// chain it reached: 0 until it is escalated.
type Breach struct {
	Kind     assignment.DeadlineKind `json:"kind"`
	Round    int                     `json:"round,omitempty"`
	Deadline time.Time               `json:"deadline"`
	Level    int                     `json:"level,omitempty"`
}

// Name is the part's name in the keys: "<issue>|<unit>|<seq>".
func (p *Part) Name() string {
	return p.IssueID + "|" + p.UnitID + "|" + strconv.FormatUint(p.Seq, 10)
}

// Ended reports whether the part was returned or withdrawn.
func (p *Part) Ended() bool { return p.Withdrawn || !p.ReturnedAt.IsZero() }

// Change is what applying one event changed of the scorecards' indexes: the parts it
// dispatched, those it withdrew, and whether it was the raise.
type Change struct {
	Dispatched []*Part
	Withdrawn  []*Part
	Raised     bool
}

// Apply folds one record of the issue into its facts and returns what changed. The escalation
// store calls it only with records its own fold accepted, in stream order; an event naming a
// part the facts do not hold (the desk's, or a unit never summoned) changes nothing here.
func (is *Issue) Apply(rec eventlog.Record) Change {
	var c Change
	ev := rec.Event
	switch p := ev.GetPayload().(type) {
	case *whistlev1.Event_Raised:
		is.StreetID, is.GridID, is.RaisedAt = p.Raised.GetStreetId(), p.Raised.GetGridId(), rec.Time
		c.Raised = true
	case *whistlev1.Event_Routed:
		is.withdraw(&c, p.Routed.GetWithdrawn())
		is.dispatch(&c, ev.GetIssueId(), rec, p.Routed.GetDispatches())
	case *whistlev1.Event_NeedsDispatch:
		is.withdraw(&c, p.NeedsDispatch.GetWithdrawn()) // the desk's own holding is no part
	case *whistlev1.Event_Acknowledged:
		if part := is.part(p.Acknowledged.GetDepartmentId(), p.Acknowledged.GetUnitId()); part != nil && part.AcknowledgedAt.IsZero() {
			part.AcknowledgedAt = rec.Time
		}
	case *whistlev1.Event_Resolved:
		if part := is.part(p.Resolved.GetDepartmentId(), p.Resolved.GetUnitId()); part != nil {
			part.ResolvedAt = rec.Time
		}
	case *whistlev1.Event_Returned:
		if part := is.part(p.Returned.GetDepartmentId(), p.Returned.GetUnitId()); part != nil {
			part.ReturnedAt = rec.Time
		}
	case *whistlev1.Event_Breached:
		b := p.Breached
		if part := is.part(b.GetDepartmentId(), b.GetUnitId()); part != nil {
			part.Breaches = append(part.Breaches, Breach{Kind: assignmentpb.DeadlineKind(b.GetKind()), Round: part.Round,
				Deadline: assignmentpb.Time(b.GetDeadline())})
		}
	case *whistlev1.Event_Escalated:
		// A level is reached when its step told somebody: a step that found nobody left to tell
		// ends the chain without reaching its level.
		e := p.Escalated
		if part := is.part(e.GetDepartmentId(), e.GetUnitId()); part != nil && e.GetPersonId() != "" {
			if b := part.breach(assignmentpb.DeadlineKind(e.GetKind()), assignmentpb.Time(e.GetDeadline())); b != nil && int(e.GetLevel()) > b.Level {
				b.Level = int(e.GetLevel())
			}
		}
	case *whistlev1.Event_Verified:
		is.reopen(p.Verified.GetReopened())
	case *whistlev1.Event_Rated:
		// The rating goes to the lead standing when it was stored, which an unsatisfied rating
		// names as the part it reopens.
		lead := is.lead()
		if r := p.Rated.GetReopened(); r != nil {
			lead = is.part(r.GetDepartmentId(), r.GetUnitId())
		}
		if lead != nil {
			lead.Rating = int(p.Rated.GetScore())
		}
		is.reopen(p.Rated.GetReopened())
	case *whistlev1.Event_Urged:
		if part := is.part(p.Urged.GetDepartmentId(), p.Urged.GetUnitId()); part != nil {
			part.Urges++
		}
	case *whistlev1.Event_ExtensionRequested:
		if part := is.part(p.ExtensionRequested.GetDepartmentId(), p.ExtensionRequested.GetUnitId()); part != nil {
			part.ExtensionsRequested++
		}
	case *whistlev1.Event_ExtensionDecided:
		d := p.ExtensionDecided
		if part := is.part(d.GetDepartmentId(), d.GetUnitId()); part != nil {
			// An approval stored once its deadline had passed moved nothing, and counts as the
			// views show it: not granted (assignment.Decision.Late).
			if d.GetApproved() && rec.Time.Before(d.GetDeadline().AsTime()) {
				part.ExtensionsApproved++
			} else {
				part.ExtensionsDenied++
			}
		}
	}
	return c
}

// dispatch opens a part for each unit the routed event stored at rec summons that has no live
// part, as the assignment machine does (assignment.Summon): a unit named twice is summoned by its
// first mention, and a live part keeps its clocks, its role and its place in the period it was
// first dispatched in.
func (is *Issue) dispatch(c *Change, issueID string, rec eventlog.Record, ds []*whistlev1.Dispatch) {
	for _, d := range ds {
		role := assignmentpb.Role(d.GetRole())
		unit := assignment.UnitOf(d.GetDepartmentId(), d.GetUnitId())
		if role == assignment.Desk {
			continue
		}
		if live := is.part(d.GetDepartmentId(), d.GetUnitId()); live != nil && !live.Ended() {
			continue
		}
		p := &Part{
			IssueID: issueID, Seq: rec.Seq, UnitID: unit, DepartmentID: d.GetDepartmentId(),
			StreetID: is.StreetID, GridID: is.GridID, Lead: role == assignment.Lead,
			WorkingTime: d.GetPolicy().GetWorkingTime(), DispatchedAt: rec.Time,
		}
		is.Parts = append(is.Parts, p)
		c.Dispatched = append(c.Dispatched, p)
	}
}

// withdraw ends the live parts of the units a route takes the matter from.
func (is *Issue) withdraw(c *Change, ws []*whistlev1.Withdrawal) {
	for _, w := range ws {
		if p := is.part("", w.GetUnitId()); p != nil && !p.Ended() {
			p.Withdrawn = true
			c.Withdrawn = append(c.Withdrawn, p)
		}
	}
}

// reopen runs the part a verification or a rating reopens again, in a new round: its resolution
// no longer stands.
func (is *Issue) reopen(d *whistlev1.Dispatch) {
	if d == nil {
		return
	}
	if p := is.part(d.GetDepartmentId(), d.GetUnitId()); p != nil {
		p.Round++
		p.ResolvedAt = time.Time{}
	}
}

// part is the latest part of the unit an event names (by department alone, for events written
// before departments had units); nil when the unit has none.
func (is *Issue) part(departmentID, unitID string) *Part {
	unit := assignment.UnitOf(departmentID, unitID)
	for i := len(is.Parts) - 1; i >= 0; i-- {
		if is.Parts[i].UnitID == unit {
			return is.Parts[i]
		}
	}
	return nil
}

// lead is the first lead part that has not ended, as intake finds the lead it reopens; nil
// when there is none.
func (is *Issue) lead() *Part {
	for _, p := range is.Parts {
		if p.Lead && !p.Ended() {
			return p
		}
	}
	return nil
}

// breach is the part's breach an escalation names: of its kind and deadline, or else its latest
// of the kind; nil when it has none of the kind.
func (p *Part) breach(kind assignment.DeadlineKind, deadline time.Time) *Breach {
	var latest *Breach
	for i := range p.Breaches {
		b := &p.Breaches[i]
		if b.Kind != kind {
			continue
		}
		if b.Deadline.Equal(deadline) {
			return b
		}
		latest = b
	}
	return latest
}

// partNamed is the part of the issue named name (Part.Name); nil when is is nil or holds none.
func (is *Issue) partNamed(name string) *Part {
	if is == nil {
		return nil
	}
	for _, p := range is.Parts {
		if p.Name() == name {
			return p
		}
	}
	return nil
}

// issueOfPart is the issue a part's name belongs to.
func issueOfPart(name string) string {
	id, _, _ := strings.Cut(name, "|")
	return id
}
