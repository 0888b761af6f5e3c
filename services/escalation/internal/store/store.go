// Package store keeps the escalation projection in Redis: one JSON state per issue, the open
// deadlines in one sorted set, and the breaches view, all written in the same transaction as the
// event that changes them, so the timers and the view can never disagree with the state.
package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/redisdoc"
	"github.com/whistle-dispatch/whistle/pkg/redisx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/domain"
	"github.com/whistle-dispatch/whistle/services/internal/assignment/assignmentpb"
)

// Redis keys. All begin with the service's name, so that a reset removes exactly these.
const (
	Prefix = "escalation:"
	// TimersKey scores every open deadline "<issue>|<dept>|<kind>" by its unix milliseconds, rounded up.
	TimersKey = Prefix + "timers"
	// BreachesKey scores every breach, named like its timer, by the unix milliseconds it was recorded.
	BreachesKey = Prefix + "breaches"
	// BreachKey holds each breach's details as JSON, by the same name.
	BreachKey = Prefix + "breach"
)

// Name is the service the store belongs to, and the prefix of its keys.
const Name = "escalation"

// Store is the escalation projection. It is safe for concurrent use.
type Store struct {
	*redisdoc.Store[*domain.Issue]
	rdb redis.UniversalClient
	// onTimer, when set, learns the earliest due time each apply added, so that a sleeping timer
	// loop can wake early for it.
	onTimer func(at time.Time)
}

var _ eventlog.BatchProjection = (*Store)(nil)

// New returns the store on rdb. onTimer may be nil.
func New(rdb redis.UniversalClient, onTimer func(at time.Time)) *Store {
	return &Store{Store: &redisdoc.Store[*domain.Issue]{
		Service: Name,
		RDB:     rdb,
		Empty:   func(id string) *domain.Issue { return &domain.Issue{ID: id} },
		Fold:    fold,
		OnQuarantine: func(ctx context.Context, st *domain.Issue, tx redis.Pipeliner) {
			for _, t := range st.Timers() {
				tx.ZRem(ctx, TimersKey, t.Name())
			}
		},
	}, rdb: rdb, onTimer: onTimer}
}

// Issue returns an issue's state; an issue never seen has an empty state at sequence 0.
func (s *Store) Issue(ctx context.Context, issueID string) (*domain.Issue, error) {
	return s.Load(ctx, issueID)
}

// Apply folds one record into its issue's state and, with it, brings the timers in line with what
// the issue owes and adds any breach to the view; then it tells the timer loop of the earliest
// timer it added.
func (s *Store) Apply(ctx context.Context, rec eventlog.Record) error {
	errs, err := s.ApplyBatch(ctx, []eventlog.Record{rec})
	if err != nil {
		return err
	}
	return errs[0]
}

// ApplyBatch is Apply for a batch of records, as the consumer takes them.
func (s *Store) ApplyBatch(ctx context.Context, recs []eventlog.Record) ([]error, error) {
	var added addedTimer
	errs, err := s.Store.ApplyBatch(context.WithValue(ctx, addedTimerKey{}, &added), recs)
	if !added.at.IsZero() && s.onTimer != nil {
		s.onTimer(added.at) // waking early for a fold that was not written costs the loop one look
	}
	return errs, err
}

// addedTimer carries, out of a fold, the earliest due time of the timers it added.
type addedTimer struct{ at time.Time }

type addedTimerKey struct{}

// fold applies one record to the issue's state, inside the store's transaction.
func fold(ctx context.Context, st *domain.Issue, rec eventlog.Record, tx redis.Pipeliner) error {
	ev := rec.Event
	before := names(st.Timers())
	if err := st.Apply(rec.Seq, rec.Time, ev.GetCorrelationId(), fromProto(ev)); err != nil {
		return err // an event the domain refuses wraps eventlog.ErrImpossible
	}
	var earliest time.Time
	for _, t := range st.Timers() {
		if was, ok := before[t.Name()]; ok {
			delete(before, t.Name())
			if was.At.Equal(t.At) {
				continue
			}
			// The same clock comes due at another time: a late clearing event owes its breach now.
		}
		tx.ZAdd(ctx, TimersKey, redis.Z{Score: float64(ceilMilli(t.At)), Member: t.Name()})
		if earliest.IsZero() || t.At.Before(earliest) {
			earliest = t.At
		}
	}
	for name := range before {
		tx.ZRem(ctx, TimersKey, name)
	}
	if added, ok := ctx.Value(addedTimerKey{}).(*addedTimer); ok && !earliest.IsZero() &&
		(added.at.IsZero() || earliest.Before(added.at)) {
		added.at = earliest
	}
	if b, ok := ev.GetPayload().(*whistlev1.Event_Breached); ok {
		return indexBreach(ctx, tx, st, b.Breached)
	}
	return nil
}

