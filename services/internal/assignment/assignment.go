// Package assignment is the state machine of an assignment, one department's part of an issue:
// routing dispatches it, the department's duty officer reports in (acknowledges) and resolves it,
// and escalation records a breach of either of its two deadlines. It is the one home of those
// rules. Intake's view, the department's inbox and escalation's clocks fold assignment events
// through it, and the department's commands check through it, so that one stream gives every
// projection the same statuses and the same verdict on an event the machine forbids.
//
// Each service keeps its own model of an issue and stores it as it likes; this package owns the
// vocabulary (statuses, roles, deadline kinds), the transitions and their verdicts, the command
// checks, and what a deadline owes. It knows nothing of protobuf or Redis (assignmentpb reads the
// events).
//
// # The machine
//
// An assignment comes into being when routing dispatches its department, with both deadlines
// frozen then. From dispatched, a report-in makes it acknowledged; from acknowledged, a resolution
// makes it resolved. A breach may be recorded in any status, once per deadline, when the stream's
// own times show the deadline passed before the event that clears it (the report-in clears the
// report-in deadline, the resolution the resolve deadline). Nothing else is allowed:
//
//	event \ status   none (never summoned)   dispatched     acknowledged   resolved
//	dispatch         dispatched              unchanged      unchanged      unchanged
//	acknowledge      impossible              acknowledged   impossible     impossible
//	resolve          impossible              impossible     resolved       impossible
//	breach           impossible              if the times show it, in every status
//
// A second dispatch of a department changes nothing: the assignment keeps the deadlines frozen at
// its first (routing again after a return summons only the departments that are new).
//
// An event the machine forbids is impossible: the transitions return an error wrapping
// eventlog.ErrImpossible, so every projection quarantines the issue at that event and changes
// nothing. The rule for an event the department's commands never write (a resolution of a part
// that never reported in, a report-in or a resolution repeated, anything of a department never
// summoned) is the commands' own: such an event can only come from a writer that went around
// them, and a projection that folded it quietly would show a part resolved with no one ever having
// reported in, or a second officer's name over the first, that no command could have produced.
// The services used to disagree here (intake and escalation took a resolution straight from
// dispatched, and every fold ignored events of a department never summoned); the stricter rule is
// the one the commands already enforced, so that what a projection accepts is exactly what a
// command may write.
package assignment

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
	"github.com/whistle-dispatch/whistle/services/internal/sla"
)

// Status is where an assignment stands.
type Status string

// The statuses, in the order an assignment passes through them.
const (
	Dispatched   Status = "dispatched"
	Acknowledged Status = "acknowledged"
	Resolved     Status = "resolved"
	// Returned: the unit said the issue is not theirs (退单).
	Returned Status = "returned"
	// Withdrawn: the matter went elsewhere (dispatched from the desk, re-assigned, recategorised,
	// or a grid matter gone beyond the grid).
	Withdrawn Status = "withdrawn"
)

// Open reports whether the assignment still needs its unit: dispatched or acknowledged.
func (s Status) Open() bool { return s == Dispatched || s == Acknowledged }

// Ended reports whether the assignment ended without its unit resolving it: returned or
// withdrawn. A unit whose assignment ended may be summoned again, and gets a new one.
func (s Status) Ended() bool { return s == Returned || s == Withdrawn }

// Role is a department's part in a (joint) whistle.
type Role string

// The roles.
const (
	Lead      Role = "lead"
	Assisting Role = "assisting"
	// Desk is the dispatch desk's part: it holds the issue until a dispatcher routes it, against
	// a deadline of its own.
	Desk Role = "desk"
)

// DeadlineKind names one of an assignment's two clocks.
type DeadlineKind string

// The deadline kinds.
const (
	// ReportIn runs until the duty officer reports in.
	ReportIn DeadlineKind = "report-in"
	// Resolve runs until the department resolves its part.
	Resolve DeadlineKind = "resolve"
)

// DeadlineKinds lists every kind, in the order the clocks usually run out.
func DeadlineKinds() []DeadlineKind { return []DeadlineKind{ReportIn, Resolve} }

// Valid reports whether k is one of the kinds.
func (k DeadlineKind) Valid() bool { return k == ReportIn || k == Resolve }

