package app

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/feed"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/domain"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/store"
	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
)

// Filter picks breaches; the caller's scope is already folded into it.
type Filter struct {
	// DepartmentID keeps the breaches of one department or of one unit; empty keeps any.
	DepartmentID string
	// AreaID keeps breaches in grids within this area; empty keeps any.
	AreaID string
	// MinLevel keeps the breaches whose escalation chain reached at least this level; 0 keeps any.
	MinLevel int
	// From and Until keep the breaches recorded (breached_at) at or after From and before Until;
	// the zero time bounds nothing.
	From, Until time.Time
}

// Breaches answers queries over the breaches view.
type Breaches struct {
	log     *eventlog.Log
	store   *store.Store
	catalog *catalog.Catalog
	// feeds reads the breach feed for every watch of the process.
	feeds *feed.Hub
}

// NewBreaches returns the queries.
func NewBreaches(log *eventlog.Log, s *store.Store, cat *catalog.Catalog, feeds *feed.Hub) *Breaches {
	return &Breaches{log: log, store: s, catalog: cat, feeds: feeds}
}

// keeps reports whether f lets b through.
func (q *Breaches) keeps(f Filter, b domain.Breach) bool {
	return (f.DepartmentID == "" || f.DepartmentID == b.DepartmentID || f.DepartmentID == b.UnitID) &&
		(f.AreaID == "" || q.catalog.Contains(f.AreaID, b.GridID)) &&
		b.Level >= f.MinLevel &&
		(f.From.IsZero() || !b.BreachedAt.Before(f.From)) && (f.Until.IsZero() || b.BreachedAt.Before(f.Until))
}

// List returns a page of breaches that f keeps, newest first, after the cursor, and the cursor of
// the next page (the zero Cursor on the last).
func (q *Breaches) List(ctx context.Context, f Filter, after store.Cursor, size int) ([]domain.Breach, store.Cursor, error) {
	ctx, span := tracer.Start(ctx, "app.Breaches.List")
	defer span.End()
	return q.store.Breaches(ctx, store.Recorded{From: f.From, Until: f.Until}, after, size, func(b domain.Breach) bool { return q.keeps(f, b) })
}

// Resume says where a watch of breaches begins; the zero Resume watches from now on.
type Resume struct {
	// After is a position a previous watch gave (of a breach, or of where it followed from):
	// the watch sends every breach its scope has in the breach feed after it, none twice.
	After string
	// AfterSeq, when After is empty, also sends the breaches stored after this stream sequence
	// that the breach feed still holds.
	AfterSeq uint64
}

// Listening is where a watch follows from, as it tells its client.
type Listening struct {
	// Seq is the stream sequence after which every breach stored is sent; 0 when the watch
	// follows a position.
	Seq uint64
	// Position is the position in the breach feed after which every breach recorded is sent;
	// empty when the watch follows a sequence.
	Position string
}

// Watch calls send for each breach that f keeps as the breach feed records it in its scope, with its
// position in the feed, until ctx ends or send fails: those recorded after the position of
// from.After, those stored after the sequence from.AfterSeq, or, with neither, those recorded from
// now on. It takes only the breach feed's entries of its scope (the area f names, or else its
// department), reads only the issues they name, and never writes. It calls listening once it follows the feed, with
// where it follows from, so a caller can tell its client that no breach after it will be missed.
func (q *Breaches) Watch(ctx context.Context, f Filter, from Resume, listening func(Listening) error, send func(b domain.Breach, position string) error) error {
	ctx, span := tracer.Start(ctx, "app.Breaches.Watch")
	defer span.End()
	start := from.After
	switch {
	case from.After != "" && from.AfterSeq != 0:
		return apiedge.Invalid("after", "give after or after_seq, not both")
	case from.After != "":
		if err := feed.CheckPosition(from.After); err != nil {
			return apiedge.Invalid("after", "%q is not a position of a watch", from.After)
		}
	case from.AfterSeq != 0:
		start = feed.Oldest
	}
	fl, err := q.feeds.FollowIn(ctx, store.BreachFeedKey, start, scopeOf(f))
	if err != nil {
		return fmt.Errorf("escalation: watch breaches: %w", err)
	}
	defer fl.Stop()
	at := Listening{Position: fl.From}
	if from.After == "" {
		// Read after the feed was joined: a breach stored after head is recorded after that.
		head, err := q.log.Head(ctx)
		if err != nil {
			return fmt.Errorf("escalation: watch breaches: %w", err)
		}
		if from.AfterSeq > head {
			return apiedge.Invalid("after_seq", "%d is past the stream's last event, %d", from.AfterSeq, head)
		}
		at.Seq = cmp.Or(from.AfterSeq, head)
	}
	if err := listening(at); err != nil {
		return err
	}
	sent := map[string]uint64{} // issue -> the breach last sent
	for {
		e, err := fl.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if e.Seq <= from.AfterSeq || e.Seq <= sent[e.Issue] {
			watchEntries.Add(ctx, 1, skippedEntry)
			continue // before the sequence asked for, or sent already
		}
		b, ok, err := q.store.BreachAt(ctx, e.Issue, e.Seq)
		if err != nil {
			return err
		}
		if !ok || !q.keeps(f, b) {
			watchEntries.Add(ctx, 1, skippedEntry)
			continue
		}
		sent[e.Issue] = e.Seq
		if err := send(b, e.Position); err != nil {
			return err
		}
		watchEntries.Add(ctx, 1, sentEntry)
	}
}

// scopeOf is the scope of the breach feed a watch with filter f follows: its area, whose scope
// holds every breach within it, or, for a department's officer, who has no area, the department.
func scopeOf(f Filter) string { return cmp.Or(f.AreaID, f.DepartmentID) }
