// Package sla is an SLA policy as an assignment keeps it from its first dispatch: the time limits
// to report in and to resolve, whether they count working time, the reminders before a deadline
// and the escalation chain after a breach. Routing freezes it into the dispatch, intake counts a
// reopened part's deadlines by it, and escalation runs its reminders and chain, so that a later
// change of the catalog changes nothing for an assignment already dispatched.
package sla

import (
	"fmt"
	"slices"
	"time"
)

// Target is whom a level of an escalation chain tells.
type Target string

// The targets a chain may name.
const (
	// DutyOfficer is the officer who holds the part: the one it was pushed or handed over to.
	DutyOfficer Target = "duty-officer"
	// UnitHead is the head of the unit, as its roster names them.
	UnitHead Target = "unit-head"
	// StreetSupervisor is the supervisor of the street.
	StreetSupervisor Target = "street-supervisor"
	// CitySupervisor is the city's supervisor.
	CitySupervisor Target = "city-supervisor"
)

// Targets lists every target in the order a chain normally climbs them.
func Targets() []Target { return []Target{DutyOfficer, UnitHead, StreetSupervisor, CitySupervisor} }

// Valid reports whether t is a known target.
func (t Target) Valid() bool {
	switch t {
	case DutyOfficer, UnitHead, StreetSupervisor, CitySupervisor:
		return true
	}
	return false
}

// Level is one level of an escalation chain: Wait after the step before (the deadline, for the
// first), tell Target; then tell it again every Wait, Repeat more times.
type Level struct {
	Wait   time.Duration `json:"wait"`
	Target Target        `json:"target"`
	Repeat int           `json:"repeat,omitempty"`
}

// Limits on a policy, so that a catalog cannot make escalation hold unbounded timers.
const (
	// MaxReminders is how many reminders a deadline may have.
	MaxReminders = 4
	// MaxLevels is how many levels a chain may have.
	MaxLevels = 8
	// MaxRepeat is how many times more a level may tell its target.
	MaxRepeat = 10
)

// Policy is an SLA policy as frozen at dispatch. The zero value has no clocks.
type Policy struct {
	Name     string        `json:"name,omitempty"`
	ReportIn time.Duration `json:"report_in,omitempty"`
	Resolve  time.Duration `json:"resolve,omitempty"`
	// WorkingTime makes the limits, the reminders and the chain's waits count working time by
	// the city's working calendar.
	WorkingTime bool `json:"working_time,omitempty"`
	// RemindAt are the shares of a limit, in percent and increasing, at which the officer is
	// reminded that its deadline approaches.
	RemindAt []int `json:"remind_at,omitempty"`
	// Chain is what follows a breach of either deadline, level by level.
	Chain []Level `json:"chain,omitempty"`
}

// Check returns what is wrong with the policy, or nil.
func (p Policy) Check() error {
	switch {
	case p.ReportIn < 0 || p.Resolve < 0:
		return fmt.Errorf("a time limit is negative")
	case len(p.RemindAt) > MaxReminders:
		return fmt.Errorf("more than %d reminders", MaxReminders)
	case len(p.Chain) > MaxLevels:
		return fmt.Errorf("a chain of more than %d levels", MaxLevels)
	}
	for i, pc := range p.RemindAt {
		if pc < 1 || pc > 99 || i > 0 && pc <= p.RemindAt[i-1] {
			return fmt.Errorf("reminders must be shares from 1 to 99 percent in increasing order, not %v", p.RemindAt)
		}
	}
	for i, l := range p.Chain {
		switch {
		case !l.Target.Valid():
			return fmt.Errorf("level %d: unknown target %q (one of %v)", i+1, l.Target, Targets())
		case l.Wait < 0 || l.Repeat < 0 || l.Repeat > MaxRepeat:
			return fmt.Errorf("level %d: a wait must not be negative and a level repeats 0 to %d times", i+1, MaxRepeat)
		case l.Repeat > 0 && l.Wait <= 0:
			return fmt.Errorf("level %d: a level that repeats needs a wait", i+1)
		}
	}
	return nil
}

// Calendar counts working time: Add returns the instant at which d of working time has passed
// after from, and Between the working time in [a, b). It answers for any instant (the working
// calendar says how it counts a year it has no data for), so that a deadline can always be frozen.
type Calendar interface {
	Add(from time.Time, d time.Duration) time.Time
	Between(a, b time.Time) time.Duration
}

// Share returns the instant at which percent of the time from start to end has passed, in the
// policy's time: the instant a reminder at that share of a limit comes due.
func (p Policy) Share(cal Calendar, start, end time.Time, percent int) time.Time {
	if !p.WorkingTime || cal == nil {
		return start.Add(end.Sub(start) * time.Duration(percent) / 100)
	}
	return cal.Add(start, cal.Between(start, end)*time.Duration(percent)/100)
}

// After returns the instant d after from in the policy's time: working time by cal when the
// policy counts it and a calendar is given, calendar time otherwise.
func (p Policy) After(cal Calendar, from time.Time, d time.Duration) time.Time {
	if !p.WorkingTime || cal == nil {
		return from.Add(d)
	}
	return cal.Add(from, d)
}

// Deadlines returns the deadlines of a part dispatched (or reopened) at from; a zero limit is a
// clock that does not run and gives a zero deadline.
func (p Policy) Deadlines(cal Calendar, from time.Time) (reportInBy, resolveBy time.Time) {
	if p.ReportIn > 0 {
		reportInBy = p.After(cal, from, p.ReportIn)
	}
	if p.Resolve > 0 {
		resolveBy = p.After(cal, from, p.Resolve)
	}
	return reportInBy, resolveBy
}

// Clone returns a copy of the policy that shares nothing with it.
func (p Policy) Clone() Policy {
	p.RemindAt, p.Chain = slices.Clone(p.RemindAt), slices.Clone(p.Chain)
	return p
}
