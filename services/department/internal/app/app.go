// Package app is the department's application layer: reporting in, resolving, and reading and
// watching a department's inbox.
package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/department/internal/domain"
	"github.com/whistle-dispatch/whistle/services/department/internal/store"
	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
)

// MaxNoteLength bounds, in characters, the note that resolves a department's part.
const MaxNoteLength = 2000

const scope = "github.com/whistle-dispatch/whistle/services/department"

var (
	tracer      = otel.Tracer(scope)
	commands, _ = otel.Meter(scope).Int64Counter("whistle.department.commands",
		metric.WithDescription("Reports-in and resolutions that appended an event, by command."))
)

// App is the department's desk.
type App struct {
	log   *eventlog.Log
	store *store.Store
	clock clock.Clock
	// consumer is the durable consumer that feeds store; a watch follows from what it applied.
	consumer string
}

// New returns the application; consumer names the durable consumer that feeds st.
func New(log *eventlog.Log, st *store.Store, clk clock.Clock, consumer string) *App {
	return &App{log: log, store: st, clock: clk, consumer: consumer}
}

// Acknowledge reports in for the department's assignment of an issue as officer p, and returns
// the issue as it then stands. Reporting in again as the same officer changes nothing.
func (a *App) Acknowledge(ctx context.Context, p authx.Principal, issueID, dept string) (domain.Issue, error) {
	ctx, span := tracer.Start(ctx, "app.App.Acknowledge", traceIssue(issueID, dept))
	defer span.End()
	return a.command(ctx, "acknowledge", issueID, dept, func(st *domain.Issue) (*whistlev1.Event, error) {
		done, err := st.CheckAcknowledge(dept, p.Subject)
		if err != nil || done {
			return nil, err
		}
		ev := a.event(p, st)
		ev.Payload = &whistlev1.Event_Acknowledged{Acknowledged: &whistlev1.AssignmentAcknowledged{DepartmentId: dept}}
		return ev, nil
	})
}

// Resolve closes the department's part of an issue with a note, as officer p, and returns the
// issue as it then stands. The note is kept without its surrounding blanks. Resolving again as the
// same officer with the same note changes nothing; with another note, or as another officer, it is
// refused.
func (a *App) Resolve(ctx context.Context, p authx.Principal, issueID, dept, note string) (domain.Issue, error) {
	ctx, span := tracer.Start(ctx, "app.App.Resolve", traceIssue(issueID, dept))
	defer span.End()
	if err := apiedge.CheckUTF8("note", note); err != nil {
		return domain.Issue{}, err
	}
	note = strings.TrimSpace(note)
	if n := utf8.RuneCountInString(note); n == 0 || n > MaxNoteLength {
		return domain.Issue{}, apiedge.Invalid("note", "must be 1 to %d characters", MaxNoteLength)
	}
	return a.command(ctx, "resolve", issueID, dept, func(st *domain.Issue) (*whistlev1.Event, error) {
		done, err := st.CheckResolve(dept, p.Subject, note)
		if err != nil || done {
			return nil, err
		}
		ev := a.event(p, st)
		ev.Payload = &whistlev1.Event_Resolved{Resolved: &whistlev1.AssignmentResolved{DepartmentId: dept, Note: note}}
		return ev, nil
	})
}

// command decides and appends one event of the department's assignment of an issue through the
// log, and returns the issue as it then stands. When two officers race, the stream's order names
// the winner: the loser's conditional append fails (or is dropped as a duplicate of the winner's
// event id), Decide catches the view up, and decide, run again on the winner's state, tells the
// loser why it lost.
func (a *App) command(ctx context.Context, name, issueID, dept string, decide func(*domain.Issue) (*whistlev1.Event, error)) (domain.Issue, error) {
	var st domain.Issue
	rec, err := a.log.Decide(ctx, a.store, issueID, func(ctx context.Context) (*whistlev1.Event, error) {
		var err error
		st, err = a.store.Get(ctx, issueID)
		if err != nil {
			return nil, err
		}
		if st.Assignment(dept) == nil {
			// The officer may have seen the dispatch before this service's consumer applied it;
			// only then is the stream worth a read.
			if err := a.log.Catchup(ctx, a.store, issueID); err != nil {
				return nil, err
			}
			if st, err = a.store.Get(ctx, issueID); err != nil {
				return nil, err
			}
		}
		return decide(&st)
	})
	if err != nil {
		return domain.Issue{}, err
	}
	if rec == nil {
		return st, nil // done before: the state it was decided on says so
	}
	commands.Add(ctx, 1, metric.WithAttributes(attribute.String("command", name)))
	// The event was appended on the condition that st was the issue's latest, so the issue now
	// is st and the event, as the projection holds it.
	return store.Next(st, *rec)
}

