package app

import (
	"sync/atomic"
	"time"

	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/internal/roster"
	"github.com/whistle-dispatch/whistle/services/internal/sla"
)

// People finds whom a reminder or a level of an escalation chain tells, by the rosters in force,
// which the service swaps whole when the rosters file changes.
type People struct {
	rosters atomic.Pointer[roster.Rosters]
}

// NewPeople returns the people of the rosters r; nil means none.
func NewPeople(r *roster.Rosters) *People {
	p := &People{}
	p.Set(r)
	return p
}

// Set puts rosters in force.
func (p *People) Set(r *roster.Rosters) {
	if r == nil {
		r = roster.None(time.UTC)
	}
	p.rosters.Store(r)
}

// Rosters returns the rosters in force.
func (p *People) Rosters() *roster.Rosters { return p.rosters.Load() }

// Target returns the person a target names for a unit's part in a street at an instant: the
// officer who holds the part (else the first on duty then), the unit's head, the street's or the
// city's supervisor. Empty means nobody: the unit has no roster, nobody holds the part or is on
// duty, or the area has no supervisor.
func (p *People) Target(t sla.Target, unitID, officer, streetID string, at time.Time) string {
	r := p.rosters.Load()
	switch t {
	case sla.DutyOfficer:
		if officer != "" {
			return officer
		}
		if people := r.PeopleAt(unitID, at); len(people) > 0 {
			return people[0]
		}
	case sla.UnitHead:
		return r.Head(unitID)
	case sla.StreetSupervisor:
		return r.Supervisor(streetID)
	case sla.CitySupervisor:
		return r.Supervisor(catalog.CityScope)
	}
	return ""
}
