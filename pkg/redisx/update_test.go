package redisx_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/redisx"
	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
)

func increment(ctx context.Context, rdb redis.UniversalClient, key string) error {
	return redisx.Update(ctx, rdb, key, func(current []byte, tx redis.Pipeliner) ([]byte, error) {
		n, _ := strconv.Atoi(string(current))
		tx.SAdd(ctx, key+":seen", n+1)
		return []byte(strconv.Itoa(n + 1)), nil
	})
}

func TestConcurrentUpdatesOfOneKeyLoseNoWrite(t *testing.T) {
	rdb := redistest.Client(t, redistest.Run(t))
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if err := increment(ctx, rdb, "counter"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got, _ := rdb.Get(ctx, "counter").Int(); got != 20 {
		t.Fatalf("counter = %d, want 20", got)
	}
	if n, _ := rdb.SCard(ctx, "counter:seen").Result(); n != 20 {
		t.Fatalf("the writes queued beside the value ran %d times, want 20", n)
	}
}

func TestAnUpdateThatFailsOrChangesNothingWritesNothingAndLeavesTheConnectionUsable(t *testing.T) {
	// One pooled connection, so whatever an update leaves on it meets the next transaction.
	s := redistest.Run(t)
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr(), PoolSize: 1})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	refused := errors.New("refused")
	if err := redisx.Update(ctx, rdb, "k", func([]byte, redis.Pipeliner) ([]byte, error) { return nil, refused }); !errors.Is(err, refused) {
		t.Fatalf("err = %v, want the function's error", err)
	}
	if err := redisx.Update(ctx, rdb, "k", func([]byte, redis.Pipeliner) ([]byte, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if rdb.Exists(ctx, "k").Val() != 0 {
		t.Fatal("a failed or empty update wrote the key")
	}
	// Another client changes the key; the next plain transaction on the pooled connection
	// must still commit.
	other := redistest.Client(t, s)
	if err := other.Set(ctx, "k", "5", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "k", "6", 0)
		return nil
	}); err != nil {
		t.Fatalf("a transaction after the updates failed: %v", err)
	}
}