// ClearedBy is the status whose event clears the clock: the report-in clears report-in, the
// resolution clears resolve.
func (k DeadlineKind) ClearedBy() Status {
	if k == ReportIn {
		return Acknowledged
	}
	return Resolved
}

// Assignment is one department's part of an issue. Its times are the times the stream stored the
// events, so a replay rebuilds it exactly. The JSON names are the ones intake and the department
// stored their assignments under before this package held them; keep them.
type Assignment struct {
	DepartmentID string `json:"department"`
	// UnitID is the unit of the department that was summoned; empty in assignments dispatched
	// before departments had units, whose one unit has the department's id (see Unit).
	UnitID       string    `json:"unit,omitempty"`
	Role         Role      `json:"role"`
	Status       Status    `json:"status"`
	DispatchedAt time.Time `json:"dispatched_at"`
	// ReportInBy and ResolveBy are the deadlines frozen at dispatch; zero means the clock does not run.
	ReportInBy     time.Time `json:"report_in_by,omitzero"`
	ResolveBy      time.Time `json:"resolve_by,omitzero"`
	AcknowledgedAt time.Time `json:"acknowledged_at,omitzero"`
	AcknowledgedBy string    `json:"acknowledged_by,omitempty"`
	ResolvedAt     time.Time `json:"resolved_at,omitzero"`
	ResolvedBy     string    `json:"resolved_by,omitempty"`
	Note           string    `json:"note,omitempty"`
	// Breached lists the deadlines breached, in the order their breaches were recorded.
	Breached []DeadlineKind `json:"breached,omitempty"`
	// EndedAt, EndedBy and EndReason say when (as the stream stored it), by whom and why the
	// assignment was returned or withdrawn.
	EndedAt   time.Time `json:"ended_at,omitzero"`
	EndedBy   string    `json:"ended_by,omitempty"`
	EndReason string    `json:"end_reason,omitempty"`
	// Photos are what the unit resolved it with.
	Photos []evidence.Photo `json:"photos,omitempty"`
	// Policy is the SLA policy frozen at the first dispatch: a reopened part's clocks run its
	// limits again from the reopening. Zero in assignments dispatched before events carried it.
	Policy sla.Policy `json:"policy,omitzero"`
	// OfficerID is the person of the unit who holds the part: the one it was pushed to, or the
	// colleague it was handed over to; empty for a unit without a roster.
	OfficerID string `json:"officer,omitempty"`
	// Extension is the unit's request for a later deadline that nobody has decided yet.
	Extension *Extension `json:"extension,omitempty"`
	// Reopened counts the times the part was reopened after it resolved.
	Reopened int `json:"reopened,omitempty"`
	// EscalationLevel is the highest level of an escalation chain of this round that told
	// somebody; 0 before any.
	EscalationLevel int `json:"escalation_level,omitempty"`
	// Decision is a supervisor's latest answer to an extension the unit asked for (see
	// DecideExtension); nil before the first.
	Decision *Decision `json:"extension_decided,omitempty"`
	// Urges counts the supervisors' formal urges (督办) on the part, in every round.
	Urges int `json:"urges,omitempty"`
}

// Extension is a unit's request for a later deadline, as the stream stored it.
type Extension struct {
	Kind     DeadlineKind `json:"kind"`
	Proposed time.Time    `json:"proposed"`
	Reason   string       `json:"reason"`
	By       string       `json:"by"`
	At       time.Time    `json:"at"`
}

// Unit is the unit the assignment belongs to, and the key an issue's assignments are found by.
func (a *Assignment) Unit() string { return UnitOf(a.DepartmentID, a.UnitID) }

// UnitOf is the unit an event names: its unit, or for an event written before departments had
// units, the department's one unit, which has the department's id.
func UnitOf(departmentID, unitID string) string {
	if unitID == "" {
		return departmentID
	}
	return unitID
}

// Clone returns a copy of the assignment that shares nothing with it.
func (a Assignment) Clone() Assignment {
	a.Breached = slices.Clone(a.Breached)
	a.Photos = slices.Clone(a.Photos)
	a.Policy = a.Policy.Clone()
	a.Extension, a.Decision = a.Extension.Clone(), a.Decision.Clone()
	return a
}

