package assignment

import (
	"fmt"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
)

// Supervision (督办) is a supervisor's part in an assignment: deciding the extensions its unit
// asks for, and urging it. Both are events of escalation's, and every projection folds them
// through the transitions below, so that each moves the same deadline and counts the same urges.
//
// A late decision. An approval moves a deadline only while that deadline has not passed: the command refuses one
// once the stream's clock has reached the deadline (a breach stored from then on would be stored
// at or after it, so the breach is owed, whatever a supervisor says later), and a denial, which
// moves nothing, is always allowed while the request is pending. The command reads the stream's
// clock before it appends, so an approval can still be stored a moment after the deadline it
// meant to move (the append took that long). Judged on the stream's times, as a breach is, such an
// approval moves nothing: the deadline passed before it was stored, and its breach stays owed.
// Every projection records it as a decision that came too late (Decision.Late) and shows it as
// not approved, with the reason; it is no impossible event, since a command wrote it in good
// faith, and quarantining an issue for a race of milliseconds would be worse than the race.

// Decision is a supervisor's answer to a unit's extension request, as the stream stored it.
type Decision struct {
	// DepartmentID and UnitID name the part decided on; the assignment that keeps the decision
	// does not store them again.
	DepartmentID string       `json:"-"`
	UnitID       string       `json:"-"`
	Kind         DeadlineKind `json:"kind"`
	// Approved is what the supervisor decided; an approval stored too late (Late) moved nothing.
	Approved bool `json:"approved"`
	// Deadline is the deadline as it stood when the decision was made; Granted, on approval, the
	// one it moves to.
	Deadline time.Time `json:"deadline,omitzero"`
	Granted  time.Time `json:"granted,omitzero"`
	Reason   string    `json:"reason,omitempty"`
	By       string    `json:"by"`
	At       time.Time `json:"at"` // when the stream stored it
	// Late is set on an approval stored at or after the deadline it would have moved: the
	// deadline stands, and its breach is owed.
	Late bool `json:"late,omitempty"`
}

// Clone returns a copy of the decision, nil for none.
func (d *Decision) Clone() *Decision {
	if d == nil {
		return nil
	}
	c := *d
	return &c
}

// Moved reports whether the decision moved the deadline: an approval stored in time.
func (d *Decision) Moved() bool { return d != nil && d.Approved && !d.Late }

// DecideExtension applies a supervisor's decision on the unit's pending extension request; it
// clears the request. An approval stored before the deadline it names moves the deadline to the
// one granted; one stored at or after it moves nothing and is recorded as late (see Supervision).
// A decision without a pending request of its kind, or naming another deadline than the one in
// force, is impossible, as is an approval the command would have refused on any state: of a part
// that is not open, of a clock that does not run, was cleared or breached, or granting a deadline
// that is not later than the one in force, or further from it than MaxExtension.
func (a *Assignment) DecideExtension(d Decision) error {
	if a == nil {
		return notSummoned("an extension decision", UnitOf(d.DepartmentID, d.UnitID))
	}
	switch {
	case a.Extension == nil:
		return eventlog.Impossible("an extension decision for %s, which has no request pending", a.Unit())
	case a.Extension.Kind != d.Kind:
		return eventlog.Impossible("a %q extension decision for %s, which asked to move its %s deadline", d.Kind, a.Unit(), a.Extension.Kind)
	case !a.Deadline(d.Kind).Equal(d.Deadline):
		return eventlog.Impossible("an extension decision for %s names the %s deadline %s, but %s is in force",
			a.Unit(), d.Kind, stamp(d.Deadline), stamp(a.Deadline(d.Kind)))
	}
	if d.Approved {
		deadline := a.Deadline(d.Kind)
		_, cleared := a.Cleared(d.Kind)
		switch {
		case !a.Status.Open():
			return eventlog.Impossible("an approved extension of %s's part, which is %s", a.Unit(), a.Status)
		case deadline.IsZero() || cleared:
			return eventlog.Impossible("an approved extension of %s's %s clock, which does not run", a.Unit(), d.Kind)
		case a.IsBreached(d.Kind):
			return eventlog.Impossible("an approved extension of %s's %s deadline, which was breached before", a.Unit(), d.Kind)
		case !d.Granted.After(deadline) || d.Granted.Sub(deadline) > MaxExtension:
			return eventlog.Impossible("an approved extension of %s's %s deadline %s to %s, not within %s after it",
				a.Unit(), d.Kind, stamp(deadline), stamp(d.Granted), MaxExtension)
		}
		if d.Late = !d.At.Before(deadline); !d.Late {
			switch d.Kind {
			case ReportIn:
				a.ReportInBy = d.Granted
			case Resolve:
				a.ResolveBy = d.Granted
			}
		}
	}
	a.Extension, a.Decision = nil, &d
	return nil
}

