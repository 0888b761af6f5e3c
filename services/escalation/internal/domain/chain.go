package domain

import (
	"slices"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
	"github.com/whistle-dispatch/whistle/services/internal/sla"
)

// Step names what a timer fires for a clock: its breach, its next reminder, or the next step of
// the escalation chain its breach started.
type Step string

// The steps of a clock.
const (
	// BreachStep comes due at the deadline (or at once for a clearing event stored late).
	BreachStep Step = ""
	// RemindStep comes due when the next share of the limit the policy reminds at has passed.
	RemindStep Step = "remind"
	// EscalateStep comes due when the next level (or repeat) of the chain should tell its target.
	EscalateStep Step = "escalate"
)

// ChainStep is a step of an escalation chain as recorded: its level (from 1), which telling of the
// level (from 0), and when it was due. The next step is due a wait after it.
type ChainStep struct {
	Level  int       `json:"level"`
	Repeat int       `json:"repeat,omitempty"`
	At     time.Time `json:"at"`
}

// Reminded records a reminder of a running clock.
type Reminded struct {
	DepartmentID, UnitID string
	Kind                 Kind
	Percent              int
}

// Escalated records a step of the chain of a breached clock. Skipped are the levels passed over on
// the way because their target resolved to nobody; Person is empty when every level left did.
type Escalated struct {
	DepartmentID, UnitID string
	Kind                 Kind
	Level, Repeat        int
	Person               string
	Skipped              []int
}

// Pushed names the officer of each unit an assignment was pushed to.
type Pushed struct{ Officers map[string]string }

// HandedOver moves a unit's part to a colleague.
type HandedOver struct{ UnitID, To string }

func (Reminded) isEvent()   {}
func (Escalated) isEvent()  {}
func (Pushed) isEvent()     {}
func (HandedOver) isEvent() {}

// runs reports whether the unit's clock k still runs: neither cleared nor breached nor ended.
func (a *Assignment) runs(unitID string, k Kind) bool {
	m := a.state(unitID)
	due, ok := m.Due(k)
	return ok && !due.Equal(assignment.DueNow)
}

// NextReminder returns the next reminder of the unit's clock k that may come due, with the index
// of its share in the policy: none once the clock stopped running or every reminder was recorded.
func (a *Assignment) NextReminder(unitID string, k Kind, cal sla.Calendar) (at time.Time, index int, ok bool) {
	if a == nil {
		return time.Time{}, 0, false
	}
	index = a.Reminded[k]
	if index >= len(a.Policy.RemindAt) || a.DispatchedAt.IsZero() || !a.runs(unitID, k) {
		return time.Time{}, 0, false
	}
	m := a.state(unitID)
	return a.Policy.Share(cal, a.DispatchedAt, m.Deadline(k), a.Policy.RemindAt[index]), index, true
}

// OwedReminder returns the share of the limit of the unit's clock k to remind of at streamNow: the
// latest of the shares not yet reminded of that have passed (reminding of 50 percent when 80 has
// passed too tells the officer nothing), while the clock runs and its deadline has not passed.
// Otherwise it returns how long until the next one comes due (zero when none will).
func (a *Assignment) OwedReminder(unitID string, k Kind, streamNow time.Time, cal sla.Calendar) (percent int, wait time.Duration) {
	at, i, ok := a.NextReminder(unitID, k, cal)
	if !ok {
		return 0, 0
	}
	m := a.state(unitID)
	deadline := m.Deadline(k)
	if !streamNow.Before(deadline) {
		return 0, 0
	}
	if streamNow.Before(at) {
		return 0, at.Sub(streamNow)
	}
	for j := i + 1; j < len(a.Policy.RemindAt); j++ {
		if a.Policy.Share(cal, a.DispatchedAt, deadline, a.Policy.RemindAt[j]).After(streamNow) {
			break
		}
		i = j
	}
	return a.Policy.RemindAt[i], 0
}

// chainRuns reports whether the chain of the unit's clock k runs: the clock was breached in this
// round and the event that stops its chain has not been stored (a report-in stops the report-in
// chain; a resolution, a return or a withdrawal stops both).
func (a *Assignment) chainRuns(k Kind) bool {
	if _, breached := a.Breaches[k]; !breached || len(a.Policy.Chain) == 0 || a.Resolved != nil || a.Ended != nil {
		return false
	}
	return k != ReportIn || a.Acknowledged == nil
}

// NextStep returns the next step of the chain of the unit's clock k and when it is due: the first
// level a wait after the deadline, a level's next telling a wait after its last, the next level a
// wait after the last telling of the level before. ok is false while the chain does not run or
// once it has run to its end.
func (a *Assignment) NextStep(unitID string, k Kind, cal sla.Calendar) (next ChainStep, ok bool) {
	if a == nil || !a.chainRuns(k) {
		return ChainStep{}, false
	}
	chain := a.Policy.Chain
	last, started := a.Chain[k]
	switch {
	case !started:
		m := a.state(unitID)
		next = ChainStep{Level: 1, At: a.Policy.After(cal, m.Deadline(k), chain[0].Wait)}
	case last.Repeat < chain[last.Level-1].Repeat:
		next = ChainStep{Level: last.Level, Repeat: last.Repeat + 1, At: a.Policy.After(cal, last.At, chain[last.Level-1].Wait)}
	case last.Level < len(chain):
		next = ChainStep{Level: last.Level + 1, At: a.Policy.After(cal, last.At, chain[last.Level].Wait)}
	default:
		return ChainStep{}, false
	}
	return next, true
}