// Clone returns a copy of the request, nil for none.
func (e *Extension) Clone() *Extension {
	if e == nil {
		return nil
	}
	c := *e
	return &c
}

// Dispatch is routing's summons of one department, with its deadlines and policy frozen.
type Dispatch struct {
	DepartmentID, UnitID  string
	Role                  Role
	ReportInBy, ResolveBy time.Time
	// Policy is the policy the deadlines were computed from.
	Policy sla.Policy
}

// Reopening is a failed verification or an unsatisfied rating as the stream stored it: the lead's
// resolved part runs again, with deadlines from the policy frozen at its first dispatch.
type Reopening struct {
	DepartmentID, UnitID  string
	At                    time.Time // when the stream stored it
	ReportInBy, ResolveBy time.Time
}

// Acknowledgement is a duty officer's report-in as the stream stored it.
type Acknowledgement struct {
	DepartmentID string
	UnitID       string
	At           time.Time // when the stream stored it
	By           string    // who reported in
}

// Resolution is a department's resolution of its part as the stream stored it.
type Resolution struct {
	DepartmentID string
	UnitID       string
	At           time.Time // when the stream stored it
	By, Note     string
	Photos       []evidence.Photo
}

// Ending is a return by the unit, or a withdrawal by routing or a dispatcher, as the stream stored
// it.
type Ending struct {
	DepartmentID, UnitID string
	At                   time.Time // when the stream stored it
	By, Reason           string
}

// Breach is escalation's record that a deadline passed, as the stream stored it.
type Breach struct {
	DepartmentID string
	UnitID       string
	Kind         DeadlineKind
	// Deadline is the deadline the breach names; it must be the one frozen at dispatch.
	Deadline time.Time
	At       time.Time // when the stream stored it
}

// Summon returns the assignments a routed event stored at at opens: one for each unit it names
// that has none yet (has reports which have), in the event's order. A unit summoned before keeps
// its assignment and the deadlines frozen at its first dispatch, unless that assignment ended
// (has must report false for those): summoned again after a return or a withdrawal, a unit gets a
// new assignment, which replaces the ended one. One named twice in an event is summoned by its
// first mention.
func Summon(ds []Dispatch, at time.Time, has func(unitID string) bool) []Assignment {
	var out []Assignment
	for _, d := range ds {
		unit := UnitOf(d.DepartmentID, d.UnitID)
		if has(unit) || slices.ContainsFunc(out, func(a Assignment) bool { return a.Unit() == unit }) {
			continue
		}
		out = append(out, Assignment{
			DepartmentID: d.DepartmentID, UnitID: d.UnitID, Role: d.Role, Status: Dispatched, DispatchedAt: at,
			ReportInBy: d.ReportInBy, ResolveBy: d.ResolveBy, Policy: d.Policy,
		})
	}
	return out
}

// Place applies a decision's summons, stored at at, to an issue's assignments, which find looks up
// by unit: a unit summoned again after its part ended gets a new assignment written over the ended
// one; a unit new to the issue gets one that Place returns, to be appended in order; a live one is
// left alone (Summon).
func Place(ds []Dispatch, at time.Time, find func(unitID string) *Assignment) []Assignment {
	live := func(unit string) bool { a := find(unit); return a != nil && !a.Status.Ended() }
	var added []Assignment
	for _, a := range Summon(ds, at, live) {
		if ended := find(a.Unit()); ended != nil {
			*ended = a
			continue
		}
		added = append(added, a)
	}
	return added
}

// Acknowledge applies a report-in to a, the assignment of e's department, or nil when the
// issue has none. Only a dispatched assignment may report in; anything else is impossible and
// changes nothing.
func (a *Assignment) Acknowledge(e Acknowledgement) error {
	switch {
	case a == nil:
		return notSummoned("a report-in", UnitOf(e.DepartmentID, e.UnitID))
	case a.Status == Acknowledged:
		return eventlog.Impossible("a second report-in for %s, which %s reported in for at %s", a.Unit(), a.AcknowledgedBy, stamp(a.AcknowledgedAt))
	case a.Status != Dispatched:
		return eventlog.Impossible("a report-in for %s, whose part is %s", a.Unit(), a.Status)
	}
	a.Status, a.AcknowledgedAt, a.AcknowledgedBy = Acknowledged, e.At, e.By
	return nil
}

