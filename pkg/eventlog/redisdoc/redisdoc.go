// Package redisdoc keeps a service's projection in Redis as one JSON document per issue, beside the
// indexes the service writes in the same transaction. It owns what every such projection does the
// same way: reading and writing the document, the ordering rule (eventlog.Admit), holding the
// events of a quarantined issue, and the index of quarantined issues. A service gives it only its
// fold.
package redisdoc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/quarantine"
	"github.com/whistle-dispatch/whistle/pkg/redisx"
)

// State is a service's per-issue state: it exposes the position fields that Store moves.
type State interface {
	// Position returns the issue's last sequence and quarantine mark, for Store to read and set.
	Position() (lastSeq *uint64, mark **quarantine.Mark)
}

// Store is a projection kept as one JSON document per issue. S is a pointer type.
type Store[S State] struct {
	// Service is the service's name: its consumer, and the prefix of every key it writes.
	Service string
	RDB     *redis.Client
	// Empty returns the state of an issue never seen.
	Empty func(issueID string) S
	// Fold applies rec to st, which it follows, and queues the index writes on tx. It returns an
	// error wrapping eventlog.ErrImpossible for an event that can never apply, and must have no
	// effect outside st and tx, since it may run more than once.
	Fold func(ctx context.Context, st S, rec eventlog.Record, tx redis.Pipeliner) error
	// OnQuarantine, when set, queues on tx what the service undoes when an issue is quarantined
	// (escalation's timers, which must not fire on a state that no longer follows the stream); it
	// sees the state as it stood before the mark.
	OnQuarantine func(ctx context.Context, st S, tx redis.Pipeliner)
}

var _ eventlog.Projection = (*Store[State])(nil)

// Key is the key of an issue's document; the braces make the case number a Redis Cluster hash tag.
func (s *Store[S]) Key(issueID string) string { return s.Service + ":issue:{" + issueID + "}" }

// QuarantinedKey scores each quarantined issue by the sequence of the event it could not apply.
func (s *Store[S]) QuarantinedKey() string { return QuarantinedKey(s.Service) }

// QuarantinedKey is the key of a service's index of quarantined issues.
func QuarantinedKey(service string) string { return service + ":quarantined" }

// Name is the service's name.
func (s *Store[S]) Name() string { return s.Service }

// Load returns an issue's state; an issue never seen has the Empty state.
func (s *Store[S]) Load(ctx context.Context, issueID string) (S, error) {
	raw, err := s.RDB.Get(ctx, s.Key(issueID)).Bytes()
	if errors.Is(err, redis.Nil) {
		raw, err = nil, nil
	}
	if err != nil {
		var zero S
		return zero, fmt.Errorf("%s store: read %s: %w", s.Service, issueID, err)
	}
	return s.Decode(issueID, raw)
}

// Decode reads a stored document of the issue; nil is the Empty state.
func (s *Store[S]) Decode(issueID string, raw []byte) (S, error) {
	st := s.Empty(issueID)
	if len(raw) == 0 {
		return st, nil
	}
	if err := json.Unmarshal(raw, st); err != nil {
		return st, fmt.Errorf("%s store: decode %s: %w", s.Service, issueID, err)
	}
	return st, nil
}

// Position returns where the projection stands on an issue.
func (s *Store[S]) Position(ctx context.Context, issueID string) (eventlog.Position, error) {
	st, err := s.Load(ctx, issueID)
	if err != nil {
		return eventlog.Position{}, err
	}
	last, mark := st.Position()
	return eventlog.Position{LastSeq: *last, Quarantine: *mark}, nil
}

// Apply folds one record into its issue's document and the indexes, in one transaction, following
// the ordering rule; a record of a quarantined issue is held.
func (s *Store[S]) Apply(ctx context.Context, rec eventlog.Record) error {
	id := rec.Event.GetIssueId()
	return s.update(ctx, id, func(st S, tx redis.Pipeliner) (bool, error) {
		last, mark := st.Position()
		step, err := eventlog.Admit(*last, *mark, rec)
		switch step {
		case eventlog.Skip:
			return false, err // nil for a redelivery, ErrGap when an earlier event is missing
		case eventlog.Hold:
			(*mark).Held++
		default:
			if err := s.Fold(ctx, st, rec, tx); err != nil {
				return false, fmt.Errorf("issue %s at %d: %w", id, rec.Seq, err)
			}
		}
		*last = rec.Seq
		return true, nil
	})
}

// Quarantine marks the issue quarantined at m.Seq, or, when it already is, holds that event too.
func (s *Store[S]) Quarantine(ctx context.Context, issueID string, m quarantine.Mark) error {
	return s.update(ctx, issueID, func(st S, tx redis.Pipeliner) (bool, error) {
		last, mark := st.Position()
		switch {
		case *mark == nil:
			if s.OnQuarantine != nil {
				s.OnQuarantine(ctx, st, tx)
			}
			*mark = &m
			tx.ZAdd(ctx, s.QuarantinedKey(), redis.Z{Score: float64(m.Seq), Member: issueID})
		case m.Seq > *last:
			(*mark).Held++
		default:
			return false, nil
		}
		*last = max(*last, m.Seq)
		return true, nil
	})
}

// update is the read-modify-write of one issue's document: fn changes the state and queues index
// writes, and reports whether the document is to be written.
func (s *Store[S]) update(ctx context.Context, issueID string, fn func(st S, tx redis.Pipeliner) (bool, error)) error {
	return redisx.Update(ctx, s.RDB, s.Key(issueID), func(cur []byte, tx redis.Pipeliner) ([]byte, error) {
		st, err := s.Decode(issueID, cur)
		if err != nil {
			return nil, err
		}
		write, err := fn(st, tx)
		if err != nil || !write {
			return nil, err
		}
		return json.Marshal(st)
	})
}
