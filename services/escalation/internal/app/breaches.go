package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/domain"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/store"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
)

// watchBuffer is how many breach messages a watcher may fall behind before NATS drops some.
const watchBuffer = 1024

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
	nc      *nats.Conn
}

// NewBreaches returns the queries.
func NewBreaches(log *eventlog.Log, s *store.Store, cat *catalog.Catalog, nc *nats.Conn) *Breaches {
	return &Breaches{log: log, store: s, catalog: cat, nc: nc}
}

// keeps reports whether f lets b through.
func (q *Breaches) keeps(f Filter, b domain.Breach) bool {
	return (f.DepartmentID == "" || f.DepartmentID == b.DepartmentID) &&
		(f.AreaID == "" || q.catalog.Contains(f.AreaID, b.GridID))
}

// List returns a page of breaches that f keeps, newest first, after the cursor, and the cursor of
// the next page (nil on the last).
func (q *Breaches) List(ctx context.Context, f Filter, after *store.Cursor, size int) ([]domain.Breach, *store.Cursor, error) {
	ctx, span := tracer.Start(ctx, "app.Breaches.List")
	defer span.End()
	return q.store.Breaches(ctx, after, size, func(b domain.Breach) bool { return q.keeps(f, b) })
}

// Watch calls send for each breach that f keeps as it is recorded, until ctx ends or send fails.
// It calls listening once it listens, so a caller can tell its client that no breach recorded
// from then on will be missed; a breach is sent once it is in the view, which a catch-up from the
// stream guarantees.
func (q *Breaches) Watch(ctx context.Context, f Filter, listening func() error, send func(domain.Breach) error) error {
	msgs := make(chan *nats.Msg, watchBuffer)
	sub, err := q.nc.ChanSubscribe(eventlog.SubjectRoot+".*.breached", msgs)
	if err != nil {
		return fmt.Errorf("escalation: watch breaches: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := listening(); err != nil {
		return err
	}
	sent := map[string]bool{} // a retried append is published twice
	for {
		var msg *nats.Msg
		select {
		case <-ctx.Done():
			return nil
		case msg = <-msgs:
		}
		issueID := strings.Split(msg.Subject, ".")[1]
		ev := &whistlev1.Event{}
		if err := proto.Unmarshal(msg.Data, ev); err != nil || ev.GetBreached() == nil {
			continue // not an event: nothing to show
		}
		b, ok, err := q.recorded(ctx, issueID, ev)
		if err != nil {
			return err
		}
		name := domain.Name(issueID, b.DepartmentID, b.Kind)
		if !ok || sent[name] || !q.keeps(f, b) {
			continue
		}
		sent[name] = true
		if err := send(b); err != nil {
			return err
		}
	}
}

// settleTries and settleDelay bound how long recorded waits for the stream to store a breach that
// core NATS delivered first: the stream stores a publish after its subscribers may have seen it.
const (
	settleTries = 50
	settleDelay = 20 * time.Millisecond
)

// recorded returns the breach that a published breach event recorded, once the view holds it, or
// false when the stream refused the publish (it lost a race, so no breach happened). A publish is
// settled once the issue's last sequence has moved past the one it was conditional on.
func (q *Breaches) recorded(ctx context.Context, issueID string, ev *whistlev1.Event) (domain.Breach, bool, error) {
	e := ev.GetBreached()
	for range settleTries {
		last, err := q.log.Last(ctx, issueID)
		if err != nil {
			return domain.Breach{}, false, err
		}
		if err := q.log.Catchup(ctx, q.store, issueID); err != nil {
			return domain.Breach{}, false, err
		}
		b, ok, err := q.store.Breach(ctx, issueID, e.GetDepartmentId(), store.KindFromProto(e.GetKind()))
		if ok || err != nil || last > ev.GetPrevSeq() {
			return b, ok, err
		}
		select {
		case <-ctx.Done():
			return domain.Breach{}, false, nil
		case <-time.After(settleDelay):
		}
	}
	return domain.Breach{}, false, nil
}