// Resolve applies a resolution to a, the assignment of e's department, or nil when the
// issue has none. Only an acknowledged assignment may resolve: a part that never reported in
// cannot be resolved, as the department's commands refuse it; anything else is impossible and
// changes nothing.
func (a *Assignment) Resolve(e Resolution) error {
	switch {
	case a == nil:
		return notSummoned("a resolution", UnitOf(e.DepartmentID, e.UnitID))
	case a.Status == Dispatched:
		return eventlog.Impossible("a resolution of %s's part, which never reported in", a.Unit())
	case a.Status == Resolved:
		return eventlog.Impossible("a second resolution of %s's part, which %s resolved at %s", a.Unit(), a.ResolvedBy, stamp(a.ResolvedAt))
	}
	a.Status, a.ResolvedAt, a.ResolvedBy, a.Note, a.Photos = Resolved, e.At, e.By, e.Note, slices.Clone(e.Photos)
	return nil
}

// Return applies a unit's return of its assignment; only an open one may be returned, and the
// desk's part is never returned (a dispatcher routes it instead).
func (a *Assignment) Return(e Ending) error {
	switch {
	case a == nil:
		return notSummoned("a return", UnitOf(e.DepartmentID, e.UnitID))
	case a.Role == Desk:
		return eventlog.Impossible("a return of the desk's part, which only a dispatch ends")
	case !a.Status.Open():
		return eventlog.Impossible("a return of %s's part, which is %s", a.Unit(), a.Status)
	}
	a.Status, a.EndedAt, a.EndedBy, a.EndReason = Returned, e.At, e.By, e.Reason
	return nil
}

// Withdraw applies the end of an open assignment because the matter went elsewhere.
func (a *Assignment) Withdraw(e Ending) error {
	switch {
	case a == nil:
		return notSummoned("a withdrawal", UnitOf(e.DepartmentID, e.UnitID))
	case !a.Status.Open():
		return eventlog.Impossible("a withdrawal of %s's part, which is %s", a.Unit(), a.Status)
	}
	a.Status, a.EndedAt, a.EndedBy, a.EndReason = Withdrawn, e.At, e.By, e.Reason
	return nil
}

// Reopen applies a reopening: only a resolved part reopens. It is dispatched again at e.At with
// the new deadlines, keeps its role, policy, officer, latest extension decision and count of
// urges, and forgets its report-in, resolution, breaches and pending extension, which belong to
// the round that ended; the timeline keeps them.
func (a *Assignment) Reopen(e Reopening) error {
	switch {
	case a == nil:
		return notSummoned("a reopening", UnitOf(e.DepartmentID, e.UnitID))
	case a.Status != Resolved:
		return eventlog.Impossible("a reopening of %s's part, which is %s", a.Unit(), a.Status)
	}
	*a = Assignment{
		DepartmentID: a.DepartmentID, UnitID: a.UnitID, Role: a.Role, Status: Dispatched, DispatchedAt: e.At,
		ReportInBy: e.ReportInBy, ResolveBy: e.ResolveBy, Policy: a.Policy,
		OfficerID: a.OfficerID, Reopened: a.Reopened + 1, Decision: a.Decision, Urges: a.Urges,
	}
	return nil
}

// ReopenDeadlines are the deadlines a part reopened at at runs against: the policy frozen at its
// first dispatch, counted from at in its kind of time by cal. A part dispatched before events
// carried the policy runs the spans its first deadlines gave it.
func (a *Assignment) ReopenDeadlines(at time.Time, cal sla.Calendar) (reportInBy, resolveBy time.Time) {
	p := a.Policy
	if p.ReportIn == 0 && p.Resolve == 0 {
		p = sla.Policy{}
		if !a.ReportInBy.IsZero() {
			p.ReportIn = a.ReportInBy.Sub(a.DispatchedAt)
		}
		if !a.ResolveBy.IsZero() {
			p.Resolve = a.ResolveBy.Sub(a.DispatchedAt)
		}
	}
	return p.Deadlines(cal, at)
}

