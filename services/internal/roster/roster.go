// Package roster knows who is on duty in each unit of the departments: the people who may act for
// a unit, the shifts they take turns on (a rotation by day or by week, with the hand-over at the
// shift's edges), the overrides that put a person on duty in place of the rotation for a period,
// and the unit's head, who receives what lands when nobody is on duty.
//
// Rosters are read from a YAML file (see Parse for its form), reloaded as a whole, and named by
// the digest of their text: the department records that version in every push, so a push can be
// traced to the roster that decided it.
package roster

import (
	"cmp"
	"slices"
	"time"
)

// MaxPeriod bounds the period a duty listing covers.
const MaxPeriod = 31 * 24 * time.Hour

// FlagWithin is how far ahead a unit is checked for gaps: a unit with nobody on duty at some time
// in it is flagged.
const FlagWithin = 7 * 24 * time.Hour

// OverrideShift is the shift name of a span an override decides.
const OverrideShift = "override"

// Person is someone who may act for units: an officer, or a unit's head.
type Person struct {
	ID   string
	Name string
}

// Turn is how long each person's turn on a shift lasts before the next person's begins.
type Turn string

// The turns.
const (
	Daily  Turn = "day"
	Weekly Turn = "week"
)

// Shift is a stretch of the day on some days of the week, on which a unit's people take turns.
type Shift struct {
	Name string
	// Days are the weekdays the shift starts on.
	Days []time.Weekday
	// Start and End are times of day since midnight; an End at or before Start ends the next day.
	Start, End time.Duration
	// People take turns in this order, each for a Turn, the first from Since.
	People []string
	Turn   Turn
	// Since is the local midnight of the day the first person's turn begins.
	Since time.Time
}

// Override puts People on duty in a unit in place of the rotation, from From until To.
type Override struct {
	People   []string
	From, To time.Time
	Reason   string
}

// Unit is one unit's roster.
type Unit struct {
	ID        string
	Head      string
	Shifts    []Shift
	Overrides []Override
}

// Rosters is every unit's roster, immutable once parsed and safe for concurrent use.
type Rosters struct {
	people map[string]Person
	units  map[string]*Unit
	// supervisors are the people escalation chains tell for an area (a street, or the city).
	supervisors map[string]string
	zone        *time.Location
	version     string
}

// Supervisor returns the supervisor of an area; empty when it has none.
func (r *Rosters) Supervisor(area string) string { return r.supervisors[area] }

// Duty is who is on duty in a unit over a span: the shift (or OverrideShift) and its people, or
// nobody (a gap, with no shift).
type Duty struct {
	Unit     string
	From, To time.Time
	Shift    string
	People   []string
}

// Gap reports whether nobody is on duty in the span.
func (d Duty) Gap() bool { return len(d.People) == 0 }

// Version identifies the rosters' text.
func (r *Rosters) Version() string { return r.version }

// Person returns a person by id.
func (r *Rosters) Person(id string) (Person, bool) {
	p, ok := r.people[id]
	return p, ok
}

// Has reports whether the unit has a roster.
func (r *Rosters) Has(unit string) bool { return r.units[unit] != nil }

// Head returns the unit's head; empty when the unit has no roster.
func (r *Rosters) Head(unit string) string {
	if u := r.units[unit]; u != nil {
		return u.Head
	}
	return ""
}

