package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/access"
	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
	"github.com/whistle-dispatch/whistle/services/internal/casenum"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/routing/internal/domain"
)

// Limits of a dispatcher's commands.
const (
	// MaxReasonLength bounds, in characters, the reason or note a dispatcher gives.
	MaxReasonLength = 500
	// MaxAssisting bounds the assisting departments of a dispatch by hand.
	MaxAssisting = 10
)

// ErrState is wrapped by a dispatcher's command that the issue's state does not allow (one not
// at the desk dispatched, one at the desk re-assigned, one not linked unlinked).
var ErrState = errors.New("not allowed in the issue's state")

// Dispatcher is who gives a dispatcher's command, checked against the issue's place.
type Dispatcher = authx.Principal

// DispatchIssue routes an issue waiting at the desk by hand: the named lead and assisting
// departments (or units) are summoned and the desk lets it go.
func (a *App) DispatchIssue(ctx context.Context, p Dispatcher, issueID, lead string, assisting []string, note string) (*eventlog.Record, []Planned, error) {
	return a.byHand(ctx, p, issueID, lead, assisting, note, false)
}

// ReassignIssue replaces the units of a routed issue: live assignments not named again are
// withdrawn, those named again keep theirs.
func (a *App) ReassignIssue(ctx context.Context, p Dispatcher, issueID, lead string, assisting []string, reason string) (*eventlog.Record, []Planned, error) {
	return a.byHand(ctx, p, issueID, lead, assisting, reason, true)
}

// byHand is a dispatch by hand, of an issue at the desk or (reassign) of a routed one.
func (a *App) byHand(ctx context.Context, p Dispatcher, rawID, lead string, assisting []string, reason string, reassign bool) (*eventlog.Record, []Planned, error) {
	ctx, span := tracer.Start(ctx, "app.App.byHand")
	defer span.End()
	id, err := a.checkIssueID(rawID)
	if err != nil {
		return nil, nil, err
	}
	field := "note"
	if reassign {
		field = "reason"
	}
	if reason, err = cleanReason(field, reason, reassign); err != nil {
		return nil, nil, err
	}
	if len(assisting) > MaxAssisting {
		return nil, nil, apiedge.Invalid("assisting", "at most %d", MaxAssisting)
	}
	var planned []Planned
	rec, err := a.log.Decide(ctx, a.store, id, func(ctx context.Context) (*whistlev1.Event, error) {
		st, err := a.visible(ctx, p, id)
		if err != nil {
			return nil, err
		}
		desk := st.AtDesk()
		switch {
		case !reassign && desk == nil:
			return nil, fmt.Errorf("issue %s is not waiting at the desk: %w", id, ErrState)
		case reassign && (desk != nil || len(st.Live()) == 0 || st.LinkedTo != ""):
			return nil, fmt.Errorf("issue %s has no routed assignments to re-assign: %w", id, ErrState)
		}
		l := a.tables.Current()
		if planned, err = handPlan(l, st, lead, assisting); err != nil {
			return nil, err
		}
		routed := &whistlev1.IssueRouted{RulesVersion: l.Table.Version(), Cause: whistlev1.RouteCause_ROUTE_CAUSE_BY_HAND,
			Explanation: "dispatched by hand by " + p.Subject}
		if reason != "" {
			routed.Explanation += ": " + reason
		}
		if reassign {
			routed.Cause = whistlev1.RouteCause_ROUTE_CAUSE_REASSIGNED
			routed.Explanation = "re-assigned by " + p.Subject + ": " + reason
			for _, as := range st.Live() {
				if !slices.ContainsFunc(planned, func(pa Planned) bool { return pa.Unit == as.Unit() }) {
					routed.Withdrawn = append(routed.Withdrawn, &whistlev1.Withdrawal{UnitId: as.Unit(), Reason: "re-assigned: " + reason})
				}
			}
		} else {
			routed.Withdrawn = []*whistlev1.Withdrawal{{UnitId: desk.Unit(), Reason: "dispatched by " + p.Subject}}
		}
		for _, pa := range planned {
			if as := st.Assignment(pa.Unit); as == nil || !as.Status.Open() {
				routed.Dispatches = append(routed.Dispatches, dispatch(l.Catalog.Calendar(), pa, st.RaisedAt))
			}
		}
		ev := a.envelope(st, actorOf(p))
		ev.Payload = &whistlev1.Event_Routed{Routed: routed}
		return ev, nil
	})
	return rec, planned, err
}

