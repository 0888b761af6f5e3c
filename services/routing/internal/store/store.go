// Package store keeps routing's view of each issue in Redis, derived from the event log, with the
// indexes its decisions and its desk read: the issues waiting at the desk, the open issues by
// place (to find duplicates) and the returns per department.
package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/redisdoc"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
	"github.com/whistle-dispatch/whistle/services/internal/assignment/assignmentpb"
	"github.com/whistle-dispatch/whistle/services/routing/internal/domain"
)

// Name is the service the store belongs to, and the prefix of its keys.
const Name = "routing"

// Keys of routing's indexes. Each is one key: the desk's queue and the returns are small, and a
// category's open places are what one duplicate search reads.
const (
	// DeskKey is the issues waiting at the desk, scored by when the desk got them (unix ms).
	DeskKey = Name + ":desk"
	// ReturnsKey holds every return, its issue and sequence naming the department that returned
	// it: a fold that runs again writes the same field, where a count would count the return twice.
	ReturnsKey = Name + ":returned"
)

// placesKey is the open issues of a category that gave a point, for finding duplicates.
func placesKey(category string) string { return Name + ":places:{" + category + "}" }

// Store is routing's projection: one JSON value per issue under "routing:issue:{<case>}".
type Store struct {
	*redisdoc.Store[*domain.Issue]
	rdb redis.UniversalClient
}

var _ eventlog.Projection = (*Store)(nil)

// New returns a store on rdb.
func New(rdb redis.UniversalClient) *Store {
	return &Store{Store: &redisdoc.Store[*domain.Issue]{
		Service: Name,
		RDB:     rdb,
		Empty:   func(id string) *domain.Issue { return &domain.Issue{ID: id} },
		Fold:    fold,
	}, rdb: rdb}
}

// Current returns the issue for a command to decide on: what this store last wrote or read of
// it, or what Redis holds (see redisdoc.Store.Latest).
func (s *Store) Current(ctx context.Context, issueID string) (domain.Issue, error) {
	st, err := s.Latest(ctx, issueID)
	if err != nil {
		return domain.Issue{}, err
	}
	return *st, nil
}

// Get returns the issue as routing knows it; an issue it has never seen is the zero Issue.
func (s *Store) Get(ctx context.Context, issueID string) (domain.Issue, error) {
	st, err := s.Load(ctx, issueID)
	if err != nil {
		return domain.Issue{}, err
	}
	return *st, nil
}

// fold applies one record and keeps the indexes in line with the issue as it then stands.
func fold(ctx context.Context, st *domain.Issue, rec eventlog.Record, tx redis.Pipeliner) error {
	category := st.Category
	if err := Apply(st, rec); err != nil {
		return err
	}
	if r := rec.Event.GetReturned(); r != nil {
		tx.HSet(ctx, ReturnsKey, rec.Event.GetIssueId()+"@"+strconv.FormatUint(rec.Seq, 10), r.GetDepartmentId())
	}
	if desk := st.AtDesk(); desk != nil {
		tx.ZAdd(ctx, DeskKey, redis.Z{Score: float64(desk.DispatchedAt.UnixMilli()), Member: st.ID})
	} else {
		tx.ZRem(ctx, DeskKey, st.ID)
	}
	if !st.HasPoint {
		return nil
	}
	if category != "" && category != st.Category {
		tx.ZRem(ctx, placesKey(category), st.ID)
	}
	if st.LinkedTo == "" && (st.Owe != "" || st.Open()) {
		tx.GeoAdd(ctx, placesKey(st.Category), &redis.GeoLocation{Name: st.ID, Longitude: st.Longitude, Latitude: st.Latitude})
	} else {
		tx.ZRem(ctx, placesKey(st.Category), st.ID)
	}
	return nil
}

