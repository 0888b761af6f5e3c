// Package store keeps routing's view of each issue in Redis, derived from the event log.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/redisx"
	"github.com/whistle-dispatch/whistle/services/routing/internal/domain"
)

// Store is routing's projection: one JSON value per issue under "routing:issue:{<case>}".
type Store struct{ rdb *redis.Client }

var _ eventlog.Projection = (*Store)(nil)

// New returns a store on rdb.
func New(rdb *redis.Client) *Store { return &Store{rdb: rdb} }

// key is the issue's state key; the braces make it a Redis Cluster hash tag.
func key(issueID string) string { return "routing:issue:{" + issueID + "}" }

// Get returns the issue as routing knows it; an issue it has never seen is the zero Issue.
func (s *Store) Get(ctx context.Context, issueID string) (domain.Issue, error) {
	raw, err := s.rdb.Get(ctx, key(issueID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return domain.Issue{}, nil
	}
	if err != nil {
		return domain.Issue{}, fmt.Errorf("routing store: get %s: %w", issueID, err)
	}
	return decode(raw)
}

// LastSeq returns the sequence of the issue's last applied event.
func (s *Store) LastSeq(ctx context.Context, issueID string) (uint64, error) {
	st, err := s.Get(ctx, issueID)
	return st.LastSeq, err
}

// Apply folds one record into the issue's state, atomically and at most once.
func (s *Store) Apply(ctx context.Context, rec eventlog.Record) error {
	id := rec.Event.GetIssueId()
	return redisx.Update(ctx, s.rdb, key(id), func(cur []byte, _ redis.Pipeliner) ([]byte, error) {
		var st domain.Issue
		if cur != nil {
			var err error
			if st, err = decode(cur); err != nil {
				return nil, err
			}
		}
		if next, err := eventlog.Admit(st.LastSeq, rec); !next {
			return nil, err // nil for a redelivery, ErrGap when an earlier event is missing
		}
		apply(&st, rec)
		return json.Marshal(st)
	})
}

// apply records what routing cares about in an event; other events only advance LastSeq.
func apply(st *domain.Issue, rec eventlog.Record) {
	ev := rec.Event
	st.LastSeq = rec.Seq
	switch {
	case ev.GetRaised() != nil:
		r := ev.GetRaised()
		st.Raised = true
		st.Grid, st.Street, st.Category = r.GetGridId(), r.GetStreetId(), r.GetCategoryId()
		st.Urgency = int32(r.GetUrgency())
		st.CorrelationID = ev.GetCorrelationId()
	case ev.GetRouted() != nil:
		st.Routed, st.NeedsDispatch = true, false
		st.RuleID = ev.GetRouted().GetRuleId()
	case ev.GetNeedsDispatch() != nil:
		st.NeedsDispatch = true
	}
}

// decode reads an issue's stored state.
func decode(raw []byte) (domain.Issue, error) {
	var st domain.Issue
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("routing store: decode: %w", err)
	}
	return st, nil
}
