package domain

import (
	"slices"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/eventlog/quarantine"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
)

// Causes of a decision routing owes, as the fold records them (see Issue.Owe).
const (
	OweRaised        = "raised"
	OweReturned      = "returned"
	OweRecategorised = "recategorised"
	OweUnlinked      = "unlinked"
	OweBeyondGrid    = "beyond-grid"
)

// Issue is what routing knows of an issue: enough to route it, the units it summoned and what
// became of them, and whether it owes a decision.
type Issue struct {
	ID string `json:"id,omitempty"`
	// LastSeq is the stream sequence of the issue's last event applied.
	LastSeq uint64 `json:"last_seq"`
	// Quarantine is set once routing met an event of the issue that can never apply.
	Quarantine    *quarantine.Mark `json:"quarantine,omitempty"`
	Grid          string           `json:"grid,omitempty"`
	Street        string           `json:"street,omitempty"`
	Category      string           `json:"category,omitempty"`
	Urgency       int32            `json:"urgency,omitempty"` // a whistlev1.Urgency value
	Text          string           `json:"text,omitempty"`
	Latitude      float64          `json:"lat,omitempty"`
	Longitude     float64          `json:"lng,omitempty"`
	HasPoint      bool             `json:"has_point,omitempty"`
	CorrelationID string           `json:"correlation_id,omitempty"`
	Raised        bool             `json:"raised,omitempty"`
	// RaisedSeq and RaisedAt are the raise's sequence and the time the stream stored it: every
	// deadline runs from then.
	RaisedSeq    uint64    `json:"raised_seq,omitempty"`
	RaisedAt     time.Time `json:"raised_at,omitzero"`
	Routed       bool      `json:"routed,omitempty"`
	RuleID       string    `json:"rule_id,omitempty"`
	RulesVersion string    `json:"rules_version,omitempty"`
	// NeedsDispatch is set once the issue went to the desk (it may have left it since);
	// DeskReason says why it went there last.
	NeedsDispatch bool                    `json:"needs_dispatch,omitempty"`
	DeskReason    string                  `json:"desk_reason,omitempty"`
	Assignments   []assignment.Assignment `json:"assignments,omitempty"`
	// Returns are the departments that returned the issue, in order.
	Returns []string `json:"returns,omitempty"`
	// LinkedTo is the case this one joined as a duplicate; Duplicates the ones that joined it.
	LinkedTo   string   `json:"linked_to,omitempty"`
	Duplicates []string `json:"duplicates,omitempty"`
	// Owe is the cause of a decision routing owes the issue, set by the event that calls for one
	// and cleared by the decision; OweSince is when the stream stored that event.
	Owe      string    `json:"owe,omitempty"`
	OweSince time.Time `json:"owe_since,omitzero"`
}

// Position returns the issue's place in the stream, for the projection store.
func (i *Issue) Position() (*uint64, **quarantine.Mark) { return &i.LastSeq, &i.Quarantine }

// AwaitsDecision reports whether routing owes the issue a decision.
func (i Issue) AwaitsDecision() bool { return i.Raised && i.Owe != "" && i.Quarantine == nil }

// Case is what the rules see of the issue.
func (i Issue) Case() Case {
	return Case{Grid: i.Grid, Category: i.Category, Urgency: whistlev1.Urgency(i.Urgency), Text: i.Text, At: i.RaisedAt}
}

// Assignment returns the unit's assignment, or nil.
func (i *Issue) Assignment(unit string) *assignment.Assignment {
	for k := range i.Assignments {
		if i.Assignments[k].Unit() == unit {
			return &i.Assignments[k]
		}
	}
	return nil
}

// Live returns the open assignments of departments (not the desk's), in dispatch order.
func (i *Issue) Live() []assignment.Assignment {
	var out []assignment.Assignment
	for _, a := range i.Assignments {
		if a.Role != assignment.Desk && a.Status.Open() {
			out = append(out, a)
		}
	}
	return out
}

// AtDesk returns the desk's open assignment, or nil when the issue is not waiting at the desk.
func (i *Issue) AtDesk() *assignment.Assignment {
	for k := range i.Assignments {
		if a := &i.Assignments[k]; a.Role == assignment.Desk && a.Status.Open() {
			return a
		}
	}
	return nil
}

// Open reports whether the issue is a case people are still working: routed or at the desk, not
// linked to another, with a part not yet resolved.
func (i *Issue) Open() bool {
	if !i.Raised || i.LinkedTo != "" {
		return false
	}
	return slices.ContainsFunc(i.Assignments, func(a assignment.Assignment) bool { return a.Status.Open() })
}

// Summon applies a decision's withdrawals and summons: a unit already live keeps its assignment;
// one whose assignment ended gets a new one in its place.
func (i *Issue) Summon(ds []assignment.Dispatch, withdrawn []assignment.Ending, at time.Time) error {
	for _, w := range withdrawn {
		if err := i.Assignment(w.UnitID).Withdraw(w); err != nil {
			return err
		}
	}
	i.Assignments = append(i.Assignments, assignment.Place(ds, at, i.Assignment)...)
	return nil
}

// Clone returns a copy that shares nothing with the issue.
func (i *Issue) Clone() *Issue {
	c := *i
	c.Quarantine = i.Quarantine.Clone()
	c.Assignments = make([]assignment.Assignment, len(i.Assignments))
	for k, a := range i.Assignments {
		c.Assignments[k] = a.Clone()
	}
	c.Returns, c.Duplicates = slices.Clone(i.Returns), slices.Clone(i.Duplicates)
	return &c
}
