// Package domain is the department's view of an issue: its assignments and what each duty officer
// did with them. The rules of dispatching, reporting in, resolving and breaching, and the checks
// on an officer's command, are the assignment machine's (services/internal/assignment).
package domain

import (
	"errors"
	"fmt"
	"maps"
	"slices"
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
	// Unpushed are the units summoned whose officer on duty the department has not named yet: it
	// owes a push for them, decided by the rosters at SummonedAt, when the event at SummonedSeq
	// that summoned them was stored.
	Unpushed    []string  `json:"unpushed,omitempty"`
	SummonedSeq uint64    `json:"summoned_seq,omitempty"`
	SummonedAt  time.Time `json:"summoned_at,omitzero"`
	// NoteKeys are the idempotency keys of the progress notes recorded, so a retried note is
	// recorded once.
	NoteKeys []string `json:"note_keys,omitempty"`
}

// Position returns the issue's place in the stream, for the projection store.
func (i *Issue) Position() (*uint64, **quarantine.Mark) { return &i.LastSeq, &i.Quarantine }

// Clone returns a copy of the issue that shares nothing with it: what the projection store hands
// out of the state it keeps in memory, cheaper than decoding its document again.
func (i *Issue) Clone() *Issue {
	c := *i
	c.Quarantine = i.Quarantine.Clone()
	if i.Assignments != nil {
		c.Assignments = make([]assignment.Assignment, len(i.Assignments))
		for k, a := range i.Assignments {
			c.Assignments[k] = a.Clone()
		}
	}
	c.Changed = maps.Clone(i.Changed)
	c.Unpushed = slices.Clone(i.Unpushed)
	c.NoteKeys = slices.Clone(i.NoteKeys)
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

// Dispatch applies routing's summons, stored at at as event seq: each department new to the issue
// gets an assignment; one summoned before keeps its own, so its frozen deadlines never move. Each
// unit given a new assignment is owed a push.
func (i *Issue) Dispatch(ds []assignment.Dispatch, at time.Time, seq uint64) {
	i.Assignments = append(i.Assignments, assignment.Place(ds, at, i.Assignment)...)
	for _, d := range ds {
		unit := assignment.UnitOf(d.DepartmentID, d.UnitID)
		if a := i.Assignment(unit); a != nil && a.Status == assignment.Dispatched && a.DispatchedAt.Equal(at) && !slices.Contains(i.Unpushed, unit) {
			i.Unpushed = append(i.Unpushed, unit)
			i.SummonedSeq, i.SummonedAt = seq, at
		}
	}
}

// Pushed applies the department's push of units to their officers: each holds its officer, and
// is owed no push.
func (i *Issue) Pushed(pushes map[string]string) error {
	for unit, officer := range pushes {
		if err := i.Assignment(unit).Push(unit, officer); err != nil {
			return err
		}
	}
	i.Unpushed = slices.DeleteFunc(i.Unpushed, func(u string) bool { _, ok := pushes[u]; return ok })
	return nil
}

// HandOver applies an officer's hand-over of the unit's part to a colleague.
func (i *Issue) HandOver(unit, to string) error { return i.Assignment(unit).Push(unit, to) }

// RequestExtension applies a unit's request for a later deadline.
func (i *Issue) RequestExtension(unit string, e assignment.Extension) error {
	return i.Assignment(unit).RequestExtension(unit, e)
}

// Reopen applies a failed verification's or an unsatisfied rating's reopening of the lead's part.
func (i *Issue) Reopen(e assignment.Reopening) error {
	return i.Assignment(assignment.UnitOf(e.DepartmentID, e.UnitID)).Reopen(e)
}

// Note applies a progress note recorded under key.
func (i *Issue) Note(key string) {
	if key != "" && !slices.Contains(i.NoteKeys, key) {
		i.NoteKeys = append(i.NoteKeys, key)
	}
}

// CheckOpen says whether the unit's part is open for a hand-over or a note.
func (i *Issue) CheckOpen(unit string) error {
	a := i.Assignment(unit)
	if a == nil {
		return i.noAssignment(unit)
	}
	return a.CheckOpen()
}

// CheckExtension says whether officer by may ask at now to move the unit's deadline of kind k to
// proposed (see assignment.Assignment.CheckExtension).
func (i *Issue) CheckExtension(unit string, k assignment.DeadlineKind, proposed, now time.Time, by string) (done bool, err error) {
	a := i.Assignment(unit)
	if a == nil {
		return false, i.noAssignment(unit)
	}
	return a.CheckExtension(k, proposed, now, by)
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
