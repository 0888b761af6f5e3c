package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/intake/internal/domain"
	"github.com/whistle-dispatch/whistle/services/intake/internal/store"
	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
	"github.com/whistle-dispatch/whistle/services/internal/assignment/assignmentpb"
	"github.com/whistle-dispatch/whistle/services/internal/casenum"
)

// The closing loop's limits.
const (
	// MaxVerifyReasonLength bounds, in characters, what a verification says.
	MaxVerifyReasonLength = 500
	// MaxCommentLength bounds, in characters, a rating's comment.
	MaxCommentLength = 500
	// MaxReopeningScore is the highest score that counts as unsatisfied, and may reopen.
	MaxReopeningScore = 2
	// DefaultVerifyWithin is how long a resolved issue waits for its grid's worker to verify it
	// before it closes itself, unless the city says otherwise.
	DefaultVerifyWithin = 72 * time.Hour
	// closeCheckEvery is how often the waits for verification are checked.
	closeCheckEvery = time.Second
	// closeBatch bounds how many overdue issues of a partition one check closes.
	closeBatch = 100
)

// ServiceName is intake's name as the actor of the events it decides itself.
const ServiceName = "intake"

// Verify records the grid worker's check on site of a resolved issue: passed closes it; failed
// (with a reason) reopens the lead's part, its clocks started again from now under the policy
// frozen at its first dispatch. Only a grid worker whose scope holds the issue's grid verifies.
func (a *App) Verify(ctx context.Context, p authx.Principal, rawID string, passed bool, reason string) (*domain.Issue, error) {
	ctx, span := tracer.Start(ctx, "app.App.Verify")
	defer span.End()
	reason, err := remark("reason", reason, MaxVerifyReasonLength, !passed)
	if err != nil {
		return nil, err
	}
	return a.closingCommand(ctx, p, rawID, func(is *domain.Issue) (*whistlev1.Event, error) {
		if p.Role != authx.RoleGridWorker || !a.cat.Contains(p.Scope, is.GridID) {
			return nil, &DeniedError{What: "verifying issue " + is.ID + ": only a grid worker of its grid verifies on site"}
		}
		if v := is.Verification; v != nil && is.Status == domain.StatusClosed && v.Passed == passed && v.By == p.Subject && v.Reason == reason {
			return nil, nil // verified before
		}
		if is.Status != domain.StatusResolved {
			return nil, &assignment.TransitionError{Reason: fmt.Sprintf("issue %s is %s: only a resolved issue is verified", is.ID, is.Status)}
		}
		verified := &whistlev1.IssueVerified{Passed: passed, Reason: reason}
		if !passed {
			lead := is.Lead()
			if lead == nil {
				return nil, &assignment.TransitionError{Reason: fmt.Sprintf("issue %s has no lead to reopen", is.ID)}
			}
			verified.Reopened = assignmentpb.ReopeningProto(lead, a.clock.Now(), a.cat.Calendar())
		}
		ev := a.envelope(p, is)
		ev.Payload = &whistlev1.Event_Verified{Verified: verified}
		return ev, nil
	})
}

// Rate records the raiser's rating (1 to 5, with a comment) of a resolved or closed issue; with
// reopen and a score of at most MaxReopeningScore, it reopens the lead's part, once per issue.
func (a *App) Rate(ctx context.Context, p authx.Principal, rawID string, score int, comment string, reopen bool) (*domain.Issue, error) {
	ctx, span := tracer.Start(ctx, "app.App.Rate")
	defer span.End()
	if score < 1 || score > 5 {
		return nil, apiedge.Invalid("score", "must be 1 to 5")
	}
	if reopen && score > MaxReopeningScore {
		return nil, apiedge.Invalid("reopen", "only an unsatisfied rating (%d or less) reopens an issue", MaxReopeningScore)
	}
	comment, err := remark("comment", comment, MaxCommentLength, false)
	if err != nil {
		return nil, err
	}
	return a.closingCommand(ctx, p, rawID, func(is *domain.Issue) (*whistlev1.Event, error) {
		if p.Subject != is.RaisedBy {
			return nil, &DeniedError{What: "rating issue " + is.ID + ": only the person who raised it rates it"}
		}
		if r := is.Rating; r != nil && r.Score == score && r.Comment == comment && r.Reopened == reopen {
			return nil, nil // rated before
		}
		if is.Status != domain.StatusResolved && is.Status != domain.StatusClosed {
			return nil, &assignment.TransitionError{Reason: fmt.Sprintf("issue %s is %s: only a resolved or closed issue is rated", is.ID, is.Status)}
		}
		if r := is.Rating; r != nil && !r.At.Before(is.ResolvedAt) && (is.ClosedAt.IsZero() || !r.At.Before(is.ClosedAt)) {
			return nil, &assignment.TransitionError{Reason: fmt.Sprintf("issue %s was rated already, %d of 5, at %s", is.ID, r.Score, r.At.UTC().Format(time.RFC3339))}
		}
		rated := &whistlev1.IssueRated{Score: int32(score), Comment: comment}
		if reopen {
			lead := is.Lead()
			switch {
			case is.RatingReopened:
				return nil, &assignment.TransitionError{Reason: fmt.Sprintf("issue %s was reopened by a rating before; a rating reopens it once", is.ID)}
			case lead == nil:
				return nil, &assignment.TransitionError{Reason: fmt.Sprintf("issue %s has no lead to reopen", is.ID)}
			}
			rated.Reopened = assignmentpb.ReopeningProto(lead, a.clock.Now(), a.cat.Calendar())
		}
		ev := a.envelope(p, is)
		ev.Payload = &whistlev1.Event_Rated{Rated: rated}
		return ev, nil
	})
}

