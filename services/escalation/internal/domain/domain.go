// Package domain is what the escalation service knows about an issue: where it sits, the deadlines
// frozen at dispatch for each summoned department, which of them were cleared and which were
// breached. Which events are allowed, which deadlines are still open and whether one is due to
// breach are the assignment machine's rules (services/internal/assignment); this package keeps
// escalation's record of them: where the stream stored each clearing event, the breaches as the
// breaches view shows them, and the timers.
package domain

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/quarantine"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/scorecard"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
	"github.com/whistle-dispatch/whistle/services/internal/sla"
)

// Kind names one clock of an assignment: the assignment machine's deadline kind, under the name
// escalation's timers, breaches and store use.
type Kind = assignment.DeadlineKind

// The clocks every assignment carries.
const (
	// ReportIn runs until the duty officer reports in.
	ReportIn = assignment.ReportIn
	// Resolve runs until the department resolves its part.
	Resolve = assignment.Resolve
)

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
	// Calendar is the working calendar its clocks count by where a policy counts working time;
	// the store sets it, and nil counts calendar time.
	Calendar sla.Calendar `json:"-"`
	// Assignments are keyed by unit (assignment.UnitOf: a department's id for assignments
	// dispatched before departments had units).
	Assignments map[string]*Assignment `json:"assignments,omitempty"`
	// Scorecard is what the scorecards count of the issue's parts (package scorecard).
	Scorecard scorecard.Issue `json:"scorecard,omitzero"`
	// RequestKeys are the idempotency keys of the supervisors' commands recorded (urges and
	// extension decisions), each with its event's sequence, so that a retry answers what was done
	// instead of doing it again. Kept as urge_keys, their name while only urges carried a key.
	RequestKeys map[string]uint64 `json:"urge_keys,omitempty"`
	// RequestCommands names the command each request key was recorded for, so that a key reused
	// for another command is refused instead of answered with the wrong event.
	RequestCommands map[string]RequestCommand `json:"request_commands,omitempty"`
}

// Position returns the issue's place in the stream, for the projection store.
func (s *Issue) Position() (*uint64, **quarantine.Mark) { return &s.LastSeq, &s.Quarantine }

// Clone returns a copy of the issue that shares nothing with it but its calendar, which nothing
// changes: what the projection store hands out of the state it keeps in memory, cheaper than
// decoding its document again (the timer loop reads the state of every issue it fires).
func (s *Issue) Clone() *Issue {
	c := *s
	c.Quarantine = s.Quarantine.Clone()
	if s.Assignments != nil {
		c.Assignments = make(map[string]*Assignment, len(s.Assignments))
		for unit, a := range s.Assignments {
			c.Assignments[unit] = a.clone()
		}
	}
	c.Scorecard = s.Scorecard.Clone()
	c.RequestKeys, c.RequestCommands = maps.Clone(s.RequestKeys), maps.Clone(s.RequestCommands)
	return &c
}

// Assignment is one unit's clocks on the issue, as escalation stores them. Its rules are the
// assignment machine's: Machine returns the assignment as the machine sees it.
type Assignment struct {
	// DepartmentID is the unit's department; empty where it is the unit's own id.
	DepartmentID string `json:"department,omitempty"`
	// ReportInBy and ResolveBy are the deadlines frozen at dispatch; zero means none.
	ReportInBy time.Time `json:"report_in_by"`
	ResolveBy  time.Time `json:"resolve_by"`
	// Acknowledged and Resolved are the events that cleared the clocks, as the stream stored them;
	// Ended is the return or withdrawal that stopped every clock still running.
	Acknowledged *Stored `json:"acknowledged,omitempty"`
	Resolved     *Stored `json:"resolved,omitempty"`
	Ended        *Stored `json:"ended,omitempty"`
	// Breaches holds the breach recorded for each kind that was breached.
	Breaches map[Kind]Breach `json:"breaches,omitempty"`
	// Round counts the reopenings of the part: each runs its clocks again. Earlier holds the
	// breaches of the rounds before, which the breaches view keeps.
	Round   int      `json:"round,omitempty"`
	Earlier []Breach `json:"earlier,omitempty"`
	// Policy is the SLA policy frozen at dispatch, whose reminders and chain escalation runs.
	Policy sla.Policy `json:"policy,omitzero"`
	// DispatchedAt is when the stream stored the dispatch, or the reopening, that started the
	// round's clocks: reminders count the shares of a limit from it.
	DispatchedAt time.Time `json:"dispatched_at,omitzero"`
	// OfficerID is the officer who holds the part, whom a reminder and a chain's duty-officer
	// level tell.
	OfficerID string `json:"officer,omitempty"`
	// Reminded counts, per clock, the policy's reminders passed: recorded, or passed over for a
	// later one.
	Reminded map[Kind]int `json:"reminded,omitempty"`
	// Chain is, per breached clock, the last step of its chain that was recorded.
	Chain map[Kind]ChainStep `json:"chain,omitempty"`
	// Supervision is what supervisors deal with on the part (see supervision.go).
	Supervision
}

