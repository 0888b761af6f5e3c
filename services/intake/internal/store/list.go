package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/redisx"
	"github.com/whistle-dispatch/whistle/services/intake/internal/domain"
)

// ErrCursorGone means a page cursor names an issue the area's list no longer holds, as after a
// reset of the view.
var ErrCursorGone = errors.New("the page cursor is no longer in the list")

// scanBatch is how many issues of each shard of a list one round trip reads while filling a page,
// and how many a page takes from their merge before it reads their documents.
const scanBatch = 100

// Query selects one page of an area's issues, newest first.
type Query struct {
	AreaID     string
	Status     domain.Status // empty: any
	CategoryID string        // empty: any
	After      string        // the last case number of the previous page; empty: from the newest
	Limit      int
}

// matches reports whether a raised issue passes the query's filters.
func (q Query) matches(is *domain.Issue) bool {
	return is.Raised() && (q.Status == "" || is.Status == q.Status) && (q.CategoryID == "" || is.CategoryID == q.CategoryID)
}

// List returns up to q.Limit issues of the area that pass the filters, and the case number to
// continue after, empty when no more pass them. The list's shards are read as one, newest first
// (redisx.ZMergeDesc), and a page resumes after the place of the previous page's last issue in
// that order, so issues raised while a caller pages only add to the top and none is seen twice or
// skipped.
func (s *Store) List(ctx context.Context, q Query) ([]*domain.Issue, string, error) {
	var from *redisx.ZEntry
	if q.After != "" {
		score, err := s.rdb.ZScore(ctx, ListKey(q.AreaID, eventlog.Partition(q.After)), q.After).Result()
		if errors.Is(err, redis.Nil) {
			return nil, "", ErrCursorGone
		}
		if err != nil {
			return nil, "", fmt.Errorf("store: list %s: %w", q.AreaID, err)
		}
		from = &redisx.ZEntry{Score: int64(score), Member: q.After}
	}
	var page []*domain.Issue
	err := redisx.ZMergeDesc(ctx, s.rdb, listKeys(q.AreaID), from, scanBatch, func(chunk []redisx.ZEntry) (bool, error) {
		ids := make([]string, len(chunk))
		for i, e := range chunk {
			ids[i] = e.Member
		}
		docs, err := s.getAll(ctx, ids)
		if err != nil {
			return false, err
		}
		for i, data := range docs {
			if data == nil {
				// Indexed but not stored: the index is written in the same pipeline as the
				// document, so this is a raise whose document is still on its way (on a cluster
				// they go to different masters at once), or a partial wipe.
				continue
			}
			is, err := s.Decode(ids[i], data)
			if err != nil {
				return false, err
			}
			if q.matches(is) {
				// One more than the page holds says whether another page follows.
				if page = append(page, is); len(page) > q.Limit {
					return false, nil
				}
			}
		}
		return true, nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("store: list %s: %w", q.AreaID, err)
	}
	if len(page) <= q.Limit {
		return page, "", nil
	}
	return page[:q.Limit], page[q.Limit-1].ID, nil
}

// getAll reads the documents of issues in one pipeline: an MGET would name keys of many slots,
// which a cluster refuses, while a pipeline of GETs goes to each master in one round trip. A
// document that is missing reads as nil.
func (s *Store) getAll(ctx context.Context, ids []string) ([][]byte, error) {
	cmds := make([]*redis.StringCmd, len(ids))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.Get(ctx, IssueKey(id))
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make([][]byte, len(ids))
	for i, cmd := range cmds {
		raw, err := cmd.Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[i] = raw
	}
	return out, nil
}
