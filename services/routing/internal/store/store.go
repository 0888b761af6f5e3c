// Package store keeps routing's view of each issue in Redis, derived from the event log.
package store

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/redisdoc"
	"github.com/whistle-dispatch/whistle/services/routing/internal/domain"
)

// Name is the service the store belongs to, and the prefix of its keys.
const Name = "routing"

// Store is routing's projection: one JSON value per issue under "routing:issue:{<case>}".
type Store struct {
	*redisdoc.Store[*domain.Issue]
}

var _ eventlog.Projection = (*Store)(nil)

// New returns a store on rdb.
func New(rdb redis.UniversalClient) *Store {
	return &Store{&redisdoc.Store[*domain.Issue]{
		Service: Name,
		RDB:     rdb,
		Empty:   func(string) *domain.Issue { return &domain.Issue{} },
		Fold: func(_ context.Context, st *domain.Issue, rec eventlog.Record, _ redis.Pipeliner) error {
			return apply(st, rec)
		},
	}}
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

// apply records what routing cares about in an event; other events only advance LastSeq. Routing
// counts deadlines from the time the stream stored the raise, so that the time an issue waits for
// routing or a dispatcher counts against them.
func apply(st *domain.Issue, rec eventlog.Record) error {
	ev := rec.Event
	if ev.GetRaised() == nil && !st.Raised {
		return eventlog.Impossible("a %s event before the issue was raised", eventlog.Kind(ev))
	}
	switch {
	case ev.GetRaised() != nil:
		if st.Raised {
			return eventlog.Impossible("the issue was raised before, at event %d", st.RaisedSeq)
		}
		r := ev.GetRaised()
		st.Raised, st.RaisedSeq, st.RaisedAt = true, rec.Seq, rec.Time
		st.Grid, st.Street, st.Category = r.GetGridId(), r.GetStreetId(), r.GetCategoryId()
		st.Urgency, st.Text = int32(r.GetUrgency()), r.GetText()
		st.CorrelationID = ev.GetCorrelationId()
	case ev.GetRouted() != nil:
		st.Routed, st.NeedsDispatch = true, false
		st.RuleID, st.RulesVersion = ev.GetRouted().GetRuleId(), ev.GetRouted().GetRulesVersion()
	case ev.GetNeedsDispatch() != nil:
		st.NeedsDispatch = true
	}
	return nil
}
