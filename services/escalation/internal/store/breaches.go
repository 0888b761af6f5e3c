package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
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

// shardScan is where a listing stands in one shard of the breaches.
type shardScan struct {
	batch  []Cursor // read and not yet taken, newest first
	offset int64    // how many the shard has given from the listing's start
	done   bool     // the shard has nothing after batch
}

// newer reports whether a comes before b newest first: a later millisecond, or within one a name
// that sorts after b's, as Redis orders the members of a sorted set that share a score in reverse.
func newer(a, b Cursor) bool {
	return a.Score > b.Score || a.Score == b.Score && a.Member > b.Member
}

// Breaches returns up to limit breaches that keep accepts, newest first, starting after the cursor
// (the zero Cursor: from the newest), and the cursor of the last one when more may follow (the
// zero Cursor when none do).
//
// The breaches are sharded by partition, so it reads every shard from the cursor on, a batch of
// each at a time in one pipeline, and merges them, taking from the merge only while every shard
// that may hold more has some in hand: a breach is never passed over for an older one of another
// shard. A cursor is a place in that merged order, which is the same whichever shard a breach is in.
func (s *Store) Breaches(ctx context.Context, after Cursor, limit int, keep func(domain.Breach) bool) ([]domain.Breach, Cursor, error) {
	maxScore, resume := "+inf", after != Cursor{}
	if resume {
		maxScore = strconv.FormatInt(after.Score, 10)
	}
	shards := make([]shardScan, eventlog.Partitions)
	var out []domain.Breach
	var cursors []Cursor
	for len(out) <= limit {
		if err := s.readShards(ctx, shards, maxScore); err != nil {
			return nil, Cursor{}, err
		}
		// Take the merge's next entries, each with its shard.
		var page []Cursor
		var from []int
		for len(page) < scanBatch {
			next := -1
			for i, sh := range shards {
				if len(sh.batch) == 0 && !sh.done {
					next = -1 // this shard's next entry may be the newest: read it first
					break
				}
				if len(sh.batch) > 0 && (next < 0 || newer(sh.batch[0], shards[next].batch[0])) {
					next = i
				}
			}
			if next < 0 {
				break
			}
			c := shards[next].batch[0]
			shards[next].batch = shards[next].batch[1:]
			// Breaches at the cursor's own millisecond are ordered by name, descending.
			if resume && c.Score == after.Score && c.Member >= after.Member {
				continue
			}
			page, from = append(page, c), append(from, next)
		}
		if len(page) == 0 {
			if exhausted(shards) {
				break
			}
			continue
		}
		details, err := s.breachDetails(ctx, page, from)
		if err != nil {
			return nil, Cursor{}, err
		}
		for i, raw := range details {
			if raw == nil {
				continue // wiped meanwhile
			}
			b, err := decodeBreach(raw)
			if err != nil {
				return nil, Cursor{}, err
			}
			if keep(b) {
				out = append(out, b)
				cursors = append(cursors, page[i])
			}
		}
	}
	if len(out) <= limit {
		return out, Cursor{}, nil
	}
	return out[:limit], cursors[limit-1], nil
}

// readShards reads the next batch, from maxScore down, of every shard that has run out of the
// breaches it read and may hold more, in one pipeline.
func (s *Store) readShards(ctx context.Context, shards []shardScan, maxScore string) error {
	cmds := map[int]*redis.ZSliceCmd{}
	pipe := s.rdb.Pipeline()
	for i, sh := range shards {
		if len(sh.batch) == 0 && !sh.done {
			cmds[i] = pipe.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{
				Key: breachesShard(i), Start: maxScore, Stop: "-inf", ByScore: true, Rev: true, Offset: sh.offset, Count: scanBatch,
			})
		}
	}
	if len(cmds) == 0 {
		pipe.Discard()
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("store: breaches: %w", err)
	}
	for i, cmd := range cmds {
		zs := cmd.Val()
		sh := &shards[i]
		sh.offset += int64(len(zs))
		sh.done = len(zs) < scanBatch
		for _, z := range zs {
			sh.batch = append(sh.batch, Cursor{Score: int64(z.Score), Member: z.Member.(string)})
		}
	}
	return nil
}

// exhausted reports whether every shard has given all it holds.
func exhausted(shards []shardScan) bool {
	for _, sh := range shards {
		if len(sh.batch) > 0 || !sh.done {
			return false
		}
	}
	return true
}

// breachDetails reads the details of the breaches of page, each from the shard from names, in one
// pipeline; a breach whose details are gone reads as nil.
func (s *Store) breachDetails(ctx context.Context, page []Cursor, from []int) ([]any, error) {
	fields := map[int][]string{}
	for i, c := range page {
		fields[from[i]] = append(fields[from[i]], c.Member)
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
	for i, c := range page {
		out[i] = byName[c.Member]
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
