// Package store keeps the department's view of each issue in Redis, derived from the event log,
// with an inbox index per department kept in the same transaction.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/quarantine"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/redisdoc"
	"github.com/whistle-dispatch/whistle/pkg/feed"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/department/internal/domain"
)

// Name is the service the store belongs to, and the prefix of its keys.
const Name = "department"

// Store is the department's projection. Each issue is one JSON value under
// "department:issue:{<case>}"; each department has two sorted sets of case numbers scored by
// dispatch time in unix milliseconds, "department:inbox:<dept>:open" and ":resolved", and a
// feed of the changes to its assignments, "department:feed:{<dept>}" (see FeedKey).
type Store struct {
	*redisdoc.Store[*domain.Issue]
	rdb *redis.Client
}

var _ eventlog.Projection = (*Store)(nil)

// New returns a store on rdb.
func New(rdb *redis.Client) *Store {
	return &Store{Store: &redisdoc.Store[*domain.Issue]{
		Service:      Name,
		RDB:          rdb,
		Empty:        func(id string) *domain.Issue { return &domain.Issue{ID: id} },
		Fold:         fold,
		OnQuarantine: announceQuarantine,
	}, rdb: rdb}
}

// FeedLen is how many changes a department's feed keeps: a live inbox resumes from a position
// at most this many changes old, and starts again from the inbox as it stands otherwise.
const FeedLen = 10_000

// FeedKey is the key of a department's feed: a Redis Stream with one entry per change to one of
// its assignments (dispatched, reported in, resolved, breached, or its issue quarantined), naming
// the issue and the stream sequence of the event. The braces make the department a Redis Cluster
// hash tag, which the feed shares with the index that keeps it free of repeats (see feed.Append).
func FeedKey(dept string) string { return Name + ":feed:{" + dept + "}" }

// markKey carries the quarantine mark into announceQuarantine, which redisdoc calls without it.
type markKey struct{}

// Quarantine marks the issue quarantined at m.Seq (see redisdoc.Store.Quarantine) and, in the
// same transaction, announces the mark in the feed of each department summoned to the issue,
// whose inbox shows it.
func (s *Store) Quarantine(ctx context.Context, issueID string, m quarantine.Mark) error {
	return s.Store.Quarantine(context.WithValue(ctx, markKey{}, m), issueID, m)
}

// announceQuarantine queues the feed entries of an issue's first quarantine mark.
func announceQuarantine(ctx context.Context, st *domain.Issue, tx redis.Pipeliner) {
	m, ok := ctx.Value(markKey{}).(quarantine.Mark)
	if !ok {
		return
	}
	for _, a := range st.Assignments {
		feed.Append(ctx, tx, FeedKey(a.Department), st.ID, m.Seq, FeedLen)
	}
}

// key is the issue's state key; the braces make it a Redis Cluster hash tag.
func key(issueID string) string { return Name + ":issue:{" + issueID + "}" }

// inbox is the key of a department's open or resolved index.
func inbox(dept string, resolved bool) string {
	if resolved {
		return Name + ":inbox:" + dept + ":resolved"
	}
	return Name + ":inbox:" + dept + ":open"
}

// Get returns the issue as the department knows it; an issue it has never seen has LastSeq 0
// and no assignments.
func (s *Store) Get(ctx context.Context, issueID string) (domain.Issue, error) {
	st, err := s.Load(ctx, issueID)
	if err != nil {
		return domain.Issue{}, err
	}
	return *st, nil
}

// fold applies one record to the issue's state and brings its departments' inboxes in line, and
// announces each assignment the record changed in its department's feed. The entry is queued
// before the state (which redisdoc writes last), so a watch that sees it reads the state at that
// record or later.
func fold(ctx context.Context, st *domain.Issue, rec eventlog.Record, tx redis.Pipeliner) error {
	before := make(map[string]domain.Assignment, len(st.Assignments))
	for _, a := range st.Assignments {
		a.Breached = slices.Clone(a.Breached)
		before[a.Department] = a
	}
	if err := apply(st, rec); err != nil {
		return err
	}
	for i := range st.Assignments {
		a := &st.Assignments[i]
		if was, ok := before[a.Department]; !ok || !sameAssignment(was, *a) {
			a.Seq = rec.Seq
			feed.Append(ctx, tx, FeedKey(a.Department), st.ID, rec.Seq, FeedLen)
		}
		z := redis.Z{Score: float64(a.DispatchedAt.UnixMilli()), Member: st.ID}
		resolved := a.Status == domain.Resolved
		tx.ZAdd(ctx, inbox(a.Department, resolved), z)
		tx.ZRem(ctx, inbox(a.Department, !resolved), st.ID)
	}
	return nil
}