// clone is a copy of the assignment that shares nothing with it (nil stays nil).
func (a *Assignment) clone() *Assignment {
	if a == nil {
		return nil
	}
	c := *a
	c.Acknowledged, c.Resolved, c.Ended = a.Acknowledged.clone(), a.Resolved.clone(), a.Ended.clone()
	c.Breaches = maps.Clone(a.Breaches) // a Breach holds no references
	c.Earlier = slices.Clone(a.Earlier)
	c.Policy = a.Policy.Clone()
	c.Reminded = maps.Clone(a.Reminded)
	c.Chain = maps.Clone(a.Chain)
	c.Supervision = a.Supervision.clone()
	return &c
}

// Machine returns the unit's assignment as the assignment machine sees it, or nil when a is nil
// (the unit was never summoned). Changing what it returns changes nothing here.
func (a *Assignment) Machine(unitID string) *assignment.Assignment {
	if a == nil {
		return nil
	}
	m := a.state(unitID)
	return &m
}

// state is Machine by value, for a's reads (its timers, what it owes), which then build it on the
// stack: each event's fold reads it several times, and a struct of half a kilobyte on the heap
// each time was a tenth of what a storm of breaches allocated in the fold.
func (a *Assignment) state(unitID string) assignment.Assignment {
	m := assignment.Assignment{DepartmentID: a.Department(unitID), UnitID: unitID, Status: assignment.Dispatched, ReportInBy: a.ReportInBy, ResolveBy: a.ResolveBy}
	a.Supervision.onto(&m)
	if a.Acknowledged != nil {
		m.Status, m.AcknowledgedAt = assignment.Acknowledged, a.Acknowledged.At
	}
	if a.Resolved != nil {
		m.Status, m.ResolvedAt = assignment.Resolved, a.Resolved.At
	}
	if a.Ended != nil {
		m.Status, m.EndedAt = assignment.Withdrawn, a.Ended.At // returned or withdrawn: the clocks stop alike
	}
	for _, k := range assignment.DeadlineKinds() {
		if _, ok := a.Breaches[k]; ok {
			m.Breached = append(m.Breached, k)
		}
	}
	return m
}

// Department is the department of the unit the assignment is keyed by.
func (a *Assignment) Department(unitID string) string {
	if a.DepartmentID == "" {
		return unitID
	}
	return a.DepartmentID
}

// clearing is where the stream stored the event that cleared the clock, nil while it runs.
func (a *Assignment) clearing(k Kind) *Stored {
	if k == ReportIn && a.Acknowledged != nil {
		return a.Acknowledged
	}
	if a.Ended != nil {
		return a.Ended
	}
	// The resolution clears resolve, and report-in too on a part that resolved without reporting
	// in, which only a state folded before the machine refused that can hold.
	return a.Resolved
}

// Stored is where and when the stream stored an event.
type Stored struct {
	Seq uint64    `json:"seq"`
	At  time.Time `json:"at"`
}

// clone is a copy of where an event was stored (nil stays nil).
func (st *Stored) clone() *Stored {
	if st == nil {
		return nil
	}
	c := *st
	return &c
}

// Breach is a deadline that passed before the event that clears it, as recorded in the log.
type Breach struct {
	IssueID      string    `json:"issue_id"`
	DepartmentID string    `json:"department_id"`
	UnitID       string    `json:"unit_id,omitempty"`
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
	// Round is the round of the part it breached: 0 before any reopening.
	Round int `json:"round,omitempty"`
	// Level is the highest level of its chain that told somebody; 0 before the first.
	Level int `json:"level,omitempty"`
	// LevelSeq is the sequence of the chain step that reached Level, which the breach feeds
	// announce like the breach, so that a live watch sees the level change; 0 before the first.
	LevelSeq uint64 `json:"level_seq,omitempty"`
}

