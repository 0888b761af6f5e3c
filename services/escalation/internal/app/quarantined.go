package app

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/store"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
)

// QuarantineScan bounds how many dead letters one page reads while looking for the ones a caller
// may see, so that a caller whose area holds none of many does not make one call read them all.
// A page that stops there is short and still carries a cursor; the caller reads on from it.
const QuarantineScan = 1000

// QuarantinedEvent is an event a service could never apply, as filed in the dead-letter stream:
// where the event was stored, why it could not apply, and the grid of its issue when escalation
// knows it.
type QuarantinedEvent struct {
	// IssueID is the issue its subject names; empty when the subject names none.
	IssueID string
	// Service is the service that could not apply it.
	Service    string
	Subject    string
	Seq        uint64
	StoredAt   time.Time
	Deliveries uint64
	Reason     string
	// GridID is the issue's grid as escalation's projection holds it; empty when unknown.
	GridID string
	// DeadSeq is where the dead-letter stream holds it, which orders the list.
	DeadSeq uint64
}

// QuarantinedCursor marks where a page of quarantined events ended: the next page reads the
// dead letters stored before Before, newest first. The zero cursor is the start, at the newest.
type QuarantinedCursor struct {
	Before uint64 `json:"b"`
}

// Quarantined answers queries over the dead-letter stream, which every service's consumer
// writes to when it quarantines an issue.
type Quarantined struct {
	dead    jetstream.Stream
	store   *store.Store
	catalog *catalog.Catalog
}

// NewQuarantined returns the queries over dead, finding each issue's grid in s.
func NewQuarantined(dead jetstream.Stream, s *store.Store, cat *catalog.Catalog) *Quarantined {
	return &Quarantined{dead: dead, store: s, catalog: cat}
}

// List returns up to size quarantined events whose issue lies in area, newest first, after the
// cursor, and the cursor of the next page (the zero cursor on the last). An event whose issue's
// grid escalation does not know (its subject names no issue, or escalation never applied the
// issue's raise) lies only in the city: a supervisor of a street cannot tell it is theirs.
func (q *Quarantined) List(ctx context.Context, area string, after QuarantinedCursor, size int) ([]QuarantinedEvent, QuarantinedCursor, error) {
	ctx, span := tracer.Start(ctx, "app.Quarantined.List")
	defer span.End()
	info, err := q.dead.Info(ctx)
	if err != nil {
		return nil, QuarantinedCursor{}, fmt.Errorf("escalation: dead letters: %w", err)
	}
	from, first := info.State.LastSeq, max(info.State.FirstSeq, 1)
	if after.Before != 0 {
		from = min(from, after.Before-1)
	}
	grids := map[string]string{}
	var out []QuarantinedEvent
	for seq, read := from, 0; seq >= first; seq-- {
		if read == QuarantineScan {
			return out, QuarantinedCursor{Before: seq + 1}, nil
		}
		read++
		raw, err := q.dead.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // removed by the stream's limits or by an operator
		}
		if err != nil {
			return nil, QuarantinedCursor{}, fmt.Errorf("escalation: dead letter %d: %w", seq, err)
		}
		ev, err := q.event(ctx, raw, grids)
		if err != nil {
			return nil, QuarantinedCursor{}, err
		}
		if !q.inArea(area, ev) {
			continue
		}
		if len(out) == size {
			return out, QuarantinedCursor{Before: out[size-1].DeadSeq}, nil
		}
		out = append(out, ev)
	}
	return out, QuarantinedCursor{}, nil
}

// inArea reports whether ev's issue lies in area; one whose grid is unknown lies only in the city.
func (q *Quarantined) inArea(area string, ev QuarantinedEvent) bool {
	if area == catalog.CityScope {
		return true
	}
	return ev.GridID != "" && q.catalog.Contains(area, ev.GridID)
}

// event reads a dead letter's headers, as eventlog files them, and looks up its issue's grid,
// remembering it in grids for the rest of the page. A header that is missing or unreadable
// leaves its field zero: the letter is still shown.
func (q *Quarantined) event(ctx context.Context, raw *jetstream.RawStreamMsg, grids map[string]string) (QuarantinedEvent, error) {
	h := raw.Header
	ev := QuarantinedEvent{
		Service: serviceOf(raw.Subject),
		Subject: h.Get(eventlog.HeaderDeadSubject),
		Reason:  h.Get(eventlog.HeaderDeadReason),
		DeadSeq: raw.Sequence,
	}
	ev.IssueID = eventlog.IssueOf(ev.Subject)
	ev.Seq, _ = strconv.ParseUint(h.Get(eventlog.HeaderDeadSeq), 10, 64)
	ev.Deliveries, _ = strconv.ParseUint(h.Get(eventlog.HeaderDeadDeliveries), 10, 64)
	ev.StoredAt, _ = time.Parse(time.RFC3339Nano, h.Get(eventlog.HeaderDeadStoredAt))
	if ev.IssueID == "" {
		return ev, nil
	}
	grid, ok := grids[ev.IssueID]
	if !ok {
		st, err := q.store.Issue(ctx, ev.IssueID)
		if err != nil {
			return QuarantinedEvent{}, fmt.Errorf("escalation: issue %s of dead letter %d: %w", ev.IssueID, raw.Sequence, err)
		}
		grid = st.GridID
		grids[ev.IssueID] = grid
	}
	ev.GridID = grid
	return ev, nil
}

// serviceOf reads the service from a dead letter's subject, whistle-dead.<service>.<seq>.
func serviceOf(subject string) string {
	parts := strings.Split(subject, ".")
	if len(parts) < 2 || parts[0] != eventlog.DeadLetterRoot {
		return ""
	}
	return parts[1]
}
