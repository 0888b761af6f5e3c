// Package app is the department's application layer: reporting in, resolving, and reading and
// watching a department's inbox.
package app

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/feed"
	"github.com/whistle-dispatch/whistle/pkg/otelx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/department/internal/domain"
	"github.com/whistle-dispatch/whistle/services/department/internal/store"
	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
	"github.com/whistle-dispatch/whistle/services/internal/roster"
)

// MaxNoteLength bounds, in characters, the note that resolves a department's part.
const MaxNoteLength = 2000

// MaxReasonLength bounds, in characters, the reason a unit gives for returning an issue.
const MaxReasonLength = 500

const scope = "github.com/whistle-dispatch/whistle/services/department"

var (
	tracer      = otel.Tracer(scope)
	commands, _ = otel.Meter(scope).Int64Counter("whistle.department.commands",
		metric.WithDescription("Reports-in and resolutions that appended an event, by command."))
	watchEntries, _ = otel.Meter(scope).Int64Counter("whistle.department.watch.entries",
		metric.WithDescription("Entries of department feeds that inbox watches read, by outcome: sent, or skipped (superseded, repeated, or outside the caller's scope)."))
	// The attribute sets of the commands and of a watch's outcomes are built once, so that
	// counting builds none.
	acknowledgeCommand = otelx.Attributes("command", "acknowledge")
	resolveCommand     = otelx.Attributes("command", "resolve")
	returnCommand      = otelx.Attributes("command", "return")
	sentEntry          = otelx.Attributes("outcome", "sent")
	skippedEntry       = otelx.Attributes("outcome", "skipped")
)

// App is the department's desk.
type App struct {
	log   *eventlog.Log
	store *store.Store
	clock clock.Clock
	// feeds reads the departments' feeds for every watch of the process.
	feeds *feed.Hub
	// feedReads counts, per department, the feed entries this App's watches read.
	feedReads sync.Map // department -> *atomic.Uint64
	// roster is the duty rosters in force.
	roster atomic.Pointer[roster.Rosters]
	// photos is where the photos a resolve names were uploaded.
	photos *evidence.Store
}

// New returns the application, with the rosters in force and the photo store.
func New(log *eventlog.Log, st *store.Store, clk clock.Clock, feeds *feed.Hub, rosters *roster.Rosters, photos *evidence.Store) *App {
	a := &App{log: log, store: st, clock: clk, feeds: feeds, photos: photos}
	a.roster.Store(rosters)
	return a
}

// Acknowledge reports in for the department's assignment of an issue as officer p, and returns
// the issue as it then stands. Reporting in again as the same officer changes nothing.
func (a *App) Acknowledge(ctx context.Context, p authx.Principal, issueID, unit string) (domain.Issue, error) {
	ctx, span := tracer.Start(ctx, "app.App.Acknowledge", traceIssue(issueID, unit))
	defer span.End()
	return a.command(ctx, acknowledgeCommand, issueID, unit, func(st *domain.Issue) (*whistlev1.Event, error) {
		done, err := st.CheckAcknowledge(unit, p.Subject)
		if err != nil || done {
			return nil, err
		}
		ev := a.event(p, st)
		ev.Payload = &whistlev1.Event_Acknowledged{Acknowledged: &whistlev1.AssignmentAcknowledged{DepartmentId: st.Assignment(unit).DepartmentID, UnitId: unit}}
		return ev, nil
	})
}

// Resolve closes the department's part of an issue with a note and the photos named, as officer
// p, and returns the issue as it then stands. The note is kept without its surrounding blanks.
// The photos must be ones p uploaded for this issue; they are claimed for it once the resolution
// is allowed and before it is appended, so a refused resolve writes nothing. Resolving again as
// the same officer with the same note changes nothing; with another note, or as another officer,
// it is refused.
func (a *App) Resolve(ctx context.Context, p authx.Principal, issueID, unit, note string, photoIDs []string) (domain.Issue, error) {
	ctx, span := tracer.Start(ctx, "app.App.Resolve", traceIssue(issueID, unit))
	defer span.End()
	note, err := cleanText("note", note, MaxNoteLength)
	if err != nil {
		return domain.Issue{}, err
	}
	return a.command(ctx, resolveCommand, issueID, unit, func(st *domain.Issue) (*whistlev1.Event, error) {
		done, err := st.CheckResolve(unit, p.Subject, note)
		if err != nil || done {
			return nil, err
		}
		photos, err := a.photos.Claim(ctx, p.Subject, evidence.Purpose{IssueID: st.ID}, st.ID, "photo_ids", photoIDs, evidence.MaxPhotosPerResolve)
		if err != nil {
			return nil, err
		}
		ev := a.event(p, st)
		ev.Payload = &whistlev1.Event_Resolved{Resolved: &whistlev1.AssignmentResolved{DepartmentId: st.Assignment(unit).DepartmentID, UnitId: unit, Note: note,
			Photos: evidence.ToProto(photos)}}
		return ev, nil
	})
}