// Escalate records a step of the chain of a breached clock of the part, telling somebody at level
// (or nobody, when person is empty). Only a clock the part breached has a chain.
func (a *Assignment) Escalate(unitID string, k DeadlineKind, level int, person string) error {
	switch {
	case a == nil:
		return notSummoned("an escalation", unitID)
	case !slices.Contains(a.Breached, k):
		return eventlog.Impossible("an escalation of %s's %s deadline, which it has not breached", a.Unit(), k)
	}
	if person != "" {
		a.EscalationLevel = max(a.EscalationLevel, level)
	}
	return nil
}

// Remind checks a reminder of a clock of the part: only a clock that runs is reminded.
func (a *Assignment) Remind(unitID string, k DeadlineKind) error {
	if a == nil {
		return notSummoned("a reminder", unitID)
	}
	if _, runs := a.Due(k); !runs || slices.Contains(a.Breached, k) {
		return eventlog.Impossible("a reminder of %s's %s deadline, which no longer runs", a.Unit(), k)
	}
	return nil
}

// Push records the officer an open part was pushed or handed over to.
func (a *Assignment) Push(unitID, officer string) error {
	if a == nil {
		return notSummoned("a push", unitID)
	}
	a.OfficerID = officer
	return nil
}

// RequestExtension records a unit's request for a later deadline; only an open part asks.
func (a *Assignment) RequestExtension(unitID string, e Extension) error {
	switch {
	case a == nil:
		return notSummoned("an extension request", unitID)
	case !a.Status.Open():
		return eventlog.Impossible("an extension request of %s's part, which is %s", a.Unit(), a.Status)
	}
	a.Extension = &e
	return nil
}

// Breach applies a breach to a, the assignment of e's department, or nil when the issue
// has none. A breach is refused as impossible when the stream's own times contradict it, since the
// record would then say what did not happen: it names a clock the assignment does not run or
// another deadline than the one frozen, its deadline was breached before, it was stored before
// its deadline, or the clock was cleared at or before the deadline. A clearing event stored after
// the deadline leaves the breach owed, and it may be recorded after that event.
func (a *Assignment) Breach(e Breach) error {
	if a == nil {
		return notSummoned(fmt.Sprintf("a %s breach", e.Kind), UnitOf(e.DepartmentID, e.UnitID))
	}
	if !e.Kind.Valid() || a.Deadline(e.Kind).IsZero() {
		return eventlog.Impossible("a %q breach of %s, which runs no such clock", e.Kind, a.Unit())
	}
	deadline := a.Deadline(e.Kind)
	switch cleared, ok := a.Cleared(e.Kind); {
	case !deadline.Equal(e.Deadline):
		return eventlog.Impossible("a %s breach of %s names the deadline %s, but %s was frozen", e.Kind, a.Unit(), stamp(e.Deadline), stamp(deadline))
	case a.IsBreached(e.Kind):
		return eventlog.Impossible("%s's %s deadline was breached before", a.Unit(), e.Kind)
	case e.At.Before(deadline):
		return eventlog.Impossible("a %s breach of %s stored at %s, before its deadline %s", e.Kind, a.Unit(), stamp(e.At), stamp(deadline))
	case ok && !cleared.After(deadline):
		return eventlog.Impossible("a %s breach of %s, whose deadline was cleared in time at %s", e.Kind, a.Unit(), stamp(cleared))
	}
	a.Breached = append(a.Breached, e.Kind)
	return nil
}

// notSummoned is the verdict on an event of a department the issue never summoned: no event of
// an assignment can come before its dispatch.
func notSummoned(what, unitID string) error {
	return eventlog.Impossible("%s of %s, which was never summoned", what, unitID)
}

// Deadline is the clock's deadline, frozen at dispatch; zero means the clock does not run.
func (a *Assignment) Deadline(k DeadlineKind) time.Time {
	switch k {
	case ReportIn:
		return a.ReportInBy
	case Resolve:
		return a.ResolveBy
	}
	return time.Time{}
}

