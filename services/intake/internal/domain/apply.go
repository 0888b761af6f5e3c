package domain

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
)

// Meta is what every event brings besides its payload: its place in the stream, when it happened
// and who did it.
type Meta struct {
	Seq   uint64
	At    time.Time
	Actor string
}

// record adds the event's timeline entry and marks it applied. Every apply rule ends here, so the
// timeline holds exactly one entry per event.
func (is *Issue) record(m Meta, kind string, a *assignment.Assignment, summary string) {
	e := Entry{Seq: m.Seq, At: m.At, Kind: kind, Actor: m.Actor, Summary: summary}
	if a != nil {
		e.DepartmentID, e.UnitID = a.DepartmentID, a.UnitID
	}
	is.Timeline = append(is.Timeline, e)
	is.UpdatedAt = m.At
	is.LastSeq = m.Seq
}

// OnRaised applies the raise that creates the issue.
func (is *Issue) OnRaised(m Meta, r Raise) {
	is.RequestID, is.RaisedBy = r.RequestID, r.RaisedBy
	is.GridID, is.CommunityID, is.StreetID = r.GridID, r.CommunityID, r.StreetID
	is.CategoryID, is.Urgency, is.Text, is.Location, is.CompoundID = r.CategoryID, r.Urgency, r.Text, r.Location, r.CompoundID
	is.Status, is.RaisedAt, is.Photos = StatusRaised, m.At, slices.Clone(r.Photos)
	is.Channel, is.Contact, is.MediaURL = r.Channel, r.Contact, r.MediaURL
	is.NamedPhotos = append(is.NamedPhotos, evidence.IDs(r.Photos)...)
	is.record(m, "raised", nil, fmt.Sprintf("Raised in %s as %s (%s)", r.GridID, r.CategoryID, r.Urgency)+withPhotos(r.Photos))
}

// Route is a routing decision as the view applies it: the units summoned and the assignments
// the decision ends.
type Route struct {
	RuleID, RulesVersion, Explanation string
	Dispatches                        []assignment.Dispatch
	Withdrawn                         []assignment.Ending
}

// summon applies a decision's withdrawals, then its summons: each unit summoned gets an
// assignment with its deadlines. A unit already summoned keeps its assignment, so routing again
// after a return adds only the units that are new (assignment.Summon); a unit whose assignment
// ended gets a new one in its place.
func (is *Issue) summon(m Meta, r Route) error {
	for _, w := range r.Withdrawn {
		if err := is.Assignment(w.UnitID).Withdraw(w); err != nil {
			return err
		}
	}
	for _, a := range assignment.Place(r.Dispatches, m.At, is.Assignment) {
		is.Assignments = append(is.Assignments, &a)
	}
	if r.RulesVersion != "" {
		is.RulesVersion = r.RulesVersion
	}
	return nil
}

// OnRouted applies routing's decision, or a dispatcher's.
func (is *Issue) OnRouted(m Meta, r Route) error {
	if err := is.summon(m, r); err != nil {
		return err
	}
	names := make([]string, 0, len(r.Dispatches))
	for _, d := range r.Dispatches {
		names = append(names, fmt.Sprintf("%s (%s)", assignment.UnitOf(d.DepartmentID, d.UnitID), d.Role))
	}
	if r.RuleID != "" {
		is.RuleID = r.RuleID
	}
	is.Status = is.statusFromAssignments()
	var lead *assignment.Assignment
	if len(r.Dispatches) > 0 {
		lead = is.Assignment(assignment.UnitOf(r.Dispatches[0].DepartmentID, r.Dispatches[0].UnitID))
	}
	summary := "Routed"
	switch {
	case r.RuleID != "":
		summary += " by rule " + r.RuleID
	case m.Actor != "" && m.Actor != "system":
		summary += " by " + m.Actor
	}
	if len(names) > 0 {
		summary += " to " + strings.Join(names, ", ")
	}
	for _, w := range r.Withdrawn {
		summary += fmt.Sprintf("; %s withdrawn (%s)", w.UnitID, w.Reason)
	}
	is.record(m, "routed", lead, summary)
	return nil
}