// Apply records what routing cares about in an event. Every time it keeps is the time the stream
// stored the event; the assignment machine judges every assignment event.
func Apply(st *domain.Issue, rec eventlog.Record) error {
	ev := rec.Event
	if ev.GetRaised() == nil && !st.Raised {
		return eventlog.Impossible("a %s event before the issue was raised", eventlog.Kind(ev))
	}
	at, by := rec.Time, ev.GetActor().GetSubject()
	owe := func(cause string) { st.Owe, st.OweSince = cause, at }
	switch p := ev.GetPayload().(type) {
	case *whistlev1.Event_Raised:
		if st.Raised {
			return eventlog.Impossible("the issue was raised before, at event %d", st.RaisedSeq)
		}
		r := p.Raised
		st.Raised, st.RaisedSeq, st.RaisedAt = true, rec.Seq, rec.Time
		st.Grid, st.Street, st.Category = r.GetGridId(), r.GetStreetId(), r.GetCategoryId()
		st.Urgency, st.Text = int32(r.GetUrgency()), r.GetText()
		if l := r.GetLocation(); l != nil {
			st.Latitude, st.Longitude, st.HasPoint = l.GetLatitude(), l.GetLongitude(), true
		}
		st.CorrelationID = ev.GetCorrelationId()
		owe(domain.OweRaised)
	case *whistlev1.Event_Routed:
		r := p.Routed
		if err := st.Summon(assignmentpb.Dispatches(r), assignmentpb.Withdrawals(r.GetWithdrawn(), at, by), at); err != nil {
			return err
		}
		st.Routed, st.Owe = true, ""
		if r.GetRuleId() != "" {
			st.RuleID = r.GetRuleId()
		}
		if r.GetRulesVersion() != "" {
			st.RulesVersion = r.GetRulesVersion()
		}
	case *whistlev1.Event_NeedsDispatch:
		n := p.NeedsDispatch
		if err := st.Summon(assignmentpb.Desk(n), assignmentpb.Withdrawals(n.GetWithdrawn(), at, by), at); err != nil {
			return err
		}
		st.NeedsDispatch, st.DeskReason, st.Owe = true, n.GetReason(), ""
	case *whistlev1.Event_Acknowledged:
		a := p.Acknowledged
		return st.Assignment(assignment.UnitOf(a.GetDepartmentId(), a.GetUnitId())).Acknowledge(
			assignment.Acknowledgement{DepartmentID: a.GetDepartmentId(), UnitID: a.GetUnitId(), At: at, By: by})
	case *whistlev1.Event_Resolved:
		r := p.Resolved
		return st.Assignment(assignment.UnitOf(r.GetDepartmentId(), r.GetUnitId())).Resolve(
			assignment.Resolution{DepartmentID: r.GetDepartmentId(), UnitID: r.GetUnitId(), At: at, By: by, Note: r.GetNote()})
	case *whistlev1.Event_Returned:
		r := p.Returned
		a := st.Assignment(assignment.UnitOf(r.GetDepartmentId(), r.GetUnitId()))
		if err := a.Return(assignment.Ending{DepartmentID: r.GetDepartmentId(), UnitID: r.GetUnitId(), At: at, By: by, Reason: r.GetReason()}); err != nil {
			return err
		}
		st.Returns = append(st.Returns, a.DepartmentID)
		owe(domain.OweReturned)
	case *whistlev1.Event_Breached:
		b := assignmentpb.Breach(p.Breached, at)
		a := st.Assignment(assignment.UnitOf(b.DepartmentID, b.UnitID))
		if err := a.Breach(b); err != nil {
			return err
		}
		if a.DepartmentID == domain.GridDepartment && a.Status.Open() && st.Owe == "" {
			owe(domain.OweBeyondGrid) // the grid's deadline passed: it whistles to departments
		}
	case *whistlev1.Event_ExtensionRequested:
		e := p.ExtensionRequested
		unit := assignment.UnitOf(e.GetDepartmentId(), e.GetUnitId())
		return st.Assignment(unit).RequestExtension(unit, assignmentpb.Extension(e, at, by))
	case *whistlev1.Event_ExtensionDecided:
		d := assignmentpb.Decision(p.ExtensionDecided, at, by)
		return st.Assignment(assignment.UnitOf(d.DepartmentID, d.UnitID)).DecideExtension(d)
	case *whistlev1.Event_Urged:
		unit := assignment.UnitOf(p.Urged.GetDepartmentId(), p.Urged.GetUnitId())
		return st.Assignment(unit).Urge(unit)
	case *whistlev1.Event_Recategorised:
		st.Category = p.Recategorised.GetToCategoryId()
		owe(domain.OweRecategorised)
	case *whistlev1.Event_Linked:
		st.LinkedTo, st.Owe = p.Linked.GetOriginalId(), ""
	case *whistlev1.Event_Unlinked:
		st.LinkedTo = ""
		owe(domain.OweUnlinked)
	case *whistlev1.Event_Joined:
		if d := p.Joined.GetDuplicateId(); !slices.Contains(st.Duplicates, d) {
			st.Duplicates = append(st.Duplicates, d)
		}
	case *whistlev1.Event_Left:
		st.Duplicates = slices.DeleteFunc(st.Duplicates, func(d string) bool { return d == p.Left.GetDuplicateId() })
	case *whistlev1.Event_Verified:
		return reopen(st, p.Verified.GetReopened(), at)
	case *whistlev1.Event_Rated:
		return reopen(st, p.Rated.GetReopened(), at)
	}
	return nil
}

