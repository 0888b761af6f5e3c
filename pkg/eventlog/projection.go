package eventlog

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/eventlog/quarantine"
	"github.com/whistle-dispatch/whistle/pkg/otelx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// ErrGap is returned by Projection.Apply when the record does not directly follow the last one the
// projection applied for its issue: an earlier event of the issue has not been applied yet.
var ErrGap = errors.New("an earlier event of the issue is not applied yet")

// ErrImpossible marks an event a projection refuses as impossible (an assignment event for an
// issue that was never raised, say). No retry can mend it, so its issue is quarantined.
var ErrImpossible = errors.New("the event can never apply")

// Impossible wraps a projection's reason for refusing an event so that it reads as ErrImpossible.
func Impossible(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrImpossible, fmt.Sprintf(format, args...))
}

// ErrQuarantined means the issue is quarantined: a projection met an event of it that can never
// apply, so no command may decide on the issue's state until an operator has dealt with it.
var ErrQuarantined = errors.New("the issue is quarantined")

// Position is where a projection stands on one issue.
type Position struct {
	// LastSeq is the sequence of the issue's last event the projection applied or held.
	LastSeq uint64
	// Quarantine is set once the projection met an event of the issue it can never apply.
	Quarantine *quarantine.Mark
}

// Projection is a service's state derived from the log, kept per issue.
//
// Apply must be atomic per issue and idempotent, and follow Admit: a record at or below the
// issue's last sequence changes nothing and returns nil; a record whose Event.PrevSeq is not the
// last sequence returns ErrGap and changes nothing; a record of a quarantined issue that comes next
// is held (the last sequence moves to it, nothing else changes); a record the projection can never
// apply returns an error wrapping ErrImpossible and changes nothing; otherwise Apply applies the
// record and records its sequence as the issue's last, in one step.
//
// Quarantine marks the issue: it records m and moves the issue's last sequence up to m.Seq, leaving
// the rest of the state as it was (m.Seq may be the last event applied, when a reaction to it can
// never succeed). On an issue marked before, a later m.Seq is held and an earlier one changes
// nothing.
type Projection interface {
	// Name is the service the projection belongs to: its consumer's name, and where its dead
	// letters are filed.
	Name() string
	Position(ctx context.Context, issueID string) (Position, error)
	Apply(ctx context.Context, rec Record) error
	Quarantine(ctx context.Context, issueID string, m quarantine.Mark) error
}

// BatchProjection is a Projection that applies many records at once, as its consumer takes them:
// what is waiting in a partition, up to BatchLimit.
//
// ApplyBatch applies recs (in stream order, of any issues) as Apply would apply each in turn, and
// returns each record's outcome: nil (applied, held, or applied before), or an error wrapping
// ErrGap, which it also returns for every later record of that issue in the batch. When it cannot
// say (Redis is away, or a fold refused a record as impossible) it returns an error, having
// applied some of the records or none, and the consumer applies them one by one.
type BatchProjection interface {
	Projection
	ApplyBatch(ctx context.Context, recs []Record) ([]error, error)
}

// KnownPosition is a Projection that may know, without a read, where it stands on an issue: as it
// last wrote or read it. Decide uses it where a stale answer only costs a conditional append
// refused.
type KnownPosition interface {
	Known(issueID string) (Position, bool)
}

// knownPosition is where p stands on the issue as it knows without a read, or as it reads.
func knownPosition(ctx context.Context, p Projection, issueID string) (Position, error) {
	if k, ok := p.(KnownPosition); ok {
		if pos, ok := k.Known(issueID); ok {
			return pos, nil
		}
		if ExpectsNewIssue(ctx) {
			return Position{}, nil
		}
	}
	return p.Position(ctx, issueID)
}

// newIssueKey marks the context of a command that expects its issue not to exist yet.
type newIssueKey struct{}

// NewIssue marks ctx, for Decide, as that of a command that expects its issue not to exist yet (a
// raise under a new case number). When the projection does not hold the issue in memory, Decide's
// first round then takes it as never seen without reading Redis, and so does a store's Latest (see
// ExpectsNewIssue): the append, conditional on no event of the issue, refuses it otherwise, and
// the next round reads what was stored.
func NewIssue(ctx context.Context) context.Context {
	return context.WithValue(ctx, newIssueKey{}, true)
}

