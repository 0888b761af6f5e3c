package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/otelx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/domain"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/store"
	"github.com/whistle-dispatch/whistle/services/internal/access"
	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
	"github.com/whistle-dispatch/whistle/services/internal/assignment/assignmentpb"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/internal/sla"
)

// Limits on what supervisors write.
const (
	// MaxUrgeNoteLength bounds, in characters, what a supervisor's urge says.
	MaxUrgeNoteLength = 500
	// MaxDecisionReasonLength bounds, in characters, the reason given with an extension decision.
	MaxDecisionReasonLength = 500
)

var (
	supervisionCommands, _ = meter.Int64Counter("whistle.escalation.supervision",
		metric.WithDescription("Supervisors' urges and extension decisions that appended an event, by command."))
	urgeCommand    = otelx.Attributes("command", "urge")
	approveCommand = otelx.Attributes("command", "approve-extension")
	denyCommand    = otelx.Attributes("command", "deny-extension")
)

// Supervisors is a supervisor's work on the issues in their scope (督办): urging a part, and
// deciding the extensions units ask for. Each is an event escalation appends through Decide.
type Supervisors struct {
	log     *eventlog.Log
	store   *store.Store
	catalog *catalog.Catalog
	clock   clock.Clock
	// people names the unit's head an urge tells, by the rosters in force.
	people *People
}

// NewSupervisors returns the commands.
func NewSupervisors(log *eventlog.Log, s *store.Store, cat *catalog.Catalog, clk clock.Clock, people *People) *Supervisors {
	return &Supervisors{log: log, store: s, catalog: cat, clock: clk, people: people}
}

// Part is a unit's part of an issue as a supervisor's command leaves it, as escalation knows it:
// its status, deadlines, breaches, pending request, latest decision and urges (not its officer or
// notes, which the department's inbox and intake's view hold), and the sequence of the event that
// the command recorded, or recorded before when it was a retry.
type Part struct {
	Assignment *assignment.Assignment
	Seq        uint64
}

// NotFoundError is an issue or a unit of it the caller cannot act on: unknown, or outside the
// caller's scope, which reads the same, so a caller learns nothing of another area's issues.
type NotFoundError struct{ What string }

// Error names what was not found.
func (e *NotFoundError) Error() string { return e.What + " not found" }

// Urge records supervisor p's formal urge of the unit's open part of an issue (the lead's when
// unit is empty), with a note; the same request id urges once, and a retry answers the part as it
// stands with the first urge's sequence.
func (s *Supervisors) Urge(ctx context.Context, p authx.Principal, issueID, unit, note, requestID string) (Part, error) {
	ctx, span := tracer.Start(ctx, "app.Supervisors.Urge", traceSupervision(issueID, unit))
	defer span.End()
	note, err := text("note", note, MaxUrgeNoteLength, true)
	if err != nil {
		return Part{}, err
	}
	if err := apiedge.CheckRequestID("request_id", requestID); err != nil {
		return Part{}, err
	}
	var done uint64
	return s.command(ctx, urgeCommand, p, issueID, &unit, func(st *domain.Issue, part *assignment.Assignment) (*whistlev1.Event, error) {
		if seq, ok, err := st.DoneBy(requestID, domain.UrgeRequest); err != nil || ok {
			done = seq
			return nil, err
		}
		if err := part.CheckUrge(); err != nil {
			return nil, err
		}
		ev := s.event(p, st)
		ev.Payload = &whistlev1.Event_Urged{Urged: &whistlev1.IssueUrged{RequestId: requestID,
			DepartmentId: part.DepartmentID, UnitId: unit, Note: note, HeadId: s.people.Target(sla.UnitHead, unit, "", "", s.clock.Now())}}
		return ev, nil
	}, func(*domain.Issue) uint64 { return done })
}

// DecideExtension approves or denies, as supervisor p, the unit's pending extension request of an
// issue. An approval grants granted, or the deadline the unit proposed when granted is zero, and
// is refused once the stream's clock has reached the deadline it would move (see
// assignment.Assignment.CheckDecision); a denial needs a reason and is allowed while the request
// is pending, whatever became of its deadline. A retry with the request id of a decision recorded
// is answered with that decision, even once the unit has asked again; without a request id, the
// same decision again is answered as it stands only while nothing is pending.
func (s *Supervisors) DecideExtension(ctx context.Context, p authx.Principal, issueID, unit string, approve bool, granted time.Time, reason, requestID string) (Part, error) {
	ctx, span := tracer.Start(ctx, "app.Supervisors.DecideExtension", traceSupervision(issueID, unit))
	defer span.End()
	if err := apiedge.CheckID("unit_id", unit, true); err != nil {
		return Part{}, err
	}
	reason, err := text("reason", reason, MaxDecisionReasonLength, !approve)
	if err != nil {
		return Part{}, err
	}
	if !approve && !granted.IsZero() {
		return Part{}, apiedge.Invalid("granted", "only an approval grants a deadline")
	}
	if requestID != "" {
		if err := apiedge.CheckRequestID("request_id", requestID); err != nil {
			return Part{}, err
		}
	}
	counted := denyCommand
	if approve {
		counted = approveCommand
	}
	var retried uint64
	return s.command(ctx, counted, p, issueID, &unit, func(st *domain.Issue, part *assignment.Assignment) (*whistlev1.Event, error) {
		if requestID != "" {
			if seq, ok, err := st.DoneBy(requestID, domain.DecisionRequest); err != nil || ok {
				retried = seq
				return nil, err
			}
		}
		now, err := s.log.Now(ctx)
		if err != nil {
			return nil, err
		}
		d, done, err := part.CheckDecision(approve, granted, reason, now)
		if err != nil || done {
			return nil, err
		}
		ev := s.event(p, st)
		decided := &whistlev1.ExtensionDecided{DepartmentId: part.DepartmentID, UnitId: unit, Kind: assignmentpb.DeadlineKindProto(d.Kind),
			Approved: d.Approved, Deadline: assignmentpb.Timestamp(d.Deadline), Reason: d.Reason, RequestId: requestID}
		if d.Approved {
			decided.Granted = timestamppb.New(d.Granted)
		}
		if part.Extension != nil {
			decided.RequestedSeq = st.Assignments[unit].RequestedSeq
		}
		ev.Payload = &whistlev1.Event_ExtensionDecided{ExtensionDecided: decided}
		return ev, nil
	}, func(st *domain.Issue) uint64 { return cmp.Or(retried, st.Assignments[unit].DecidedSeq) })
}

