package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/whistle-dispatch/whistle/services/internal/assignment"
)

// Supervision is what supervisors deal with on a unit's part (督办): its role, by which an urge
// that names no unit finds the lead; the extension its unit asked for that nobody has decided yet;
// the latest decision; and the urges. Its rules are the assignment machine's
// (assignment.Assignment.RequestExtension, DecideExtension and Urge), so an approval moves the
// deadline here exactly when it moves it in every other projection, and the timers follow.
type Supervision struct {
	Role      assignment.Role       `json:"role,omitempty"`
	Extension *assignment.Extension `json:"extension,omitempty"`
	// RequestedSeq is the sequence of the event that made Extension.
	RequestedSeq uint64               `json:"requested_seq,omitempty"`
	Decision     *assignment.Decision `json:"extension_decided,omitempty"`
	// DecidedSeq is the sequence of the event that made Decision.
	DecidedSeq uint64 `json:"decided_seq,omitempty"`
	Urges      int    `json:"urges,omitempty"`
}

// onto copies the supervision into the machine's view of the part, sharing nothing with it.
func (v Supervision) onto(m *assignment.Assignment) {
	m.Role, m.Urges = v.Role, v.Urges
	m.Extension, m.Decision = v.Extension.Clone(), v.Decision.Clone()
}

// clone is a copy of the supervision that shares nothing with it.
func (v Supervision) clone() Supervision {
	v.Extension, v.Decision = v.Extension.Clone(), v.Decision.Clone()
	return v
}

// reopened is the supervision of a part that runs again: its pending request belongs to the round
// that ended, as the machine's Reopen says; its role, decision and urges stay.
func (v Supervision) reopened() Supervision {
	v.Extension, v.RequestedSeq = nil, 0
	return v
}

// ExtensionRequested records a unit's request for a later deadline, which a supervisor decides.
type ExtensionRequested struct {
	DepartmentID, UnitID string
	Extension            assignment.Extension
}

// ExtensionDecided is a supervisor's decision on the unit's pending request (Decision names the
// unit); an approval stored in time moves the deadline, and the timers with it.
// RequestID is the supervisor's idempotency key, when they gave one.
type ExtensionDecided struct {
	Decision  assignment.Decision
	RequestID string
}

// Urged counts a supervisor's urge of a unit's part, once per request id.
type Urged struct{ DepartmentID, UnitID, RequestID string }

func (ExtensionRequested) isEvent() {}
func (ExtensionDecided) isEvent()   {}
func (Urged) isEvent()              {}

// supervised is an event of supervision: one transition of the assignment machine on one unit's
// part.
type supervised interface {
	Event
	unit() string
	transition(m *assignment.Assignment, at time.Time) error
	// request is the supervisor's idempotency key, "" for none, and the command it keys.
	request() (id string, cmd RequestCommand)
}

// RequestCommand names the supervisor's command a request id was recorded for.
type RequestCommand string

const (
	UrgeRequest     RequestCommand = "urge"
	DecisionRequest RequestCommand = "extension decision"
)

func (ExtensionRequested) request() (string, RequestCommand) { return "", "" }
func (e ExtensionDecided) request() (string, RequestCommand) { return e.RequestID, DecisionRequest }
func (e Urged) request() (string, RequestCommand)            { return e.RequestID, UrgeRequest }

func (e ExtensionRequested) unit() string { return unit(e.DepartmentID, e.UnitID) }
func (e ExtensionDecided) unit() string   { return unit(e.Decision.DepartmentID, e.Decision.UnitID) }
func (e Urged) unit() string              { return unit(e.DepartmentID, e.UnitID) }

func (e ExtensionRequested) transition(m *assignment.Assignment, at time.Time) error {
	x := e.Extension
	x.At = at
	return m.RequestExtension(e.unit(), x)
}

func (e ExtensionDecided) transition(m *assignment.Assignment, at time.Time) error {
	d := e.Decision
	d.At = at
	return m.DecideExtension(d)
}

func (e Urged) transition(m *assignment.Assignment, _ time.Time) error { return m.Urge(e.unit()) }

// supervise runs the event's transition on the machine's view of the unit's part, and returns the
// part as the machine leaves it; it changes nothing here.
func (s *Issue) supervise(at time.Time, e supervised) (*assignment.Assignment, error) {
	m := s.machine(e.unit())
	return m, e.transition(m, at)
}