// ExpectsNewIssue reports whether ctx is that of a Decide round that takes an issue its projection
// does not hold as never seen (NewIssue).
func ExpectsNewIssue(ctx context.Context) bool {
	v, _ := ctx.Value(newIssueKey{}).(bool)
	return v
}

// Step is what a projection does with a record, as Admit decides.
type Step int

// The steps.
const (
	// Skip: the record was applied before (a redelivery), or cannot be taken yet (ErrGap).
	Skip Step = iota
	// Apply: the record comes next; fold it into the state.
	Apply
	// Hold: the record comes next but its issue is quarantined; move past it without folding it.
	Hold
)

// Admit is the ordering rule every Projection.Apply follows, given where the projection stands on
// rec's issue (the last sequence applied or held, and its quarantine mark, if any).
func Admit(last uint64, q *quarantine.Mark, rec Record) (Step, error) {
	switch {
	case rec.Seq <= last:
		return Skip, nil
	case rec.Event.GetPrevSeq() != last:
		return Skip, fmt.Errorf("issue %s: event %d follows %d, but %d is the last applied: %w",
			rec.Event.GetIssueId(), rec.Seq, rec.Event.GetPrevSeq(), last, ErrGap)
	case q != nil:
		return Hold, nil
	default:
		return Apply, nil
	}
}

// Catchup applies every event of the issue that p has not applied yet, in stream order.
func (l *Log) Catchup(ctx context.Context, p Projection, issueID string) error {
	_, err := l.CatchupTo(ctx, p, issueID, math.MaxUint64)
	return err
}

// CatchupTo makes sure p has taken the issue's events up to sequence seq at least, reading the
// stream only when p is behind it: a live view that follows the stream pays one Redis read, not a
// stream read, for every event the consumer applied first. It returns the records it read.
//
// It is also where a projection meets what can never apply: an event that cannot be decoded, one
// whose prev_seq is not the issue's previous event in the stream (its chain is broken: every
// earlier event has been taken, so no wait can mend it), or one the projection refuses as
// impossible. Each quarantines its issue (see Log.Quarantine) and the catch-up carries on.
func (l *Log) CatchupTo(ctx context.Context, p Projection, issueID string, seq uint64) ([]Record, error) {
	pos, err := p.Position(ctx, issueID)
	if err != nil || pos.LastSeq >= seq {
		return nil, err
	}
	stored, err := l.read(ctx, issueID, pos.LastSeq, seq)
	if err != nil {
		return nil, err
	}
	var recs []Record
	for _, s := range stored {
		if s.err != nil {
			if err := l.Quarantine(ctx, p, s.dead(0, s.err)); err != nil {
				return recs, err
			}
			continue
		}
		recs = append(recs, s.rec)
		if err := l.apply(ctx, p, s.rec, 0); err != nil {
			return recs, fmt.Errorf("eventlog: catch up %s at %d: %w", issueID, s.rec.Seq, err)
		}
	}
	return recs, nil
}

// apply applies one record that follows everything p has taken of its issue, quarantining the
// issue when the record can never apply. deliveries is how often the consumer delivered it (0
// when it was read from the stream).
func (l *Log) apply(ctx context.Context, p Projection, rec Record, deliveries uint64) error {
	err := p.Apply(WithHistory(ctx, l), rec)
	switch {
	case errors.Is(err, ErrGap):
		err = fmt.Errorf("its chain is broken: %w", err)
	case !errors.Is(err, ErrImpossible):
		return err
	}
	return l.Quarantine(ctx, p, deadOf(rec, deliveries, err))
}

// project is a consumer's step for one record: apply it, reading the issue's missing events from
// the stream first when it arrives ahead of them (a safety net: a partition's one owner receives
// its issues' events in order).
func (l *Log) project(ctx context.Context, p Projection, rec Record, deliveries uint64) error {
	err := p.Apply(WithHistory(ctx, l), rec)
	switch {
	case errors.Is(err, ErrGap):
		countOutOfOrder(ctx, p.Name())
		if _, err := l.CatchupTo(ctx, p, rec.Event.GetIssueId(), rec.Seq-1); err != nil {
			return err
		}
		return l.apply(ctx, p, rec, deliveries)
	case errors.Is(err, ErrImpossible):
		return l.Quarantine(ctx, p, deadOf(rec, deliveries, err))
	}
	return err
}