// sameAssignment reports whether two states of an assignment show alike, whatever event they
// were last changed by.
func sameAssignment(a, b domain.Assignment) bool {
	a.Seq, b.Seq = 0, 0
	return reflect.DeepEqual(a, b)
}

// apply records what the department cares about in an event; other events only advance LastSeq.
// Every time it keeps is the time the stream stored the event.
func apply(st *domain.Issue, rec eventlog.Record) error {
	ev := rec.Event
	raised := ev.GetRaised() != nil
	if raised == (st.Grid != "") {
		if raised {
			return eventlog.Impossible("the issue was raised before")
		}
		return eventlog.Impossible("a %s event before the issue was raised", eventlog.Kind(ev))
	}
	at := rec.Time
	by := ev.GetActor().GetSubject()
	switch p := ev.GetPayload().(type) {
	case *whistlev1.Event_Raised:
		r := p.Raised
		st.Grid, st.Street, st.Category, st.Text = r.GetGridId(), r.GetStreetId(), r.GetCategoryId(), r.GetText()
		st.Urgency = int32(r.GetUrgency())
		st.CorrelationID = ev.GetCorrelationId()
	case *whistlev1.Event_Routed:
		for _, d := range p.Routed.GetDispatches() {
			role := domain.Assisting
			if d.GetRole() == whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD {
				role = domain.Lead
			}
			st.Dispatch(domain.Assignment{Department: d.GetDepartmentId(), Role: role, DispatchedAt: at,
				ReportInBy: timeOf(d.GetReportInBy()), ResolveBy: timeOf(d.GetResolveBy())})
		}
	case *whistlev1.Event_Acknowledged:
		st.Acknowledge(p.Acknowledged.GetDepartmentId(), at, by)
	case *whistlev1.Event_Resolved:
		st.Resolve(p.Resolved.GetDepartmentId(), at, by, p.Resolved.GetNote())
	case *whistlev1.Event_Breached:
		kind := domain.ReportIn
		if p.Breached.GetKind() == whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE {
			kind = domain.Resolve
		}
		st.Breach(p.Breached.GetDepartmentId(), kind)
	}
	return nil
}

// timeOf reads an event's timestamp; an unset one is the zero time, which the API leaves unset
// in turn.
func timeOf(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

// Cursor is a place in an inbox: the dispatch time and case number of the last item seen. The
// zero Cursor is the start of the inbox.
type Cursor struct {
	Millis int64  `json:"t"`
	ID     string `json:"i"`
}

// scanBatch is how many index entries Page reads at a time.
const scanBatch = 100

// Page returns up to n issues from a department's open or resolved inbox, oldest dispatch first,
// after cursor (the zero Cursor: from the start), keeping only those keep accepts. more says
// whether any accepted issue follows the last one returned.
func (s *Store) Page(ctx context.Context, dept string, resolved bool, after Cursor, n int, keep func(domain.Issue) bool) (out []domain.Issue, more bool, err error) {
	from, resume := "-inf", after != Cursor{}
	if resume {
		from = strconv.FormatInt(after.Millis, 10)
	}
	for offset := int64(0); ; offset += scanBatch {
		zs, err := s.rdb.ZRangeByScoreWithScores(ctx, inbox(dept, resolved), &redis.ZRangeBy{
			Min: from, Max: "+inf", Offset: offset, Count: scanBatch,
		}).Result()
		if err != nil {
			return nil, false, fmt.Errorf("department store: inbox %s: %w", dept, err)
		}
		ids := make([]string, 0, len(zs))
		for _, z := range zs {
			id, millis := z.Member.(string), int64(z.Score)
			if resume && (millis < after.Millis || millis == after.Millis && id <= after.ID) {
				continue // at or before the cursor: on an earlier page
			}
			ids = append(ids, id)
		}
		issues, err := s.getAll(ctx, ids)
		if err != nil {
			return nil, false, err
		}
		for _, st := range issues {
			if !keep(st) {
				continue
			}
			if len(out) == n {
				return out, true, nil
			}
			out = append(out, st)
		}
		if len(zs) < scanBatch {
			return out, false, nil
		}
	}
}

// getAll reads several issues in one round trip.
func (s *Store) getAll(ctx context.Context, ids []string) ([]domain.Issue, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.StringCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.Get(ctx, key(id))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("department store: get inbox items: %w", err)
	}
	out := make([]domain.Issue, 0, len(ids))
	for _, c := range cmds {
		raw, err := c.Bytes()
		if errors.Is(err, redis.Nil) {
			continue // gone since the index was read
		}
		if err != nil {
			return nil, fmt.Errorf("department store: get inbox item: %w", err)
		}
		st := domain.Issue{}
		if err := json.Unmarshal(raw, &st); err != nil {
			return nil, fmt.Errorf("department store: decode inbox item: %w", err)
		}
		out = append(out, st)
	}
	return out, nil
}
