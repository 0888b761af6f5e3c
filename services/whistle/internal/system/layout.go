package system

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/redisx"
)

// KeyLayouts is the version of each service's Redis keys: which keys it keeps and what they hold.
// A change that moves or reshapes a service's keys raises its version here, so that a Whistle
// never reads views written in another layout (it would show them wrong, or not at all) and asks
// for them to be rebuilt instead. Version 1 is the layout of every service before versions were
// recorded. Intake's is 2 since its area lists were sharded by partition; routing's is 2 since it
// keeps the desk's queue, the open issues by place and the returns per department, and 3 since its
// assignments hold the extension requests, which a supervisor's decision needs, and 4 since it
// keeps each return under its issue and sequence (routing:returned) rather than a count per
// department, which a fold run again counted twice; escalation's is 2
// since it keeps the scorecards' facts of every part (escalation:score:*), and 3 since each unit's
// part holds its role, its pending extension request and its decisions, and each issue the keys
// of its urges, 4 since its breaches are announced in one feed for every scope
// (escalation:feed:{breaches}) instead of a feed per area and department, and 5 since its
// breaches view and its scorecards read each breach's details and each part's facts from the
// issue's document (which keeps an ended part's breaches when its unit is summoned again) instead
// of hashes of copies beside it, and 6 since it keeps an index of the extension requests that wait
// for a decision (escalation:extensions:*), which a Redis written before lacks.
var KeyLayouts = map[string]int{
	"intake":     2,
	"routing":    4,
	"department": 1,
	"escalation": 6,
}

// layoutKey holds the version of the layout a service's keys were written in.
func layoutKey(service string) string { return service + ":layout" }

// ErrOtherLayout means a service's keys in Redis were written in another layout than this
// Whistle's: `whistle replay` rebuilds them in this one.
var ErrOtherLayout = errors.New("the service's views in Redis were written in another key layout")

// checkLayout makes sure a service's keys in Redis are in the layout this Whistle writes: it
// records the layout when Redis holds none of the service's keys, accepts the keys of a Redis
// that records this layout (or, recording none, holds keys of layout 1 when that is the service's
// layout), and refuses any other with ErrOtherLayout, saying how to rebuild.
func checkLayout(ctx context.Context, rdb redis.UniversalClient, service string) error {
	want := KeyLayouts[service]
	got, err := rdb.Get(ctx, layoutKey(service)).Int()
	switch {
	case errors.Is(err, redis.Nil):
		found, err := hasKeys(ctx, rdb, service+":")
		switch {
		case err != nil:
			return fmt.Errorf("system: %s: key layout: %w", service, err)
		case found:
			got = 1 // written before layouts were recorded
		default:
			got = want // nothing written yet
		}
	case err != nil:
		return fmt.Errorf("system: %s: key layout: %w", service, err)
	}
	if got != want {
		return fmt.Errorf("system: %s: Redis holds its views in key layout %d and this Whistle reads layout %d; "+
			"rebuild them from the stream with `whistle replay` (same data folder, or WHISTLE_REDIS_URL): %w", service, got, want, ErrOtherLayout)
	}
	return recordLayout(ctx, rdb, service)
}

// recordLayout records that a service's keys are in this Whistle's layout.
func recordLayout(ctx context.Context, rdb redis.UniversalClient, service string) error {
	if err := rdb.Set(ctx, layoutKey(service), strconv.Itoa(KeyLayouts[service]), 0).Err(); err != nil {
		return fmt.Errorf("system: %s: record the key layout: %w", service, err)
	}
	return nil
}

// hasKeys reports whether any master holds a key beginning with prefix.
func hasKeys(ctx context.Context, rdb redis.UniversalClient, prefix string) (bool, error) {
	var found atomic.Bool // a cluster's masters are scanned at once
	err := redisx.ForEachMaster(ctx, rdb, func(ctx context.Context, server *redis.Client) error {
		iter := server.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		if iter.Next(ctx) {
			found.Store(true)
		}
		return iter.Err()
	})
	return found.Load(), err
}
