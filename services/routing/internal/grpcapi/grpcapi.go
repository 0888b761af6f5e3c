// Package grpcapi serves routing's gRPC API: the dry run of a route and the reference data that
// routing decides by.
package grpcapi

import (
	"context"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/access"
	"github.com/whistle-dispatch/whistle/services/internal/apistatus"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/routing/internal/app"
)

// Server implements whistlev1.RoutingServiceServer. Any authenticated caller may use it: routes
// and the catalog are public knowledge inside the city.
type Server struct {
	whistlev1.UnimplementedRoutingServiceServer
	app *app.App
	cat *catalog.Catalog
}

// New returns the server.
func New(a *app.App, cat *catalog.Catalog) *Server { return &Server{app: a, cat: cat} }

// ExplainRoute answers which departments an issue would go to, and why, without routing anything.
func (s *Server) ExplainRoute(ctx context.Context, req *whistlev1.ExplainRouteRequest) (*whistlev1.ExplainRouteResponse, error) {
	if _, err := access.Caller(ctx); err != nil {
		return nil, err
	}
	p, err := s.app.Explain(ctx, req.GetGridId(), req.GetCategoryId(), req.GetUrgency())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &whistlev1.ExplainRouteResponse{Matched: p.Matched, RuleId: p.RuleID, Explanation: p.Explanation, StreetId: p.Street}
	for _, a := range p.Assignments {
		resp.Assignments = append(resp.Assignments, &whistlev1.PlannedAssignment{
			DepartmentId: a.Department, Role: a.Role, Policy: app.SLAPolicy(a.Policy),
		})
	}
	return resp, nil
}

// ListAreas returns the area tree, parents before children.
func (s *Server) ListAreas(ctx context.Context, _ *whistlev1.ListAreasRequest) (*whistlev1.ListAreasResponse, error) {
	if _, err := access.Caller(ctx); err != nil {
		return nil, err
	}
	resp := &whistlev1.ListAreasResponse{}
	for _, a := range s.cat.Areas() {
		resp.Areas = append(resp.Areas, &whistlev1.Area{Id: a.ID, Name: a.Name, Level: a.Level, ParentId: a.ParentID})
	}
	return resp, nil
}

// ListDepartments returns the department directory.
func (s *Server) ListDepartments(ctx context.Context, _ *whistlev1.ListDepartmentsRequest) (*whistlev1.ListDepartmentsResponse, error) {
	if _, err := access.Caller(ctx); err != nil {
		return nil, err
	}
	resp := &whistlev1.ListDepartmentsResponse{}
	for _, d := range s.cat.Departments() {
		resp.Departments = append(resp.Departments, &whistlev1.Department{Id: d.ID, Name: d.Name})
	}
	return resp, nil
}

// ListCategories returns the categories with their SLA policies.
func (s *Server) ListCategories(ctx context.Context, _ *whistlev1.ListCategoriesRequest) (*whistlev1.ListCategoriesResponse, error) {
	if _, err := access.Caller(ctx); err != nil {
		return nil, err
	}
	resp := &whistlev1.ListCategoriesResponse{}
	for _, k := range s.cat.Categories() {
		resp.Categories = append(resp.Categories, &whistlev1.Category{
			Id: k.ID, Name: k.Name,
			Normal: app.SLAPolicy(k.Normal), Urgent: app.SLAPolicy(k.Urgent), Emergency: app.SLAPolicy(k.Emergency),
		})
	}
	return resp, nil
}

// toStatus maps an application error to the status the caller can act on; routing has no errors
// of its own beyond the ones every service shares.
func toStatus(err error) error { return apistatus.Of(err) }
