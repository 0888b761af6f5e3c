package eventlog

import (
	"context"
	"errors"
	"fmt"
	"math"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// ErrGap is returned by Projection.Apply when the record does not directly follow the last one the
// projection applied for its issue: an earlier event of the issue has not been applied yet.
var ErrGap = errors.New("an earlier event of the issue is not applied yet")

// Projection is a service's state derived from the log, kept per issue.
//
// Apply must be atomic per issue and idempotent: a record at or below the issue's last applied
// sequence changes nothing and returns nil; a record whose Event.PrevSeq is not the last applied
// sequence returns ErrGap and changes nothing; otherwise it applies the record and records its
// sequence as the issue's last, in one step.
type Projection interface {
	LastSeq(ctx context.Context, issueID string) (uint64, error)
	Apply(ctx context.Context, rec Record) error
}

// Admit is the ordering rule every Projection.Apply follows, given the sequence of the last event
// applied to rec's issue: it reports whether rec comes next. A record applied before (a redelivery)
// is not next and no error; a record that does not follow last is not next and ErrGap, since an
// earlier event of the issue is missing.
func Admit(last uint64, rec Record) (next bool, err error) {
	switch {
	case rec.Seq <= last:
		return false, nil
	case rec.Event.GetPrevSeq() != last:
		return false, fmt.Errorf("issue %s: event %d follows %d, but %d is the last applied: %w",
			rec.Event.GetIssueId(), rec.Seq, rec.Event.GetPrevSeq(), last, ErrGap)
	default:
		return true, nil
	}
}

// Catchup applies every event of the issue that p has not applied yet, in stream order.
func (l *Log) Catchup(ctx context.Context, p Projection, issueID string) error {
	return l.CatchupTo(ctx, p, issueID, math.MaxUint64)
}

// CatchupTo makes sure p has applied the issue's events up to sequence seq at least, reading the
// stream only when p is behind it: a live view that follows the stream pays one Redis read, not a
// stream read, for every event the consumer applied first.
func (l *Log) CatchupTo(ctx context.Context, p Projection, issueID string, seq uint64) error {
	last, err := p.LastSeq(ctx, issueID)
	if err != nil || last >= seq {
		return err
	}
	recs, err := l.Read(ctx, issueID, last)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if err := p.Apply(ctx, rec); err != nil {
			return fmt.Errorf("eventlog: catch up %s at %d: %w", issueID, rec.Seq, err)
		}
	}
	return nil
}

// Project returns a consumer handler that keeps p up to date. Events that arrive in issue order are
// applied as they come; an event that arrives ahead of an earlier one of its issue (several replicas
// share the consumer) makes the handler read the missing events from the stream first. So every
// projection applies each issue's events in stream order, whoever delivers them.
func (l *Log) Project(p Projection, then Handler) Handler {
	return func(ctx context.Context, rec Record) error {
		err := p.Apply(ctx, rec)
		if errors.Is(err, ErrGap) {
			err = l.Catchup(ctx, p, rec.Event.GetIssueId())
		}
		if err != nil || then == nil {
			return err
		}
		return then(ctx, rec)
	}
}

// MaxDecideAttempts bounds how often Decide re-reads and retries after losing a race.
const MaxDecideAttempts = 8

// Decide is the one way a command or a reaction writes: it asks decide for the event to append given
// the projection's state of the issue (nil: nothing to do), appends it conditional on the sequence
// decide read, and applies it to p before returning, so the caller reads its own write. When another
// writer got there first, or the same event is already stored (a retry; a clustered stream reports
// that as a duplicate before it checks the sequence), it catches p up from the stream and asks again,
// so decide always judges the stored history; after MaxDecideAttempts it returns ErrConflict. decide
// must set the event's PrevSeq to the last sequence of the state it read; a stale state only costs a
// round, since the append is conditional.
func (l *Log) Decide(ctx context.Context, p Projection, issueID string, decide func(ctx context.Context) (*whistlev1.Event, error)) (*Record, error) {
	for range MaxDecideAttempts {
		ev, err := decide(ctx)
		if err != nil || ev == nil {
			return nil, err
		}
		ack, err := l.append(ctx, ev)
		if errors.Is(err, ErrConflict) || (err == nil && ack.Duplicate) {
			if err := l.Catchup(ctx, p, issueID); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		rec := Record{Seq: ack.Sequence, Event: ev}
		if err := p.Apply(ctx, rec); errors.Is(err, ErrGap) {
			err = l.Catchup(ctx, p, issueID)
			if err != nil {
				return nil, err
			}
		} else if err != nil {
			return nil, err
		}
		return &rec, nil
	}
	return nil, ErrConflict
}
