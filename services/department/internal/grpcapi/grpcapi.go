// Package grpcapi serves the department's gRPC API: it decides which unit a caller may act
// for or read, translates requests into application calls, and domain errors into precise codes.
package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/department/internal/app"
	"github.com/whistle-dispatch/whistle/services/department/internal/domain"
	"github.com/whistle-dispatch/whistle/services/internal/access"
	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
	"github.com/whistle-dispatch/whistle/services/internal/apistatus"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
	"github.com/whistle-dispatch/whistle/services/internal/assignment/assignmentpb"
	"github.com/whistle-dispatch/whistle/services/internal/casenum"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/internal/roster"
)

// Server implements whistlev1.DepartmentServiceServer.
type Server struct {
	whistlev1.UnimplementedDepartmentServiceServer
	app *app.App
	cat *catalog.Catalog
	// Notifications, when set, reads the notifications ListNotifications lists.
	Notifications NotificationLister
}

// New returns the server.
func New(a *app.App, cat *catalog.Catalog) *Server { return &Server{app: a, cat: cat} }

// Acknowledge reports in for the caller's unit.
func (s *Server) Acknowledge(ctx context.Context, req *whistlev1.AcknowledgeRequest) (*whistlev1.AcknowledgeResponse, error) {
	p, unit, id, err := s.command(ctx, req.GetUnitId(), req.GetIssueId())
	if err != nil {
		return nil, err
	}
	st, err := s.app.Acknowledge(ctx, p, id, unit)
	if err != nil {
		return nil, toStatus(err)
	}
	return &whistlev1.AcknowledgeResponse{Assignment: assignmentpb.Proto(st.Assignment(unit))}, nil
}

// Resolve closes the caller's unit's part.
func (s *Server) Resolve(ctx context.Context, req *whistlev1.ResolveRequest) (*whistlev1.ResolveResponse, error) {
	p, unit, id, err := s.command(ctx, req.GetUnitId(), req.GetIssueId())
	if err != nil {
		return nil, err
	}
	st, err := s.app.Resolve(ctx, p, id, unit, req.GetNote(), req.GetPhotoIds())
	if err != nil {
		return nil, toStatus(err)
	}
	return &whistlev1.ResolveResponse{Assignment: assignmentpb.Proto(st.Assignment(unit))}, nil
}

// ReturnAssignment gives the caller's unit's assignment back, with a reason.
func (s *Server) ReturnAssignment(ctx context.Context, req *whistlev1.ReturnAssignmentRequest) (*whistlev1.ReturnAssignmentResponse, error) {
	p, unit, id, err := s.command(ctx, req.GetUnitId(), req.GetIssueId())
	if err != nil {
		return nil, err
	}
	st, err := s.app.Return(ctx, p, id, unit, req.GetReason())
	if err != nil {
		return nil, toStatus(err)
	}
	return &whistlev1.ReturnAssignmentResponse{Assignment: assignmentpb.Proto(st.Assignment(unit))}, nil
}

// command checks that the caller is a duty officer of the unit (their own when unit is
// empty) and reads the case number.
func (s *Server) command(ctx context.Context, unit, issueID string) (authx.Principal, string, string, error) {
	p, err := access.Caller(ctx)
	if err != nil {
		return p, "", "", err
	}
	if p.Role != authx.RoleOfficer && p.Role != authx.RoleGridWorker {
		return p, "", "", access.Denied("a unit's assignments")
	}
	if err := apiedge.CheckID("unit_id", unit, false); err != nil {
		return p, "", "", toStatus(err)
	}
	if err := apiedge.CheckID("issue_id", issueID, false); err != nil {
		return p, "", "", toStatus(err)
	}
	if unit == "" {
		unit = p.Scope
	}
	if !access.ActsFor(p, unit) {
		return p, "", "", access.Denied(fmt.Sprintf("unit %q", unit))
	}
	if err := s.app.CheckOfficer(p, unit); err != nil {
		return p, "", "", status.Error(codes.PermissionDenied, err.Error())
	}
	id, err := casenum.Normalize(issueID)
	if err != nil {
		return p, "", "", toStatus(apiedge.Invalid("issue_id", "%v", err))
	}
	return p, unit, id, nil
}

