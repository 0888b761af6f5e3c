package redisx

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// ZEntry is a member of a sorted set sharded over several keys, with its score and the index of
// the shard that holds it.
type ZEntry struct {
	Score  int64
	Member string
	Shard  int
}

// Before reports whether e comes before o highest first: a higher score, or within one score a
// member that sorts after o's, as ZREVRANGE orders the members of one key.
func (e ZEntry) Before(o ZEntry) bool {
	return e.Score > o.Score || e.Score == o.Score && e.Member > o.Member
}

// zShard is where a walk stands in one shard.
type zShard struct {
	batch  []ZEntry // read and not yet taken, in the walk's order
	offset int64    // how many the shard has given from the walk's start
	done   bool     // the shard has nothing after batch
}

// ZMergeDesc walks a sorted set sharded over keys (one score order, the members spread over the
// keys) as if it were one key read with ZREVRANGE: highest score first, members of one score in
// reverse order, starting after from (nil: at the highest). It reads a batch of each shard at a
// time, all in one pipeline (one round trip on one server, one per master on a cluster), and
// takes from the merge only while every shard that may hold more has some in hand, so that no
// member is passed over for a lower one of another shard. visit receives the merge in chunks of at
// most batch entries, and returns whether to go on; the walk ends when it says no or every shard
// is exhausted. An entry's place in the merge is the same whichever shard holds it, so the last
// entry a caller took is a cursor to resume from.
func ZMergeDesc(ctx context.Context, rdb redis.Cmdable, keys []string, from *ZEntry, batch int,
	visit func(chunk []ZEntry) (more bool, err error)) error {
	return ZMergeDescWithin(ctx, rdb, keys, ZBounds{}, from, batch, visit)
}

// ZBounds limits a walk to the scores from Min to Max, both included; nil leaves that side open.
type ZBounds struct{ Min, Max *int64 }

// ZMergeDescWithin is ZMergeDesc over the members whose scores lie within bounds: each shard is
// read only between them, so a walk over a narrow range of scores reads that range alone.
func ZMergeDescWithin(ctx context.Context, rdb redis.Cmdable, keys []string, bounds ZBounds, from *ZEntry, batch int,
	visit func(chunk []ZEntry) (more bool, err error)) error {
	return zMerge(ctx, rdb, keys, bounds, from, batch, false, visit)
}

// ZMergeAsc is ZMergeDesc the other way round, as if the sharded set were one key read with
// ZRANGE: lowest score first, members of one score in order, starting after from (nil: at the
// lowest). A list that shows what has waited longest first walks its index this way.
func ZMergeAsc(ctx context.Context, rdb redis.Cmdable, keys []string, from *ZEntry, batch int,
	visit func(chunk []ZEntry) (more bool, err error)) error {
	return zMerge(ctx, rdb, keys, ZBounds{}, from, batch, true, visit)
}

// After reports whether e comes after o lowest first: a higher score, or within one score a
// member that sorts after o's, as ZRANGE orders the members of one key.
func (e ZEntry) After(o ZEntry) bool {
	return e.Score > o.Score || e.Score == o.Score && e.Member > o.Member
}

// zMerge walks the sharded set within bounds, highest first or, asc, lowest first (see
// ZMergeDesc and ZMergeAsc).
func zMerge(ctx context.Context, rdb redis.Cmdable, keys []string, bounds ZBounds, from *ZEntry, batch int, asc bool,
	visit func(chunk []ZEntry) (more bool, err error)) error {
	first := ZEntry.Before // whether a comes before b in the walk
	if asc {
		first = func(a, b ZEntry) bool { return b.After(a) }
	}
	maxScore, minScore := "+inf", "-inf"
	if bounds.Max != nil {
		maxScore = strconv.FormatInt(*bounds.Max, 10)
	}
	if bounds.Min != nil {
		minScore = strconv.FormatInt(*bounds.Min, 10)
	}
	// A place to resume after narrows the range on its side (its score read again, since members
	// of its score may follow it).
	if from != nil && !asc && (bounds.Max == nil || from.Score < *bounds.Max) {
		maxScore = strconv.FormatInt(from.Score, 10)
	}
	if from != nil && asc && (bounds.Min == nil || from.Score > *bounds.Min) {
		minScore = strconv.FormatInt(from.Score, 10)
	}
	shards := make([]zShard, len(keys))
	for {
		if err := readZShards(ctx, rdb, keys, shards, maxScore, minScore, batch, asc); err != nil {
			return err
		}
		var chunk []ZEntry
		for len(chunk) < batch {
			next := -1
			for i, sh := range shards {
				if len(sh.batch) == 0 && !sh.done {
					next = -1 // this shard's next entry may come first: read it before taking any
					break
				}
				if len(sh.batch) > 0 && (next < 0 || first(sh.batch[0], shards[next].batch[0])) {
					next = i
				}
			}
			if next < 0 {
				break
			}
			e := shards[next].batch[0]
			shards[next].batch = shards[next].batch[1:]
			if from != nil && !first(*from, e) {
				continue // at or before the place to resume after (its score read from its own)
			}
			chunk = append(chunk, e)
		}
		if len(chunk) > 0 {
			more, err := visit(chunk)
			if err != nil || !more {
				return err
			}
			continue
		}
		if zExhausted(shards) {
			return nil
		}
	}
}

// readZShards reads the next batch, in the walk's order between maxScore and minScore, of every
// shard that has run out of what it read and may hold more, in one pipeline.
func readZShards(ctx context.Context, rdb redis.Cmdable, keys []string, shards []zShard, maxScore, minScore string, batch int, asc bool) error {
	cmds := map[int]*redis.ZSliceCmd{}
	pipe := rdb.Pipeline()
	for i, sh := range shards {
		if len(sh.batch) == 0 && !sh.done {
			args := redis.ZRangeArgs{Key: keys[i], Start: maxScore, Stop: minScore, ByScore: true, Rev: true, Offset: sh.offset, Count: int64(batch)}
			if asc {
				args.Start, args.Stop, args.Rev = minScore, maxScore, false
			}
			cmds[i] = pipe.ZRangeArgsWithScores(ctx, args)
		}
	}
	if len(cmds) == 0 {
		pipe.Discard()
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redisx: read sharded sorted set: %w", err)
	}
	for i, cmd := range cmds {
		zs := cmd.Val()
		sh := &shards[i]
		sh.offset += int64(len(zs))
		sh.done = len(zs) < batch
		for _, z := range zs {
			sh.batch = append(sh.batch, ZEntry{Score: int64(z.Score), Member: z.Member.(string), Shard: i})
		}
	}
	return nil
}

// zExhausted reports whether every shard has given all it holds.
func zExhausted(shards []zShard) bool {
	for _, sh := range shards {
		if len(sh.batch) > 0 || !sh.done {
			return false
		}
	}
	return true
}