// event is the envelope of an officer's event on an issue, conditional on the state it was decided
// on; the caller sets the payload.
func (a *App) event(p authx.Principal, st *domain.Issue) *whistlev1.Event {
	return &whistlev1.Event{
		IssueId:       st.ID,
		OccurredAt:    timestamppb.New(a.clock.Now()),
		PrevSeq:       st.LastSeq,
		Actor:         &whistlev1.Actor{Subject: p.Subject, Role: string(p.Role), Scope: p.Scope},
		CorrelationId: st.CorrelationID,
	}
}

// Query selects a page of a department's inbox.
type Query struct {
	Department string
	// Status is the assignment status wanted; empty means open (dispatched or acknowledged).
	Status    assignment.Status
	PageSize  int
	PageToken string
	// Sees reports whether the caller may see issues of a grid.
	Sees func(grid string) bool
}

// Page is one page of an inbox.
type Page struct {
	Items         []domain.Issue
	NextPageToken string
}

// Inbox returns a page of a department's inbox, oldest dispatch first.
func (a *App) Inbox(ctx context.Context, q Query) (Page, error) {
	ctx, span := tracer.Start(ctx, "app.App.Inbox", trace.WithAttributes(attribute.String("whistle.department", q.Department)))
	defer span.End()
	size, err := apiedge.PageSize(q.PageSize)
	if err != nil {
		return Page{}, err
	}
	after, err := apiedge.DecodeToken[store.Cursor](q.PageToken)
	if err != nil {
		return Page{}, err
	}
	keep := func(st domain.Issue) bool {
		as := st.Assignment(q.Department)
		if as == nil || !q.Sees(st.Grid) {
			return false
		}
		return as.Status == q.Status || q.Status == "" && as.Status.Open()
	}
	items, more, err := a.store.Page(ctx, q.Department, q.Status == assignment.Resolved, after, size, keep)
	if err != nil {
		return Page{}, err
	}
	page := Page{Items: items}
	if more {
		last := items[len(items)-1]
		page.NextPageToken = apiedge.EncodeToken(store.Cursor{Millis: last.Assignment(q.Department).DispatchedAt.UnixMilli(), ID: last.ID})
	}
	return page, nil
}

// ErrWatchInterrupted is returned by Watch when the stream of events stops while the caller is
// still watching; the caller may watch again.
var ErrWatchInterrupted = errors.New("the event stream stopped; watch again")

// Watch sends the department's open inbox as it stands, then every issue whose assignment for the
// department changes, as it then stands, until ctx ends. It follows the stream from the events the
// consumer has applied, all of which the inbox it then reads includes, so no change falls between
// the two, not even one the consumer has yet to apply; an issue may be sent twice, never missed.
func (a *App) Watch(ctx context.Context, dept string, sees func(grid string) bool, send func(domain.Issue) error) error {
	applied, err := a.log.Applied(ctx, a.consumer)
	if err != nil {
		return fmt.Errorf("watch %s: %w", dept, err)
	}
	recs, err := a.log.Follow(ctx, eventlog.SubjectRoot+".>", applied)
	if err != nil {
		return fmt.Errorf("watch %s: %w", dept, err)
	}
	for token := ""; ; {
		page, err := a.Inbox(ctx, Query{Department: dept, PageSize: apiedge.MaxPageSize, PageToken: token, Sees: sees})
		if err != nil {
			return err
		}
		for _, st := range page.Items {
			if err := send(st); err != nil {
				return err
			}
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	for rec := range recs {
		if !concerns(rec.Event, dept) {
			continue
		}
		// The consumer may not have applied the event yet; bring the issue up to it here.
		id := rec.Event.GetIssueId()
		if _, err := a.log.CatchupTo(ctx, a.store, id, rec.Seq); err != nil {
			return err
		}
		st, err := a.store.Get(ctx, id)
		if err != nil {
			return err
		}
		if st.Assignment(dept) != nil && sees(st.Grid) {
			if err := send(st); err != nil {
				return err
			}
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return ErrWatchInterrupted
}

// concerns reports whether an event changes the department's assignment.
func concerns(ev *whistlev1.Event, dept string) bool {
	switch p := ev.GetPayload().(type) {
	case *whistlev1.Event_Routed:
		for _, d := range p.Routed.GetDispatches() {
			if d.GetDepartmentId() == dept {
				return true
			}
		}
	case *whistlev1.Event_Acknowledged:
		return p.Acknowledged.GetDepartmentId() == dept
	case *whistlev1.Event_Resolved:
		return p.Resolved.GetDepartmentId() == dept
	case *whistlev1.Event_Breached:
		return p.Breached.GetDepartmentId() == dept
	}
	return false
}

// traceIssue tags a span with the issue and department it works on.
func traceIssue(id, dept string) trace.SpanStartOption {
	return trace.WithAttributes(attribute.String("whistle.issue", id), attribute.String("whistle.department", dept))
}