// handPlan reads a dispatcher's lead and assisting: each a department, whose unit the issue's
// place picks, or a unit, which must serve the place.
func handPlan(l *Loaded, st domain.Issue, lead string, assisting []string) ([]Planned, error) {
	k, _ := l.Catalog.Category(st.Category)
	policy := k.Policy(whistlev1.Urgency(st.Urgency))
	var out []Planned
	for i, name := range append([]string{lead}, assisting...) {
		field, role := "lead", whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD
		if i > 0 {
			field, role = fmt.Sprintf("assisting[%d]", i-1), whistlev1.AssignmentRole_ASSIGNMENT_ROLE_ASSISTING
		}
		if err := apiedge.CheckID(field, name, true); err != nil {
			return nil, err
		}
		u, err := l.Catalog.UnitFor(name, st.Grid)
		if errors.Is(err, catalog.ErrUnknown) {
			if u, err = l.Catalog.Unit(name); err == nil && !l.Catalog.Serves(u, st.Grid) {
				return nil, apiedge.Invalid(field, "unit %s does not serve grid %s", name, st.Grid)
			}
		}
		if err != nil {
			return nil, apiedge.Invalid(field, "%v", err)
		}
		if u.DepartmentID == catalog.GridDepartment || u.DepartmentID == l.Table.Desk.Department {
			return nil, apiedge.Invalid(field, "%s is not a department to dispatch to", name)
		}
		if slices.ContainsFunc(out, func(p Planned) bool { return p.Unit == u.ID }) {
			return nil, apiedge.Invalid(field, "%s is named twice", u.ID)
		}
		out = append(out, Planned{Department: u.DepartmentID, Unit: u.ID, Role: role, Policy: policy})
	}
	return out, nil
}

// ChangeCategory records a dispatcher's change of an issue's category; routing then routes it
// again by the rules (React).
func (a *App) ChangeCategory(ctx context.Context, p Dispatcher, rawID, category, reason string) (*eventlog.Record, error) {
	id, err := a.checkIssueID(rawID)
	if err != nil {
		return nil, err
	}
	if reason, err = cleanReason("reason", reason, true); err != nil {
		return nil, err
	}
	if err := apiedge.CheckID("category_id", category, true); err != nil {
		return nil, err
	}
	if _, err := a.tables.Current().Catalog.Category(category); err != nil {
		return nil, apiedge.Invalid("category_id", "no category %q in the catalog", category)
	}
	return a.log.Decide(ctx, a.store, id, func(ctx context.Context) (*whistlev1.Event, error) {
		st, err := a.visible(ctx, p, id)
		if err != nil {
			return nil, err
		}
		switch {
		case st.Category == category:
			return nil, nil // done before, or nothing to change
		case st.LinkedTo != "":
			return nil, fmt.Errorf("issue %s is linked to %s: unlink it first: %w", id, st.LinkedTo, ErrState)
		case !st.Open() && st.Owe == "":
			return nil, fmt.Errorf("issue %s is no longer open: %w", id, ErrState)
		}
		ev := a.envelope(st, actorOf(p))
		ev.Payload = &whistlev1.Event_Recategorised{Recategorised: &whistlev1.IssueRecategorised{
			FromCategoryId: st.Category, ToCategoryId: category, Reason: reason}}
		return ev, nil
	})
}