// command decides one supervisor's event on a unit's part of an issue in p's scope through the
// log, and returns the part as it then stands. unit names the part, or, empty, the lead's, which
// command fills in. decide returns nil with no error for a retry of what was done, whose sequence
// doneSeq reads from the state. A refusal, or an issue or unit the view does not know, reads the
// issue's events from the stream and decides again before it is answered: the supervisor may have
// seen a request, a dispatch or a reopening this service's consumer has not applied yet.
func (s *Supervisors) command(ctx context.Context, counted metric.AddOption, p authx.Principal, issueID string, unit *string,
	decide func(st *domain.Issue, part *assignment.Assignment) (*whistlev1.Event, error), doneSeq func(*domain.Issue) uint64) (Part, error) {
	var st *domain.Issue
	var part *assignment.Assignment
	round := func(ctx context.Context) (*whistlev1.Event, error) {
		var err error
		if st, err = s.store.Latest(ctx, issueID); err != nil {
			return nil, err
		}
		if part, err = s.find(p, st, issueID, unit); err != nil {
			return nil, err
		}
		return decide(st, part)
	}
	rec, err := s.log.Decide(ctx, s.store, issueID, func(ctx context.Context) (*whistlev1.Event, error) {
		ev, err := round(ctx)
		var nf *NotFoundError
		if !errors.As(err, new(*assignment.TransitionError)) && !errors.As(err, &nf) {
			return ev, err
		}
		if err := s.log.Catchup(ctx, s.store, issueID); err != nil {
			return nil, err
		}
		return round(ctx)
	})
	if err != nil {
		return Part{}, err
	}
	if rec == nil {
		return Part{Assignment: part, Seq: doneSeq(st)}, nil
	}
	supervisionCommands.Add(ctx, 1, counted)
	// The event was appended on the condition that st was the issue's latest, so the issue now is
	// st and the event, as the projection holds it.
	if err := store.Next(st, *rec); err != nil {
		return Part{}, err
	}
	return Part{Assignment: st.Part(*unit), Seq: rec.Seq}, nil
}

// find returns the part of the issue a supervisor's command is on: unit's, or the lead's when unit
// is empty (which it then names). An issue the view does not hold, or outside p's scope, and a
// unit it never summoned are not found.
func (s *Supervisors) find(p authx.Principal, st *domain.Issue, issueID string, unit *string) (*assignment.Assignment, error) {
	if !st.Raised || !access.SeesArea(s.catalog, p, st.GridID) {
		return nil, &NotFoundError{What: "issue " + issueID}
	}
	if *unit == "" {
		if *unit = st.Lead(); *unit == "" {
			return nil, &assignment.TransitionError{Reason: fmt.Sprintf("issue %s has no lead to urge: name the unit", issueID)}
		}
	}
	part := st.Part(*unit)
	if part == nil {
		return nil, &NotFoundError{What: fmt.Sprintf("unit %s's part of issue %s", *unit, issueID)}
	}
	return part, nil
}

// event is the envelope of a supervisor's event on an issue, conditional on the state it was
// decided on; the caller sets the payload.
func (s *Supervisors) event(p authx.Principal, st *domain.Issue) *whistlev1.Event {
	return &whistlev1.Event{
		IssueId:       st.ID,
		OccurredAt:    timestamppb.New(s.clock.Now()),
		PrevSeq:       st.LastSeq,
		Actor:         &whistlev1.Actor{Subject: p.Subject, Role: string(p.Role), Scope: p.Scope},
		CorrelationId: st.CorrelationID,
	}
}

// text checks a field of free text and returns it without its surrounding blanks: valid UTF-8, at
// most max characters, and not empty when required.
func text(field, s string, max int, required bool) (string, error) {
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

// traceSupervision tags a span with the issue and unit a supervisor acts on.
func traceSupervision(issueID, unit string) trace.SpanStartOption {
	return trace.WithAttributes(attribute.String("whistle.issue", issueID), attribute.String("whistle.unit", unit))
}
