package redisx_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/redisx"
	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
)

func TestAShardedSortedSetIsWalkedAsOneKeyFromAnyPlace(t *testing.T) {
	rdb := redistest.Client(t, redistest.Run(t))
	ctx := context.Background()
	// 300 members over 5 shards and one key holding them all, with many scores shared (ties are
	// ordered by member, in reverse) and a shard left empty.
	shards := []string{"z:{0}", "z:{1}", "z:{2}", "z:{3}", "z:{4}"}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		z := redis.Z{Score: float64(rng.IntN(40)), Member: fmt.Sprintf("m%03d", i)}
		if err := rdb.ZAdd(ctx, shards[rng.IntN(len(shards)-1)], z).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.ZAdd(ctx, "z:all", z).Err(); err != nil {
			t.Fatal(err)
		}
	}
	all, err := rdb.ZRevRangeWithScores(ctx, "z:all", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := make([]string, len(all))
	for i, z := range all {
		want[i] = z.Member.(string)
	}
	walk := func(from *redisx.ZEntry, batch int) []string {
		var got []string
		err := redisx.ZMergeDesc(ctx, rdb, shards, from, batch, func(chunk []redisx.ZEntry) (bool, error) {
			if len(chunk) > batch {
				t.Fatalf("a chunk of %d entries, batch %d", len(chunk), batch)
			}
			for _, e := range chunk {
				if n, err := rdb.ZScore(ctx, shards[e.Shard], e.Member).Result(); err != nil || int64(n) != e.Score {
					t.Fatalf("%s is not in shard %d with score %d: %v, %v", e.Member, e.Shard, e.Score, n, err)
				}
				got = append(got, e.Member)
			}
			return true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, batch := range []int{1, 7, 64, 500} {
		if got := walk(nil, batch); !slices.Equal(got, want) {
			t.Fatalf("batch %d: the walk from the top differs from one key's order:\n%v\nwant\n%v", batch, got, want)
		}
		for _, at := range []int{0, 1, 99, 150, 298, 299} {
			from := &redisx.ZEntry{Score: int64(all[at].Score), Member: want[at]}
			if got := walk(from, batch); !slices.Equal(got, want[at+1:]) {
				t.Fatalf("batch %d: the walk after %s (place %d) differs from one key's order after it", batch, want[at], at)
			}
		}
	}
	// A walk within bounds of scores, from the top or from a place, takes what one key's range
	// holds, whatever the shards hold beyond them.
	lo, hi := int64(10), int64(25)
	var within []string
	for _, z := range all {
		if int64(z.Score) >= lo && int64(z.Score) <= hi {
			within = append(within, z.Member.(string))
		}
	}
	walkWithin := func(from *redisx.ZEntry, batch int) []string {
		var got []string
		if err := redisx.ZMergeDescWithin(ctx, rdb, shards, redisx.ZBounds{Min: &lo, Max: &hi}, from, batch, func(chunk []redisx.ZEntry) (bool, error) {
			for _, e := range chunk {
				got = append(got, e.Member)
			}
			return true, nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, batch := range []int{1, 7, 500} {
		if got := walkWithin(nil, batch); !slices.Equal(got, within) || len(within) == 0 {
			t.Fatalf("batch %d: the walk within [%d, %d] differs from one key's range:\n%v\nwant\n%v", batch, lo, hi, got, within)
		}
		at := len(within) / 2
		i := slices.Index(want, within[at])
		from := &redisx.ZEntry{Score: int64(all[i].Score), Member: within[at]}
		if got := walkWithin(from, batch); !slices.Equal(got, within[at+1:]) {
			t.Fatalf("batch %d: the walk within bounds after %s differs from one key's range after it", batch, within[at])
		}
		// A place above the range starts at its top.
		top := &redisx.ZEntry{Score: int64(all[0].Score), Member: want[0]}
		if got := walkWithin(top, batch); !slices.Equal(got, within) {
			t.Fatalf("batch %d: the walk within bounds after a place above them skips some", batch)
		}
	}
	// A walk stops when told to.
	var taken int
	if err := redisx.ZMergeDesc(ctx, rdb, shards, nil, 10, func(chunk []redisx.ZEntry) (bool, error) {
		taken += len(chunk)
		return false, nil
	}); err != nil || taken != 10 {
		t.Fatalf("a walk told to stop after one chunk took %d entries (%v), want 10", taken, err)
	}
}

func TestAShardedSortedSetIsWalkedLowestFirstAsOneKeyFromAnyPlace(t *testing.T) {
	rdb := redistest.Client(t, redistest.Run(t))
	ctx := context.Background()
	// 200 members over 4 shards and one key holding them all, many scores shared (ties are
	// ordered by member) and a shard left empty.
	shards := []string{"a:{0}", "a:{1}", "a:{2}", "a:{3}"}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 200 {
		z := redis.Z{Score: float64(rng.IntN(30)), Member: fmt.Sprintf("m%03d", rng.IntN(1000)*1000+i)}
		if err := rdb.ZAdd(ctx, shards[rng.IntN(len(shards)-1)], z).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.ZAdd(ctx, "a:all", z).Err(); err != nil {
			t.Fatal(err)
		}
	}
	all, err := rdb.ZRangeWithScores(ctx, "a:all", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := make([]string, len(all))
	for i, z := range all {
		want[i] = z.Member.(string)
	}
	walk := func(from *redisx.ZEntry, batch int) []string {
		var got []string
		if err := redisx.ZMergeAsc(ctx, rdb, shards, from, batch, func(chunk []redisx.ZEntry) (bool, error) {
			if len(chunk) > batch {
				t.Fatalf("a chunk of %d entries, batch %d", len(chunk), batch)
			}
			for _, e := range chunk {
				got = append(got, e.Member)
			}
			return true, nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, batch := range []int{1, 7, 64, 500} {
		if got := walk(nil, batch); !slices.Equal(got, want) {
			t.Fatalf("batch %d: the walk from the bottom differs from one key's order:\n%v\nwant\n%v", batch, got, want)
		}
		for _, at := range []int{0, 1, 99, 198, 199} {
			from := &redisx.ZEntry{Score: int64(all[at].Score), Member: want[at]}
			if got := walk(from, batch); !slices.Equal(got, want[at+1:]) {
				t.Fatalf("batch %d: the walk after %s (place %d) differs from one key's order after it", batch, want[at], at)
			}
		}
	}
}