// DeniedError is a caller whose role or scope does not allow the command on the issue.
type DeniedError struct{ What string }

// Error says what was refused.
func (e *DeniedError) Error() string { return "not allowed: " + e.What }

// closingCommand decides and appends one event of the closing loop on an issue the caller may see,
// and returns the issue as it then stands.
func (a *App) closingCommand(ctx context.Context, p authx.Principal, rawID string, decide func(*domain.Issue) (*whistlev1.Event, error)) (*domain.Issue, error) {
	if err := apiedge.CheckID("issue_id", rawID, true); err != nil {
		return nil, err
	}
	id, err := casenum.Normalize(rawID)
	if err != nil {
		return nil, apiedge.Invalid("issue_id", "%v", err)
	}
	if _, err := a.Get(ctx, p, id); err != nil {
		return nil, err // unknown, or not the caller's to see: not found either way
	}
	var is *domain.Issue
	rec, err := a.log.Decide(ctx, a.store, id, func(ctx context.Context) (*whistlev1.Event, error) {
		var err error
		if is, err = a.store.Latest(ctx, id); err != nil {
			return nil, err
		}
		ev, err := decide(is)
		if !errors.As(err, new(*assignment.TransitionError)) {
			return ev, err
		}
		// The caller may have seen a resolve this view has not applied yet: only a refusal is
		// worth a read of the stream before it is answered.
		if err := a.log.Catchup(ctx, a.store, id); err != nil {
			return nil, err
		}
		if is, err = a.store.Latest(ctx, id); err != nil {
			return nil, err
		}
		return decide(is)
	})
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return is, nil
	}
	return store.Next(is, *rec)
}

// envelope is the envelope of an event on an issue, conditional on the state it was decided on.
func (a *App) envelope(p authx.Principal, is *domain.Issue) *whistlev1.Event {
	return &whistlev1.Event{
		IssueId: is.ID, PrevSeq: is.LastSeq, OccurredAt: timestamppb.New(a.clock.Now()), CorrelationId: is.ID, // a raise correlates its issue's events by its case number
		Actor: &whistlev1.Actor{Subject: p.Subject, Role: string(p.Role), Scope: p.Scope},
	}
}

// remark checks an optional (or, with required, mandatory) remark and returns it trimmed.
func remark(field, s string, max int, required bool) (string, error) {
	if err := apiedge.CheckUTF8(field, s); err != nil {
		return "", err
	}
	s = strings.TrimSpace(s)
	switch n := utf8.RuneCountInString(s); {
	case n == 0 && required:
		return "", apiedge.Invalid(field, "is required")
	case n > max:
		return "", apiedge.Invalid(field, "must be at most %d characters", max)
	}
	return s, nil
}

// CloseUnverified closes, every closeCheckEvery until ctx ends, each resolved issue that has waited
// for verification for verifyWithin, judged on the stream's clock: the close is stored after the
// wait ran out. Replicas may run it at once; the conditional append lets one close each issue.
func (a *App) CloseUnverified(ctx context.Context, verifyWithin time.Duration, logger *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(closeCheckEvery):
		}
		if err := a.closeOverdue(ctx, verifyWithin); err != nil && ctx.Err() == nil {
			logger.Warn("closing unverified issues", "err", err)
		}
	}
}

// closeOverdue closes what has waited for verification for verifyWithin by the stream's clock now.
func (a *App) closeOverdue(ctx context.Context, verifyWithin time.Duration) error {
	now, err := a.log.Now(ctx)
	if err != nil {
		return err
	}
	for part := range eventlog.Partitions {
		ids, err := a.store.Waiting(ctx, part, now.Add(-verifyWithin), closeBatch)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := a.log.Decide(ctx, a.store, id, func(ctx context.Context) (*whistlev1.Event, error) {
				is, err := a.store.Latest(ctx, id)
				if err != nil || is.Status != domain.StatusResolved || now.Before(is.ResolvedAt.Add(verifyWithin)) {
					return nil, err
				}
				ev := a.envelope(authx.Principal{Subject: ServiceName, Role: "service"}, is)
				ev.Payload = &whistlev1.Event_Closed{Closed: &whistlev1.IssueClosed{
					Reason: fmt.Sprintf("nobody verified it within %s of its resolution", verifyWithin),
					Waited: durationpb.New(now.Sub(is.ResolvedAt))}}
				return ev, nil
			}); err != nil {
				return fmt.Errorf("close %s: %w", id, err)
			}
		}
	}
	return nil
}
