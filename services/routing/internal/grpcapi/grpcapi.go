// Package grpcapi serves routing's gRPC API: the dry run of a route and the reference data that
// routing decides by.
package grpcapi

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/paulmach/orb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/access"
	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
	"github.com/whistle-dispatch/whistle/services/internal/apistatus"
	"github.com/whistle-dispatch/whistle/services/internal/assignment/assignmentpb"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/routing/internal/app"
)

// Server implements whistlev1.RoutingServiceServer. Any authenticated caller may read routes,
// rules and the catalog: they are public knowledge inside the city. Reloading the rules is for
// the city's dispatchers and supervisors.
type Server struct {
	whistlev1.UnimplementedRoutingServiceServer
	app *app.App
}

// New returns the server.
func New(a *app.App) *Server { return &Server{app: a} }

// catalog is the catalog in force, which routing reloads with its rules.
func (s *Server) catalog() *catalog.Catalog { return s.app.Tables().Current().Catalog }

// ExplainRoute answers which units an issue would go to, and why, rule by rule, without routing
// anything.
func (s *Server) ExplainRoute(ctx context.Context, req *whistlev1.ExplainRouteRequest) (*whistlev1.ExplainRouteResponse, error) {
	if _, err := access.Caller(ctx); err != nil {
		return nil, err
	}
	h := app.Hypothesis{IssueID: req.GetIssueId(), Grid: req.GetGridId(), Category: req.GetCategoryId(),
		Urgency: req.GetUrgency(), Text: req.GetText()}
	if loc := req.GetLocation(); loc != nil {
		h.Latitude, h.Longitude, h.HasPoint = loc.GetLatitude(), loc.GetLongitude(), true
	}
	if req.GetAt() != nil {
		if !req.GetAt().IsValid() {
			return nil, toStatus(apiedge.Invalid("at", "not a valid time"))
		}
		h.At = req.GetAt().AsTime()
	}
	p, err := s.app.Explain(ctx, h)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &whistlev1.ExplainRouteResponse{Matched: p.RuleID != "", RuleId: p.RuleID, Explanation: p.Explanation,
		StreetId: p.Street, GridId: p.Grid, RulesVersion: p.Version, Outcome: p.Outcome}
	for _, a := range p.Assignments {
		resp.Assignments = append(resp.Assignments, &whistlev1.PlannedAssignment{
			DepartmentId: a.Department, UnitId: a.Unit, Role: a.Role, Policy: app.SLAPolicy(a.Policy),
		})
	}
	for _, t := range p.Trials {
		resp.Trials = append(resp.Trials, &whistlev1.RuleTrial{RuleId: t.RuleID, Matched: t.Matched, Reason: t.Reason, WentOn: t.WentOn})
	}
	return resp, nil
}

// LocateGrid finds the grid that contains a point.
func (s *Server) LocateGrid(ctx context.Context, req *whistlev1.LocateGridRequest) (*whistlev1.LocateGridResponse, error) {
	if _, err := access.Caller(ctx); err != nil {
		return nil, err
	}
	grid, community, street, compound, err := s.app.LocateGrid(req.GetLatitude(), req.GetLongitude())
	if err != nil {
		return nil, toStatus(err)
	}
	return &whistlev1.LocateGridResponse{GridId: grid.ID, CommunityId: community.ID, StreetId: street.ID, CompoundId: compound}, nil
}

// ListRules returns the rules in force, in the order tried.
func (s *Server) ListRules(ctx context.Context, _ *whistlev1.ListRulesRequest) (*whistlev1.ListRulesResponse, error) {
	if _, err := access.Caller(ctx); err != nil {
		return nil, err
	}
	l := s.app.Tables().Current()
	resp := &whistlev1.ListRulesResponse{RulesVersion: l.Table.Version(), LoadedAt: timestamppb.New(l.LoadedAt)}
	for _, r := range l.Table.Rules() {
		resp.Rules = append(resp.Rules, &whistlev1.Rule{Id: r.ID, Summary: r.Summary()})
	}
	return resp, nil
}

