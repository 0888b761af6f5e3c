package redisx

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

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