// reopen runs again the part a verification or a rating reopens, if any.
func reopen(st *domain.Issue, d *whistlev1.Dispatch, at time.Time) error {
	r, ok := assignmentpb.Reopening(d, at)
	if !ok {
		return nil
	}
	return st.Assignment(assignment.UnitOf(r.DepartmentID, r.UnitID)).Reopen(r)
}

// Page is one page of the desk's queue.
type Page struct {
	Items []domain.Issue
	// Next is the position to read the next page from; 0 on the last page.
	Next int64
}

// Desk returns up to n issues waiting at the desk, oldest first, from position from (0: the
// start), keeping only those keep accepts.
func (s *Store) Desk(ctx context.Context, from int64, n int, keep func(domain.Issue) bool) (Page, error) {
	var page Page
	for offset := from; ; offset += int64(n) {
		ids, err := s.rdb.ZRange(ctx, DeskKey, offset, offset+int64(n)-1).Result()
		if err != nil {
			return Page{}, fmt.Errorf("routing store: desk: %w", err)
		}
		for k, id := range ids {
			st, err := s.Get(ctx, id)
			if err != nil {
				return Page{}, err
			}
			if st.AtDesk() == nil || !keep(st) {
				continue
			}
			if len(page.Items) == n {
				page.Next = offset + int64(k)
				return page, nil
			}
			page.Items = append(page.Items, st)
		}
		if len(ids) < n {
			return page, nil
		}
	}
}

// Near returns the open issues of a category within meters of a point, nearest first, with their
// distances, at most limit of them.
func (s *Store) Near(ctx context.Context, category string, lat, lng, meters float64, limit int) ([]domain.Issue, []float64, error) {
	locs, err := s.rdb.GeoSearchLocation(ctx, placesKey(category), &redis.GeoSearchLocationQuery{
		GeoSearchQuery: redis.GeoSearchQuery{Longitude: lng, Latitude: lat, Radius: meters, RadiusUnit: "m", Sort: "ASC", Count: limit},
		WithDist:       true,
	}).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("routing store: places of %s: %w", category, err)
	}
	var out []domain.Issue
	var dist []float64
	for _, l := range locs {
		st, err := s.Get(ctx, l.Name)
		if err != nil {
			return nil, nil, err
		}
		out, dist = append(out, st), append(dist, l.Dist)
	}
	return out, dist, nil
}

// Returns counts the returns of each department.
func (s *Store) Returns(ctx context.Context) (map[string]int64, error) {
	raw, err := s.rdb.HGetAll(ctx, ReturnsKey).Result()
	if err != nil {
		return nil, fmt.Errorf("routing store: returns: %w", err)
	}
	out := map[string]int64{}
	for _, dept := range raw {
		out[dept]++
	}
	return out, nil
}
