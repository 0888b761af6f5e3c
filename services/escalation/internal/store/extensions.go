package store

import (
	"context"
	"fmt"

	"github.com/whistle-dispatch/whistle/pkg/redisx"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/domain"
)

// PendingExtensions returns up to limit pending extension requests that keep accepts, oldest
// first, starting after the cursor (the zero Cursor: from the oldest), and the cursor of the last
// one when more may follow (the zero Cursor when none do).
//
// The index is sharded by partition, like the breaches; redisx.ZMergeAsc reads it as one, so a
// cursor is a place in one order whichever shard a request is in. Each request's details are read
// from its issue's document, and one the document no longer holds pending (the index ran ahead of
// it on a cluster, or it was quarantined since) is passed over.
func (s *Store) PendingExtensions(ctx context.Context, after Cursor, limit int, keep func(domain.PendingExtension) bool) ([]domain.PendingExtension, Cursor, error) {
	walk := func(from *redisx.ZEntry, visit func([]redisx.ZEntry) (bool, error)) error {
		return redisx.ZMergeAsc(ctx, s.rdb, shards(extensionsShard), from, scanBatch, visit)
	}
	out, next, err := listed(ctx, s, walk, after, limit, (*domain.Issue).PendingExtensionNamed, keep)
	if err != nil {
		return nil, Cursor{}, fmt.Errorf("store: pending extensions: %w", err)
	}
	return out, next, nil
}