// reader decides which unit's inbox the caller may read, and which grids' issues in it:
// officers read their own unit's; supervisors and dispatchers any unit's, within
// their scope of the area tree; grid workers none.
func (s *Server) reader(ctx context.Context, unit string) (string, func(grid string) bool, error) {
	p, err := access.Caller(ctx)
	if err != nil {
		return "", nil, err
	}
	if err := apiedge.CheckID("unit_id", unit, false); err != nil {
		return "", nil, toStatus(err)
	}
	switch p.Role {
	case authx.RoleOfficer, authx.RoleGridWorker: // a grid worker's unit is the grid, for its grid matters
		if unit == "" {
			unit = p.Scope
		}
		if !access.ActsFor(p, unit) {
			return "", nil, access.Denied(fmt.Sprintf("unit %q's inbox", unit))
		}
		return unit, func(string) bool { return true }, nil
	case authx.RoleSupervisor, authx.RoleDispatcher:
		if unit == "" {
			return "", nil, toStatus(apiedge.Invalid("unit_id", "required unless you are the unit's officer"))
		}
		if _, err := s.cat.Unit(unit); err != nil {
			return "", nil, toStatus(apiedge.Invalid("unit_id", "no unit %q in the catalog", unit))
		}
		return unit, func(grid string) bool { return access.SeesArea(s.cat, p, grid) }, nil
	default:
		return "", nil, access.Denied("department inboxes")
	}
}

// ListInbox pages through a department's assignments, oldest dispatch first.
func (s *Server) ListInbox(ctx context.Context, req *whistlev1.ListInboxRequest) (*whistlev1.ListInboxResponse, error) {
	unit, sees, err := s.reader(ctx, req.GetUnitId())
	if err != nil {
		return nil, err
	}
	want, ok := assignmentpb.Status(req.GetStatus())
	if !ok && req.GetStatus() != whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_UNSPECIFIED {
		return nil, toStatus(apiedge.Invalid("status", "unknown value %d", req.GetStatus()))
	}
	page, err := s.app.Inbox(ctx, app.Query{Unit: unit, Status: want, PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken(), Sees: sees})
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &whistlev1.ListInboxResponse{NextPageToken: page.NextPageToken}
	for _, st := range page.Items {
		resp.Items = append(resp.Items, item(st, unit))
	}
	return resp, nil
}

// WatchInbox streams the department's open inbox and a bookmark, then every change to its items,
// each with its position; resumed after a position, only the changes after it.
func (s *Server) WatchInbox(req *whistlev1.WatchInboxRequest, stream whistlev1.DepartmentService_WatchInboxServer) error {
	ctx := stream.Context()
	unit, sees, err := s.reader(ctx, req.GetUnitId())
	if err != nil {
		return err
	}
	if err := apiedge.CheckID("after", req.GetAfter(), false); err != nil {
		return toStatus(err)
	}
	err = s.app.Watch(ctx, unit, req.GetAfter(), sees, func(st *domain.Issue, position string) error {
		resp := &whistlev1.WatchInboxResponse{Position: position}
		if st != nil {
			resp.Item = item(*st, unit)
		}
		return stream.Send(resp)
	})
	if err != nil && ctx.Err() == nil {
		return toStatus(err)
	}
	return nil
}

// item is an issue as it shows in the department's inbox.
func item(st domain.Issue, unit string) *whistlev1.InboxItem {
	return &whistlev1.InboxItem{
		IssueId: st.ID, GridId: st.Grid, StreetId: st.Street, CategoryId: st.Category,
		Urgency: whistlev1.Urgency(st.Urgency), Text: st.Text,
		Assignment: assignmentpb.Proto(st.Assignment(unit)), Seq: st.LastSeq, Quarantine: eventlog.QuarantineProto(st.Quarantine),
	}
}