// Project returns a handler that applies each record to p, as a consumer does (reading the issue's
// missing events first when the record arrives ahead of them, quarantining the issue when it can
// never apply), and then runs then, if any. It is the consumer's step without the consumer.
func (l *Log) Project(p Projection, then Handler) Handler {
	return func(ctx context.Context, rec Record) error {
		s := storedMsg{seq: rec.Seq, subject: Subject(rec.Event.GetIssueId(), Kind(rec.Event)), rec: rec, header: rec.Header}
		return l.process(ctx, p, then, s, 0)
	}
}

// MaxDecideAttempts bounds how often Decide re-reads and retries after losing a race.
const MaxDecideAttempts = 8

// Decide is the one way a command or a reaction writes: it asks decide for the event to append given
// the projection's state of the issue (nil: nothing to do), appends it conditional on the sequence
// decide read, and returns it once p has applied it, so the caller reads its own write, with the
// time the stream stored it. When another writer got there first, or the same event is already
// stored (a retry; a clustered stream reports that as a duplicate before it checks the sequence),
// p takes what was stored first and decide is asked again, so it always judges the stored
// history; after MaxDecideAttempts Decide returns ErrConflict. decide must set the event's PrevSeq
// to the last sequence of the state it read; a stale state only costs a round, since the append is
// conditional. A quarantined issue takes no decision: Decide returns ErrQuarantined. A command
// that expects a new issue says so with NewIssue, and its first round reads nothing.
//
// In a reaction (a consumer of p reacting to a record it applied) Decide returns as soon as the
// event is stored, with a zero Time: that consumer owns the issue and applies the event in its
// turn, after the record it reacts to. Under Unawaited it returns once the event is stored too,
// with a zero Time as well.
func (l *Log) Decide(ctx context.Context, p Projection, issueID string, decide func(ctx context.Context) (*whistlev1.Event, error)) (*Record, error) {
	if !inReaction(ctx, p.Name()) {
		// A command waits for the others of this process on the issue (see issueLocks); a
		// reaction is its consumer's own turn on the issue, and waits for none.
		defer l.commands.lock(issueID)()
	}
	// A new issue is taken as never seen by the first round's position and decision only: waiting
	// for the owner, catching up and every later round read what is stored.
	stored := ctx
	if ExpectsNewIssue(ctx) {
		stored = context.WithValue(ctx, newIssueKey{}, false)
	}
	for attempt := range MaxDecideAttempts {
		round := ctx
		if attempt > 0 {
			round = stored
		}
		pos, err := knownPosition(round, p, issueID)
		if err != nil {
			return nil, err
		}
		if pos.Quarantine != nil {
			return nil, fmt.Errorf("issue %s at event %d: %s: %w", issueID, pos.Quarantine.Seq, pos.Quarantine.Reason, ErrQuarantined)
		}
		ev, err := decide(round)
		if err != nil {
			return nil, err
		}
		if ev == nil {
			// Nothing to do, judged on what p held: a person is told so only once the stream holds
			// nothing p has not taken, or a stale state (an officer asking again just after a
			// supervisor's denial that p had not applied) would answer a retry of the old request.
			last, err := l.unseen(round, p, issueID, pos.LastSeq)
			if err != nil || last == 0 {
				return nil, err
			}
			if err := l.takeUpTo(stored, p, issueID, last, attempt); err != nil {
				return nil, err
			}
			continue
		}
		rec, done, err := l.appendAndAwait(stored, p, issueID, ev, attempt)
		if done || err != nil {
			return rec, err
		}
	}
	return nil, ErrConflict
}

// unseen returns the sequence of the issue's last event when the stream holds one after seq, which
// a decision of nothing to do did not see, and 0 when it does not. A reaction decides in its
// consumer's turn, after every event before the one it reacts to, and an unawaited writer (a timer
// loop) pays for no check.
func (l *Log) unseen(ctx context.Context, p Projection, issueID string, seq uint64) (uint64, error) {
	if inReaction(ctx, p.Name()) || unawaited(ctx) {
		return 0, nil
	}
	last, err := l.Last(ctx, issueID)
	if err != nil || last <= seq {
		return 0, err
	}
	return last, nil
}

// unawaitedKey marks the context of a Decide that does not wait for its projection (Unawaited).
type unawaitedKey struct{}