// OnNeedsDispatch applies routing's report that the issue waits at the dispatch desk, whose
// assignment, with its own deadline, comes with it.
func (is *Issue) OnNeedsDispatch(m Meta, reason string, r Route) error {
	if err := is.summon(m, r); err != nil {
		return err
	}
	is.Status = StatusAwaitingDispatch
	var desk *assignment.Assignment
	if len(r.Dispatches) > 0 {
		desk = is.Assignment(assignment.UnitOf(r.Dispatches[0].DepartmentID, r.Dispatches[0].UnitID))
	}
	is.record(m, "needs-dispatch", desk, "Waiting for a dispatcher: "+reason)
	return nil
}

// OnReturned applies a unit's return of its assignment (退单); routing sends the issue on.
func (is *Issue) OnReturned(m Meta, e assignment.Ending) error {
	a := is.Assignment(assignment.UnitOf(e.DepartmentID, e.UnitID))
	if err := a.Return(e); err != nil {
		return err
	}
	is.Status = is.statusFromAssignments()
	is.record(m, "returned", a, a.Unit()+" returned it: "+firstLine(e.Reason))
	return nil
}

// OnRecategorised applies a dispatcher's change of the issue's category; routing routes it again.
func (is *Issue) OnRecategorised(m Meta, from, to, reason string) {
	is.CategoryID = to
	is.record(m, "recategorised", nil, fmt.Sprintf("Category changed from %s to %s: %s", from, to, firstLine(reason)))
}

// OnLinked applies routing's finding that the issue repeats an open case, which it joins.
func (is *Issue) OnLinked(m Meta, original string, meters float64) {
	is.LinkedTo, is.Status = original, StatusLinked
	is.record(m, "linked", nil, fmt.Sprintf("Joined case %s, %.0f m away, as a duplicate", original, meters))
}

// OnJoined applies a duplicate joining this case ("me too").
func (is *Issue) OnJoined(m Meta, duplicate string) {
	if !slices.Contains(is.Duplicates, duplicate) {
		is.Duplicates = append(is.Duplicates, duplicate)
	}
	is.record(m, "joined", nil, fmt.Sprintf("Case %s joined as a duplicate (%d in all)", duplicate, len(is.Duplicates)))
}

// OnUnlinked applies a dispatcher's unlinking of the issue from the case it had joined.
func (is *Issue) OnUnlinked(m Meta, original, reason string) {
	is.LinkedTo, is.Status = "", StatusRaised
	is.record(m, "unlinked", nil, fmt.Sprintf("Unlinked from case %s: %s", original, firstLine(reason)))
}

// OnLeft applies a duplicate's unlinking from this case.
func (is *Issue) OnLeft(m Meta, duplicate string) {
	is.Duplicates = slices.DeleteFunc(is.Duplicates, func(d string) bool { return d == duplicate })
	is.record(m, "left", nil, fmt.Sprintf("Case %s is no longer a duplicate of this one", duplicate))
}

// OnAcknowledged applies a duty officer's report-in for their unit. One the assignment machine
// forbids is impossible and changes nothing.
func (is *Issue) OnAcknowledged(m Meta, e assignment.Acknowledgement) error {
	a := is.Assignment(assignment.UnitOf(e.DepartmentID, e.UnitID))
	e.At, e.By = m.At, m.Actor
	if err := a.Acknowledge(e); err != nil {
		return err
	}
	is.Status = is.statusFromAssignments()
	is.record(m, "acknowledged", a, a.Unit()+" reported in")
	return nil
}

