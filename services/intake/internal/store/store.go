// Package store keeps the intake view in Redis: one JSON document per issue, holding the view, its
// timeline and the last stream sequence applied, and sorted sets that list each area's issues by
// raise time. It implements eventlog.Projection, so the view is derived from the stream alone.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/redisx"
	"github.com/whistle-dispatch/whistle/services/intake/internal/domain"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
)

// Prefix starts every key the store writes; it is the service's name, so a reset finds them all.
const Prefix = "intake:"

// IssueKey is the key of an issue's document. The case number is a hash tag, so that all of one
// issue's keys would share a slot in Redis Cluster.
func IssueKey(id string) string { return Prefix + "issue:{" + id + "}" }

// ListKey is the key of the sorted set of an area's issues, scored by raise time in unix
// milliseconds, with case numbers as members.
func ListKey(areaID string) string { return Prefix + "list:area:" + areaID }

// Store is the Redis adapter of the intake view. It is safe for concurrent use.
type Store struct {
	rdb *redis.Client
}

var _ eventlog.Projection = (*Store)(nil)

// New returns a store on rdb.
func New(rdb *redis.Client) *Store { return &Store{rdb: rdb} }

// Get returns an issue's view, or domain.ErrNotFound when the issue was never raised here.
func (s *Store) Get(ctx context.Context, id string) (*domain.Issue, error) {
	is, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if !is.Raised() {
		return nil, domain.ErrNotFound
	}
	return is, nil
}

// LastSeq returns the sequence of the issue's last applied event, 0 when none was.
func (s *Store) LastSeq(ctx context.Context, id string) (uint64, error) {
	is, err := s.load(ctx, id)
	if err != nil {
		return 0, err
	}
	return is.LastSeq, nil
}

// load reads an issue's document; a missing one is an empty view.
func (s *Store) load(ctx context.Context, id string) (*domain.Issue, error) {
	data, err := s.rdb.Get(ctx, IssueKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return &domain.Issue{ID: id}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: get %s: %w", id, err)
	}
	return decode(id, data)
}

// decode reads an issue's document; an empty one is an empty view.
func decode(id string, data []byte) (*domain.Issue, error) {
	is := &domain.Issue{ID: id}
	if len(data) == 0 {
		return is, nil
	}
	if err := json.Unmarshal(data, is); err != nil {
		return nil, fmt.Errorf("store: decode %s: %w", id, err)
	}
	return is, nil
}

// Apply applies one event to its issue's view, together with the list indexes, in one
// transaction. A record already applied changes nothing; one that does not follow the last
// applied record of its issue returns eventlog.ErrGap and changes nothing.
func (s *Store) Apply(ctx context.Context, rec eventlog.Record) error {
	id := rec.Event.GetIssueId()
	return redisx.Update(ctx, s.rdb, IssueKey(id), func(current []byte, tx redis.Pipeliner) ([]byte, error) {
		is, err := decode(id, current)
		if err != nil {
			return nil, err
		}
		if next, err := eventlog.Admit(is.LastSeq, rec); !next {
			return nil, err // nil for a redelivery, ErrGap when an earlier event is missing
		}
		wasRaised := is.Raised()
		applyEvent(is, rec)
		if !wasRaised && is.Raised() {
			for _, area := range is.Areas(catalog.CityScope) {
				tx.ZAdd(ctx, ListKey(area), redis.Z{Score: float64(is.RaisedAt.UnixMilli()), Member: id})
			}
		}
		return json.Marshal(is)
	})
}
