package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/domain"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/store"
	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
)

// Filter picks breaches; the caller's scope is already folded into it.
type Filter struct {
	// DepartmentID keeps one department's breaches; empty keeps any.
	DepartmentID string
	// AreaID keeps breaches in grids within this area; empty keeps any.
	AreaID string
}

// Breaches answers queries over the breaches view.
type Breaches struct {
	log     *eventlog.Log
	store   *store.Store
	catalog *catalog.Catalog
}

// NewBreaches returns the queries.
func NewBreaches(log *eventlog.Log, s *store.Store, cat *catalog.Catalog) *Breaches {
	return &Breaches{log: log, store: s, catalog: cat}
}

// keeps reports whether f lets b through.
func (q *Breaches) keeps(f Filter, b domain.Breach) bool {
	return (f.DepartmentID == "" || f.DepartmentID == b.DepartmentID) &&
		(f.AreaID == "" || q.catalog.Contains(f.AreaID, b.GridID))
}

// List returns a page of breaches that f keeps, newest first, after the cursor, and the cursor of
// the next page (the zero Cursor on the last).
func (q *Breaches) List(ctx context.Context, f Filter, after store.Cursor, size int) ([]domain.Breach, store.Cursor, error) {
	ctx, span := tracer.Start(ctx, "app.Breaches.List")
	defer span.End()
	return q.store.Breaches(ctx, after, size, func(b domain.Breach) bool { return q.keeps(f, b) })
}

// ErrWatchInterrupted is returned by Watch when the stream of events stops while the caller is
// still watching; the caller may watch again.
var ErrWatchInterrupted = errors.New("the event stream stopped; watch again")

// Watch calls send for each breach that f keeps as it is recorded, until ctx ends or send fails:
// those stored after sequence after, or, when after is 0, those stored from now on. It calls
// listening once it follows the stream, with the sequence it follows from, so a caller can tell
// its client that no breach recorded after it will be missed. The stream delivers a breach only once it is stored, so the view,
// caught up on receipt, holds it.
func (q *Breaches) Watch(ctx context.Context, f Filter, after uint64, listening func(after uint64) error, send func(domain.Breach) error) error {
	head, err := q.log.Head(ctx)
	if err != nil {
		return fmt.Errorf("escalation: watch breaches: %w", err)
	}
	if after > head {
		return apiedge.Invalid("after_seq", "%d is past the stream's last event, %d", after, head)
	}
	if after == 0 {
		after = head
	}
	recs, err := q.log.Follow(ctx, eventlog.KindSubjects("breached"), after)
	if err != nil {
		return fmt.Errorf("escalation: watch breaches: %w", err)
	}
	if err := listening(after); err != nil {
		return err
	}
	for rec := range recs {
		e := rec.Event.GetBreached()
		if e == nil {
			continue // not a breach: nothing to show
		}
		issueID := rec.Event.GetIssueId()
		if _, err := q.log.CatchupTo(ctx, q.store, issueID, rec.Seq); err != nil {
			return err
		}
		b, ok, err := q.store.Breach(ctx, issueID, e.GetDepartmentId(), store.KindFromProto(e.GetKind()))
		if err != nil {
			return err
		}
		if !ok || b.Seq != rec.Seq || !q.keeps(f, b) {
			continue
		}
		if err := send(b); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return ErrWatchInterrupted
}
