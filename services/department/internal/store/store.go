// Package store keeps the department's view of each issue in Redis, derived from the event log,
// with an inbox index per department kept in the same transaction.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/redisx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/department/internal/domain"
)

// Store is the department's projection. Each issue is one JSON value under
// "department:issue:{<case>}"; each department has two sorted sets of case numbers scored by
// dispatch time in unix milliseconds, "department:inbox:<dept>:open" and ":resolved".
type Store struct{ rdb *redis.Client }

var _ eventlog.Projection = (*Store)(nil)

// New returns a store on rdb.
func New(rdb *redis.Client) *Store { return &Store{rdb: rdb} }

// key is the issue's state key; the braces make it a Redis Cluster hash tag.
func key(issueID string) string { return "department:issue:{" + issueID + "}" }

// inbox is the key of a department's open or resolved index.
func inbox(dept string, resolved bool) string {
	if resolved {
		return "department:inbox:" + dept + ":resolved"
	}
	return "department:inbox:" + dept + ":open"
}

// Get returns the issue as the department knows it; an issue it has never seen has LastSeq 0
// and no assignments.
func (s *Store) Get(ctx context.Context, issueID string) (domain.Issue, error) {
	raw, err := s.rdb.Get(ctx, key(issueID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return domain.Issue{ID: issueID}, nil
	}
	if err != nil {
		return domain.Issue{}, fmt.Errorf("department store: get %s: %w", issueID, err)
	}
	return decode(raw)
}

// LastSeq returns the sequence of the issue's last applied event.
func (s *Store) LastSeq(ctx context.Context, issueID string) (uint64, error) {
	st, err := s.Get(ctx, issueID)
	return st.LastSeq, err
}

// Apply folds one record into the issue's state and its departments' inboxes, atomically and at
// most once.
func (s *Store) Apply(ctx context.Context, rec eventlog.Record) error {
	id := rec.Event.GetIssueId()
	return redisx.Update(ctx, s.rdb, key(id), func(cur []byte, tx redis.Pipeliner) ([]byte, error) {
		st := domain.Issue{ID: id}
		if cur != nil {
			var err error
			if st, err = decode(cur); err != nil {
				return nil, err
			}
		}
		if next, err := eventlog.Admit(st.LastSeq, rec); !next {
			return nil, err // nil for a redelivery, ErrGap when an earlier event is missing
		}
		apply(&st, rec)
		for _, a := range st.Assignments {
			z := redis.Z{Score: float64(a.DispatchedAt.UnixMilli()), Member: id}
			resolved := a.Status == domain.Resolved
			tx.ZAdd(ctx, inbox(a.Department, resolved), z)
			tx.ZRem(ctx, inbox(a.Department, !resolved), id)
		}
		return json.Marshal(st)
	})
}

// apply records what the department cares about in an event; other events only advance LastSeq.
func apply(st *domain.Issue, rec eventlog.Record) {
	ev := rec.Event
	st.LastSeq = rec.Seq
	at := timeOf(ev.GetOccurredAt())
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
}

// timeOf reads an event's timestamp; an unset one is the zero time, which the API leaves unset
// in turn.
func timeOf(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

// decode reads an issue's stored state.
func decode(raw []byte) (domain.Issue, error) {
	var st domain.Issue
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("department store: decode: %w", err)
	}
	return st, nil
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
		st, err := decode(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}
