package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/redisx"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/domain"
)

// ReconcileBatch is how many issue documents one step of a reconciliation reads at once.
const ReconcileBatch = 500

// Mismatch is what a reconciliation found wrong with a timer.
type Mismatch string

const (
	// Missing is a timer the issue's state owes that the index does not hold: it would never fire.
	Missing Mismatch = "missing"
	// Late is a timer the index holds for a later time than the state owes: it would fire late.
	Late Mismatch = "late"
	// Behind is a timer of an issue whose state lacked events the stream stored more than
	// BehindGrace before: a write of the projection was lost (a Redis failover) and no fold was
	// coming to bring it up. The reconciliation takes those events itself.
	Behind Mismatch = "behind"
	// Lost is a timer of an issue the stream holds whose document Redis did not hold at all,
	// BehindGrace after its raise was stored: the document and its timers were lost together (a
	// Redis failover), so no timer was left to fire and no document to compare. The
	// reconciliation takes the issue's events from the stream, which writes both again.
	Lost Mismatch = "lost"
)

// BehindGrace is how long after the stream stored an event the reconciliation takes a state that
// lacks it for one whose write was lost, rather than one its consumer has yet to reach.
const BehindGrace = time.Minute

// Stream is what the reconciliation asks of the event log: the issues of a partition, an issue's
// last sequence, and to bring the projection up to a sequence.
type Stream interface {
	Issues(ctx context.Context, partition int) ([]string, error)
	Last(ctx context.Context, issueID string) (uint64, error)
	CatchupTo(ctx context.Context, p eventlog.Projection, issueID string, seq uint64) ([]eventlog.Record, error)
}

// Repair is a timer a reconciliation put back in the index, and what it found wrong.
type Repair struct {
	Timer    domain.Timer
	Mismatch Mismatch
}

// Reconcile compares the timers every issue's state owes with the index the timer loop reads,
// and puts back each timer the index misses or holds too late, at the time the state owes it; it
// calls repaired for each. The states are the fold of the stream, so this is the stream's word
// against the index's; the index is written with each fold (see fold), so a pass should find
// nothing, and what it finds is a write lost behind the projection's back (a failover that lost
// an acknowledged write, a hand on the keys). A timer the index holds and the state does not owe
// is left alone: the loop finds it owes nothing when it comes due and drops it.
//
// It reads every document, ReconcileBatch at a time from each Redis master, and never holds a
// lock: before it repairs a timer it reads the issue's document again, and repairs only when the
// document has not moved since the comparison and the stream holds nothing later. A state behind
// the stream is not judged: the stream's events are taken into it (a write conditional like the
// fold's, so racing the consumer is harmless), and the fold writes the index. That is no finding
// while the consumer may simply not have reached them (the loop drops a fired breach's timer
// before escalation's own fold of the breach; after a restart the projection may be far behind),
// but a state lacking events stored more than BehindGrace ago lost a write, and counts (Behind).
// A quarantined issue, whose timers are dropped on purpose, is skipped. Last, it asks the stream
// for every issue it holds and takes the events of any whose document Redis lacks (see Lost).
func (s *Store) Reconcile(ctx context.Context, stream Stream, repaired func(Repair)) error {
	err := redisx.ForEachMaster(ctx, s.rdb, func(ctx context.Context, server *redis.Client) error {
		iter := server.Scan(ctx, 0, s.Key("*"), ReconcileBatch).Iterator()
		batch := make([]string, 0, ReconcileBatch)
		for iter.Next(ctx) {
			if batch = append(batch, iter.Val()); len(batch) == cap(batch) {
				if err := s.reconcileBatch(ctx, server, batch, stream, repaired); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		return s.reconcileBatch(ctx, server, batch, stream, repaired)
	})
	if err != nil {
		return fmt.Errorf("store: reconcile timers: %w", err)
	}
	for p := range eventlog.Partitions {
		ids, err := stream.Issues(ctx, p)
		if err != nil {
			return fmt.Errorf("store: reconcile timers: %w", err)
		}
		for batch := range slices.Chunk(ids, ReconcileBatch) {
			if err := s.recoverLost(ctx, batch, stream, repaired); err != nil {
				return fmt.Errorf("store: reconcile timers: %w", err)
			}
		}
	}
	return nil
}

// recoverLost takes the stream's events into the documents of the issues that Redis does not
// hold, which writes them and their timers again, and reports each timer the recovered state owes
// as Lost, unless the issue's raise was stored within BehindGrace (its consumer may simply not
// have reached it yet).
func (s *Store) recoverLost(ctx context.Context, ids []string, stream Stream, repaired func(Repair)) error {
	held := make([]*redis.IntCmd, len(ids))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			held[i] = p.Exists(ctx, s.Key(id))
		}
		return nil
	}); err != nil {
		return err
	}
	for i, id := range ids {
		if held[i].Val() > 0 {
			continue
		}
		last, err := stream.Last(ctx, id)
		if err != nil {
			return err
		}
		recs, err := stream.CatchupTo(ctx, s, id, last)
		if err != nil {
			return err
		}
		if len(recs) == 0 || time.Since(recs[0].Time) <= BehindGrace {
			continue // its consumer wrote it meanwhile, or has yet to
		}
		st, err := s.Issue(ctx, id)
		if err != nil {
			return err
		}
		st.Calendar = s.cal
		for _, t := range st.Timers() {
			repaired(Repair{Timer: t, Mismatch: Lost})
		}
	}
	return nil
}

// suspect is a timer a batch's comparison found wrong, with the document's sequence it was judged on.
type suspect struct {
	Repair
	seq uint64
}

