package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// LeaseKey names the timer loop's lease: whoever holds it fires the timers.
const LeaseKey = Prefix + "timers:lease"

// renew extends the lease only for its holder.
var renew = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)

// release gives the lease up only for its holder.
var release = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0`)

// Lease is one replica's claim on firing the timers. It saves replicas from duplicating work; it
// does not make firing safe, which the conditional append does, so an expired or stolen lease is
// harmless.
type Lease struct {
	rdb   redis.UniversalClient
	token string
	ttl   time.Duration
}

// NewLease returns a claim with a fresh token that, once held, expires ttl after its last renewal.
func NewLease(rdb redis.UniversalClient, ttl time.Duration) *Lease {
	return &Lease{rdb: rdb, token: rand.Text(), ttl: ttl}
}

// Hold renews the lease if this claim holds it and takes it if nobody does; it reports whether
// this claim holds it now.
func (l *Lease) Hold(ctx context.Context) (bool, error) {
	n, err := renew.Run(ctx, l.rdb, []string{LeaseKey}, l.token, l.ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("store: renew lease: %w", err)
	}
	if n == 1 {
		return true, nil
	}
	err = l.rdb.SetArgs(ctx, LeaseKey, l.token, redis.SetArgs{Mode: "NX", TTL: l.ttl}).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: take lease: %w", err)
	}
	return true, nil
}

// Release gives the lease up if this claim holds it, so another replica can take over at once.
func (l *Lease) Release(ctx context.Context) error {
	return release.Run(ctx, l.rdb, []string{LeaseKey}, l.token).Err()
}