// Cleared returns when the stream stored the event that cleared the clock, and false while the
// clock runs. A part that resolved without reporting in (which only a document folded before this
// machine refused it can hold) counts its resolution as its report-in, as escalation did then.
func (a *Assignment) Cleared(k DeadlineKind) (time.Time, bool) {
	switch {
	case k == ReportIn && a.Status == Acknowledged, k == ReportIn && !a.Status.Open() && !a.AcknowledgedAt.IsZero():
		return a.AcknowledgedAt, true
	case k.Valid() && a.Status == Resolved:
		return a.ResolvedAt, true
	case k.Valid() && a.Status.Ended(): // a return or a withdrawal stops every clock still running
		return a.EndedAt, true
	}
	return time.Time{}, false
}

// IsBreached reports whether the clock's breach was recorded.
func (a *Assignment) IsBreached(k DeadlineKind) bool { return slices.Contains(a.Breached, k) }

// DueNow is when a breach owed whatever any clock says comes due: the zero unix time.
var DueNow = time.UnixMilli(0).UTC()

// Due returns when a breach of the clock comes due, and false when none is or ever will be owed:
// the clock does not run, was breached, or was cleared in time. A running clock comes due at its
// deadline; one whose clearing event was stored after the deadline owes its breach now (DueNow).
func (a *Assignment) Due(k DeadlineKind) (time.Time, bool) {
	deadline := a.Deadline(k)
	if deadline.IsZero() || a.IsBreached(k) {
		return time.Time{}, false
	}
	switch cleared, ok := a.Cleared(k); {
	case !ok:
		return deadline, true
	case cleared.After(deadline):
		return DueNow, true
	}
	return time.Time{}, false
}

// Owes decides, on the stream's clock, whether a breach of the clock is owed: its clearing event
// was stored after the deadline, or none was and the stream's clock, streamNow, has reached the
// deadline (a breach appended from then on is stored at or after it). For a clock that still runs
// and whose deadline the stream's clock has not reached, it returns how long until it does.
func (a *Assignment) Owes(k DeadlineKind, streamNow time.Time) (owed bool, wait time.Duration) {
	if _, ok := a.Due(k); !ok {
		return false, 0
	}
	if _, cleared := a.Cleared(k); cleared {
		return true, 0 // cleared after the deadline: owed whatever any clock says
	}
	if deadline := a.Deadline(k); streamNow.Before(deadline) {
		return false, deadline.Sub(streamNow)
	}
	return true, 0
}

// TransitionError is a command the assignment's status does not allow. Its reason reads as the
// status message.
type TransitionError struct{ Reason string }

// Error is the reason.
func (e *TransitionError) Error() string { return e.Reason }

// ErrNotSummoned means a command named a unit the issue never summoned.
var ErrNotSummoned = errors.New("the unit was never summoned")

// CheckAcknowledge says whether officer by may report in for the assignment now, which is when
// the report-in it would write is a transition the machine allows: done is true when the same
// officer already did, so a retry has nothing to do. A report-in by another officer, or after the
// part was resolved, is refused.
func (a *Assignment) CheckAcknowledge(by string) (done bool, err error) {
	switch {
	case a == nil:
		return false, ErrNotSummoned
	case a.Status == Resolved:
		return false, &TransitionError{fmt.Sprintf("%s already resolved its part", a.Unit())}
	case a.Status.Ended():
		return false, &TransitionError{fmt.Sprintf("%s's part is %s, at %s", a.Unit(), a.Status, a.ended())}
	case a.Status == Acknowledged && a.AcknowledgedBy != by:
		return false, &TransitionError{fmt.Sprintf("%s already reported in for %s", a.AcknowledgedBy, a.Unit())}
	}
	return a.Status == Acknowledged, nil
}

// CheckReturn says whether officer by may return the assignment with reason now: done is true
// when the same officer already did with the same reason, so a retry changes nothing.
func (a *Assignment) CheckReturn(by, reason string) (done bool, err error) {
	switch {
	case a == nil:
		return false, ErrNotSummoned
	case a.Role == Desk:
		return false, &TransitionError{"the dispatch desk does not return an issue: dispatch it"}
	case a.Status == Returned && a.EndedBy == by && a.EndReason == reason:
		return true, nil
	case !a.Status.Open():
		return false, &TransitionError{fmt.Sprintf("%s's part is %s, at %s", a.Unit(), a.Status, a.ended())}
	}
	return false, nil
}