// Return gives the unit's assignment of an issue back (退单) with a reason, as officer p (or, for
// a grid matter, the grid's worker), and returns the issue as it then stands; routing sends it on.
// Returning again with the same reason changes nothing.
func (a *App) Return(ctx context.Context, p authx.Principal, issueID, unit, reason string) (domain.Issue, error) {
	ctx, span := tracer.Start(ctx, "app.App.Return", traceIssue(issueID, unit))
	defer span.End()
	reason, err := cleanText("reason", reason, MaxReasonLength)
	if err != nil {
		return domain.Issue{}, err
	}
	return a.command(ctx, returnCommand, issueID, unit, func(st *domain.Issue) (*whistlev1.Event, error) {
		done, err := st.CheckReturn(unit, p.Subject, reason)
		if err != nil || done {
			return nil, err
		}
		ev := a.event(p, st)
		ev.Payload = &whistlev1.Event_Returned{Returned: &whistlev1.AssignmentReturned{
			DepartmentId: st.Assignment(unit).DepartmentID, UnitId: unit, Reason: reason}}
		return ev, nil
	})
}

// cleanText checks a field of free text and returns it without its surrounding blanks: 1 to max
// characters of valid UTF-8.
func cleanText(field, text string, max int) (string, error) {
	if err := apiedge.CheckUTF8(field, text); err != nil {
		return "", err
	}
	text = strings.TrimSpace(text)
	if n := utf8.RuneCountInString(text); n == 0 || n > max {
		return "", apiedge.Invalid(field, "must be 1 to %d characters", max)
	}
	return text, nil
}

// command decides and appends one event of the department's assignment of an issue through the
// log, counts it in commands as counted, and returns the issue as it then stands. When two officers race, the stream's order names
// the winner: the loser's conditional append fails (or is dropped as a duplicate of the winner's
// event id), Decide catches the view up, and decide, run again on the winner's state, tells the
// loser why it lost.
func (a *App) command(ctx context.Context, counted metric.AddOption, issueID, unit string, decide func(*domain.Issue) (*whistlev1.Event, error)) (domain.Issue, error) {
	var st domain.Issue
	rec, err := a.log.Decide(ctx, a.store, issueID, func(ctx context.Context) (*whistlev1.Event, error) {
		var err error
		st, err = a.store.Current(ctx, issueID)
		if err != nil {
			return nil, err
		}
		if st.Assignment(unit) != nil {
			ev, err := decide(&st)
			if !errors.As(err, new(*assignment.TransitionError)) {
				return ev, err
			}
		}
		// The officer may have seen a dispatch or a reopening before this service's consumer
		// applied it: only a refusal, or a unit the view does not know, is worth a read of the
		// stream before it is answered.
		if err := a.log.Catchup(ctx, a.store, issueID); err != nil {
			return nil, err
		}
		if st, err = a.store.Current(ctx, issueID); err != nil {
			return nil, err
		}
		return decide(&st)
	})
	if err != nil {
		return domain.Issue{}, err
	}
	if rec == nil {
		return st, nil // done before: the state it was decided on says so
	}
	commands.Add(ctx, 1, counted)
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
	Unit string
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
	ctx, span := tracer.Start(ctx, "app.App.Inbox", trace.WithAttributes(attribute.String("whistle.department", q.Unit)))
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
		as := st.Assignment(q.Unit)
		if as == nil || !q.Sees(st.Grid) {
			return false
		}
		return as.Status == q.Status || q.Status == "" && as.Status.Open()
	}
	items, more, err := a.store.Page(ctx, q.Unit, q.Status != "" && !q.Status.Open(), after, size, keep)
	if err != nil {
		return Page{}, err
	}
	page := Page{Items: items}
	if more {
		last := items[len(items)-1]
		page.NextPageToken = apiedge.EncodeToken(store.Cursor{Millis: last.Assignment(q.Unit).DispatchedAt.UnixMilli(), ID: last.ID})
	}
	return page, nil
}