// ListName is the breach's name in the breaches view: its clock's name, with the round after a
// reopening, so that a reopened part's breaches stand beside its earlier ones.
func (b Breach) ListName() string {
	name := Name(b.IssueID, b.UnitID, b.Kind)
	if b.Round > 0 {
		name += "|" + strconv.Itoa(b.Round)
	}
	return name
}

// Timer is one breach that is or may become owed: a clock that is neither cleared nor breached,
// due at its deadline, or one whose clearing event was stored after its deadline, due at once
// (assignment.DueNow).
type Timer struct {
	IssueID string
	UnitID  string
	Kind    Kind
	// Step is what the timer fires for its clock: the breach, a reminder or a chain step.
	Step Step
	// At is when the timer comes due: the deadline, or assignment.DueNow for a breach owed now.
	At time.Time
}

// SameClock reports whether u is the same step of the same clock as t (they have one Name), due at
// whatever time.
func (t Timer) SameClock(u Timer) bool {
	return t.IssueID == u.IssueID && t.UnitID == u.UnitID && t.Kind == u.Kind && t.Step == u.Step
}

// Name is the timer's stable name: "<issue>|<unit>|<kind>" for a breach, also the name of the
// breach, and "<issue>|<unit>|<kind>|<step>" for a reminder or a chain step.
func (t Timer) Name() string {
	if t.Step == BreachStep {
		return Name(t.IssueID, t.UnitID, t.Kind)
	}
	return Name(t.IssueID, t.UnitID, t.Kind) + "|" + string(t.Step)
}

// Name is the stable name of one clock of one assignment.
func Name(issueID, unitID string, kind Kind) string {
	return issueID + "|" + unitID + "|" + string(kind)
}

// ParseName reads back a timer's Name.
func ParseName(name string) (Timer, error) {
	parts := strings.Split(name, "|")
	if len(parts) < 3 || len(parts) > 4 || parts[0] == "" || parts[1] == "" || !Kind(parts[2]).Valid() {
		return Timer{}, fmt.Errorf("%w: %q", ErrBadTimer, name)
	}
	t := Timer{IssueID: parts[0], UnitID: parts[1], Kind: Kind(parts[2])}
	if len(parts) == 4 {
		if t.Step = Step(parts[3]); t.Step != RemindStep && t.Step != EscalateStep {
			return Timer{}, fmt.Errorf("%w: %q", ErrBadTimer, name)
		}
	}
	return t, nil
}

// Event is one fact from the log that the escalation state depends on, with where and when the
// stream stored it.
type Event interface{ isEvent() }

// Raised places the issue.
type Raised struct{ GridID, CommunityID, StreetID, CategoryID string }

// Routed summons units (the desk's, for a needs-dispatch event) and ends the assignments of
// Withdrawn, by unit.
type Routed struct {
	Dispatches []assignment.Dispatch
	Withdrawn  []string
}

// Ended stops a unit's clocks: it returned its assignment.
type Ended struct{ DepartmentID, UnitID string }

// Acknowledged stops a unit's report-in clock.
type Acknowledged struct{ DepartmentID, UnitID string }

// Resolved stops both of a unit's clocks.
type Resolved struct{ DepartmentID, UnitID string }

// Breached records that a deadline passed.
type Breached struct {
	DepartmentID, UnitID string
	Kind                 Kind
	Deadline             time.Time
}

// unit is the key of the assignment an event of a department and unit names.
func unit(departmentID, unitID string) string { return assignment.UnitOf(departmentID, unitID) }

// Reopened runs a resolved unit's clocks again: a failed verification or an unsatisfied rating.
type Reopened struct {
	DepartmentID, UnitID  string
	ReportInBy, ResolveBy time.Time
}

// Other is any event escalation does not act on; it only moves the sequence.
type Other struct{}

func (Raised) isEvent()       {}
func (Routed) isEvent()       {}
func (Ended) isEvent()        {}
func (Acknowledged) isEvent() {}
func (Resolved) isEvent()     {}
func (Breached) isEvent()     {}
func (Other) isEvent()        {}
func (Reopened) isEvent()     {}

