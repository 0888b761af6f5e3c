// Package domain is the department's view of an issue: its assignments, what each duty officer did
// with them, and the rules of reporting in and resolving.
package domain

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/eventlog/quarantine"
)

// Status is where one department's part of an issue stands.
type Status string

// The assignment statuses, in the order an assignment passes through them.
const (
	Dispatched   Status = "dispatched"
	Acknowledged Status = "acknowledged"
	Resolved     Status = "resolved"
)

// Open reports whether the assignment still needs the department: dispatched or acknowledged.
func (s Status) Open() bool { return s == Dispatched || s == Acknowledged }

// Roles of a department in a (joint) whistle.
const (
	Lead      = "lead"
	Assisting = "assisting"
)

// Deadline kinds an assignment can breach.
const (
	ReportIn = "report-in"
	Resolve  = "resolve"
)

// Assignment is one department's part of an issue. Its times come from the events, so a replay
// rebuilds it exactly.
type Assignment struct {
	Department     string    `json:"department"`
	Role           string    `json:"role"`
	Status         Status    `json:"status"`
	DispatchedAt   time.Time `json:"dispatched_at"`
	ReportInBy     time.Time `json:"report_in_by,omitzero"`
	ResolveBy      time.Time `json:"resolve_by,omitzero"`
	AcknowledgedAt time.Time `json:"acknowledged_at,omitzero"`
	AcknowledgedBy string    `json:"acknowledged_by,omitempty"`
	ResolvedAt     time.Time `json:"resolved_at,omitzero"`
	ResolvedBy     string    `json:"resolved_by,omitempty"`
	Note           string    `json:"note,omitempty"`
	Breached       []string  `json:"breached,omitempty"` // ReportIn, Resolve
	// Seq is the stream sequence of the last event that changed the assignment: the change a
	// department's live inbox shows it at.
	Seq uint64 `json:"seq,omitempty"`
}

// Issue is what a department's desk needs of an issue.
type Issue struct {
	// ID is the case number.
	ID string `json:"id"`
	// LastSeq is the stream sequence of the issue's last event applied.
	LastSeq uint64 `json:"last_seq"`
	// Quarantine is set once the department met an event of the issue that can never apply.
	Quarantine    *quarantine.Mark `json:"quarantine,omitempty"`
	Grid          string           `json:"grid,omitempty"`
	Street        string           `json:"street,omitempty"`
	Category      string           `json:"category,omitempty"`
	Urgency       int32            `json:"urgency,omitempty"` // a whistlev1.Urgency value
	Text          string           `json:"text,omitempty"`
	CorrelationID string           `json:"correlation_id,omitempty"`
	Assignments   []Assignment     `json:"assignments,omitempty"` // in dispatch order
}

// Position returns the issue's place in the stream, for the projection store.
func (i *Issue) Position() (*uint64, **quarantine.Mark) { return &i.LastSeq, &i.Quarantine }

// Assignment returns the department's assignment, or nil when the department has none.
func (i *Issue) Assignment(dept string) *Assignment {
	for k := range i.Assignments {
		if i.Assignments[k].Department == dept {
			return &i.Assignments[k]
		}
	}
	return nil
}

// Dispatch adds an assignment; a department already summoned keeps the assignment it has, so its
// frozen deadlines never move.
func (i *Issue) Dispatch(a Assignment) {
	if i.Assignment(a.Department) == nil {
		a.Status = Dispatched
		i.Assignments = append(i.Assignments, a)
	}
}

// Acknowledge records that an officer reported in for the department.
func (i *Issue) Acknowledge(dept string, at time.Time, by string) {
	if a := i.Assignment(dept); a != nil && a.Status == Dispatched {
		a.Status, a.AcknowledgedAt, a.AcknowledgedBy = Acknowledged, at, by
	}
}

// Resolve records that an officer resolved the department's part.
func (i *Issue) Resolve(dept string, at time.Time, by, note string) {
	if a := i.Assignment(dept); a != nil && a.Status != Resolved {
		a.Status, a.ResolvedAt, a.ResolvedBy, a.Note = Resolved, at, by, note
	}
}

// Breach records that a deadline of the department's assignment passed.
func (i *Issue) Breach(dept, kind string) {
	if a := i.Assignment(dept); a != nil && !slices.Contains(a.Breached, kind) {
		a.Breached = append(a.Breached, kind)
	}
}

// ErrNotFound means the issue is unknown or has no assignment for the department.
var ErrNotFound = errors.New("not found")

// TransitionError is a command the assignment's status does not allow.
type TransitionError struct{ Reason string }

// Error is the reason, which reads as the status message.
func (e *TransitionError) Error() string { return e.Reason }

// CheckAcknowledge says whether officer by may report in for the department now: done is true
// when the same officer already did, so there is nothing to do.
func (i *Issue) CheckAcknowledge(dept, by string) (done bool, err error) {
	a := i.Assignment(dept)
	switch {
	case a == nil:
		return false, fmt.Errorf("issue %s has no assignment for %s: %w", i.ID, dept, ErrNotFound)
	case a.Status == Resolved:
		return false, &TransitionError{fmt.Sprintf("%s already resolved its part of %s", dept, i.ID)}
	case a.Status == Acknowledged && a.AcknowledgedBy != by:
		return false, &TransitionError{fmt.Sprintf("%s already reported in for %s", a.AcknowledgedBy, dept)}
	}
	return a.Status == Acknowledged, nil
}

// CheckResolve says whether officer by may resolve the department's part with note now: done is
// true when the same officer already did with the same note, so a retry changes nothing. A second
// resolution that differs (another officer, another note) is refused naming when and by whom the
// part was resolved, rather than answered as if it had been recorded: the note a department
// resolved with is what the issue's record keeps.
func (i *Issue) CheckResolve(dept, by, note string) (done bool, err error) {
	a := i.Assignment(dept)
	switch {
	case a == nil:
		return false, fmt.Errorf("issue %s has no assignment for %s: %w", i.ID, dept, ErrNotFound)
	case a.Status == Dispatched:
		return false, &TransitionError{"report in before resolving"}
	case a.Status == Resolved && (a.ResolvedBy != by || a.Note != note):
		return false, &TransitionError{fmt.Sprintf("%s's part of %s is already resolved, at %s by %s with another note; a resolution is not changed",
			dept, i.ID, a.ResolvedAt.UTC().Format(time.RFC3339), a.ResolvedBy)}
	}
	return a.Status == Resolved, nil
}
