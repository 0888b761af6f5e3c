// Package store keeps the department's view of each issue in Redis, derived from the event log,
// with an inbox index per department written with it.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/quarantine"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/redisdoc"
	"github.com/whistle-dispatch/whistle/pkg/feed"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/department/internal/domain"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
	"github.com/whistle-dispatch/whistle/services/internal/assignment/assignmentpb"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
)

// Name is the service the store belongs to, and the prefix of its keys.
const Name = "department"

// Store is the department's projection. Each issue is one JSON value under
// "department:issue:{<case>}"; each department has two sorted sets of case numbers scored by
// dispatch time in unix milliseconds, "department:inbox:<unit>:open" and ":resolved", and a
// feed of the changes to its assignments, "department:feed:{<unit>}" (see FeedKey).
type Store struct {
	*redisdoc.Store[*domain.Issue]
	rdb redis.UniversalClient
}

var _ eventlog.Projection = (*Store)(nil)

// New returns a store on rdb.
func New(rdb redis.UniversalClient) *Store {
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
// hash tag, which the feed shares, on a cluster, with the index that keeps it free of repeats
// (see feed.Pending).
func FeedKey(unit string) string { return Name + ":feed:{" + unit + "}" }

// announceQuarantine queues the feed entries of an issue's first quarantine mark, in the feed of
// each department summoned to the issue, whose inbox shows it.
func announceQuarantine(ctx context.Context, st *domain.Issue, m quarantine.Mark, tx redis.Pipeliner) {
	for _, a := range st.Assignments {
		feed.Append(ctx, tx, FeedKey(a.Unit()), st.ID, m.Seq, FeedLen)
	}
}

// key is the issue's state key; the braces make it a Redis Cluster hash tag.
func key(issueID string) string { return Name + ":issue:{" + issueID + "}" }

// inbox is the key of a unit's open index, or of its closed one (resolved, returned or withdrawn).
func inbox(unit string, closed bool) string {
	if closed {
		return Name + ":inbox:" + unit + ":resolved"
	}
	return Name + ":inbox:" + unit + ":open"
}

// Current returns the issue for a command to decide on: what this store last wrote or read of
// it, or what Redis holds (see redisdoc.Store.Latest).
func (s *Store) Current(ctx context.Context, issueID string) (domain.Issue, error) {
	st, err := s.Latest(ctx, issueID)
	if err != nil {
		return domain.Issue{}, err
	}
	return *st, nil
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

// Next is the issue after rec, which follows st: what the projection holds once it applied rec, for
// a command that decided on st and appended rec conditionally on it, to answer without a read.
func Next(st domain.Issue, rec eventlog.Record) (domain.Issue, error) {
	st.Assignments = slices.Clone(st.Assignments)
	if err := apply(&st, rec); err != nil {
		return domain.Issue{}, err
	}
	st.LastSeq = rec.Seq
	return st, nil
}

// fold applies one record to the issue's state and brings its departments' inboxes in line, and
// announces each assignment the record changed in its department's feed. The entry goes in with
// the state, or before it (see feed.Pending), so a watch that sees it reads the state at that
// record or later.
func fold(ctx context.Context, st *domain.Issue, rec eventlog.Record, tx redis.Pipeliner) error {
	before := make(map[string]assignment.Assignment, len(st.Assignments))
	for _, a := range st.Assignments {
		a.Breached = slices.Clone(a.Breached)
		before[a.Unit()] = a
	}
	if err := apply(st, rec); err != nil {
		return err
	}
	for i := range st.Assignments {
		a := &st.Assignments[i]
		if was, ok := before[a.Unit()]; !ok || !reflect.DeepEqual(was, *a) {
			if st.Changed == nil {
				st.Changed = map[string]uint64{}
			}
			st.Changed[a.Unit()] = rec.Seq
			feed.Append(ctx, tx, FeedKey(a.Unit()), st.ID, rec.Seq, FeedLen)
		}
		z := redis.Z{Score: float64(a.DispatchedAt.UnixMilli()), Member: st.ID}
		closed := !a.Status.Open()
		tx.ZAdd(ctx, inbox(a.Unit(), closed), z)
		tx.ZRem(ctx, inbox(a.Unit(), !closed), st.ID)
	}
	return nil
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
		if err := st.Withdraw(assignmentpb.Withdrawals(p.Routed.GetWithdrawn(), at, by)); err != nil {
			return err
		}
		st.Dispatch(assignmentpb.Dispatches(p.Routed), at, rec.Seq)
	case *whistlev1.Event_NeedsDispatch:
		if err := st.Withdraw(assignmentpb.Withdrawals(p.NeedsDispatch.GetWithdrawn(), at, by)); err != nil {
			return err
		}
		st.Dispatch(assignmentpb.Desk(p.NeedsDispatch), at, rec.Seq)
	case *whistlev1.Event_Returned:
		r := p.Returned
		return st.Return(assignment.Ending{DepartmentID: r.GetDepartmentId(), UnitID: r.GetUnitId(), At: at, By: by, Reason: r.GetReason()})
	case *whistlev1.Event_Acknowledged:
		return st.Acknowledge(assignment.Acknowledgement{DepartmentID: p.Acknowledged.GetDepartmentId(), UnitID: p.Acknowledged.GetUnitId(), At: at, By: by})
	case *whistlev1.Event_Resolved:
		return st.Resolve(assignment.Resolution{DepartmentID: p.Resolved.GetDepartmentId(), UnitID: p.Resolved.GetUnitId(), At: at, By: by, Note: p.Resolved.GetNote(),
			Photos: evidence.FromProto(p.Resolved.GetPhotos())})
	case *whistlev1.Event_Breached:
		return st.Breach(assignmentpb.Breach(p.Breached, at))
	case *whistlev1.Event_Pushed:
		pushes := map[string]string{}
		for _, push := range p.Pushed.GetPushes() {
			pushes[assignment.UnitOf(push.GetDepartmentId(), push.GetUnitId())] = push.GetOfficerId()
		}
		return st.Pushed(pushes)
	case *whistlev1.Event_HandedOver:
		return st.HandOver(assignment.UnitOf(p.HandedOver.GetDepartmentId(), p.HandedOver.GetUnitId()), p.HandedOver.GetToOfficerId())
	case *whistlev1.Event_ExtensionRequested:
		e := p.ExtensionRequested
		return st.RequestExtension(assignment.UnitOf(e.GetDepartmentId(), e.GetUnitId()), assignmentpb.Extension(e, at, by))
	case *whistlev1.Event_ExtensionDecided:
		d := assignmentpb.Decision(p.ExtensionDecided, at, by)
		return st.Assignment(assignment.UnitOf(d.DepartmentID, d.UnitID)).DecideExtension(d)
	case *whistlev1.Event_Urged:
		unit := assignment.UnitOf(p.Urged.GetDepartmentId(), p.Urged.GetUnitId())
		return st.Assignment(unit).Urge(unit)
	case *whistlev1.Event_Noted:
		st.Note(p.Noted.GetRequestId())
	case *whistlev1.Event_Reminded:
		r := p.Reminded
		unit := assignment.UnitOf(r.GetDepartmentId(), r.GetUnitId())
		return st.Assignment(unit).Remind(unit, assignmentpb.DeadlineKind(r.GetKind()))
	case *whistlev1.Event_Escalated:
		e := p.Escalated
		unit := assignment.UnitOf(e.GetDepartmentId(), e.GetUnitId())
		return st.Assignment(unit).Escalate(unit, assignmentpb.DeadlineKind(e.GetKind()), int(e.GetLevel()), e.GetPersonId())
	case *whistlev1.Event_Verified:
		if r, ok := assignmentpb.Reopening(p.Verified.GetReopened(), at); ok {
			return st.Reopen(r)
		}
	case *whistlev1.Event_Rated:
		if r, ok := assignmentpb.Reopening(p.Rated.GetReopened(), at); ok {
			return st.Reopen(r)
		}
	}
	return nil
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
func (s *Store) Page(ctx context.Context, unit string, resolved bool, after Cursor, n int, keep func(domain.Issue) bool) (out []domain.Issue, more bool, err error) {
	from, resume := "-inf", after != Cursor{}
	if resume {
		from = strconv.FormatInt(after.Millis, 10)
	}
	for offset := int64(0); ; offset += scanBatch {
		zs, err := s.rdb.ZRangeByScoreWithScores(ctx, inbox(unit, resolved), &redis.ZRangeBy{
			Min: from, Max: "+inf", Offset: offset, Count: scanBatch,
		}).Result()
		if err != nil {
			return nil, false, fmt.Errorf("department store: inbox %s: %w", unit, err)
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
