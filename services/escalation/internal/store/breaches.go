package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/redisx"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/domain"
)

// Cursor marks the last breach of a page: the next page starts after it, newest first. The zero
// Cursor is the start, at the newest breach.
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
	var from *redisx.ZEntry
	if after != (Cursor{}) {
		from = &redisx.ZEntry{Score: after.Score, Member: after.Member}
	}
	keys := make([]string, eventlog.Partitions)
	for i := range keys {
		keys[i] = breachesShard(i)
	}
	var out []domain.Breach
	var cursors []Cursor
	err := redisx.ZMergeDescWithin(ctx, s.rdb, keys, r.scores(), from, scanBatch, func(page []redisx.ZEntry) (bool, error) {
		details, err := s.breachDetails(ctx, page)
		if err != nil {
			return false, err
		}
		for i, raw := range details {
			if raw == nil {
				continue // wiped meanwhile
			}
			b, err := decodeBreach(raw)
			if err != nil {
				return false, err
			}
			if keep(b) {
				out = append(out, b)
				cursors = append(cursors, Cursor{Score: page[i].Score, Member: page[i].Member})
			}
		}
		return len(out) <= limit, nil
	})
	if err != nil {
		return nil, Cursor{}, fmt.Errorf("store: breaches: %w", err)
	}
	if len(out) <= limit {
		return out, Cursor{}, nil
	}
	return out[:limit], cursors[limit-1], nil
}

// breachDetails reads the details of the breaches of page, each from its shard, in one pipeline;
// a breach whose details are gone reads as nil.
func (s *Store) breachDetails(ctx context.Context, page []redisx.ZEntry) ([]any, error) {
	fields := map[int][]string{}
	for _, e := range page {
		fields[e.Shard] = append(fields[e.Shard], e.Member)
	}
	cmds := map[int]*redis.SliceCmd{}
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for shard, names := range fields {
			cmds[shard] = p.HMGet(ctx, breachShard(shard), names...)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("store: breach details: %w", err)
	}
	byName := map[string]any{}
	for shard, cmd := range cmds {
		for i, raw := range cmd.Val() {
			byName[fields[shard][i]] = raw
		}
	}
	out := make([]any, len(page))
	for i, e := range page {
		out[i] = byName[e.Member]
	}
	return out, nil
}

// decodeBreach reads one value of a BreachKey hash.
func decodeBreach(raw any) (domain.Breach, error) {
	str, ok := raw.(string)
	if !ok {
		return domain.Breach{}, errors.New("store: a breach in the index has no details")
	}
	var b domain.Breach
	if err := json.Unmarshal([]byte(str), &b); err != nil {
		return domain.Breach{}, fmt.Errorf("store: decode breach: %w", err)
	}
	return b, nil
}