// ReloadRules reads the rules and catalog files again; a set that fails its checks is refused
// with FAILED_PRECONDITION and the reason, and the rules in force stay.
func (s *Server) ReloadRules(ctx context.Context, _ *whistlev1.ReloadRulesRequest) (*whistlev1.ReloadRulesResponse, error) {
	p, err := access.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if (p.Role != authx.RoleDispatcher && p.Role != authx.RoleSupervisor) || p.Scope != catalog.CityScope {
		return nil, access.Denied("reloading the city's rules (a city dispatcher or supervisor may)")
	}
	l, changed, err := s.app.Reload(ctx)
	if err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "the rules were not reloaded and stay at version %s: %v", l.Table.Version(), err)
	}
	return &whistlev1.ReloadRulesResponse{RulesVersion: l.Table.Version(), Changed: changed}, nil
}

// dispatcher checks that the caller may work the desk: a dispatcher, or a supervisor.
func dispatcher(ctx context.Context) (authx.Principal, error) {
	p, err := access.Caller(ctx)
	if err != nil {
		return p, err
	}
	if p.Role != authx.RoleDispatcher && p.Role != authx.RoleSupervisor {
		return p, access.Denied("the dispatch desk (dispatchers and supervisors work it)")
	}
	return p, nil
}

// ListDesk lists what waits at the desk in the caller's scope, oldest first.
func (s *Server) ListDesk(ctx context.Context, req *whistlev1.ListDeskRequest) (*whistlev1.ListDeskResponse, error) {
	p, err := dispatcher(ctx)
	if err != nil {
		return nil, err
	}
	page, err := s.app.Desk(ctx, p, app.DeskQuery{Area: req.GetAreaId(), PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken()})
	if err != nil {
		return nil, toStatus(err)
	}
	now := s.app.Now()
	resp := &whistlev1.ListDeskResponse{NextPageToken: page.NextPageToken}
	for _, st := range page.Items {
		desk := st.AtDesk()
		resp.Items = append(resp.Items, &whistlev1.DeskItem{
			IssueId: st.ID, GridId: st.Grid, StreetId: st.Street, CategoryId: st.Category, Urgency: whistlev1.Urgency(st.Urgency),
			Reason: st.DeskReason, WaitingSince: timestamppb.New(desk.DispatchedAt), Waiting: durationpb.New(now.Sub(desk.DispatchedAt)),
			DispatchBy: assignmentpb.Timestamp(desk.ResolveBy), DeskUnitId: desk.Unit(), ReturnedBy: st.Returns,
		})
	}
	return resp, nil
}

// DispatchIssue dispatches an issue waiting at the desk by hand.
func (s *Server) DispatchIssue(ctx context.Context, req *whistlev1.DispatchIssueRequest) (*whistlev1.DispatchIssueResponse, error) {
	p, err := dispatcher(ctx)
	if err != nil {
		return nil, err
	}
	rec, planned, err := s.app.DispatchIssue(ctx, p, req.GetIssueId(), req.GetLead(), req.GetAssisting(), req.GetNote())
	if err != nil {
		return nil, toStatus(err)
	}
	return &whistlev1.DispatchIssueResponse{Assignments: plannedOut(planned), Seq: seqOf(rec)}, nil
}

// ReassignIssue replaces the units of a routed issue.
func (s *Server) ReassignIssue(ctx context.Context, req *whistlev1.ReassignIssueRequest) (*whistlev1.ReassignIssueResponse, error) {
	p, err := dispatcher(ctx)
	if err != nil {
		return nil, err
	}
	rec, planned, err := s.app.ReassignIssue(ctx, p, req.GetIssueId(), req.GetLead(), req.GetAssisting(), req.GetReason())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &whistlev1.ReassignIssueResponse{Assignments: plannedOut(planned), Seq: seqOf(rec)}
	if rec != nil {
		for _, w := range rec.Event.GetRouted().GetWithdrawn() {
			resp.Withdrawn = append(resp.Withdrawn, w.GetUnitId())
		}
	}
	return resp, nil
}

// ChangeCategory changes an issue's category; the route follows.
func (s *Server) ChangeCategory(ctx context.Context, req *whistlev1.ChangeCategoryRequest) (*whistlev1.ChangeCategoryResponse, error) {
	p, err := dispatcher(ctx)
	if err != nil {
		return nil, err
	}
	rec, err := s.app.ChangeCategory(ctx, p, req.GetIssueId(), req.GetCategoryId(), req.GetReason())
	if err != nil {
		return nil, toStatus(err)
	}
	return &whistlev1.ChangeCategoryResponse{Seq: seqOf(rec)}, nil
}

