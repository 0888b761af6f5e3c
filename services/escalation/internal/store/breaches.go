package store

import (
	"context"
	"fmt"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/redisx"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/domain"
)

// Cursor marks the last entry of a page of a sharded index (the breaches, newest first; the
// pending extension requests, oldest first): the next page starts after it. The zero Cursor is
// the start of the index.
type Cursor struct {
	Score  int64  `json:"s"`
	Member string `json:"m"`
}

// scanBatch is how many breaches one round trip reads of each shard while looking for a page's
// matches, and how many the page takes from the merge of the shards before it reads their details.
const scanBatch = 256

// Recorded bounds the breaches by when they were recorded: at or after From and before Until; the
// zero time bounds nothing.
type Recorded struct{ From, Until time.Time }

// scores are the bounds of the breaches' scores (the unix milliseconds they were recorded,
// truncated) that hold every breach recorded within r: the caller still checks the exact times,
// since a millisecond's score holds times on both sides of a bound within it.
func (r Recorded) scores() redisx.ZBounds {
	var b redisx.ZBounds
	if !r.From.IsZero() {
		lo := r.From.UnixMilli()
		b.Min = &lo
	}
	if !r.Until.IsZero() {
		hi := r.Until.UnixMilli()
		b.Max = &hi
	}
	return b
}

// Breaches returns up to limit breaches recorded within r that keep accepts, newest first,
// starting after the cursor (the zero Cursor: from the newest), and the cursor of the last one
// when more may follow (the zero Cursor when none do). The bounds are read as score ranges of the
// index, so a period reads only the breaches of its time.
//
// The breaches are sharded by partition; redisx.ZMergeDesc reads them as one index, so a cursor
// is a place in one order whichever shard a breach is in.
func (s *Store) Breaches(ctx context.Context, r Recorded, after Cursor, limit int, keep func(domain.Breach) bool) ([]domain.Breach, Cursor, error) {
	walk := func(from *redisx.ZEntry, visit func([]redisx.ZEntry) (bool, error)) error {
		return redisx.ZMergeDescWithin(ctx, s.rdb, shards(breachesShard), r.scores(), from, scanBatch, visit)
	}
	out, next, err := listed(ctx, s, walk, after, limit, (*domain.Issue).BreachNamed, keep)
	if err != nil {
		return nil, Cursor{}, fmt.Errorf("store: breaches: %w", err)
	}
	return out, next, nil
}

// shards are the keys of an index sharded by partition, shard(i) being partition i's.
func shards(shard func(int) string) []string {
	keys := make([]string, eventlog.Partitions)
	for i := range keys {
		keys[i] = shard(i)
	}
	return keys
}

// listed pages through an index of names (domain.ListName: an issue and what of it) that walk
// reads as one from a place: up to limit of the items that named finds in their issues' documents
// and keep accepts, starting after the cursor (the zero Cursor: from the start), and the cursor
// of the last one when more may follow (the zero Cursor when none do). A name whose document no
// longer holds it (wiped, or moved on since the index was read) is passed over.
func listed[T any](ctx context.Context, s *Store, walk func(from *redisx.ZEntry, visit func([]redisx.ZEntry) (bool, error)) error,
	after Cursor, limit int, named func(*domain.Issue, string) (T, bool), keep func(T) bool) ([]T, Cursor, error) {
	var from *redisx.ZEntry
	if after != (Cursor{}) {
		from = &redisx.ZEntry{Score: after.Score, Member: after.Member}
	}
	var out []T
	var cursors []Cursor
	err := walk(from, func(page []redisx.ZEntry) (bool, error) {
		issues := make([]string, len(page))
		for i, e := range page {
			issues[i] = domain.IssueOfListName(e.Member)
		}
		states, err := s.LoadAll(ctx, issues)
		if err != nil {
			return false, err
		}
		for i, e := range page {
			if item, ok := named(states[issues[i]], e.Member); ok && keep(item) {
				out = append(out, item)
				cursors = append(cursors, Cursor{Score: e.Score, Member: e.Member})
			}
		}
		return len(out) <= limit, nil
	})
	if err != nil || len(out) <= limit {
		return out, Cursor{}, err
	}
	return out[:limit], cursors[limit-1], nil
}