// reconcileBatch compares the timers of the issues whose documents are keys (all on server) with
// the index, and repairs what a second read confirms.
func (s *Store) reconcileBatch(ctx context.Context, server *redis.Client, keys []string,
	stream Stream, repaired func(Repair)) error {
	if len(keys) == 0 {
		return nil
	}
	raws := make([]*redis.StringCmd, len(keys))
	if _, err := server.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			raws[i] = p.Get(ctx, k)
		}
		return nil
	}); err != nil && err != redis.Nil {
		return err
	}
	var owed []domain.Timer
	seqs := map[string]uint64{}
	for i, k := range keys {
		raw, err := raws[i].Bytes()
		if err != nil {
			continue // removed since the scan saw it
		}
		st, err := s.Decode(s.issueOf(k), raw)
		if err != nil {
			return err
		}
		if _, mark := st.Position(); *mark != nil {
			continue
		}
		st.Calendar = s.cal
		seqs[st.ID] = st.LastSeq
		owed = append(owed, st.Timers()...)
	}
	suspects, err := s.mismatches(ctx, owed, seqs)
	if err != nil {
		return err
	}
	for _, sp := range suspects {
		if err := s.repair(ctx, sp, stream, repaired); err != nil {
			return err
		}
	}
	return nil
}

// mismatches returns the owed timers that the index misses or holds for a later time.
func (s *Store) mismatches(ctx context.Context, owed []domain.Timer, seqs map[string]uint64) ([]suspect, error) {
	scores := make([]*redis.FloatCmd, len(owed))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, t := range owed {
			scores[i] = p.ZScore(ctx, TimersKey(t.IssueID), t.Name())
		}
		return nil
	}); err != nil && err != redis.Nil {
		return nil, err
	}
	var out []suspect
	for i, t := range owed {
		if m, wrong := judge(t, scores[i]); wrong {
			out = append(out, suspect{Repair: Repair{Timer: t, Mismatch: m}, seq: seqs[t.IssueID]})
		}
	}
	return out, nil
}

// judge compares an owed timer with its entry in the index, as ZSCORE answered.
func judge(t domain.Timer, score *redis.FloatCmd) (Mismatch, bool) {
	v, err := score.Result()
	switch {
	case err == redis.Nil:
		return Missing, true
	case err != nil:
		return "", false // unreadable now; the next pass looks again
	case int64(v) > ceilMilli(t.At):
		return Late, true
	}
	return "", false
}

// repair puts a suspect timer back once the issue's document, read again, still owes it as judged,
// the stream holds nothing later, and the index still disagrees.
func (s *Store) repair(ctx context.Context, sp suspect, stream Stream, repaired func(Repair)) error {
	st, err := s.Issue(ctx, sp.Timer.IssueID)
	if err != nil {
		return err
	}
	if st.LastSeq != sp.seq {
		return nil // a fold moved the issue on and wrote its timers
	}
	stored, err := stream.Last(ctx, sp.Timer.IssueID)
	if err != nil {
		return err
	}
	if stored > sp.seq {
		recs, err := stream.CatchupTo(ctx, s, sp.Timer.IssueID, stored)
		if err != nil {
			return err
		}
		if len(recs) > 0 && time.Since(recs[0].Time) > BehindGrace {
			repaired(Repair{Timer: sp.Timer, Mismatch: Behind})
		}
		return nil
	}
	score := s.rdb.ZScore(ctx, TimersKey(sp.Timer.IssueID), sp.Timer.Name())
	if _, wrong := judge(sp.Timer, score); !wrong {
		return nil
	}
	err = s.rdb.ZAdd(ctx, TimersKey(sp.Timer.IssueID), redis.Z{Score: float64(ceilMilli(sp.Timer.At)), Member: sp.Timer.Name()}).Err()
	if err != nil {
		return err
	}
	if s.onTimer != nil {
		s.onTimer(sp.Timer.At)
	}
	repaired(sp.Repair)
	return nil
}

// issueOf reads the issue's ID back from the key of its document.
func (s *Store) issueOf(key string) string {
	return strings.TrimSuffix(strings.TrimPrefix(key, strings.TrimSuffix(s.Key(""), "}")), "}")
}

// Reconciliation is what the last complete pass of Reconcile found.
type Reconciliation struct {
	// At is when the pass began, on the service's clock; zero when none has completed.
	At time.Time
	// Repaired is how many timers it put back.
	Repaired int
}

// LastReconciliation returns what the last complete pass found, for a replica taking the timers
// over to know when the next is due, and for an operator.
func (s *Store) LastReconciliation(ctx context.Context) (Reconciliation, error) {
	vals, err := s.rdb.HMGet(ctx, ReconciledKey, "at", "repaired").Result()
	if err != nil {
		return Reconciliation{}, fmt.Errorf("store: last reconciliation: %w", err)
	}
	var r Reconciliation
	if at, ok := vals[0].(string); ok {
		ms, _ := strconv.ParseInt(at, 10, 64)
		r.At = time.UnixMilli(ms).UTC()
	}
	if n, ok := vals[1].(string); ok {
		r.Repaired, _ = strconv.Atoi(n)
	}
	return r, nil
}

// SetLastReconciliation records what a complete pass found.
func (s *Store) SetLastReconciliation(ctx context.Context, r Reconciliation) error {
	if err := s.rdb.HSet(ctx, ReconciledKey, "at", r.At.UnixMilli(), "repaired", r.Repaired).Err(); err != nil {
		return fmt.Errorf("store: record the reconciliation: %w", err)
	}
	return nil
}

// ReconciledKey is a hash of the last complete reconciliation: "at", its start in unix
// milliseconds, and "repaired", the timers it put back. Like LeaseKey it is the timer loop's
// own bookkeeping, not a view: a replay does not rebuild it.
const ReconciledKey = Prefix + "timers:reconciled"