// UnlinkIssue unlinks a duplicate; the route follows.
func (s *Server) UnlinkIssue(ctx context.Context, req *whistlev1.UnlinkIssueRequest) (*whistlev1.UnlinkIssueResponse, error) {
	p, err := dispatcher(ctx)
	if err != nil {
		return nil, err
	}
	rec, err := s.app.UnlinkIssue(ctx, p, req.GetIssueId(), req.GetReason())
	if err != nil {
		return nil, toStatus(err)
	}
	return &whistlev1.UnlinkIssueResponse{Seq: seqOf(rec)}, nil
}

// plannedOut is a plan's units in the API's terms.
func plannedOut(ps []app.Planned) []*whistlev1.PlannedAssignment {
	var out []*whistlev1.PlannedAssignment
	for _, a := range ps {
		out = append(out, &whistlev1.PlannedAssignment{DepartmentId: a.Department, UnitId: a.Unit, Role: a.Role, Policy: app.SLAPolicy(a.Policy)})
	}
	return out
}

// seqOf is an appended event's sequence; 0 when nothing was appended (done before).
func seqOf(rec *eventlog.Record) uint64 {
	if rec == nil {
		return 0
	}
	return rec.Seq
}

// ListAreas returns the area tree, parents before children.
func (s *Server) ListAreas(ctx context.Context, _ *whistlev1.ListAreasRequest) (*whistlev1.ListAreasResponse, error) {
	if _, err := access.Caller(ctx); err != nil {
		return nil, err
	}
	resp := &whistlev1.ListAreasResponse{}
	for _, a := range s.catalog().Areas() {
		out := &whistlev1.Area{Id: a.ID, Name: a.Name, Level: a.Level, ParentId: a.ParentID}
		if a.Level == catalog.LevelCity {
			out.TimeZone = s.catalog().TimeZone().String()
		}
		if a.Boundary != nil {
			out.BoundaryGeojson = polygonJSON(a.Boundary)
		}
		resp.Areas = append(resp.Areas, out)
	}
	return resp, nil
}

// ListDepartments returns the department directory.
func (s *Server) ListDepartments(ctx context.Context, _ *whistlev1.ListDepartmentsRequest) (*whistlev1.ListDepartmentsResponse, error) {
	if _, err := access.Caller(ctx); err != nil {
		return nil, err
	}
	resp := &whistlev1.ListDepartmentsResponse{}
	returns, err := s.app.Returns(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	for _, d := range s.catalog().Departments() {
		out := &whistlev1.Department{Id: d.ID, Name: d.Name, Returns: returns[d.ID]}
		for _, u := range d.Units {
			out.Units = append(out.Units, &whistlev1.Unit{Id: u.ID, Name: u.Name, DepartmentId: d.ID, Serves: u.Serves})
		}
		resp.Departments = append(resp.Departments, out)
	}
	return resp, nil
}

// ListCategories returns the categories with their SLA policies.
func (s *Server) ListCategories(ctx context.Context, _ *whistlev1.ListCategoriesRequest) (*whistlev1.ListCategoriesResponse, error) {
	if _, err := access.Caller(ctx); err != nil {
		return nil, err
	}
	resp := &whistlev1.ListCategoriesResponse{}
	for _, k := range s.catalog().Categories() {
		resp.Categories = append(resp.Categories, &whistlev1.Category{
			Id: k.ID, Name: k.Name,
			Normal: app.SLAPolicy(k.Normal), Urgent: app.SLAPolicy(k.Urgent), Emergency: app.SLAPolicy(k.Emergency),
		})
	}
	return resp, nil
}

// toStatus maps an application error to the status the caller can act on: routing's own errors
// here, the ones every service shares in apistatus.
func toStatus(err error) error {
	switch {
	case errors.Is(err, app.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, app.ErrState):
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return apistatus.Of(err)
}

// polygonJSON writes a boundary as a GeoJSON Polygon geometry.
func polygonJSON(p orb.Polygon) string {
	raw, _ := json.Marshal(struct {
		Type        string      `json:"type"`
		Coordinates orb.Polygon `json:"coordinates"`
	}{"Polygon", p}) // numbers only: it cannot fail
	return string(raw)
}
