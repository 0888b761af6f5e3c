// Package store keeps the escalation projection in Redis: one JSON state per issue, the open
// deadlines in one sorted set, and the breaches view, all written in the same transaction as the
// event that changes them, so the timers and the view can never disagree with the state.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/redisx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/domain"
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

// IssueKey is the key of an issue's state; the hash tag keeps one issue's keys in one slot.
func IssueKey(issueID string) string { return Prefix + "issue:{" + issueID + "}" }

// Store is the escalation projection. It is safe for concurrent use.
type Store struct {
	rdb *redis.Client
	// onTimer, when set, learns the earliest deadline each apply added, so that a sleeping timer
	// loop can wake early for it.
	onTimer func(at time.Time)
}

var _ eventlog.Projection = (*Store)(nil)

// New returns the store on rdb. onTimer may be nil.
func New(rdb *redis.Client, onTimer func(at time.Time)) *Store {
	return &Store{rdb: rdb, onTimer: onTimer}
}

// Issue returns an issue's state; an issue never seen has an empty state at sequence 0.
func (s *Store) Issue(ctx context.Context, issueID string) (*domain.Issue, error) {
	raw, err := s.rdb.Get(ctx, IssueKey(issueID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return &domain.Issue{ID: issueID}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read %s: %w", issueID, err)
	}
	return decodeIssue(issueID, raw)
}

// LastSeq returns the sequence of the issue's last applied event.
func (s *Store) LastSeq(ctx context.Context, issueID string) (uint64, error) {
	st, err := s.Issue(ctx, issueID)
	if err != nil {
		return 0, err
	}
	return st.LastSeq, nil
}

// Apply folds one record into its issue's state and, in the same transaction, brings the timers
// in line with the issue's open deadlines and adds any breach to the view.
func (s *Store) Apply(ctx context.Context, rec eventlog.Record) error {
	ev := rec.Event
	issueID := ev.GetIssueId()
	var earliest time.Time
	err := redisx.Update(ctx, s.rdb, IssueKey(issueID), func(current []byte, tx redis.Pipeliner) ([]byte, error) {
		earliest = time.Time{}
		st := &domain.Issue{ID: issueID}
		if current != nil {
			var err error
			if st, err = decodeIssue(issueID, current); err != nil {
				return nil, err
			}
		}
		if next, err := eventlog.Admit(st.LastSeq, rec); !next {
			return nil, err // nil for a redelivery, ErrGap when an earlier event is missing
		}
		before := names(st.Timers())
		st.Apply(rec.Seq, ev.GetCorrelationId(), fromProto(ev))
		after := st.Timers()
		for _, t := range after {
			if _, ok := before[t.Name()]; ok {
				delete(before, t.Name())
				continue
			}
			tx.ZAdd(ctx, TimersKey, redis.Z{Score: float64(ceilMilli(t.At)), Member: t.Name()})
			if earliest.IsZero() || t.At.Before(earliest) {
				earliest = t.At
			}
		}
		for name := range before {
			tx.ZRem(ctx, TimersKey, name)
		}
		if b, ok := ev.GetPayload().(*whistlev1.Event_Breached); ok {
			if err := indexBreach(ctx, tx, st, b.Breached); err != nil {
				return nil, err
			}
		}
		return json.Marshal(st)
	})
	if err != nil {
		return fmt.Errorf("store: apply %s at %d: %w", issueID, rec.Seq, err)
	}
	if !earliest.IsZero() && s.onTimer != nil {
		s.onTimer(earliest)
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

// DropTimer removes a timer unless the issue's state still holds it open. It runs in a transaction
// on the issue's state, so a timer cannot be dropped on the strength of a state that changed meanwhile.
func (s *Store) DropTimer(ctx context.Context, t domain.Timer) error {
	return redisx.Update(ctx, s.rdb, IssueKey(t.IssueID), func(current []byte, tx redis.Pipeliner) ([]byte, error) {
		st := &domain.Issue{ID: t.IssueID}
		if current != nil {
			var err error
			if st, err = decodeIssue(t.IssueID, current); err != nil {
				return nil, err
			}
		}
		if _, open := names(st.Timers())[t.Name()]; !open {
			tx.ZRem(ctx, TimersKey, t.Name())
		}
		return nil, nil
	})
}

// Earliest returns the open deadline that comes due first.
func (s *Store) Earliest(ctx context.Context) (domain.Timer, bool, error) {
	zs, err := s.rdb.ZRangeWithScores(ctx, TimersKey, 0, 0).Result()
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

// decodeIssue reads an issue's stored state.
func decodeIssue(issueID string, raw []byte) (*domain.Issue, error) {
	st := &domain.Issue{}
	if err := json.Unmarshal(raw, st); err != nil {
		return nil, fmt.Errorf("store: decode %s: %w", issueID, err)
	}
	return st, nil
}

// fromProto translates the events escalation cares about; any other event is nil and only moves
// the issue's sequence.
func fromProto(ev *whistlev1.Event) domain.Event {
	switch p := ev.GetPayload().(type) {
	case *whistlev1.Event_Raised:
		return domain.Raised{GridID: p.Raised.GetGridId(), StreetID: p.Raised.GetStreetId(), CategoryID: p.Raised.GetCategoryId()}
	case *whistlev1.Event_Routed:
		var r domain.Routed
		for _, d := range p.Routed.GetDispatches() {
			r.Dispatches = append(r.Dispatches, domain.Dispatch{
				DepartmentID: d.GetDepartmentId(),
				ReportInBy:   timeOf(d.GetReportInBy()),
				ResolveBy:    timeOf(d.GetResolveBy()),
			})
		}
		return r
	case *whistlev1.Event_Acknowledged:
		return domain.Acknowledged{DepartmentID: p.Acknowledged.GetDepartmentId()}
	case *whistlev1.Event_Resolved:
		return domain.Resolved{DepartmentID: p.Resolved.GetDepartmentId()}
	case *whistlev1.Event_Breached:
		return domain.Breached{
			DepartmentID: p.Breached.GetDepartmentId(),
			Kind:         KindFromProto(p.Breached.GetKind()),
			Deadline:     timeOf(p.Breached.GetDeadline()),
			At:           timeOf(ev.GetOccurredAt()),
		}
	}
	return nil
}

// timeOf reads an optional timestamp; unset is the zero time, meaning no deadline.
func timeOf(ts *timestamppb.Timestamp) time.Time {
	if !ts.IsValid() {
		return time.Time{}
	}
	return ts.AsTime().UTC()
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