// indexBreach adds the breach just applied to st to the breaches view.
func indexBreach(ctx context.Context, tx redis.Pipeliner, st *domain.Issue, e *whistlev1.DeadlineBreached) error {
	b, ok := st.Breach(e.GetDepartmentId(), KindFromProto(e.GetKind()))
	if !ok {
		return nil // a breach of a department never summoned has nothing to show
	}
	raw, err := json.Marshal(b)
	if err != nil {
		return err
	}
	name := domain.Name(b.IssueID, b.DepartmentID, b.Kind)
	tx.ZAdd(ctx, BreachesKey, redis.Z{Score: float64(b.BreachedAt.UnixMilli()), Member: name})
	tx.HSet(ctx, BreachKey, name, raw)
	return nil
}

// DropTimer removes a timer unless the issue's state still holds it. It runs in a transaction on
// the issue's state, so a timer cannot be dropped on the strength of a state that changed meanwhile.
func (s *Store) DropTimer(ctx context.Context, t domain.Timer) error {
	return redisx.Update(ctx, s.rdb, s.Key(t.IssueID), func(current []byte, tx redis.Pipeliner) ([]byte, error) {
		st, err := s.Decode(t.IssueID, current)
		if err != nil {
			return nil, err
		}
		if _, open := names(st.Timers())[t.Name()]; !open {
			tx.ZRem(ctx, TimersKey, t.Name())
		}
		return nil, nil
	})
}

// EarliestAfter returns the timer that comes due first after now.
func (s *Store) EarliestAfter(ctx context.Context, now time.Time) (domain.Timer, bool, error) {
	zs, err := s.rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{
		Key: TimersKey, Start: "(" + strconv.FormatInt(now.UnixMilli(), 10), Stop: "+inf", ByScore: true, Count: 1,
	}).Result()
	if err != nil || len(zs) == 0 {
		return domain.Timer{}, false, err
	}
	t, err := timer(zs[0])
	return t, err == nil, err
}

// Due returns up to limit open deadlines that have come due at now, earliest first.
func (s *Store) Due(ctx context.Context, now time.Time, limit int64) ([]domain.Timer, error) {
	zs, err := s.rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{
		Key: TimersKey, Start: "-inf", Stop: strconv.FormatInt(now.UnixMilli(), 10), ByScore: true, Count: limit,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("store: due timers: %w", err)
	}
	out := make([]domain.Timer, 0, len(zs))
	for _, z := range zs {
		t, err := timer(z)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// OpenTimers counts the open deadlines.
func (s *Store) OpenTimers(ctx context.Context) (int64, error) {
	return s.rdb.ZCard(ctx, TimersKey).Result()
}

// ceilMilli is t in unix milliseconds rounded up, so that a timer whose score has passed is a
// deadline that has passed: a timer never comes due a fraction of a millisecond early.
func ceilMilli(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.After(time.UnixMilli(ms)) {
		ms++
	}
	return ms
}

// timer reads a sorted-set entry of TimersKey.
func timer(z redis.Z) (domain.Timer, error) {
	name, _ := z.Member.(string)
	issueID, dept, kind, err := domain.ParseName(name)
	if err != nil {
		return domain.Timer{}, err
	}
	return domain.Timer{IssueID: issueID, DepartmentID: dept, Kind: kind, At: time.UnixMilli(int64(z.Score)).UTC()}, nil
}

// names indexes timers by name.
func names(ts []domain.Timer) map[string]domain.Timer {
	m := make(map[string]domain.Timer, len(ts))
	for _, t := range ts {
		m[t.Name()] = t
	}
	return m
}

// fromProto translates the events escalation cares about; any other event only moves the issue's
// sequence.
func fromProto(ev *whistlev1.Event) domain.Event {
	switch p := ev.GetPayload().(type) {
	case *whistlev1.Event_Raised:
		return domain.Raised{GridID: p.Raised.GetGridId(), StreetID: p.Raised.GetStreetId(), CategoryID: p.Raised.GetCategoryId()}
	case *whistlev1.Event_Routed:
		return domain.Routed{Dispatches: assignmentpb.Dispatches(p.Routed)}
	case *whistlev1.Event_Acknowledged:
		return domain.Acknowledged{DepartmentID: p.Acknowledged.GetDepartmentId()}
	case *whistlev1.Event_Resolved:
		return domain.Resolved{DepartmentID: p.Resolved.GetDepartmentId()}
	case *whistlev1.Event_Breached:
		return domain.Breached{
			DepartmentID: p.Breached.GetDepartmentId(),
			Kind:         assignmentpb.DeadlineKind(p.Breached.GetKind()),
			Deadline:     assignmentpb.Time(p.Breached.GetDeadline()),
		}
	}
	return domain.Other{}
}

// KindFromProto is the domain name of a kind; unspecified has none.
func KindFromProto(k whistlev1.DeadlineKind) domain.Kind {
	switch k {
	case whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN:
		return domain.ReportIn
	case whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE:
		return domain.Resolve
	}
	return ""
}

// KindToProto is the proto name of a kind.
func KindToProto(k domain.Kind) whistlev1.DeadlineKind {
	if k == domain.ReportIn {
		return whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN
	}
	return whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE
}