// applySupervision applies an event of supervision, stored at at as sequence seq, that judge
// allowed: the part takes the deadlines, pending request, decision and urges the machine gave it,
// and an urge's request id is kept.
func (s *Issue) applySupervision(seq uint64, at time.Time, e supervised) {
	m, err := s.supervise(at, e)
	if err != nil {
		return // judged before: unreachable
	}
	a := s.Assignments[e.unit()]
	a.ReportInBy, a.ResolveBy = m.ReportInBy, m.ResolveBy
	a.Extension, a.Urges = m.Extension, m.Urges
	switch e.(type) {
	case ExtensionRequested:
		a.RequestedSeq = seq
	case ExtensionDecided:
		a.Decision, a.DecidedSeq, a.RequestedSeq = m.Decision, seq, 0
	}
	if key, cmd := e.request(); key != "" {
		if _, seen := s.RequestKeys[key]; !seen {
			if s.RequestKeys == nil {
				s.RequestKeys = map[string]uint64{}
			}
			if s.RequestCommands == nil {
				s.RequestCommands = map[string]RequestCommand{}
			}
			s.RequestKeys[key], s.RequestCommands[key] = seq, cmd
		}
	}
}

// Lead returns the unit whose open or resolved part leads the issue, or "" when none does.
func (s *Issue) Lead() string {
	for u, a := range s.Assignments {
		if a.Role == assignment.Lead && a.Ended == nil {
			return u
		}
	}
	return ""
}

// Part returns the unit's part as the assignment machine sees it, with its round, the start of
// its clocks and its officer, or nil when the unit was never summoned: what supervisors' commands
// check and answer with.
func (s *Issue) Part(unitID string) *assignment.Assignment {
	m := s.machine(unitID)
	if m != nil {
		a := s.Assignments[unitID]
		m.Reopened, m.DispatchedAt, m.OfficerID = a.Round, a.DispatchedAt, a.OfficerID
	}
	return m
}

// DoneBy returns the sequence of the supervisor's command cmd recorded under the request id, if
// one was. An id recorded for another command is refused: answering a decision with an urge's
// sequence would tell the supervisor a decision was made that never was. (An id recorded before
// commands were kept with their ids is taken as cmd's.)
func (s *Issue) DoneBy(requestID string, cmd RequestCommand) (seq uint64, ok bool, err error) {
	seq, ok = s.RequestKeys[requestID]
	if other := s.RequestCommands[requestID]; ok && other != "" && other != cmd {
		return 0, false, &assignment.TransitionError{Reason: fmt.Sprintf(
			"request_id %q was used for an %s of this issue; an %s needs a request id of its own", requestID, other, cmd)}
	}
	return seq, ok, nil
}

// PendingExtension is a unit's extension request that waits for a supervisor on a part still
// open, as the list of pending requests shows it.
type PendingExtension struct {
	IssueID, UnitID, DepartmentID string
	GridID, StreetID, CategoryID  string
	// Status is the part's: dispatched or acknowledged.
	Status assignment.Status
	// Deadline is the deadline the request would move, as it stands; Breached says it passed
	// and its breach was recorded, so the request can only be denied.
	Deadline  time.Time
	Breached  bool
	Extension assignment.Extension
	// Seq is the sequence of the request's event.
	Seq uint64
}

// ListName is the request's name in the index of pending requests: "<issue>|<unit>", since a
// unit's part has one request pending at most.
func (p PendingExtension) ListName() string { return p.IssueID + "|" + p.UnitID }

// PendingExtensions returns the requests of the issue's open parts that nobody has decided yet,
// by unit. A part that resolved, was returned or withdrawn, or reopened leaves the list with its
// request, which a supervisor can then only deny.
func (s *Issue) PendingExtensions() []PendingExtension {
	var out []PendingExtension
	for u, a := range s.Assignments {
		if a.Extension == nil {
			continue
		}
		m := a.state(u)
		if !m.Status.Open() {
			continue
		}
		out = append(out, PendingExtension{IssueID: s.ID, UnitID: u, DepartmentID: a.Department(u),
			GridID: s.GridID, StreetID: s.StreetID, CategoryID: s.CategoryID, Status: m.Status,
			Deadline: m.Deadline(a.Extension.Kind), Breached: m.IsBreached(a.Extension.Kind), Extension: *a.Extension, Seq: a.RequestedSeq})
	}
	slices.SortFunc(out, func(a, b PendingExtension) int { return strings.Compare(a.UnitID, b.UnitID) })
	return out
}

// PendingExtensionNamed returns the pending request the index lists under name
// (PendingExtension.ListName), if the issue still has it. A quarantined issue has none a
// supervisor could decide.
func (s *Issue) PendingExtensionNamed(name string) (PendingExtension, bool) {
	unitID, ok := strings.CutPrefix(name, s.ID+"|")
	if !ok || s.Quarantine != nil {
		return PendingExtension{}, false
	}
	for _, p := range s.PendingExtensions() {
		if p.UnitID == unitID {
			return p, true
		}
	}
	return PendingExtension{}, false
}