// UnlinkIssue records that a linked issue is not a duplicate; routing then routes it (React).
func (a *App) UnlinkIssue(ctx context.Context, p Dispatcher, rawID, reason string) (*eventlog.Record, error) {
	id, err := a.checkIssueID(rawID)
	if err != nil {
		return nil, err
	}
	if reason, err = cleanReason("reason", reason, true); err != nil {
		return nil, err
	}
	return a.log.Decide(ctx, a.store, id, func(ctx context.Context) (*whistlev1.Event, error) {
		st, err := a.visible(ctx, p, id)
		if err != nil {
			return nil, err
		}
		if st.LinkedTo == "" {
			return nil, fmt.Errorf("issue %s is not linked to another case: %w", id, ErrState)
		}
		ev := a.envelope(st, actorOf(p))
		ev.Payload = &whistlev1.Event_Unlinked{Unlinked: &whistlev1.IssueUnlinked{OriginalId: st.LinkedTo, Reason: reason}}
		return ev, nil
	})
}

// DeskQuery selects a page of the desk's queue.
type DeskQuery struct {
	Area      string
	PageSize  int
	PageToken string
}

// DeskPage is one page of the desk's queue, oldest first.
type DeskPage struct {
	Items         []domain.Issue
	NextPageToken string
}

// Desk lists what waits at the desk in an area the caller sees, oldest first.
func (a *App) Desk(ctx context.Context, p Dispatcher, q DeskQuery) (DeskPage, error) {
	cat := a.tables.Current().Catalog
	size, err := apiedge.PageSize(q.PageSize)
	if err != nil {
		return DeskPage{}, err
	}
	from, err := apiedge.DecodeToken[int64](q.PageToken)
	if err != nil {
		return DeskPage{}, err
	}
	if err := apiedge.CheckID("area_id", q.Area, false); err != nil {
		return DeskPage{}, err
	}
	area := q.Area
	if area == "" {
		area = p.Scope
	}
	if _, err := cat.Area(area); err != nil {
		return DeskPage{}, apiedge.Invalid("area_id", "no area %q in the catalog", area)
	}
	if !access.SeesArea(cat, p, area) {
		return DeskPage{}, access.Denied("area " + area)
	}
	page, err := a.store.Desk(ctx, from, size, func(st domain.Issue) bool { return cat.Contains(area, st.Grid) })
	if err != nil {
		return DeskPage{}, err
	}
	out := DeskPage{Items: page.Items}
	if page.Next > 0 {
		out.NextPageToken = apiedge.EncodeToken(page.Next)
	}
	return out, nil
}

// Returns counts the returns of each department.
func (a *App) Returns(ctx context.Context) (map[string]int64, error) { return a.store.Returns(ctx) }

// visible reads an issue for a dispatcher's command: one they may not see is not found.
func (a *App) visible(ctx context.Context, p Dispatcher, id string) (domain.Issue, error) {
	st, err := a.store.Current(ctx, id)
	if err != nil {
		return st, err
	}
	if !st.Raised || !access.SeesArea(a.tables.Current().Catalog, p, st.Grid) {
		return st, fmt.Errorf("issue %s: %w", id, ErrNotFound)
	}
	return st, nil
}

// checkIssueID reads a case number.
func (a *App) checkIssueID(raw string) (string, error) {
	if err := apiedge.CheckID("issue_id", raw, true); err != nil {
		return "", err
	}
	id, err := casenum.Normalize(raw)
	if err != nil {
		return "", apiedge.Invalid("issue_id", "%v", err)
	}
	return id, nil
}

// cleanReason checks a dispatcher's free text: at most MaxReasonLength characters, and some when
// required.
func cleanReason(field, text string, required bool) (string, error) {
	if err := apiedge.CheckUTF8(field, text); err != nil {
		return "", err
	}
	text = strings.TrimSpace(text)
	if n := utf8.RuneCountInString(text); n > MaxReasonLength || required && n == 0 {
		return "", apiedge.Invalid(field, "must be %d to %d characters", map[bool]int{true: 1, false: 0}[required], MaxReasonLength)
	}
	return text, nil
}

// actorOf is a person as the actor of an event.
func actorOf(p authx.Principal) *whistlev1.Actor {
	return &whistlev1.Actor{Subject: p.Subject, Role: string(p.Role), Scope: p.Scope}
}