// OnResolved applies a unit's resolution of its part; the issue is resolved when every part is.
// One the assignment machine forbids is impossible and changes nothing.
func (is *Issue) OnResolved(m Meta, e assignment.Resolution) error {
	a := is.Assignment(assignment.UnitOf(e.DepartmentID, e.UnitID))
	e.At, e.By = m.At, m.Actor
	if err := a.Resolve(e); err != nil {
		return err
	}
	is.Status = is.statusFromAssignments()
	summary := a.Unit() + " resolved its part: " + firstLine(e.Note) + withPhotos(e.Photos)
	is.NamedPhotos = append(is.NamedPhotos, evidence.IDs(e.Photos)...)
	if is.Status == StatusResolved {
		is.ResolvedAt = m.At
		summary += "; every part is resolved: the grid's worker is to verify it"
	}
	is.record(m, "resolved", a, summary)
	return nil
}

// OnVerified applies the grid worker's check on site: a pass closes the issue; a failure reopens
// the lead's part (reopen), whose clocks start again.
func (is *Issue) OnVerified(m Meta, passed bool, reason string, reopen *assignment.Reopening) error {
	if is.Status != StatusResolved {
		return eventlog.Impossible("a verification of an issue that is %s", is.Status)
	}
	is.Verification = &Verification{Passed: passed, Reason: reason, By: m.Actor, At: m.At}
	if passed {
		is.Status, is.ClosedAt, is.ResolvedAt = StatusClosed, m.At, time.Time{}
		is.record(m, "verified", nil, "Verified on site and closed"+suffix(reason))
		return nil
	}
	a, err := is.reopen(m, reopen)
	if err != nil {
		return err
	}
	is.record(m, "verified", a, fmt.Sprintf("Failed on site: %s; %s's part reopened, to report in by %s and resolve by %s",
		firstLine(reason), a.Unit(), stampOrNone(a.ReportInBy), stampOrNone(a.ResolveBy)))
	return nil
}

// OnRated applies the raiser's rating, which may reopen the issue once.
func (is *Issue) OnRated(m Meta, score int, comment string, reopen *assignment.Reopening) error {
	if is.Status != StatusResolved && is.Status != StatusClosed {
		return eventlog.Impossible("a rating of an issue that is %s", is.Status)
	}
	is.Rating = &Rating{Score: score, Comment: comment, By: m.Actor, At: m.At, Reopened: reopen != nil}
	summary := fmt.Sprintf("Rated %d of 5", score) + suffix(comment)
	if reopen == nil {
		is.record(m, "rated", nil, summary)
		return nil
	}
	if is.RatingReopened {
		return eventlog.Impossible("a second reopening by a rating")
	}
	a, err := is.reopen(m, reopen)
	if err != nil {
		return err
	}
	is.RatingReopened = true
	is.record(m, "rated", a, summary+"; reopened: "+a.Unit()+"'s part runs again")
	return nil
}

// reopen runs the lead's resolved part again.
func (is *Issue) reopen(m Meta, r *assignment.Reopening) (*assignment.Assignment, error) {
	if r == nil {
		return nil, eventlog.Impossible("a failed verification that reopens nothing")
	}
	r.At = m.At
	a := is.Assignment(assignment.UnitOf(r.DepartmentID, r.UnitID))
	if err := a.Reopen(*r); err != nil {
		return nil, err
	}
	is.Reopened++
	is.ClosedAt, is.ResolvedAt = time.Time{}, time.Time{}
	is.Status = is.statusFromAssignments()
	return a, nil
}

// OnClosed applies the close of a resolved issue nobody verified in time.
func (is *Issue) OnClosed(m Meta, reason string, waited time.Duration) error {
	if is.Status != StatusResolved {
		return eventlog.Impossible("an unverified close of an issue that is %s", is.Status)
	}
	is.Status, is.ClosedAt, is.ResolvedAt = StatusClosed, m.At, time.Time{}
	is.record(m, "closed", nil, fmt.Sprintf("Closed unverified after %s: %s", waited.Round(time.Second), reason))
	return nil
}

