package scorecard

import (
	"context"
	"fmt"
	"strconv"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
)

// readBatch is how many parts' facts one HMGET asks for; a period's parts are read in as many
// HMGETs as that takes, all in one pipeline.
const readBatch = 1000

// Reader reads the facts of the parts dispatched in a period. It never writes.
type Reader struct {
	rdb redis.UniversalClient
}

// NewReader returns a reader on rdb.
func NewReader(rdb redis.UniversalClient) *Reader { return &Reader{rdb: rdb} }

// Sample is what a query reads: the parts of one index dispatched in the period, and the
// whistles blown in each street asked for.
type Sample struct {
	Parts    []Part
	Whistles map[string]int
}

// Read returns the parts the index holds that were dispatched in [from, until), and the issues
// raised in each of streets in that period. from and until are taken to the millisecond, which is
// how the indexes score: a time t lies in the period exactly when its millisecond does.
//
// It takes two round trips on one server (one pipeline per master on a cluster each): the first
// reads the names of the parts in the period from every shard of the index, and counts the
// whistles; the second reads the parts' facts from the shards' hashes.
func (r *Reader) Read(ctx context.Context, x Index, streets []string, from, until time.Time) (Sample, error) {
	lo := strconv.FormatInt(from.UnixMilli(), 10)
	hi := "(" + strconv.FormatInt(until.UnixMilli(), 10)
	names := make([]*redis.StringSliceCmd, eventlog.Partitions)
	counts := map[string][]*redis.IntCmd{}
	if _, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for n := range names {
			names[n] = p.ZRangeArgs(ctx, redis.ZRangeArgs{Key: x.key(n), Start: lo, Stop: hi, ByScore: true})
		}
		for _, s := range streets {
			for n := range eventlog.Partitions {
				counts[s] = append(counts[s], p.ZCount(ctx, raisedKey(s, n), lo, hi))
			}
		}
		return nil
	}); err != nil {
		return Sample{}, fmt.Errorf("scorecard: read the period's parts: %w", err)
	}
	out := Sample{Whistles: map[string]int{}}
	for s, cmds := range counts {
		for _, cmd := range cmds {
			out.Whistles[s] += int(cmd.Val())
		}
	}
	var facts []*redis.SliceCmd
	if _, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for n, cmd := range names {
			all := cmd.Val()
			for len(all) > 0 {
				batch := all[:min(len(all), readBatch)]
				all = all[len(batch):]
				facts = append(facts, p.HMGet(ctx, partsKey(n), batch...))
			}
		}
		return nil
	}); err != nil {
		return Sample{}, fmt.Errorf("scorecard: read the period's parts: %w", err)
	}
	for _, cmd := range facts {
		for _, raw := range cmd.Val() {
			s, ok := raw.(string)
			if !ok {
				continue // withdrawn or wiped since the index was read
			}
			var p Part
			if err := json.Unmarshal([]byte(s), &p); err != nil {
				return Sample{}, fmt.Errorf("scorecard: decode a part: %w", err)
			}
			out.Parts = append(out.Parts, p)
		}
	}
	return out, nil
}