// Unawaited marks ctx so that Decide returns the event and its sequence once the stream has
// stored it, without waiting for the projection to apply it and without its stored time (Time is
// zero: the PubAck does not carry it, and reading it back would cost a request to the stream per
// event). It is for a writer that needs neither its own write through the projection nor the
// time, such as a timer loop firing a storm of deadlines: waiting for each fold would pace the
// firing by the folds. A lost race still waits for the projection to take what won, since the
// next round decides on it.
func Unawaited(ctx context.Context) context.Context {
	return context.WithValue(ctx, unawaitedKey{}, true)
}

func unawaited(ctx context.Context) bool { return ctx.Value(unawaitedKey{}) != nil }

// appendAndAwait is one round of Decide after decide: it appends ev and returns the record once p
// has applied it (done), or, when another writer got there first, makes p take what it stored and
// returns for another round.
func (l *Log) appendAndAwait(ctx context.Context, p Projection, issueID string, ev *whistlev1.Event, attempt int) (_ *Record, done bool, _ error) {
	reaction := inReaction(ctx, p.Name())
	var next <-chan Record
	if !reaction && !unawaited(ctx) && l.own.owns(p.Name(), Partition(issueID)) {
		// Registered before the append, so that an owner quicker than the PubAck is seen too.
		ch, cancel := l.own.waitNext(p.Name(), issueID, ev.GetPrevSeq())
		defer cancel()
		next = ch
	}
	ack, err := l.append(ctx, ev)
	var conflict *ConflictError
	switch {
	case errors.As(err, &conflict):
		decideConflicts.Add(ctx, 1, otelx.Attributes("service", p.Name(), "outcome", "conflict"))
		return nil, false, l.takeUpTo(ctx, p, issueID, max(conflict.Actual, ev.GetPrevSeq()+1), attempt)
	case err == nil && ack.Duplicate:
		decideConflicts.Add(ctx, 1, otelx.Attributes("service", p.Name(), "outcome", "duplicate"))
		return nil, false, l.takeUpTo(ctx, p, issueID, ack.Sequence, attempt)
	case err != nil:
		return nil, true, err
	case reaction || unawaited(ctx):
		return &Record{Seq: ack.Sequence, Event: ev}, true, nil
	}
	rec, err := l.applied(ctx, p, issueID, ack.Sequence, next)
	return rec, true, err
}

// takeUpTo makes p take the issue's events up to seq, which another writer appended: on the first
// attempt it waits for the owner to apply them; when the owner does not in time, or a decision
// lost again after that (what p knows may be stale: a wiped Redis), it reads p's position from
// Redis and the missing events from the stream.
func (l *Log) takeUpTo(ctx context.Context, p Projection, issueID string, seq uint64, attempt int) error {
	if attempt == 0 {
		if _, reached, err := l.awaitOwner(ctx, p, issueID, seq); reached || err != nil {
			return err
		}
	}
	_, err := l.CatchupTo(ctx, p, issueID, seq)
	return err
}

