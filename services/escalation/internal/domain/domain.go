// Package domain is what the escalation service knows about an issue: where it sits, the deadlines
// frozen at dispatch for each summoned department, which of them were cleared and which were
// breached. It decides which deadlines are still open and whether one is due to breach.
package domain

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kind names one clock of an assignment.
type Kind string

// The clocks every assignment carries.
const (
	// ReportIn runs until the duty officer reports in.
	ReportIn Kind = "report-in"
	// Resolve runs until the department resolves its part.
	Resolve Kind = "resolve"
)

// Kinds lists every kind, in the order the clocks usually run out.
var Kinds = []Kind{ReportIn, Resolve}

// ErrBadTimer means a timer name could not be read back.
var ErrBadTimer = errors.New("malformed timer")

// Issue is the escalation state of one issue, derived from its events in stream order.
type Issue struct {
	ID            string `json:"id"`
	LastSeq       uint64 `json:"last_seq"`
	GridID        string `json:"grid_id,omitempty"`
	StreetID      string `json:"street_id,omitempty"`
	CategoryID    string `json:"category_id,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
	// Assignments are keyed by department.
	Assignments map[string]*Assignment `json:"assignments,omitempty"`
}

// Assignment is one department's clocks on the issue.
type Assignment struct {
	// ReportInBy and ResolveBy are the deadlines frozen at dispatch; zero means none.
	ReportInBy   time.Time `json:"report_in_by"`
	ResolveBy    time.Time `json:"resolve_by"`
	Acknowledged bool      `json:"acknowledged,omitempty"`
	Resolved     bool      `json:"resolved,omitempty"`
	// Breaches holds the breach recorded for each kind that was breached.
	Breaches map[Kind]Breach `json:"breaches,omitempty"`
}

// Breach is a deadline that passed before the event that clears it, as recorded in the log.
type Breach struct {
	IssueID      string    `json:"issue_id"`
	DepartmentID string    `json:"department_id"`
	Kind         Kind      `json:"kind"`
	Deadline     time.Time `json:"deadline"`
	BreachedAt   time.Time `json:"breached_at"`
	GridID       string    `json:"grid_id,omitempty"`
	StreetID     string    `json:"street_id,omitempty"`
	CategoryID   string    `json:"category_id,omitempty"`
	// Seq is the breach event's sequence in the stream.
	Seq uint64 `json:"seq"`
}

// Timer is one open deadline: a clock that has neither been cleared nor breached.
type Timer struct {
	IssueID      string
	DepartmentID string
	Kind         Kind
	At           time.Time
}

// Name is the timer's stable name "<issue>|<department>|<kind>", also the name of its breach.
func (t Timer) Name() string { return Name(t.IssueID, t.DepartmentID, t.Kind) }

// Name is the stable name of one clock of one assignment.
func Name(issueID, departmentID string, kind Kind) string {
	return issueID + "|" + departmentID + "|" + string(kind)
}

// ParseName reads back a Name.
func ParseName(name string) (issueID, departmentID string, kind Kind, err error) {
	parts := strings.Split(name, "|")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || !slices.Contains(Kinds, Kind(parts[2])) {
		return "", "", "", fmt.Errorf("%w: %q", ErrBadTimer, name)
	}
	return parts[0], parts[1], Kind(parts[2]), nil
}

// Event is one fact from the log that the escalation state depends on.
type Event interface{ isEvent() }

// Raised places the issue.
type Raised struct{ GridID, StreetID, CategoryID string }

// Dispatch is one department summoned with its frozen deadlines.
type Dispatch struct {
	DepartmentID          string
	ReportInBy, ResolveBy time.Time
}

// Routed summons departments.
type Routed struct{ Dispatches []Dispatch }

// Acknowledged stops a department's report-in clock.
type Acknowledged struct{ DepartmentID string }

// Resolved stops both of a department's clocks.
type Resolved struct{ DepartmentID string }

// Breached records that a deadline passed.
type Breached struct {
	DepartmentID string
	Kind         Kind
	Deadline     time.Time
	At           time.Time
}

func (Raised) isEvent()       {}
func (Routed) isEvent()       {}
func (Acknowledged) isEvent() {}
func (Resolved) isEvent()     {}
func (Breached) isEvent()     {}

// Apply folds the event at stream sequence seq into the state. The caller checks the order; Apply
// only changes the state. Events about departments that were never summoned change nothing but
// the sequence, since they cannot move a clock that does not exist.
func (s *Issue) Apply(seq uint64, correlationID string, e Event) {
	s.LastSeq = seq
	if s.CorrelationID == "" {
		s.CorrelationID = correlationID
	}
	switch e := e.(type) {
	case Raised:
		s.GridID, s.StreetID, s.CategoryID = e.GridID, e.StreetID, e.CategoryID
	case Routed:
		if s.Assignments == nil {
			s.Assignments = map[string]*Assignment{}
		}
		for _, d := range e.Dispatches {
			// A department keeps the clocks of its first dispatch: its deadlines are frozen then.
			if _, ok := s.Assignments[d.DepartmentID]; !ok {
				s.Assignments[d.DepartmentID] = &Assignment{ReportInBy: d.ReportInBy, ResolveBy: d.ResolveBy}
			}
		}
	case Acknowledged:
		if a := s.Assignments[e.DepartmentID]; a != nil {
			a.Acknowledged = true
		}
	case Resolved:
		if a := s.Assignments[e.DepartmentID]; a != nil {
			a.Resolved = true
		}
	case Breached:
		if a := s.Assignments[e.DepartmentID]; a != nil && slices.Contains(Kinds, e.Kind) {
			if a.Breaches == nil {
				a.Breaches = map[Kind]Breach{}
			}
			a.Breaches[e.Kind] = Breach{
				IssueID: s.ID, DepartmentID: e.DepartmentID, Kind: e.Kind, Deadline: e.Deadline, BreachedAt: e.At,
				GridID: s.GridID, StreetID: s.StreetID, CategoryID: s.CategoryID, Seq: seq,
			}
		}
	}
}

// Timers returns the issue's open deadlines: those set at dispatch that have been neither cleared
// nor breached. Each fires at most once, so a breached clock is no longer open.
func (s *Issue) Timers() []Timer {
	var out []Timer
	for dept, a := range s.Assignments {
		for _, k := range Kinds {
			if at, open := a.open(k); open {
				out = append(out, Timer{IssueID: s.ID, DepartmentID: dept, Kind: k, At: at})
			}
		}
	}
	return out
}

// Due returns the deadline of the department's clock if it is open and has passed at now: a
// breach is then owed.
func (s *Issue) Due(departmentID string, kind Kind, now time.Time) (deadline time.Time, due bool) {
	a := s.Assignments[departmentID]
	if a == nil {
		return time.Time{}, false
	}
	at, open := a.open(kind)
	return at, open && !at.After(now)
}

// Breach returns the recorded breach of a department's clock, if any.
func (s *Issue) Breach(departmentID string, kind Kind) (Breach, bool) {
	a := s.Assignments[departmentID]
	if a == nil {
		return Breach{}, false
	}
	b, ok := a.Breaches[kind]
	return b, ok
}

// open returns the deadline of one clock and whether it still runs.
func (a *Assignment) open(k Kind) (time.Time, bool) {
	if _, breached := a.Breaches[k]; breached || a.Resolved {
		return time.Time{}, false
	}
	switch k {
	case ReportIn:
		return a.ReportInBy, !a.Acknowledged && !a.ReportInBy.IsZero()
	case Resolve:
		return a.ResolveBy, !a.ResolveBy.IsZero()
	}
	return time.Time{}, false
}
