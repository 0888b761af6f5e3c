package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/services/escalation/internal/domain"
)

// Cursor marks the last breach of a page: the next page starts after it, newest first. The zero
// Cursor is the start, at the newest breach.
type Cursor struct {
	Score  int64  `json:"s"`
	Member string `json:"m"`
}

// scanBatch is how many breaches one round trip reads while looking for a page's matches.
const scanBatch = 256

// Breaches returns up to limit breaches that keep accepts, newest first, starting after the cursor
// (the zero Cursor: from the newest), and the cursor of the last one when more may follow (the
// zero Cursor when none do).
func (s *Store) Breaches(ctx context.Context, after Cursor, limit int, keep func(domain.Breach) bool) ([]domain.Breach, Cursor, error) {
	maxScore, resume := "+inf", after != Cursor{}
	if resume {
		maxScore = strconv.FormatInt(after.Score, 10)
	}
	var out []domain.Breach
	var cursors []Cursor
	for offset := int64(0); len(out) <= limit; {
		zs, err := s.rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{
			Key: BreachesKey, Start: maxScore, Stop: "-inf", ByScore: true, Rev: true, Offset: offset, Count: scanBatch,
		}).Result()
		if err != nil {
			return nil, Cursor{}, fmt.Errorf("store: breaches: %w", err)
		}
		if len(zs) == 0 {
			break
		}
		offset += int64(len(zs))
		var page []Cursor
		for _, z := range zs {
			c := Cursor{Score: int64(z.Score), Member: z.Member.(string)}
			// Breaches at the cursor's own millisecond are ordered by name, descending, as Redis does.
			if resume && c.Score == after.Score && c.Member >= after.Member {
				continue
			}
			page = append(page, c)
		}
		if len(page) == 0 {
			continue
		}
		fields := make([]string, len(page))
		for i, c := range page {
			fields[i] = c.Member
		}
		raws, err := s.rdb.HMGet(ctx, BreachKey, fields...).Result()
		if err != nil {
			return nil, Cursor{}, fmt.Errorf("store: breach details: %w", err)
		}
		for i, raw := range raws {
			if raw == nil {
				continue // wiped meanwhile
			}
			b, err := decodeBreach(raw)
			if err != nil {
				return nil, Cursor{}, err
			}
			if keep(b) {
				out = append(out, b)
				cursors = append(cursors, page[i])
			}
		}
	}
	if len(out) <= limit {
		return out, Cursor{}, nil
	}
	return out[:limit], cursors[limit-1], nil
}

// decodeBreach reads one value of BreachKey.
func decodeBreach(raw any) (domain.Breach, error) {
	str, ok := raw.(string)
	if !ok {
		return domain.Breach{}, errors.New("store: a breach in the index has no details")
	}
	var b domain.Breach
	if err := json.Unmarshal([]byte(str), &b); err != nil {
		return domain.Breach{}, fmt.Errorf("store: decode breach: %w", err)
	}
	return b, nil
}
