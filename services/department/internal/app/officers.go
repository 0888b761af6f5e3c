package app

import (
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/otelx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/department/internal/domain"
	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
	"github.com/whistle-dispatch/whistle/services/internal/roster"
)

// ReactsTo names the events React acts on: those that summon units, whose officers it names.
var ReactsTo = []string{"routed", "needs-dispatch"}

// ServiceName is the department service's name as the actor of the events it decides itself.
const ServiceName = "department"

var (
	handOverCommand  = otelx.Attributes("command", "hand-over")
	noteCommand      = otelx.Attributes("command", "note")
	extensionCommand = otelx.Attributes("command", "extension")
)

// React pushes each unit the record summoned to its officer on duty when the record was stored,
// by the rosters in force: the unit's head when nobody is on duty. Units without a roster are not
// pushed (their inbox alone holds the assignment). It runs again on redelivery and on replay: the
// projection then already holds the push, or the conditional append loses to it, and nothing is
// pushed twice.
func (a *App) React(ctx context.Context, rec eventlog.Record) error {
	id := rec.Event.GetIssueId()
	st, err := a.store.Current(ctx, id)
	if err != nil || len(st.Unpushed) == 0 {
		return err
	}
	_, err = a.log.Decide(ctx, a.store, id, func(ctx context.Context) (*whistlev1.Event, error) {
		st, err := a.store.Current(ctx, id)
		if err != nil || len(st.Unpushed) == 0 {
			return nil, err
		}
		rosters := a.rosters()
		pushed := &whistlev1.AssignmentsPushed{RosterVersion: rosters.Version(), SummonedSeq: st.SummonedSeq}
		for _, unit := range st.Unpushed {
			as := st.Assignment(unit)
			if as == nil || !rosters.Has(unit) {
				continue
			}
			push := &whistlev1.Push{DepartmentId: as.DepartmentID, UnitId: unit, Reason: whistlev1.PushReason_PUSH_REASON_ON_DUTY}
			if people := rosters.PeopleAt(unit, st.SummonedAt); len(people) == 0 {
				push.OfficerId, push.Reason = rosters.Head(unit), whistlev1.PushReason_PUSH_REASON_NOBODY_ON_DUTY
			} else {
				push.OfficerId = people[0]
			}
			pushed.Pushes = append(pushed.Pushes, push)
		}
		if len(pushed.Pushes) == 0 {
			return nil, nil
		}
		ev := a.event(authx.Principal{Subject: ServiceName, Role: "service"}, &st)
		ev.Payload = &whistlev1.Event_Pushed{Pushed: pushed}
		return ev, nil
	})
	if err != nil {
		return fmt.Errorf("push %s: %w", id, err)
	}
	return nil
}

// Now is the department's clock.
func (a *App) Now() time.Time { return a.clock.Now() }

// rosters returns the rosters in force.
func (a *App) rosters() *roster.Rosters { return a.roster.Load() }

// SetRosters puts new rosters in force.
func (a *App) SetRosters(r *roster.Rosters) { a.roster.Store(r) }

// Rosters returns the rosters in force.
func (a *App) Rosters() *roster.Rosters { return a.rosters() }

// CheckOfficer refuses a person who is not an officer (or the head) of a unit that has a roster.
func (a *App) CheckOfficer(p authx.Principal, unit string) error {
	r := a.rosters()
	if p.Role != authx.RoleOfficer || !r.Has(unit) || r.Member(unit, p.Subject) {
		return nil
	}
	return &NotOfficerError{Person: p.Subject, Unit: unit}
}

// NotOfficerError is a person acting for a unit whose roster does not name them.
type NotOfficerError struct{ Person, Unit string }

// Error says so.
func (e *NotOfficerError) Error() string {
	return fmt.Sprintf("%s is not an officer of unit %s by its roster", e.Person, e.Unit)
}