// Apply folds the event, stored at at as sequence seq, into the state. The caller checks the
// order; Apply only changes the state. The assignment machine judges every assignment event: one
// it forbids (of a department never summoned, a report-in or a resolution out of turn, a breach
// the stream's own times contradict) returns an error wrapping eventlog.ErrImpossible and changes
// nothing, since the record would otherwise say what did not happen.
func (s *Issue) Apply(seq uint64, at time.Time, correlationID string, e Event) error {
	if _, raise := e.(Raised); raise == s.Raised {
		if raise {
			return eventlog.Impossible("the issue was raised before")
		}
		return eventlog.Impossible("an event before the issue was raised")
	}
	if err := s.judge(at, e); err != nil {
		return err
	}
	if err := s.judgeStep(at, e, s.Calendar); err != nil {
		return err
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
		for _, u := range e.Withdrawn {
			s.Assignments[u].Ended = &Stored{Seq: seq, At: at}
		}
		live := func(u string) bool { a := s.Assignments[u]; return a != nil && a.Ended == nil }
		for _, a := range assignment.Summon(e.Dispatches, at, live) {
			na := &Assignment{ReportInBy: a.ReportInBy, ResolveBy: a.ResolveBy, Policy: a.Policy, DispatchedAt: at, Supervision: Supervision{Role: a.Role}}
			if a.Unit() != a.DepartmentID {
				na.DepartmentID = a.DepartmentID
			}
			if ended := s.Assignments[a.Unit()]; ended != nil {
				na.Earlier = ended.allBreaches() // the breaches view lists them from here
			}
			s.Assignments[a.Unit()] = na
		}
	case Ended:
		s.Assignments[unit(e.DepartmentID, e.UnitID)].Ended = &Stored{Seq: seq, At: at}
	case Acknowledged:
		s.Assignments[unit(e.DepartmentID, e.UnitID)].Acknowledged = &Stored{Seq: seq, At: at}
	case Resolved:
		s.Assignments[unit(e.DepartmentID, e.UnitID)].Resolved = &Stored{Seq: seq, At: at}
	case Breached:
		u := unit(e.DepartmentID, e.UnitID)
		a := s.Assignments[u]
		if a.Breaches == nil {
			a.Breaches = map[Kind]Breach{}
		}
		b := Breach{
			IssueID: s.ID, DepartmentID: a.Department(u), UnitID: u, Kind: e.Kind, Deadline: e.Deadline, BreachedAt: at,
			GridID: s.GridID, StreetID: s.StreetID, CategoryID: s.CategoryID, Seq: seq, Round: a.Round,
		}
		if c := a.clearing(e.Kind); c != nil {
			b.ClearedAt = c.At
		}
		a.Breaches[e.Kind] = b
	case Reopened:
		a := s.Assignments[unit(e.DepartmentID, e.UnitID)]
		*a = Assignment{DepartmentID: a.DepartmentID, ReportInBy: e.ReportInBy, ResolveBy: e.ResolveBy, Round: a.Round + 1, Earlier: a.allBreaches(),
			Policy: a.Policy, DispatchedAt: at, OfficerID: a.OfficerID, Supervision: a.Supervision.reopened()}
	case supervised:
		s.applySupervision(seq, at, e)
	default:
		s.applyStep(seq, e, s.Calendar)
	}
	return nil
}

// judge asks the assignment machine whether an assignment event stored at at may apply; it
// changes nothing.
func (s *Issue) judge(at time.Time, e Event) error {
	switch e := e.(type) {
	case Routed:
		for _, u := range e.Withdrawn {
			if err := s.machine(u).Withdraw(assignment.Ending{UnitID: u, At: at}); err != nil {
				return err
			}
		}
	case Ended:
		return s.machine(unit(e.DepartmentID, e.UnitID)).Return(assignment.Ending{DepartmentID: e.DepartmentID, UnitID: e.UnitID, At: at})
	case Acknowledged:
		return s.machine(unit(e.DepartmentID, e.UnitID)).Acknowledge(assignment.Acknowledgement{DepartmentID: e.DepartmentID, UnitID: e.UnitID, At: at})
	case Resolved:
		return s.machine(unit(e.DepartmentID, e.UnitID)).Resolve(assignment.Resolution{DepartmentID: e.DepartmentID, UnitID: e.UnitID, At: at})
	case Breached:
		return s.machine(unit(e.DepartmentID, e.UnitID)).Breach(assignment.Breach{DepartmentID: e.DepartmentID, UnitID: e.UnitID, Kind: e.Kind, Deadline: e.Deadline, At: at})
	case Reopened:
		return s.machine(unit(e.DepartmentID, e.UnitID)).Reopen(assignment.Reopening{DepartmentID: e.DepartmentID, UnitID: e.UnitID, At: at, ReportInBy: e.ReportInBy, ResolveBy: e.ResolveBy})
	case supervised:
		_, err := s.supervise(at, e)
		return err
	}
	return nil
}