// Units lists the units that have a roster, in id order.
func (r *Rosters) Units() []string {
	var ids []string
	for id := range r.units {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Member reports whether person may act for the unit: its head, someone on one of its shifts, or
// someone an override of it names. A unit without a roster has no members to check.
func (r *Rosters) Member(unit, person string) bool {
	u := r.units[unit]
	if u == nil {
		return false
	}
	if u.Head == person {
		return true
	}
	for _, s := range u.Shifts {
		if slices.Contains(s.People, person) {
			return true
		}
	}
	for _, o := range u.Overrides {
		if slices.Contains(o.People, person) {
			return true
		}
	}
	return false
}

// OnDuty returns the unit's duty at t: the span around t with the same people on duty, from the
// hand-over that began it to the one that ends it (looked for up to FlagWithin either side).
func (r *Rosters) OnDuty(unit string, t time.Time) Duty {
	for _, d := range r.Spans(unit, t.Add(-FlagWithin), t.Add(FlagWithin)) {
		if !t.Before(d.From) && t.Before(d.To) {
			return d
		}
	}
	return Duty{Unit: unit, From: t, To: t}
}

// PeopleAt returns the people on duty in the unit at t, sorted; none when nobody is, or the unit
// has no roster. It is OnDuty's people without the span around t, which costs the hand-overs of a
// fortnight to find: for a caller that only asks who is on duty at an instant (a push, a chain
// step's target).
func (r *Rosters) PeopleAt(unit string, t time.Time) []string {
	_, people := r.at(r.units[unit], t)
	return people
}

// Spans returns the unit's duty from from until to, span by span in time order, gaps included:
// each span ends at a hand-over, an override's edge, or to.
func (r *Rosters) Spans(unit string, from, to time.Time) []Duty {
	u := r.units[unit]
	if u == nil || !to.After(from) {
		return nil
	}
	cuts := []time.Time{from}
	for _, e := range r.edges(u, from, to) {
		if e.After(from) && e.Before(to) {
			cuts = append(cuts, e)
		}
	}
	cuts = append(cuts, to)
	var out []Duty
	for i := 0; i+1 < len(cuts); i++ {
		shift, people := r.at(u, cuts[i])
		if n := len(out); n > 0 && out[n-1].Shift == shift && slices.Equal(out[n-1].People, people) {
			out[n-1].To = cuts[i+1]
			continue
		}
		out = append(out, Duty{Unit: unit, From: cuts[i], To: cuts[i+1], Shift: shift, People: people})
	}
	return out
}

// Gaps returns the spans from from until to in which nobody is on duty in the unit; a unit
// without a roster is one gap.
func (r *Rosters) Gaps(unit string, from, to time.Time) []Duty {
	if !r.Has(unit) {
		return []Duty{{Unit: unit, From: from, To: to}}
	}
	var gaps []Duty
	for _, d := range r.Spans(unit, from, to) {
		if d.Gap() {
			gaps = append(gaps, d)
		}
	}
	return gaps
}

// at returns the shift and the people on duty in u at t: an override's people while one runs
// (every override running, together), otherwise the people whose turn it is on every shift that
// covers t.
func (r *Rosters) at(u *Unit, t time.Time) (shift string, people []string) {
	if u == nil {
		return "", nil
	}
	for _, o := range u.Overrides {
		if !t.Before(o.From) && t.Before(o.To) {
			shift = OverrideShift
			people = append(people, o.People...)
		}
	}
	if shift == "" {
		for _, s := range u.Shifts {
			if p, ok := s.onTurn(t, r.zone); ok {
				if shift != "" {
					shift += "+"
				}
				shift += s.Name
				people = append(people, p)
			}
		}
	}
	slices.Sort(people)
	return shift, slices.Compact(people)
}

// onTurn returns the person whose turn on the shift covers t, if the shift covers t.
func (s Shift) onTurn(t time.Time, zone *time.Location) (string, bool) {
	local := t.In(zone)
	today := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, zone)
	// The shift that covers t started today or, crossing midnight, yesterday.
	for _, day := range []time.Time{today, today.AddDate(0, 0, -1)} {
		if !slices.Contains(s.Days, day.Weekday()) || len(s.People) == 0 {
			continue
		}
		start, end := s.bounds(day, zone)
		if !t.Before(start) && t.Before(end) {
			return s.People[s.turn(day)], true
		}
	}
	return "", false
}

// bounds returns when the shift that starts on day (a local midnight) starts and ends.
func (s Shift) bounds(day time.Time, zone *time.Location) (start, end time.Time) {
	start = at(day, s.Start, zone)
	endDay := day
	if s.End <= s.Start {
		endDay = day.AddDate(0, 0, 1)
	}
	return start, at(endDay, s.End, zone)
}

// at is the local time of day since midnight on day, read in zone's calendar (so a day of a
// change of offset still puts 08:00 at 08:00).
func at(day time.Time, since time.Duration, zone *time.Location) time.Time {
	return time.Date(day.Year(), day.Month(), day.Day(), int(since/time.Hour), int(since%time.Hour/time.Minute), 0, 0, zone)
}

// turn is the index of the person whose turn it is on the shift that starts on day.
func (s Shift) turn(day time.Time) int {
	days := calendarDays(s.Since, day)
	n := days
	if s.Turn == Weekly {
		n = floorDiv(days, 7)
	}
	return int(((n % int64(len(s.People))) + int64(len(s.People))) % int64(len(s.People)))
}

// calendarDays counts the calendar days from a to b (both local midnights).
func calendarDays(a, b time.Time) int64 {
	ua := time.Date(a.Year(), a.Month(), a.Day(), 0, 0, 0, 0, time.UTC)
	ub := time.Date(b.Year(), b.Month(), b.Day(), 0, 0, 0, 0, time.UTC)
	return int64(ub.Sub(ua) / (24 * time.Hour))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// edges returns every instant between from and to (and a day either side) at which the duty of u
// may change: each shift's start and end, each override's, in time order.
func (r *Rosters) edges(u *Unit, from, to time.Time) []time.Time {
	if u == nil {
		return nil
	}
	var out []time.Time
	first := from.In(r.zone).AddDate(0, 0, -1)
	day := time.Date(first.Year(), first.Month(), first.Day(), 0, 0, 0, 0, r.zone)
	for ; !day.After(to.AddDate(0, 0, 1)); day = day.AddDate(0, 0, 1) {
		for _, s := range u.Shifts {
			if slices.Contains(s.Days, day.Weekday()) {
				start, end := s.bounds(day, r.zone)
				out = append(out, start, end)
			}
		}
	}
	for _, o := range u.Overrides {
		out = append(out, o.From, o.To)
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return slices.CompactFunc(out, func(a, b time.Time) bool { return a.Equal(b) })
}

// Flagged returns the units in units (each unit with a roster when units is empty) that have
// nobody on duty at some time from from until to, or no roster at all, in id order.
func (r *Rosters) Flagged(units []string, from, to time.Time) []string {
	if len(units) == 0 {
		units = r.Units()
	}
	var out []string
	for _, u := range units {
		if len(r.Gaps(u, from, to)) > 0 {
			out = append(out, u)
		}
	}
	slices.SortFunc(out, cmp.Compare)
	return slices.Compact(out)
}