// Target is whom a level of the chain tells.
func (a *Assignment) Target(level int) sla.Target { return a.Policy.Chain[level-1].Target }

// Levels is how many levels the chain has.
func (a *Assignment) Levels() int { return len(a.Policy.Chain) }

// LastRepeat is the last telling of a level.
func (a *Assignment) LastRepeat(level int) int { return a.Policy.Chain[level-1].Repeat }

// judgeStep refuses a reminder or a chain step the state and the stream's times contradict: a
// reminder of a clock that does not run, of a share not next in the policy, or stored before its
// share passed; a step of a chain that does not run, out of turn, or stored before it was due.
func (s *Issue) judgeStep(at time.Time, e Event, cal sla.Calendar) error {
	switch e := e.(type) {
	case Reminded:
		u := unit(e.DepartmentID, e.UnitID)
		a := s.Assignments[u]
		due, i, ok := a.NextReminder(u, e.Kind, cal)
		switch {
		case !ok:
			return eventlog.Impossible("a reminder of %s's %s clock, which owes none", u, e.Kind)
		case !slices.Contains(a.Policy.RemindAt[i:], e.Percent):
			return eventlog.Impossible("a reminder at %d%% of %s's %s limit, which the policy does not owe next (%v from the %d%s)", e.Percent, u, e.Kind, a.Policy.RemindAt, i+1, ordinal(i+1))
		case at.Before(due):
			return eventlog.Impossible("a reminder of %s's %s clock stored at %s, before its first owed share passed at %s", u, e.Kind, stamp(at), stamp(due))
		}
	case Escalated:
		u := unit(e.DepartmentID, e.UnitID)
		a := s.Assignments[u]
		next, ok := a.NextStep(u, e.Kind, cal)
		switch {
		case !ok:
			return eventlog.Impossible("an escalation of %s's %s clock, whose chain does not run", u, e.Kind)
		case !(e.Level == next.Level && e.Repeat == next.Repeat || // the step that was next
			e.Level > next.Level && e.Level <= a.Levels() && e.Repeat == 0 && e.Person != "" || // levels passed over to one that tells somebody
			e.Person == "" && e.Level == a.Levels() && e.Repeat == a.LastRepeat(e.Level)): // nobody left to tell: the chain ends
			return eventlog.Impossible("level %d (telling %d) of %s's %s chain, when level %d (telling %d) is next", e.Level, e.Repeat, u, e.Kind, next.Level, next.Repeat)
		case at.Before(next.At):
			return eventlog.Impossible("level %d of %s's %s chain stored at %s, before it was due at %s", e.Level, u, e.Kind, stamp(at), stamp(next.At))
		}
	}
	return nil
}

// applyStep folds a reminder or a chain step judged possible.
func (s *Issue) applyStep(seq uint64, e Event, cal sla.Calendar) {
	switch e := e.(type) {
	case Reminded:
		a := s.Assignments[unit(e.DepartmentID, e.UnitID)]
		if a.Reminded == nil {
			a.Reminded = map[Kind]int{}
		}
		a.Reminded[e.Kind] = slices.Index(a.Policy.RemindAt, e.Percent) + 1
	case Escalated:
		u := unit(e.DepartmentID, e.UnitID)
		a := s.Assignments[u]
		next, _ := a.NextStep(u, e.Kind, cal)
		if a.Chain == nil {
			a.Chain = map[Kind]ChainStep{}
		}
		// Levels passed over cost no wait: the step recorded is due when the first of them was.
		a.Chain[e.Kind] = ChainStep{Level: e.Level, Repeat: e.Repeat, At: next.At}
		if b, ok := a.Breaches[e.Kind]; ok && e.Person != "" {
			b.Level, b.LevelSeq = e.Level, seq
			a.Breaches[e.Kind] = b
		}
	case Pushed:
		for u, officer := range e.Officers {
			if a := s.Assignments[u]; a != nil {
				a.OfficerID = officer
			}
		}
	case HandedOver:
		if a := s.Assignments[e.UnitID]; a != nil {
			a.OfficerID = e.To
		}
	}
}

// stepTimers returns the reminder and chain timers of the issue.
func (s *Issue) stepTimers(cal sla.Calendar) []Timer {
	var out []Timer
	for u, a := range s.Assignments {
		for _, k := range assignment.DeadlineKinds() {
			if at, _, ok := a.NextReminder(u, k, cal); ok {
				out = append(out, Timer{IssueID: s.ID, UnitID: u, Kind: k, Step: RemindStep, At: at})
			}
			if next, ok := a.NextStep(u, k, cal); ok {
				out = append(out, Timer{IssueID: s.ID, UnitID: u, Kind: k, Step: EscalateStep, At: next.At})
			}
		}
	}
	return out
}

// ordinal is the English suffix of a small ordinal number.
func ordinal(n int) string {
	switch n {
	case 1:
		return "st"
	case 2:
		return "nd"
	case 3:
		return "rd"
	}
	return "th"
}

// stamp writes an instant for a verdict.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