// machine is the unit's assignment as the assignment machine sees it; nil when the unit was
// never summoned.
func (s *Issue) machine(unitID string) *assignment.Assignment {
	return s.Assignments[unitID].Machine(unitID)
}

// Timers returns the issue's timers: every breach not yet recorded that is owed or may become
// owed, the next reminder of every running clock and the next step of every running chain (whose
// times count by the issue's Calendar where the policy counts working time).
func (s *Issue) Timers() []Timer {
	var out []Timer
	for u, a := range s.Assignments {
		m := a.state(u)
		for _, k := range assignment.DeadlineKinds() {
			if at, ok := m.Due(k); ok {
				out = append(out, Timer{IssueID: s.ID, UnitID: u, Kind: k, At: at})
			}
		}
	}
	return append(out, s.stepTimers(s.Calendar)...)
}

// Owed is a breach the record owes.
type Owed struct {
	Deadline time.Time
	// Cleared is the clearing event stored after the deadline, when the breach is owed for that.
	Cleared *Stored
}

// Owes decides, on the stream's clock, whether a breach of the unit's clock is owed (see
// assignment.Assignment.Owes): its clearing event was stored after the deadline, or none was and
// the stream's clock, streamNow, has reached the deadline. A clock that still runs and whose
// deadline the stream's clock has not reached returns how long until it does.
func (s *Issue) Owes(unitID string, kind Kind, streamNow time.Time) (owed Owed, ok bool, wait time.Duration) {
	a := s.Assignments[unitID]
	if a == nil {
		return Owed{}, false, 0
	}
	m := a.state(unitID)
	if ok, wait = m.Owes(kind, streamNow); !ok {
		return Owed{}, false, wait
	}
	owed = Owed{Deadline: m.Deadline(kind)}
	if _, cleared := m.Cleared(kind); cleared {
		owed.Cleared = s.Assignments[unitID].clearing(kind)
	}
	return owed, true, 0
}

// allBreaches is every breach the part holds: those of earlier rounds and summons, then the
// round's own, in the order of their clocks.
func (a *Assignment) allBreaches() []Breach {
	out := slices.Clip(a.Earlier) // appending never writes into the part's own slice
	for _, k := range assignment.DeadlineKinds() {
		if b, ok := a.Breaches[k]; ok {
			out = append(out, b)
		}
	}
	return out
}

// BreachNamed returns the breach the breaches view lists under name (Breach.ListName): the
// document is where the view reads a breach's details, its level among them. Of two breaches
// with one name (a unit summoned again after its part ended breaches the same clock in its new
// part's first round), the later is the one listed.
func (s *Issue) BreachNamed(name string) (Breach, bool) {
	unitID, ok := strings.CutPrefix(name, s.ID+"|")
	if !ok {
		return Breach{}, false
	}
	unitID, _, _ = strings.Cut(unitID, "|")
	a := s.Assignments[unitID]
	if a == nil {
		return Breach{}, false
	}
	all := a.allBreaches()
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].ListName() == name {
			return all[i], true
		}
	}
	return Breach{}, false
}

// IssueOfListName is the issue a name of the breaches view belongs to.
func IssueOfListName(name string) string {
	id, _, _ := strings.Cut(name, "|")
	return id
}

// Breach returns the recorded breach of a unit's clock, if any.
func (s *Issue) Breach(unitID string, kind Kind) (Breach, bool) {
	a := s.Assignments[unitID]
	if a == nil {
		return Breach{}, false
	}
	b, ok := a.Breaches[kind]
	return b, ok
}