// Watch sends the department's inbox as it changes: when after is empty, first its open items as
// they stand and a bookmark (send with a nil issue and the position the changes follow from);
// then, for each change to one of its assignments, in the order the department's feed recorded
// them, the issue as it stands after that change, with the change's position in the feed. It
// reads the department's feed only, and the issues its entries name, and never writes.
//
// An issue is sent at most once per change, and only at the change that is the assignment's
// latest (when an entry is read after a later change of its issue, the later entry sends it), and
// an item of the open inbox is not sent again for a change it already showed: so a client that
// resumes after the position of the last thing it received misses no change and sees none twice.
// Items outside sees' grids are not sent.
func (a *App) Watch(ctx context.Context, unit, after string, sees func(grid string) bool, send func(st *domain.Issue, position string) error) error {
	ctx, span := tracer.Start(ctx, "app.App.Watch", trace.WithAttributes(attribute.String("whistle.department", unit)))
	defer span.End()
	if after != "" {
		if err := feed.CheckPosition(after); err != nil {
			return apiedge.Invalid("after", "%q is not a position of a watch", after)
		}
	}
	f, err := a.feeds.Follow(ctx, store.FeedKey(unit), after)
	if err != nil {
		return err
	}
	defer f.Stop()
	sent := map[string]uint64{} // issue -> the change last sent
	if after == "" {
		// Every entry up to f.From was written with its state before this read, so the items
		// read now include what those entries announce; an item read here at a change whose
		// entry comes after f.From is not sent again for it.
		for token := ""; ; {
			page, err := a.Inbox(ctx, Query{Unit: unit, PageSize: apiedge.MaxPageSize, PageToken: token, Sees: sees})
			if err != nil {
				return err
			}
			for i := range page.Items {
				st := &page.Items[i]
				sent[st.ID] = latestChange(st, unit)
				if err := send(st, ""); err != nil {
					return err
				}
			}
			if token = page.NextPageToken; token == "" {
				break
			}
		}
		if err := send(nil, f.From); err != nil {
			return err
		}
	}
	reads := a.reads(unit)
	for {
		e, err := f.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		reads.Add(1)
		st, show, err := a.change(ctx, unit, e, sent[e.Issue])
		if err != nil {
			return err
		}
		if !show || !sees(st.Grid) {
			watchEntries.Add(ctx, 1, skippedEntry)
			continue
		}
		sent[e.Issue] = e.Seq
		if err := send(&st, e.Position); err != nil {
			return err
		}
		watchEntries.Add(ctx, 1, sentEntry)
	}
}

// change reads the issue a feed entry of unit announces, once the view holds it, and says whether
// the entry is the change to show: not one sent already (at or before last), nor one of an
// assignment changed again since, whose later entry follows in the feed.
func (a *App) change(ctx context.Context, unit string, e feed.Entry, last uint64) (domain.Issue, bool, error) {
	if e.Seq <= last {
		return domain.Issue{}, false, nil
	}
	st, err := feed.ReadAtLeast(ctx, e.Seq, feed.MaxLag, func(ctx context.Context) (domain.Issue, uint64, error) {
		// The owner of the issue, when it runs here, holds the document it wrote with the entry.
		if st, ok, err := a.store.Held(e.Issue); ok && st.LastSeq >= e.Seq {
			return *st, st.LastSeq, err
		}
		st, err := a.store.Get(ctx, e.Issue)
		return st, st.LastSeq, err
	})
	if err != nil {
		return st, false, err
	}
	if st.Assignment(unit) == nil {
		return st, false, nil
	}
	return st, latestChange(&st, unit) <= e.Seq, nil
}

// latestChange is the sequence of the last change to the department's item of an issue: the
// last event that changed its assignment, or the mark that quarantined the issue.
func latestChange(st *domain.Issue, unit string) uint64 {
	var latest uint64
	if st.Assignment(unit) != nil {
		latest = st.Changed[unit]
	}
	if st.Quarantine != nil {
		latest = max(latest, st.Quarantine.Seq)
	}
	return latest
}

// reads is the count of feed entries this App's watches of unit read.
func (a *App) reads(unit string) *atomic.Uint64 {
	n, _ := a.feedReads.LoadOrStore(unit, new(atomic.Uint64))
	return n.(*atomic.Uint64)
}

// FeedEntriesRead returns how many entries of unit's feed this App's watches have read, all
// watches together: with feeds per department, the entries of other departments' changes are
// never among them.
func (a *App) FeedEntriesRead(unit string) uint64 { return a.reads(unit).Load() }

// traceIssue tags a span with the issue and department it works on.
func traceIssue(id, unit string) trace.SpanStartOption {
	return trace.WithAttributes(attribute.String("whistle.issue", id), attribute.String("whistle.department", unit))
}
