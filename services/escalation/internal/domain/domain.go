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

	"github.com/whistle-dispatch/whistle/pkg/eventlog/quarantine"
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
	ID      string `json:"id"`
	LastSeq uint64 `json:"last_seq"`
	// Quarantine is set once escalation met an event of the issue that can never apply.
	Quarantine    *quarantine.Mark `json:"quarantine,omitempty"`
	Raised        bool             `json:"raised,omitempty"`
	GridID        string           `json:"grid_id,omitempty"`
	CommunityID   string           `json:"community_id,omitempty"`
	StreetID      string           `json:"street_id,omitempty"`
	CategoryID    string           `json:"category_id,omitempty"`
	CorrelationID string           `json:"correlation_id,omitempty"`
	// Assignments are keyed by department.
	Assignments map[string]*Assignment `json:"assignments,omitempty"`
}

// Position returns the issue's place in the stream, for the projection store.
func (s *Issue) Position() (*uint64, **quarantine.Mark) { return &s.LastSeq, &s.Quarantine }

// Assignment is one department's clocks on the issue.
type Assignment struct {
	// ReportInBy and ResolveBy are the deadlines frozen at dispatch; zero means none.
	ReportInBy time.Time `json:"report_in_by"`
	ResolveBy  time.Time `json:"resolve_by"`
	// Acknowledged and Resolved are the events that cleared the clocks, as the stream stored them.
	Acknowledged *Stored `json:"acknowledged,omitempty"`
	Resolved     *Stored `json:"resolved,omitempty"`
	// Breaches holds the breach recorded for each kind that was breached.
	Breaches map[Kind]Breach `json:"breaches,omitempty"`
}

// Stored is where and when the stream stored an event.
type Stored struct {
	Seq uint64    `json:"seq"`
	At  time.Time `json:"at"`
}

// Breach is a deadline that passed before the event that clears it, as recorded in the log.
type Breach struct {
	IssueID      string    `json:"issue_id"`
	DepartmentID string    `json:"department_id"`
	Kind         Kind      `json:"kind"`
	Deadline     time.Time `json:"deadline"`
	// BreachedAt is when the stream stored the breach event.
	BreachedAt time.Time `json:"breached_at"`
	// ClearedAt is set when the breach was recorded after the event that cleared the deadline
	// late: when the stream stored that event.
	ClearedAt  time.Time `json:"cleared_at,omitzero"`
	GridID     string    `json:"grid_id,omitempty"`
	StreetID   string    `json:"street_id,omitempty"`
	CategoryID string    `json:"category_id,omitempty"`
	// Seq is the breach event's sequence in the stream.
	Seq uint64 `json:"seq"`
}

// Timer is one breach that is or may become owed: a clock that is neither cleared nor breached,
// due at its deadline, or one whose clearing event was stored after its deadline, due at once.
type Timer struct {
	IssueID      string
	DepartmentID string
	Kind         Kind
	// At is when the timer comes due: the deadline, or the zero unix time for a breach owed now.
	At time.Time
}

// DueNow is the At of a timer whose breach is owed whatever any clock says.
var DueNow = time.UnixMilli(0).UTC()

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

// Event is one fact from the log that the escalation state depends on, with where and when the
// stream stored it.
type Event interface{ isEvent() }

// Raised places the issue.
type Raised struct{ GridID, CommunityID, StreetID, CategoryID string }

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
}

// Other is any event escalation does not act on; it only moves the sequence.
type Other struct{}

func (Raised) isEvent()       {}
func (Routed) isEvent()       {}
func (Acknowledged) isEvent() {}
func (Resolved) isEvent()     {}
func (Breached) isEvent()     {}
func (Other) isEvent()        {}

// ErrImpossible is the reason an event can never apply to the state.
var ErrImpossible = errors.New("impossible event")

// Apply folds the event, stored at at as sequence seq, into the state. The caller checks the
// order; Apply only changes the state. Events about departments that were never summoned change
// nothing but the sequence, since they cannot move a clock that does not exist. A breach the
// stream's own times contradict (stored before its deadline, after the deadline was cleared in
// time, or twice) is refused with ErrImpossible: the record would otherwise say what did not
// happen.
func (s *Issue) Apply(seq uint64, at time.Time, correlationID string, e Event) error {
	if _, raise := e.(Raised); raise == s.Raised {
		if raise {
			return fmt.Errorf("%w: the issue was raised before", ErrImpossible)
		}
		return fmt.Errorf("%w: an event before the issue was raised", ErrImpossible)
	}
	if b, ok := e.(Breached); ok {
		if err := s.checkBreach(b, at); err != nil {
			return err
		}
	}
	s.LastSeq = seq
	if s.CorrelationID == "" {
		s.CorrelationID = correlationID
	}
	switch e := e.(type) {
	case Raised:
		s.Raised = true
		s.GridID, s.CommunityID, s.StreetID, s.CategoryID = e.GridID, e.CommunityID, e.StreetID, e.CategoryID
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
		if a := s.Assignments[e.DepartmentID]; a != nil && a.Acknowledged == nil {
			a.Acknowledged = &Stored{Seq: seq, At: at}
		}
	case Resolved:
		if a := s.Assignments[e.DepartmentID]; a != nil && a.Resolved == nil {
			a.Resolved = &Stored{Seq: seq, At: at}
		}
	case Breached:
		a := s.Assignments[e.DepartmentID]
		if a.Breaches == nil {
			a.Breaches = map[Kind]Breach{}
		}
		b := Breach{
			IssueID: s.ID, DepartmentID: e.DepartmentID, Kind: e.Kind, Deadline: e.Deadline, BreachedAt: at,
			GridID: s.GridID, StreetID: s.StreetID, CategoryID: s.CategoryID, Seq: seq,
		}
		if c := a.clearing(e.Kind); c != nil {
			b.ClearedAt = c.At
		}
		a.Breaches[e.Kind] = b
	}
	return nil
}

