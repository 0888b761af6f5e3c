// Package domain is the department's view of an issue: its assignments and what each duty officer
// did with them. The rules of dispatching, reporting in, resolving and breaching, and the checks
// on an officer's command, are the assignment machine's (services/internal/assignment).
package domain

import (
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/eventlog/quarantine"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
)

// Issue is what a department's desk needs of an issue.
type Issue struct {
	// ID is the case number.
	ID string `json:"id"`
	// LastSeq is the stream sequence of the issue's last event applied.
	LastSeq uint64 `json:"last_seq"`
	// Quarantine is set once the department met an event of the issue that can never apply.
	Quarantine    *quarantine.Mark        `json:"quarantine,omitempty"`
	Grid          string                  `json:"grid,omitempty"`
	Street        string                  `json:"street,omitempty"`
	Category      string                  `json:"category,omitempty"`
	Urgency       int32                   `json:"urgency,omitempty"` // a whistlev1.Urgency value
	Text          string                  `json:"text,omitempty"`
	CorrelationID string                  `json:"correlation_id,omitempty"`
	Assignments   []assignment.Assignment `json:"assignments,omitempty"` // in dispatch order
	// Changed is, by department, the stream sequence of the last event that changed its
	// assignment: the change a department's live inbox shows it at.
	Changed map[string]uint64 `json:"changed,omitempty"`
}

// Position returns the issue's place in the stream, for the projection store.
func (i *Issue) Position() (*uint64, **quarantine.Mark) { return &i.LastSeq, &i.Quarantine }

// Clone returns a copy of the issue that shares nothing with it: what the projection store hands
// out of the state it keeps in memory, cheaper than decoding its document again.
func (i *Issue) Clone() *Issue {
	c := *i
	if i.Quarantine != nil {
		m := *i.Quarantine
		c.Quarantine = &m
	}
	if i.Assignments != nil {
		c.Assignments = make([]assignment.Assignment, len(i.Assignments))
		for k, a := range i.Assignments {
			c.Assignments[k] = a.Clone()
		}
	}
	c.Changed = maps.Clone(i.Changed)
	return &c
}

// Assignment returns the department's assignment, or nil when the department has none.
func (i *Issue) Assignment(unit string) *assignment.Assignment {
	for k := range i.Assignments {
		if i.Assignments[k].Unit() == unit {
			return &i.Assignments[k]
		}
	}
	return nil
}

// Dispatch applies routing's summons, stored at at: each department new to the issue gets an
// assignment; one summoned before keeps its own, so its frozen deadlines never move.
func (i *Issue) Dispatch(ds []assignment.Dispatch, at time.Time) {
	i.Assignments = append(i.Assignments, assignment.Place(ds, at, i.Assignment)...)
}

// Return applies a unit's return of its assignment, as the machine allows.
func (i *Issue) Return(e assignment.Ending) error {
	return i.Assignment(assignment.UnitOf(e.DepartmentID, e.UnitID)).Return(e)
}

// Withdraw applies the end of assignments whose matter went elsewhere, as the machine allows.
func (i *Issue) Withdraw(es []assignment.Ending) error {
	for _, e := range es {
		if err := i.Assignment(e.UnitID).Withdraw(e); err != nil {
			return err
		}
	}
	return nil
}

// Acknowledge applies an officer's report-in for the department, as the assignment machine allows.
func (i *Issue) Acknowledge(e assignment.Acknowledgement) error {
	return i.Assignment(assignment.UnitOf(e.DepartmentID, e.UnitID)).Acknowledge(e)
}

// Resolve applies an officer's resolution of the department's part, as the machine allows.
func (i *Issue) Resolve(e assignment.Resolution) error {
	return i.Assignment(assignment.UnitOf(e.DepartmentID, e.UnitID)).Resolve(e)
}

// Breach applies a breach of one of the department's deadlines, as the machine allows.
func (i *Issue) Breach(e assignment.Breach) error {
	return i.Assignment(assignment.UnitOf(e.DepartmentID, e.UnitID)).Breach(e)
}

// ErrNotFound means the issue is unknown or has no assignment for the department.
var ErrNotFound = errors.New("not found")

// CheckAcknowledge says whether officer by may report in for the department now (see
// assignment.Assignment.CheckAcknowledge): done is true when the same officer already did.
func (i *Issue) CheckAcknowledge(unit, by string) (done bool, err error) {
	a := i.Assignment(unit)
	if a == nil {
		return false, i.noAssignment(unit)
	}
	return a.CheckAcknowledge(by)
}

// CheckReturn says whether officer by may return the unit's assignment with reason now (see
// assignment.Assignment.CheckReturn).
func (i *Issue) CheckReturn(unit, by, reason string) (done bool, err error) {
	a := i.Assignment(unit)
	if a == nil {
		return false, i.noAssignment(unit)
	}
	return a.CheckReturn(by, reason)
}

// CheckResolve says whether officer by may resolve the department's part with note now (see
// assignment.Assignment.CheckResolve): done is true when the same officer already did with the
// same note.
func (i *Issue) CheckResolve(unit, by, note string) (done bool, err error) {
	a := i.Assignment(unit)
	if a == nil {
		return false, i.noAssignment(unit)
	}
	return a.CheckResolve(by, note)
}

// noAssignment is the answer to a command on a department the issue has not summoned; it reads the
// same as for an issue never raised, so a caller learns nothing of another department's issues.
func (i *Issue) noAssignment(unit string) error {
	return fmt.Errorf("issue %s has no assignment for %s: %w", i.ID, unit, ErrNotFound)
}
