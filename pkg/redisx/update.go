package redisx

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// MaxUpdateAttempts bounds how often Update retries when the key changed under it.
const MaxUpdateAttempts = 64

// ErrContended means Update gave up after MaxUpdateAttempts lost races on one key.
var ErrContended = errors.New("redisx: key too contended")

// Update is the one read-modify-write on a key: it reads the key's current value (nil when
// missing), lets fn compute the next value and queue further writes on tx, and commits the value
// and those writes in one MULTI, only if the key did not change meanwhile (WATCH); otherwise it
// reads again and retries. fn may return a nil value to leave the key as it is, and must have no
// effect outside tx, since it may run more than once. On a Redis Cluster a transaction holds the
// keys of one slot only, so fn may write only keys that share key's hash tag.
func Update(ctx context.Context, rdb redis.UniversalClient, key string, fn func(current []byte, tx redis.Pipeliner) (next []byte, err error)) error {
	for range MaxUpdateAttempts {
		err := rdb.Watch(ctx, func(tx *redis.Tx) (err error) {
			// WATCH and GET travel in one round trip; EXEC then clears the watch, and an early
			// return clears it by hand so the pooled connection carries no stale watch.
			var get *redis.StringCmd
			if _, err := tx.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.Do(ctx, "WATCH", key)
				get = p.Get(ctx, key)
				return nil
			}); err != nil && !errors.Is(err, redis.Nil) {
				_ = tx.Unwatch(ctx).Err()
				return err
			}
			current, err := get.Bytes()
			if errors.Is(err, redis.Nil) {
				current, err = nil, nil
			}
			if err != nil {
				_ = tx.Unwatch(ctx).Err()
				return err
			}
			var queued int
			_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
				next, err := fn(current, pipe)
				if err != nil {
					return err
				}
				if next != nil {
					pipe.Set(ctx, key, next, 0)
				}
				queued = pipe.Len()
				return nil
			})
			if queued == 0 || (err != nil && !errors.Is(err, redis.TxFailedErr)) {
				_ = tx.Unwatch(ctx).Err() // no EXEC ran, or it may not have
			}
			return err
		})
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err != nil {
			return fmt.Errorf("update %s: %w", key, err)
		}
		return nil
	}
	return fmt.Errorf("update %s: %w", key, ErrContended)
}

// deleteBatch is how many keys one SCAN step asks for and one pipeline deletes.
const deleteBatch = 1000

// DeletePrefix deletes every key that begins with prefix, a batch at a time. On a cluster it
// scans each master, since SCAN sees only the keys of the server it is sent to, and deletes each
// key alone: one UNLINK of keys in several slots would be refused (CROSSSLOT), and the batch of
// single-key UNLINKs still travels as one pipeline to the master that holds them.
func DeletePrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) error {
	err := ForEachMaster(ctx, rdb, func(ctx context.Context, server *redis.Client) error {
		iter := server.Scan(ctx, 0, prefix+"*", deleteBatch).Iterator()
		batch := make([]string, 0, deleteBatch)
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			_, err := server.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range batch {
					p.Unlink(ctx, k)
				}
				return nil
			})
			batch = batch[:0]
			return err
		}
		for iter.Next(ctx) {
			if batch = append(batch, iter.Val()); len(batch) == cap(batch) {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		return flush()
	})
	if err != nil {
		return fmt.Errorf("delete %s*: %w", prefix, err)
	}
	return nil
}
