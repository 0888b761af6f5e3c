// Package store keeps the intake view in Redis: one JSON document per issue, holding the view, its
// timeline and the last stream sequence applied, and sorted sets that list each area's issues by
// raise time. It implements eventlog.Projection, so the view is derived from the stream alone.
package store

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/redisdoc"
	"github.com/whistle-dispatch/whistle/services/intake/internal/domain"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
)

// Prefix starts every key the store writes; it is the service's name, so a reset finds them all.
const Prefix = "intake:"

// IssueKey is the key of an issue's document. The case number is a hash tag, so that all of one
// issue's keys would share a slot in Redis Cluster.
func IssueKey(id string) string { return Prefix + "issue:{" + id + "}" }

// ListKey is the key of the shard of an area's issues that holds the issues of one partition: a
// sorted set scored by raise time in unix milliseconds, with case numbers as members. An area's list
// is sharded by partition, so that the lists of the city and its streets, which every raise
// writes, spread over a Redis Cluster's masters, and a raise writes the lists of its areas on one.
func ListKey(areaID string, partition int) string {
	return Prefix + "list:area:" + areaID + ":" + eventlog.PartitionTag(partition)
}

// listKeys are the keys of every shard of an area's list.
func listKeys(areaID string) []string {
	keys := make([]string, eventlog.Partitions)
	for p := range keys {
		keys[p] = ListKey(areaID, p)
	}
	return keys
}

// VerifyingKey is the key of the shard of the resolved issues waiting for verification that holds
// one partition's issues: a sorted set scored by when every part was resolved, in unix
// milliseconds, so the oldest waits are found first.
func VerifyingKey(partition int) string {
	return Prefix + "verifying:" + eventlog.PartitionTag(partition)
}

// Waiting returns up to n issues of the partition that have waited for verification since at or
// before resolvedBy, oldest first.
func (s *Store) Waiting(ctx context.Context, partition int, resolvedBy time.Time, n int64) ([]string, error) {
	return s.rdb.ZRangeByScore(ctx, VerifyingKey(partition), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(resolvedBy.UnixMilli(), 10), Count: n}).Result()
}

// Store is the Redis adapter of the intake view. It is safe for concurrent use.
type Store struct {
	*redisdoc.Store[*domain.Issue]
	rdb redis.UniversalClient
}

var _ eventlog.Projection = (*Store)(nil)

// New returns a store on rdb.
func New(rdb redis.UniversalClient) *Store {
	return &Store{Store: &redisdoc.Store[*domain.Issue]{
		Service: "intake",
		RDB:     rdb,
		Empty:   func(id string) *domain.Issue { return &domain.Issue{ID: id} },
		Fold:    fold,
	}, rdb: rdb}
}

// Next is the issue after rec, which follows is: what the projection holds once it applied rec,
// for a command that decided on is and appended rec conditionally on it, to answer without a
// read. is is the caller's own copy, which Next changes.
func Next(is *domain.Issue, rec eventlog.Record) (*domain.Issue, error) {
	if err := applyEvent(is, rec); err != nil {
		return nil, err
	}
	return is, nil
}

// Get returns an issue's view, or domain.ErrNotFound when the issue was never raised here.
func (s *Store) Get(ctx context.Context, id string) (*domain.Issue, error) {
	is, err := s.Load(ctx, id)
	if err != nil {
		return nil, err
	}
	if !is.Raised() {
		return nil, domain.ErrNotFound
	}
	return is, nil
}

// fold applies one event to its issue's view and, when it raises the issue, lists it in its areas.
func fold(ctx context.Context, is *domain.Issue, rec eventlog.Record, tx redis.Pipeliner) error {
	raise := rec.Event.GetRaised() != nil
	if raise == is.Raised() {
		if raise {
			return eventlog.Impossible("the issue was raised before, at %s", is.RaisedAt.Format(time.RFC3339))
		}
		return eventlog.Impossible("a %s event before the issue was raised", eventlog.Kind(rec.Event))
	}
	resolvedBefore := is.ResolvedAt
	if err := applyEvent(is, rec); err != nil {
		return err
	}
	if !is.ResolvedAt.Equal(resolvedBefore) {
		key := VerifyingKey(eventlog.Partition(is.ID))
		if is.ResolvedAt.IsZero() {
			tx.ZRem(ctx, key, is.ID)
		} else {
			tx.ZAdd(ctx, key, redis.Z{Score: float64(is.ResolvedAt.UnixMilli()), Member: is.ID})
		}
	}
	if raise {
		for _, area := range is.Areas(catalog.CityScope) {
			tx.ZAdd(ctx, ListKey(area, eventlog.Partition(is.ID)), redis.Z{Score: float64(is.RaisedAt.UnixMilli()), Member: is.ID})
		}
	}
	return nil
}