// checkBreach refuses a breach that the stream's times contradict.
func (s *Issue) checkBreach(b Breached, at time.Time) error {
	a := s.Assignments[b.DepartmentID]
	if a == nil || !slices.Contains(Kinds, b.Kind) {
		return fmt.Errorf("%w: a %s breach of %s, which has no such clock", ErrImpossible, b.Kind, b.DepartmentID)
	}
	deadline := a.deadline(b.Kind)
	switch c := a.clearing(b.Kind); {
	case !deadline.Equal(b.Deadline):
		return fmt.Errorf("%w: a %s breach of %s names the deadline %s, but %s was frozen", ErrImpossible, b.Kind,
			b.DepartmentID, b.Deadline.Format(time.RFC3339Nano), deadline.Format(time.RFC3339Nano))
	case a.Breaches[b.Kind] != (Breach{}):
		return fmt.Errorf("%w: %s's %s deadline was breached before", ErrImpossible, b.DepartmentID, b.Kind)
	case at.Before(deadline):
		return fmt.Errorf("%w: a %s breach of %s stored at %s, before its deadline %s", ErrImpossible, b.Kind,
			b.DepartmentID, at.Format(time.RFC3339Nano), deadline.Format(time.RFC3339Nano))
	case c != nil && !c.At.After(deadline):
		return fmt.Errorf("%w: a %s breach of %s, whose deadline was cleared in time at %s", ErrImpossible, b.Kind,
			b.DepartmentID, c.At.Format(time.RFC3339Nano))
	}
	return nil
}

// Timers returns the issue's timers: every breach not yet recorded that is owed or may become owed.
func (s *Issue) Timers() []Timer {
	var out []Timer
	for dept, a := range s.Assignments {
		for _, k := range Kinds {
			if at, ok := a.timer(k); ok {
				out = append(out, Timer{IssueID: s.ID, DepartmentID: dept, Kind: k, At: at})
			}
		}
	}
	return out
}

// Owed is a breach the record owes.
type Owed struct {
	Deadline time.Time
	// Cleared is the clearing event stored after the deadline, when the breach is owed for that.
	Cleared *Stored
}

// Owes decides, on the stream's clock, whether a breach of the department's clock is owed: its
// clearing event was stored after the deadline, or none was and the stream's clock, streamNow, has
// reached the deadline (a breach appended from then on is stored at or after it). A clock that
// still runs and whose deadline the stream's clock has not reached returns how long until it does.
func (s *Issue) Owes(departmentID string, kind Kind, streamNow time.Time) (owed Owed, ok bool, wait time.Duration) {
	a := s.Assignments[departmentID]
	if a == nil {
		return Owed{}, false, 0
	}
	if _, open := a.timer(kind); !open {
		return Owed{}, false, 0
	}
	deadline := a.deadline(kind)
	if c := a.clearing(kind); c != nil {
		return Owed{Deadline: deadline, Cleared: c}, true, 0
	}
	if streamNow.Before(deadline) {
		return Owed{}, false, deadline.Sub(streamNow)
	}
	return Owed{Deadline: deadline}, true, 0
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

// deadline is the clock's deadline; zero means the clock does not run.
func (a *Assignment) deadline(k Kind) time.Time {
	if k == ReportIn {
		return a.ReportInBy
	}
	return a.ResolveBy
}

// clearing is the event that cleared the clock, nil while it runs. Resolving clears the report-in
// clock too: a department that resolved has reported in.
func (a *Assignment) clearing(k Kind) *Stored {
	if k == ReportIn && a.Acknowledged != nil {
		return a.Acknowledged
	}
	return a.Resolved
}

// timer returns when a breach of the clock comes due, and false when none is or ever will be: the
// clock does not run, was breached, or was cleared in time.
func (a *Assignment) timer(k Kind) (time.Time, bool) {
	deadline := a.deadline(k)
	if _, breached := a.Breaches[k]; breached || deadline.IsZero() {
		return time.Time{}, false
	}
	switch c := a.clearing(k); {
	case c == nil:
		return deadline, true
	case c.At.After(deadline):
		return DueNow, true // cleared late: the breach is owed now
	default:
		return time.Time{}, false
	}
}