// OnPushed applies the department's push of units to their officers.
func (is *Issue) OnPushed(m Meta, pushes map[string]string) error {
	var told []string
	for _, unit := range slices.Sorted(maps.Keys(pushes)) {
		if err := is.Assignment(unit).Push(unit, pushes[unit]); err != nil {
			return err
		}
		told = append(told, fmt.Sprintf("%s to %s", unit, pushes[unit]))
	}
	is.record(m, "pushed", nil, "Pushed "+strings.Join(told, ", "))
	return nil
}

// OnHandedOver applies an officer's hand-over of the unit's part to a colleague.
func (is *Issue) OnHandedOver(m Meta, unit, from, to, note string) error {
	a := is.Assignment(unit)
	if err := a.Push(unit, to); err != nil {
		return err
	}
	is.record(m, "handed-over", a, fmt.Sprintf("%s handed over from %s to %s", unit, orNobody(from), to)+suffix(note))
	return nil
}

// OnNoted applies an officer's progress note.
func (is *Issue) OnNoted(m Meta, unit, note string) error {
	a := is.Assignment(unit)
	if a == nil {
		return eventlog.Impossible("a note of %s, which was never summoned", unit)
	}
	is.record(m, "noted", a, unit+": "+firstLine(note))
	return nil
}

// OnExtensionRequested applies a unit's request for a later deadline.
func (is *Issue) OnExtensionRequested(m Meta, unit string, e assignment.Extension) error {
	a := is.Assignment(unit)
	if err := a.RequestExtension(unit, e); err != nil {
		return err
	}
	is.record(m, "extension-requested", a, fmt.Sprintf("%s asked to move its %s deadline of %s to %s: %s",
		unit, e.Kind, stampOrNone(a.Deadline(e.Kind)), stampOrNone(e.Proposed), firstLine(e.Reason)))
	return nil
}

// OnExtensionDecided applies a supervisor's decision on a unit's extension request: an approval
// stored before the deadline moves it; one stored after it moves nothing (see
// assignment.Assignment.DecideExtension).
func (is *Issue) OnExtensionDecided(m Meta, d assignment.Decision) error {
	a := is.Assignment(assignment.UnitOf(d.DepartmentID, d.UnitID))
	d.At, d.By = m.At, m.Actor
	if err := a.DecideExtension(d); err != nil {
		return err
	}
	var summary string
	switch dd := a.Decision; {
	case dd.Moved():
		summary = fmt.Sprintf("%s's %s deadline moved from %s to %s by %s", a.Unit(), d.Kind, stampOrNone(d.Deadline), stampOrNone(d.Granted), m.Actor) + suffix(d.Reason)
	case dd.Late:
		summary = fmt.Sprintf("%s's extension was approved by %s too late: stored after its %s deadline of %s had passed, which stands",
			a.Unit(), m.Actor, d.Kind, stampOrNone(d.Deadline))
	default:
		summary = fmt.Sprintf("%s's extension of its %s deadline was denied by %s", a.Unit(), d.Kind, m.Actor) + suffix(d.Reason)
	}
	is.record(m, "extension-decided", a, summary)
	return nil
}

// OnUrged applies a supervisor's urge (督办) of a unit's part.
func (is *Issue) OnUrged(m Meta, unit, note string) error {
	a := is.Assignment(unit)
	if err := a.Urge(unit); err != nil {
		return err
	}
	is.record(m, "urged", a, fmt.Sprintf("%s urged %s (%d in all)", m.Actor, unit, a.Urges)+suffix(note))
	return nil
}

// suffix appends a remark after a colon, when there is one.
func suffix(s string) string {
	if s = firstLine(s); s == "" {
		return ""
	}
	return ": " + s
}

// orNobody names an officer, or nobody.
func orNobody(id string) string {
	if id == "" {
		return "nobody"
	}
	return id
}

// stampOrNone writes a deadline for the timeline.
func stampOrNone(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.UTC().Format(time.RFC3339)
}

