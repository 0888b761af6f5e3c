package scorecard

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
)

// readBatch is how many issues' documents one call of Facts reads: a period's are read a batch at a
// time, so that a year of the city's issues is never in memory as whole documents at once.
const readBatch = 1000

// Facts reads the scorecards' facts of issues from their documents, by issue: the parts' facts
// are the documents', which the reader takes instead of a copy of each part written beside them,
// so that every event that changes a part writes it once. An issue it finds no document of is
// left out.
type Facts func(ctx context.Context, issueIDs []string) (map[string]*Issue, error)

// Reader reads the facts of the parts dispatched in a period. It never writes.
type Reader struct {
	rdb   redis.UniversalClient
	facts Facts
}

// NewReader returns a reader of the indexes on rdb and of the facts by facts.
func NewReader(rdb redis.UniversalClient, facts Facts) *Reader {
	return &Reader{rdb: rdb, facts: facts}
}

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
// It reads the names of the parts in the period from every shard of the index, and counts the
// whistles, in one round trip on one server (one pipeline per master on a cluster); then the
// documents of the parts' issues, in one more for each readBatch of them.
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
	var parts, issues []string
	seen := map[string]bool{}
	for _, cmd := range names {
		for _, name := range cmd.Val() {
			parts = append(parts, name)
			if id := issueOfPart(name); !seen[id] {
				seen[id] = true
				issues = append(issues, id)
			}
		}
	}
	facts := make(map[string]*Issue, len(issues))
	for batch := range slices.Chunk(issues, readBatch) {
		got, err := r.facts(ctx, batch)
		if err != nil {
			return Sample{}, fmt.Errorf("scorecard: read the period's parts: %w", err)
		}
		for id, is := range got {
			facts[id] = is // its facts alone: the rest of each document is let go batch by batch
		}
	}
	for _, name := range parts {
		if p := facts[issueOfPart(name)].partNamed(name); p != nil && !p.Withdrawn {
			out.Parts = append(out.Parts, *p) // a part withdrawn or wiped since the index was read is left out
		}
	}
	return out, nil
}