// applied returns the event just appended at seq once p has applied it: as the owner applied it,
// or, when the owner did not in time (a handover under way), as this process applies it. next, when
// set, receives the record the owner here applies after the one the event was decided on.
func (l *Log) applied(ctx context.Context, p Projection, issueID string, seq uint64, next <-chan Record) (*Record, error) {
	var rec *Record
	var reached bool
	var err error
	if next != nil {
		rec, reached, err = l.awaitRecord(ctx, p, issueID, next)
	} else {
		rec, reached, err = l.awaitOwner(ctx, p, issueID, seq)
	}
	if rec != nil || err != nil {
		return rec, err
	}
	if !reached {
		recs, err := l.CatchupTo(ctx, p, issueID, seq) // a gap (a wiped Redis) is read too
		if err != nil {
			return nil, err
		}
		for _, rec := range recs {
			if rec.Seq == seq {
				return &rec, nil
			}
		}
	}
	// Applied without this process seeing the record: read it for the stream's time.
	r, err := l.at(ctx, seq)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// awaitOwner waits for the issue's owner to apply the issue's events up to seq. reached says that p
// stands at seq or past it; rec is the record at seq, with the stream's time, when this process
// saw it applied. An owner in this process says when it has applied it; one elsewhere is polled
// for. It does not wait in the owner's own reaction (the owner waits for the reaction), nor once the
// owner is gone or stuck (see awaitRecord and pollOwner).
func (l *Log) awaitOwner(ctx context.Context, p Projection, issueID string, seq uint64) (rec *Record, reached bool, _ error) {
	if inReaction(ctx, p.Name()) {
		return nil, false, nil
	}
	if !l.own.owns(p.Name(), Partition(issueID)) {
		return l.pollOwner(ctx, p, issueID, seq)
	}
	applied, cancel := l.own.waitSeq(p.Name(), issueID, seq)
	defer cancel()
	if pos, err := knownPosition(ctx, p, issueID); err != nil || pos.LastSeq >= seq {
		return nil, err == nil, err // applied before the wait began
	}
	return l.awaitRecord(ctx, p, issueID, applied)
}

// awaitRecord waits for the owner here to apply a record a waiter registered for: while the
// process still owns the issue's partition (checked every AwaitOwner), up to MaxAwaitOwner or half
// of what the caller's deadline leaves (ownerWait). rec is
// the record, with the stream's time; reached without rec means the owner moved past it unseen;
// neither means it did not come.
func (l *Log) awaitRecord(ctx context.Context, p Projection, issueID string, applied <-chan Record) (rec *Record, reached bool, _ error) {
	limit := time.NewTimer(ownerWait(ctx, MaxAwaitOwner))
	defer limit.Stop()
	check := time.NewTicker(AwaitOwner)
	defer check.Stop()
	for {
		select {
		case r := <-applied:
			if r.Event == nil {
				return nil, true, nil
			}
			return &r, true, nil
		case <-check.C:
			if !l.own.owns(p.Name(), Partition(issueID)) {
				return nil, false, nil
			}
		case <-limit.C:
			return nil, false, nil
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// pollOwner waits, reading p's position with a growing pause, for an owner in another process to
// apply the issue's events up to seq, for AwaitOwner or half of what the caller's deadline leaves
// (ownerWait), and then reads the event at seq for its time.
func (l *Log) pollOwner(ctx context.Context, p Projection, issueID string, seq uint64) (_ *Record, reached bool, _ error) {
	deadline := time.Now().Add(ownerWait(ctx, AwaitOwner))
	for pause := time.Millisecond; time.Now().Before(deadline); pause = min(2*pause, 50*time.Millisecond) {
		pos, err := p.Position(ctx, issueID)
		if err != nil {
			return nil, false, err
		}
		if pos.LastSeq >= seq {
			rec, err := l.at(ctx, seq)
			if err != nil {
				return nil, true, err
			}
			return &rec, true, nil
		}
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-time.After(pause):
		}
	}
	return nil, false, nil
}

// ownerWait is how long a command waits for the issue's owner to apply what it appended: bound,
// or half of what the caller's deadline leaves, whichever is shorter. An owner that died keeps its
// partition until OwnerTTL has passed; a caller whose deadline is nearer than bound would otherwise
// run out of time waiting for it on every retry, until the partition passes to a live replica.
// With half its time left, the command applies the event itself (the conditional write keeps
// that safe beside a live owner) and answers within the deadline.
func ownerWait(ctx context.Context, bound time.Duration) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(0, min(bound, time.Until(dl)/2))
	}
	return bound
}

// QuarantineProto is a quarantine mark in the API's terms, for every view that shows one; nil (the
// issue applies normally) stays nil.
func QuarantineProto(m *quarantine.Mark) *whistlev1.Quarantine {
	if m == nil {
		return nil
	}
	out := &whistlev1.Quarantine{Seq: m.Seq, Subject: m.Subject, Reason: m.Reason, Held: int32(m.Held)}
	if !m.StoredAt.IsZero() {
		out.StoredAt = timestamppb.New(m.StoredAt)
	}
	return out
}

// History is the stream as a projection reads it when it must fold an issue again from its first
// event: the issue's events after a sequence, in stream order. *Log is one.
type History interface {
	Read(ctx context.Context, issueID string, after uint64) ([]Record, error)
}

// historyKey carries the History a projection's records come from.
type historyKey struct{}

// WithHistory gives a projection's Apply the stream its records come from. The log passes itself
// with every record it applies, so that a projection that finds its indexes may be stale (another
// writer raced its write) can fold the issue again from the stream (see redisdoc).
func WithHistory(ctx context.Context, h History) context.Context {
	return context.WithValue(ctx, historyKey{}, h)
}

// HistoryOf returns the History ctx carries (WithHistory), or nil.
func HistoryOf(ctx context.Context) History {
	h, _ := ctx.Value(historyKey{}).(History)
	return h
}