// MaxExtension bounds how far past the current deadline a unit may propose a new one.
const MaxExtension = 30 * 24 * time.Hour

// CheckExtension says whether officer by may ask, at now, for the clock's deadline to move to
// proposed: only while the part is open, the clock runs, its deadline has not passed, and no
// other request waits; the same request again is done.
func (a *Assignment) CheckExtension(k DeadlineKind, proposed, now time.Time, by string) (done bool, err error) {
	if a == nil {
		return false, ErrNotSummoned
	}
	deadline := a.Deadline(k)
	_, cleared := a.Cleared(k)
	switch {
	case a.Extension != nil && a.Extension.Kind == k && a.Extension.Proposed.Equal(proposed) && a.Extension.By == by:
		return true, nil
	case !a.Status.Open():
		return false, &TransitionError{fmt.Sprintf("%s's part is %s", a.Unit(), a.Status)}
	case deadline.IsZero() || cleared:
		return false, &TransitionError{fmt.Sprintf("%s's %s clock does not run", a.Unit(), k)}
	case a.Extension != nil:
		return false, &TransitionError{fmt.Sprintf("%s already asked, at %s, to move the %s deadline to %s; a supervisor has not decided",
			a.Extension.By, stamp(a.Extension.At), a.Extension.Kind, stamp(a.Extension.Proposed))}
	case !now.Before(deadline):
		return false, &TransitionError{"too late: the " + string(k) + " deadline passed at " + stamp(deadline)}
	case !proposed.After(deadline):
		return false, &InvalidError{Field: "proposed", Reason: fmt.Sprintf("must be after the current deadline %s", stamp(deadline))}
	case proposed.Sub(deadline) > MaxExtension:
		return false, &InvalidError{Field: "proposed", Reason: fmt.Sprintf("must be at most %s after the current deadline %s", MaxExtension, stamp(deadline))}
	}
	return false, nil
}

// CheckOpen says whether the part is open for an officer's hand-over or note.
func (a *Assignment) CheckOpen() error {
	switch {
	case a == nil:
		return ErrNotSummoned
	case !a.Status.Open():
		return &TransitionError{fmt.Sprintf("%s's part is %s", a.Unit(), a.Status)}
	}
	return nil
}

// InvalidError is a request field the machine refuses.
type InvalidError struct{ Field, Reason string }

// Error names the field.
func (e *InvalidError) Error() string { return e.Field + ": " + e.Reason }

// ended says when and by whom the part reached its final status, for a refusal's reason.
func (a *Assignment) ended() string {
	if a.Status == Resolved {
		return a.ResolvedAt.UTC().Format(time.RFC3339) + " by " + a.ResolvedBy
	}
	return a.EndedAt.UTC().Format(time.RFC3339) + " by " + a.EndedBy
}

// CheckResolve says whether officer by may resolve the assignment with note now, which is when
// the resolution it would write is a transition the machine allows: done is true when the same
// officer already did with the same note, so a retry changes nothing. A part that has not reported
// in cannot resolve. A second resolution that differs (another officer, another note) is refused
// naming when and by whom the part was resolved, rather than answered as if it had been recorded:
// the note a department resolved with is what the record keeps.
func (a *Assignment) CheckResolve(by, note string) (done bool, err error) {
	switch {
	case a == nil:
		return false, ErrNotSummoned
	case a.Status == Dispatched:
		return false, &TransitionError{"report in before resolving"}
	case a.Status.Ended():
		return false, &TransitionError{fmt.Sprintf("%s's part is %s, at %s", a.Unit(), a.Status, a.ended())}
	case a.Status == Resolved && (a.ResolvedBy != by || a.Note != note):
		return false, &TransitionError{fmt.Sprintf("%s's part is already resolved, at %s by %s with another note; a resolution is not changed",
			a.Unit(), a.ResolvedAt.UTC().Format(time.RFC3339), a.ResolvedBy)}
	}
	return a.Status == Resolved, nil
}

// stamp writes a time for a verdict's reason.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