// toStatus maps an application error to the status the caller can act on: the department's own
// errors here, the ones every service shares in apistatus.
func toStatus(err error) error {
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.As(err, new(*app.NotOfficerError)):
		return status.Error(codes.PermissionDenied, err.Error())
	}
	return apistatus.Of(err)
}

// HandOver gives the caller's unit's assignment to a colleague of the unit.
func (s *Server) HandOver(ctx context.Context, req *whistlev1.HandOverRequest) (*whistlev1.HandOverResponse, error) {
	p, unit, id, err := s.command(ctx, req.GetUnitId(), req.GetIssueId())
	if err != nil {
		return nil, err
	}
	st, err := s.app.HandOver(ctx, p, id, unit, req.GetToOfficerId(), req.GetNote())
	if err != nil {
		return nil, toStatus(err)
	}
	return &whistlev1.HandOverResponse{Assignment: assignmentpb.Proto(st.Assignment(unit))}, nil
}

// AddNote records progress on the caller's unit's assignment.
func (s *Server) AddNote(ctx context.Context, req *whistlev1.AddNoteRequest) (*whistlev1.AddNoteResponse, error) {
	p, unit, id, err := s.command(ctx, req.GetUnitId(), req.GetIssueId())
	if err != nil {
		return nil, err
	}
	st, err := s.app.AddNote(ctx, p, id, unit, req.GetNote(), req.GetRequestId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &whistlev1.AddNoteResponse{Assignment: assignmentpb.Proto(st.Assignment(unit))}, nil
}

// RequestExtension asks for a later deadline of the caller's unit's assignment.
func (s *Server) RequestExtension(ctx context.Context, req *whistlev1.RequestExtensionRequest) (*whistlev1.RequestExtensionResponse, error) {
	p, unit, id, err := s.command(ctx, req.GetUnitId(), req.GetIssueId())
	if err != nil {
		return nil, err
	}
	kind := assignment.Resolve
	if req.GetKind() != whistlev1.DeadlineKind_DEADLINE_KIND_UNSPECIFIED {
		if kind = assignmentpb.DeadlineKind(req.GetKind()); kind == "" {
			return nil, toStatus(apiedge.Invalid("kind", "unknown value %d", req.GetKind()))
		}
	}
	if req.GetProposed() != nil && !req.GetProposed().IsValid() {
		return nil, toStatus(apiedge.Invalid("proposed", "is not a valid time"))
	}
	st, err := s.app.RequestExtension(ctx, p, id, unit, kind, assignmentpb.Time(req.GetProposed()), req.GetReason())
	if err != nil {
		return nil, toStatus(err)
	}
	return &whistlev1.RequestExtensionResponse{Assignment: assignmentpb.Proto(st.Assignment(unit))}, nil
}

// dutyReader decides whose duty the caller may read: an officer their own unit's, a supervisor or
// dispatcher any unit's.
func (s *Server) dutyReader(ctx context.Context, unit string, required bool) (string, error) {
	p, err := access.Caller(ctx)
	if err != nil {
		return "", err
	}
	if err := apiedge.CheckID("unit_id", unit, false); err != nil {
		return "", toStatus(err)
	}
	switch p.Role {
	case authx.RoleOfficer:
		if unit == "" {
			unit = p.Scope
		}
		if !access.ActsFor(p, unit) {
			return "", access.Denied(fmt.Sprintf("unit %q's roster", unit))
		}
	case authx.RoleSupervisor, authx.RoleDispatcher:
		if unit == "" && required {
			return "", toStatus(apiedge.Invalid("unit_id", "required unless you are the unit's officer"))
		}
	default:
		return "", access.Denied("rosters")
	}
	if unit != "" {
		if _, err := s.cat.Unit(unit); err != nil {
			return "", toStatus(apiedge.Invalid("unit_id", "no unit %q in the catalog", unit))
		}
	}
	return unit, nil
}

// WhoIsOnDuty says who is on duty in a unit at an instant.
func (s *Server) WhoIsOnDuty(ctx context.Context, req *whistlev1.WhoIsOnDutyRequest) (*whistlev1.WhoIsOnDutyResponse, error) {
	unit, err := s.dutyReader(ctx, req.GetUnitId(), true)
	if err != nil {
		return nil, err
	}
	at, err := s.instant("at", req.GetAt())
	if err != nil {
		return nil, err
	}
	r := s.app.Rosters()
	resp := &whistlev1.WhoIsOnDutyResponse{UnitId: unit, RosterVersion: r.Version(), HasRoster: r.Has(unit)}
	if !r.Has(unit) {
		return resp, nil
	}
	d := r.OnDuty(unit, at)
	resp.Shift, resp.OnDuty, resp.Until = d.Shift, officers(r, d.People), timestamppb.New(d.To)
	resp.Head = officers(r, []string{r.Head(unit)})[0]
	return resp, nil
}

// ListDuty lists a unit's duty over a period, or every unit's gaps.
func (s *Server) ListDuty(ctx context.Context, req *whistlev1.ListDutyRequest) (*whistlev1.ListDutyResponse, error) {
	unit, err := s.dutyReader(ctx, req.GetUnitId(), false)
	if err != nil {
		return nil, err
	}
	from, err := s.instant("from", req.GetFrom())
	if err != nil {
		return nil, err
	}
	to := from.Add(roster.FlagWithin)
	if req.GetTo() != nil {
		if to, err = s.instant("to", req.GetTo()); err != nil {
			return nil, err
		}
	}
	if !to.After(from) || to.Sub(from) > roster.MaxPeriod {
		return nil, toStatus(apiedge.Invalid("to", "must be after from, and at most %s after it", roster.MaxPeriod))
	}
	r := s.app.Rosters()
	resp := &whistlev1.ListDutyResponse{RosterVersion: r.Version()}
	units := []string{unit}
	if unit == "" {
		units = s.rosteredUnits()
	}
	resp.FlaggedUnits = r.Flagged(units, from, to)
	for _, u := range units {
		spans := r.Gaps(u, from, to)
		if unit != "" {
			spans = r.Spans(u, from, to)
			if !r.Has(u) {
				spans = r.Gaps(u, from, to)
			}
		}
		for _, d := range spans {
			resp.Duties = append(resp.Duties, &whistlev1.Duty{UnitId: u, From: timestamppb.New(d.From), To: timestamppb.New(d.To),
				Shift: d.Shift, OnDuty: officers(r, d.People)})
		}
	}
	return resp, nil
}

// rosteredUnits are the units whose officers may be on duty: every unit of the catalog but the
// grids' own, whose worker is their officer.
func (s *Server) rosteredUnits() []string {
	var units []string
	for _, d := range s.cat.Departments() {
		if d.ID == catalog.GridDepartment {
			continue
		}
		for _, u := range d.Units {
			units = append(units, u.ID)
		}
	}
	return units
}

// instant reads an optional instant of a request; unset means now.
func (s *Server) instant(field string, ts *timestamppb.Timestamp) (time.Time, error) {
	if ts == nil {
		return s.app.Now(), nil
	}
	if !ts.IsValid() {
		return time.Time{}, toStatus(apiedge.Invalid(field, "is not a valid time"))
	}
	return ts.AsTime(), nil
}

// officers names people as the API shows them.
func officers(r *roster.Rosters, ids []string) []*whistlev1.Officer {
	out := make([]*whistlev1.Officer, 0, len(ids))
	for _, id := range ids {
		p, _ := r.Person(id)
		out = append(out, &whistlev1.Officer{Id: id, Name: p.Name})
	}
	return out
}
