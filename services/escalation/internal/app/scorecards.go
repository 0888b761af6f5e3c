package app

import (
	"context"
	"slices"
	"time"

	"github.com/whistle-dispatch/whistle/services/escalation/internal/scorecard"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
)

// ScorecardQuery asks for scorecards; the caller's scope is already folded into it.
type ScorecardQuery struct {
	Kind scorecard.Kind
	// ID names one subject, whose scorecard is returned even when it had no part in the period;
	// empty asks for every subject that had one (for streets, or a whistle).
	ID string
	// Area limits the parts counted to the issues in this area (a street, a community or a grid);
	// empty or the city counts every part.
	Area string
	// From and Until bound the period, [From, Until), to the millisecond.
	From, Until time.Time
}

// Scorecards answers scorecard queries from the scorecards' keys.
type Scorecards struct {
	reader  *scorecard.Reader
	catalog *catalog.Catalog
	working scorecard.WorkingTime
}

// NewScorecards returns the queries; working measures the parts whose frozen policy counts
// working time (nil: calendar time, until the working calendar is plugged in).
func NewScorecards(r *scorecard.Reader, cat *catalog.Catalog, working scorecard.WorkingTime) *Scorecards {
	if working == nil {
		working = scorecard.CalendarTime
	}
	return &Scorecards{reader: r, catalog: cat, working: working}
}

// Get returns the scorecards q asks for, ranked (scorecard.Rank).
//
// It reads one index for the period: the subject's own when q names one and no area limits it;
// the street's when an area does, keeping the parts of that area's issues; else the index of every
// part. The parts are then grouped by subject.
func (s *Scorecards) Get(ctx context.Context, q ScorecardQuery) ([]scorecard.Card, error) {
	ctx, span := tracer.Start(ctx, "app.Scorecards.Get")
	defer span.End()
	limited := q.Area != "" && q.Area != catalog.CityScope
	var x scorecard.Index
	switch {
	case limited:
		x = scorecard.Index{Kind: scorecard.Street, ID: s.streetOf(q.Area)}
	case q.ID != "":
		x = scorecard.Index{Kind: q.Kind, ID: q.ID}
	}
	var streets []string
	if q.Kind == scorecard.Street {
		switch {
		case q.ID != "":
			streets = []string{q.ID}
		case limited:
			streets = []string{x.ID}
		default:
			streets = s.streets()
		}
	}
	sample, err := s.reader.Read(ctx, x, streets, q.From, q.Until)
	if err != nil {
		return nil, err
	}
	groups := map[string][]scorecard.Part{}
	if q.ID != "" {
		groups[q.ID] = nil
	}
	for _, p := range sample.Parts {
		if limited && !s.catalog.Contains(q.Area, p.GridID) {
			continue
		}
		id := subjectOf(q.Kind, p)
		if q.ID != "" && id != q.ID {
			continue
		}
		groups[id] = append(groups[id], p)
	}
	for street, n := range sample.Whistles {
		if _, ok := groups[street]; !ok && n > 0 {
			groups[street] = nil
		}
	}
	cards := make([]scorecard.Card, 0, len(groups))
	for id, parts := range groups {
		c := scorecard.Tally(parts, s.working)
		c.Kind, c.ID, c.Whistles = q.Kind, id, sample.Whistles[id]
		c.Name, c.DepartmentID = s.name(q.Kind, id)
		cards = append(cards, c)
	}
	scorecard.Rank(cards)
	return cards, nil
}

// subjectOf is the subject of kind a part counts for.
func subjectOf(kind scorecard.Kind, p scorecard.Part) string {
	switch kind {
	case scorecard.Department:
		return p.DepartmentID
	case scorecard.Unit:
		return p.UnitID
	}
	return p.StreetID
}

// name is a subject's name in the catalog and, for a unit, its department.
func (s *Scorecards) name(kind scorecard.Kind, id string) (name, department string) {
	switch kind {
	case scorecard.Department:
		if d, err := s.catalog.Department(id); err == nil {
			return d.Name, ""
		}
	case scorecard.Unit:
		if u, err := s.catalog.Unit(id); err == nil {
			return u.Name, u.DepartmentID
		}
	case scorecard.Street:
		if a, err := s.catalog.Area(id); err == nil {
			return a.Name, ""
		}
	}
	return "", ""
}

// streetOf is the street an area lies in (the area itself for a street).
func (s *Scorecards) streetOf(area string) string {
	for _, a := range s.catalog.Ancestors(area) {
		if a.Level == catalog.LevelStreet {
			return a.ID
		}
	}
	return ""
}

// streets are the ids of every street in the catalog.
func (s *Scorecards) streets() []string {
	var out []string
	for _, a := range s.catalog.Areas() {
		if a.Level == catalog.LevelStreet {
			out = append(out, a.ID)
		}
	}
	return slices.Clip(out)
}