// HandOver gives the unit's open assignment of an issue to a colleague of the unit, as officer p.
func (a *App) HandOver(ctx context.Context, p authx.Principal, issueID, unit, to, note string) (domain.Issue, error) {
	ctx, span := tracer.Start(ctx, "app.App.HandOver", traceIssue(issueID, unit))
	defer span.End()
	if err := apiedge.CheckID("to_officer_id", to, true); err != nil {
		return domain.Issue{}, err
	}
	if note != "" {
		var err error
		if note, err = cleanText("note", note, MaxReasonLength); err != nil {
			return domain.Issue{}, err
		}
	}
	r := a.rosters()
	if !r.Has(unit) {
		return domain.Issue{}, &assignment.TransitionError{Reason: fmt.Sprintf("unit %s has no roster to hand over within", unit)}
	}
	if !r.Member(unit, to) {
		return domain.Issue{}, apiedge.Invalid("to_officer_id", "%q is not an officer of unit %s", to, unit)
	}
	return a.command(ctx, handOverCommand, issueID, unit, func(st *domain.Issue) (*whistlev1.Event, error) {
		if err := st.CheckOpen(unit); err != nil {
			return nil, err
		}
		as := st.Assignment(unit)
		if as.OfficerID == to {
			return nil, nil // handed over already
		}
		ev := a.event(p, st)
		ev.Payload = &whistlev1.Event_HandedOver{HandedOver: &whistlev1.AssignmentHandedOver{
			DepartmentId: as.DepartmentID, UnitId: unit, FromOfficerId: as.OfficerID, ToOfficerId: to, Note: note}}
		return ev, nil
	})
}

// AddNote records progress on the unit's open assignment of an issue, as officer p; the same
// request id records it once.
func (a *App) AddNote(ctx context.Context, p authx.Principal, issueID, unit, note, requestID string) (domain.Issue, error) {
	ctx, span := tracer.Start(ctx, "app.App.AddNote", traceIssue(issueID, unit))
	defer span.End()
	note, err := cleanText("note", note, MaxNoteLength)
	if err != nil {
		return domain.Issue{}, err
	}
	if requestID != "" {
		if err := apiedge.CheckRequestID("request_id", requestID); err != nil {
			return domain.Issue{}, err
		}
	}
	return a.command(ctx, noteCommand, issueID, unit, func(st *domain.Issue) (*whistlev1.Event, error) {
		if requestID != "" && slices.Contains(st.NoteKeys, requestID) {
			return nil, nil
		}
		if err := st.CheckOpen(unit); err != nil {
			return nil, err
		}
		ev := a.event(p, st)
		ev.Payload = &whistlev1.Event_Noted{Noted: &whistlev1.ProgressNoted{
			DepartmentId: st.Assignment(unit).DepartmentID, UnitId: unit, Note: note, RequestId: requestID}}
		return ev, nil
	})
}

// RequestExtension asks, as officer p and before the deadline, for the unit's deadline of kind k to
// move to proposed, with a reason; a supervisor decides.
func (a *App) RequestExtension(ctx context.Context, p authx.Principal, issueID, unit string, k assignment.DeadlineKind, proposed time.Time, reason string) (domain.Issue, error) {
	ctx, span := tracer.Start(ctx, "app.App.RequestExtension", traceIssue(issueID, unit))
	defer span.End()
	reason, err := cleanText("reason", reason, MaxReasonLength)
	if err != nil {
		return domain.Issue{}, err
	}
	if proposed.IsZero() {
		return domain.Issue{}, apiedge.Invalid("proposed", "is required")
	}
	return a.command(ctx, extensionCommand, issueID, unit, func(st *domain.Issue) (*whistlev1.Event, error) {
		done, err := st.CheckExtension(unit, k, proposed, a.clock.Now(), p.Subject)
		if err != nil || done {
			return nil, err
		}
		as := st.Assignment(unit)
		ev := a.event(p, st)
		ev.Payload = &whistlev1.Event_ExtensionRequested{ExtensionRequested: &whistlev1.ExtensionRequested{
			DepartmentId: as.DepartmentID, UnitId: unit, Kind: kindProto(k),
			Deadline: timestamppb.New(as.Deadline(k)), Proposed: timestamppb.New(proposed), Reason: reason}}
		return ev, nil
	})
}

// kindProto writes a deadline kind.
func kindProto(k assignment.DeadlineKind) whistlev1.DeadlineKind {
	if k == assignment.ReportIn {
		return whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN
	}
	return whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE
}
