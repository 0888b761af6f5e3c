package store

import (
	"context"
	"fmt"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
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
	var from *redisx.ZEntry
	if after != (Cursor{}) {
		from = &redisx.ZEntry{Score: after.Score, Member: after.Member}
	}
	keys := make([]string, eventlog.Partitions)
	for i := range keys {
		keys[i] = extensionsShard(i)
	}
	var out []domain.PendingExtension
	var cursors []Cursor
	err := redisx.ZMergeAsc(ctx, s.rdb, keys, from, scanBatch, func(page []redisx.ZEntry) (bool, error) {
		issues := make([]string, len(page))
		for i, e := range page {
			issues[i] = domain.IssueOfListName(e.Member)
		}
		states, err := s.LoadAll(ctx, issues)
		if err != nil {
			return false, err
		}
		for i, e := range page {
			p, ok := states[issues[i]].PendingExtensionNamed(e.Member)
			if ok && keep(p) {
				out = append(out, p)
				cursors = append(cursors, Cursor{Score: e.Score, Member: e.Member})
			}
		}
		return len(out) <= limit, nil
	})
	if err != nil {
		return nil, Cursor{}, fmt.Errorf("store: pending extensions: %w", err)
	}
	if len(out) <= limit {
		return out, Cursor{}, nil
	}
	return out[:limit], cursors[limit-1], nil
}