// OnBreached applies a deadline that passed before the event that clears it, stored as b.At.
// clearedAt, when set, is when the stream stored the event that cleared it late, after which the
// breach was recorded. A breach the assignment machine forbids (one the stream's times contradict)
// is impossible and changes nothing.
func (is *Issue) OnBreached(m Meta, b assignment.Breach, clearedAt time.Time) error {
	a := is.Assignment(assignment.UnitOf(b.DepartmentID, b.UnitID))
	if err := a.Breach(b); err != nil {
		return err
	}
	summary := fmt.Sprintf("%s missed its %s deadline of %s", a.Unit(), b.Kind, b.Deadline.UTC().Format(time.RFC3339))
	if !clearedAt.IsZero() {
		summary += fmt.Sprintf(", cleared %s after it; recorded once that was stored", clearedAt.Sub(b.Deadline).Round(time.Millisecond))
	}
	is.record(m, "breached", a, summary)
	return nil
}

// OnReminded applies escalation's reminder to a unit's officer that a deadline approaches.
func (is *Issue) OnReminded(m Meta, unit string, k assignment.DeadlineKind, percent int, person string) error {
	a := is.Assignment(unit)
	if err := a.Remind(unit, k); err != nil {
		return err
	}
	is.record(m, "reminded", a, fmt.Sprintf("%s reminded that %d%% of its %s time has passed (deadline %s)",
		orNobody(person), percent, k, stampOrNone(a.Deadline(k))))
	return nil
}

// OnEscalated applies a step of the escalation chain of a breached deadline.
func (is *Issue) OnEscalated(m Meta, unit string, k assignment.DeadlineKind, level, repeat int, target, person string, skipped []int) error {
	a := is.Assignment(unit)
	if err := a.Escalate(unit, k, level, person); err != nil {
		return err
	}
	summary := fmt.Sprintf("%s's missed %s deadline escalated to level %d (%s): %s told", unit, k, level, target, person)
	if repeat > 0 {
		summary += fmt.Sprintf(" again (%d)", repeat)
	}
	if person == "" {
		summary = fmt.Sprintf("%s's missed %s deadline: nobody left to tell at level %d and below; the chain ends", unit, k, level)
	}
	if len(skipped) > 0 {
		summary += fmt.Sprintf("; levels %v named nobody", skipped)
	}
	is.record(m, "escalated", a, summary)
	return nil
}

// OnOther applies an event whose payload the view does not show; it still takes its place in the
// timeline, so that the view's last sequence stays exact.
func (is *Issue) OnOther(m Meta, kind string) {
	is.record(m, kind, nil, "Recorded "+kind)
}

// statusFromAssignments is the issue's status once units were summoned: awaiting dispatch while
// the desk holds it; else, over the parts not returned or withdrawn, resolved when every one is,
// in progress once any reported in, dispatched before that. With no such part (every one was
// returned, and routing has yet to send it on) the status stays as it was.
func (is *Issue) statusFromAssignments() Status {
	live, resolved, started := 0, 0, false
	for _, a := range is.Assignments {
		switch {
		case a.Role == assignment.Desk && a.Status.Open():
			return StatusAwaitingDispatch
		case a.Role == assignment.Desk, a.Status.Ended():
			continue
		}
		live++
		switch a.Status {
		case assignment.Resolved:
			resolved++
			started = true
		case assignment.Acknowledged:
			started = true
		}
	}
	switch {
	case live == 0:
		return is.Status
	case resolved == live:
		return StatusResolved
	case started:
		return StatusInProgress
	default:
		return StatusDispatched
	}
}

// withPhotos says how many photos an event brought, for its timeline entry; nothing when none.
func withPhotos(ps []evidence.Photo) string {
	switch len(ps) {
	case 0:
		return ""
	case 1:
		return " (1 photo)"
	}
	return fmt.Sprintf(" (%d photos)", len(ps))
}

// HasPhoto reports whether an event of the issue named the photo: its raise, or a resolution of
// any of its parts, one since reopened included.
func (is *Issue) HasPhoto(id string) bool { return slices.Contains(is.NamedPhotos, id) }

// firstLine shortens a note to its first line for the timeline.
func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