// Urge applies a supervisor's urge (督办) of the part: only an open part is urged.
func (a *Assignment) Urge(unitID string) error {
	switch {
	case a == nil:
		return notSummoned("an urge", unitID)
	case !a.Status.Open():
		return eventlog.Impossible("an urge of %s's part, which is %s", a.Unit(), a.Status)
	}
	a.Urges++
	return nil
}

// CheckDecision says whether a supervisor may decide the unit's pending extension request now,
// the stream's clock reading streamNow, and returns the decision to record (By and At left to the
// event): an approval grants granted, or the deadline the unit proposed when granted is zero. done
// is true when nothing is pending and the latest decision is this one, so a retry has nothing to
// do. A denial needs only a pending request; an approval needs an open part whose clock still
// runs unbreached, a stream's clock that has not reached the deadline, and a granted deadline
// later than the one in force and at most MaxExtension after it.
func (a *Assignment) CheckDecision(approve bool, granted time.Time, reason string, streamNow time.Time) (d Decision, done bool, err error) {
	if a == nil {
		return Decision{}, false, ErrNotSummoned
	}
	e := a.Extension
	if e == nil {
		if p := a.Decision; p != nil && p.Approved == approve && p.Reason == reason && (!approve || granted.IsZero() || p.Granted.Equal(granted)) {
			return *p, true, nil
		}
		return Decision{}, false, &TransitionError{fmt.Sprintf("%s has no extension request pending", a.Unit())}
	}
	deadline := a.Deadline(e.Kind)
	d = Decision{Kind: e.Kind, Approved: approve, Deadline: deadline, Reason: reason}
	if !approve {
		return d, false, nil
	}
	_, cleared := a.Cleared(e.Kind)
	switch {
	case !a.Status.Open():
		return Decision{}, false, &TransitionError{fmt.Sprintf("%s's part is %s: the request can only be denied", a.Unit(), a.Status)}
	case deadline.IsZero() || cleared:
		return Decision{}, false, &TransitionError{fmt.Sprintf("%s's %s clock no longer runs: the request can only be denied", a.Unit(), e.Kind)}
	case a.IsBreached(e.Kind):
		return Decision{}, false, &TransitionError{fmt.Sprintf("too late: %s's %s deadline %s was breached; the request can only be denied",
			a.Unit(), e.Kind, stamp(deadline))}
	case !streamNow.Before(deadline):
		return Decision{}, false, &TransitionError{fmt.Sprintf("too late: %s's %s deadline passed at %s on the stream's clock; the request can only be denied",
			a.Unit(), e.Kind, stamp(deadline))}
	}
	if granted.IsZero() {
		granted = e.Proposed
	}
	switch {
	case !granted.After(deadline):
		return Decision{}, false, &InvalidError{Field: "granted", Reason: fmt.Sprintf("must be after the current deadline %s", stamp(deadline))}
	case granted.Sub(deadline) > MaxExtension:
		return Decision{}, false, &InvalidError{Field: "granted", Reason: fmt.Sprintf("must be at most %s after the current deadline %s", MaxExtension, stamp(deadline))}
	}
	d.Granted = granted
	return d, false, nil
}

// CheckUrge says whether a supervisor may urge the part now: only an open part is urged.
func (a *Assignment) CheckUrge() error {
	switch {
	case a == nil:
		return ErrNotSummoned
	case !a.Status.Open():
		return &TransitionError{fmt.Sprintf("%s's part is %s: only an open part is urged", a.Unit(), a.Status)}
	}
	return nil
}
