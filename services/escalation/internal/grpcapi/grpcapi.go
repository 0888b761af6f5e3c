// Package grpcapi serves EscalationService: it checks the caller's scope, folds it into the query,
// and translates between the API's messages and the service's breaches and quarantined events.
package grpcapi

import (
	"context"
	"strconv"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/app"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/domain"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/store"
	"github.com/whistle-dispatch/whistle/services/internal/access"
	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
	"github.com/whistle-dispatch/whistle/services/internal/apistatus"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
	"github.com/whistle-dispatch/whistle/services/internal/assignment/assignmentpb"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
)

// Server implements whistlev1.EscalationServiceServer.
type Server struct {
	whistlev1.UnimplementedEscalationServiceServer
	breaches    *app.Breaches
	quarantined *app.Quarantined
	supervisors *app.Supervisors
	catalog     *catalog.Catalog
}

// New returns the server.
func New(b *app.Breaches, q *app.Quarantined, sv *app.Supervisors, cat *catalog.Catalog) *Server {
	return &Server{breaches: b, quarantined: q, supervisors: sv, catalog: cat}
}

// ListBreaches pages through the breaches in the caller's scope, newest first.
func (s *Server) ListBreaches(ctx context.Context, req *whistlev1.ListBreachesRequest) (*whistlev1.ListBreachesResponse, error) {
	f, err := s.filter(ctx, req.GetDepartmentId(), req.GetAreaId())
	if err != nil {
		return nil, err
	}
	if err := period(&f, req); err != nil {
		return nil, apistatus.Of(err)
	}
	size, err := apiedge.PageSize(int(req.GetPageSize()))
	if err != nil {
		return nil, apistatus.Of(err)
	}
	after, err := apiedge.DecodeToken[store.Cursor](req.GetPageToken())
	if err != nil {
		return nil, apistatus.Of(err)
	}
	page, next, err := s.breaches.List(ctx, f, after, size)
	if err != nil {
		return nil, apistatus.Of(err)
	}
	resp := &whistlev1.ListBreachesResponse{NextPageToken: apiedge.EncodeToken(next)}
	for _, b := range page {
		resp.Breaches = append(resp.Breaches, toProto(b))
	}
	return resp, nil
}

// MaxLevel bounds the escalation level a breach list may ask for: no chain is longer.
const MaxLevel = 16

// period adds a list's level and period to its filter: min_level from 0 to MaxLevel, and from and
// until valid times, until after from.
func period(f *app.Filter, req *whistlev1.ListBreachesRequest) error {
	if l := req.GetMinLevel(); l < 0 || l > MaxLevel {
		return apiedge.Invalid("min_level", "must be 0 to %d", MaxLevel)
	}
	f.MinLevel = int(req.GetMinLevel())
	for _, b := range []struct {
		field string
		ts    *timestamppb.Timestamp
		at    *time.Time
	}{{"from", req.GetFrom(), &f.From}, {"until", req.GetUntil(), &f.Until}} {
		if b.ts == nil {
			continue
		}
		if !b.ts.IsValid() || b.ts.AsTime().IsZero() {
			return apiedge.Invalid(b.field, "is not a valid time")
		}
		*b.at = b.ts.AsTime()
	}
	if !f.From.IsZero() && !f.Until.IsZero() && !f.Until.After(f.From) {
		return apiedge.Invalid("until", "must be after from")
	}
	return nil
}

// Response headers of WatchBreaches that name where the watch follows from, so that a client
// that received no breach yet can resume from there.
const (
	// WatchAfterHeader names the stream sequence after which every breach stored is sent; it
	// is absent on a watch that follows a position.
	WatchAfterHeader = "whistle-watch-after"
	// WatchPositionHeader names the position in the scope's feed after which every breach
	// recorded is sent; it is absent on a watch that follows after_seq.
	WatchPositionHeader = "whistle-watch-position"
)

// WatchBreaches streams the breaches in the caller's scope as they are recorded, each with its
// position in the scope's feed. It sends the response headers once it listens, naming in
// WatchPositionHeader and WatchAfterHeader where it follows from, so a client that waits for them
// misses nothing after, and can resume from there.
func (s *Server) WatchBreaches(req *whistlev1.WatchBreachesRequest, stream whistlev1.EscalationService_WatchBreachesServer) error {
	f, err := s.filter(stream.Context(), req.GetDepartmentId(), req.GetAreaId())
	if err != nil {
		return err
	}
	if err := apiedge.CheckID("after", req.GetAfter(), false); err != nil {
		return apistatus.Of(err)
	}
	// The response headers tell the client that the watch is listening.
	listening := func(at app.Listening) error {
		md := metadata.MD{}
		if at.Position != "" {
			md.Set(WatchPositionHeader, at.Position)
		}
		if at.Seq != 0 {
			md.Set(WatchAfterHeader, strconv.FormatUint(at.Seq, 10))
		}
		return stream.SendHeader(md)
	}
	from := app.Resume{After: req.GetAfter(), AfterSeq: req.GetAfterSeq()}
	err = s.breaches.Watch(stream.Context(), f, from, listening, func(b domain.Breach, position string) error {
		return stream.Send(&whistlev1.WatchBreachesResponse{Breach: toProto(b), Position: position})
	})
	if err != nil && stream.Context().Err() == nil {
		return apistatus.Of(err)
	}
	return nil
}

// ListQuarantined pages through the events a service could never apply, newest first. Only
// supervisors may list them, each within their area: an event shows to a supervisor of an area
// when its issue lies there, and one whose issue's grid is not known only to the city's.
func (s *Server) ListQuarantined(ctx context.Context, req *whistlev1.ListQuarantinedRequest) (*whistlev1.ListQuarantinedResponse, error) {
	p, err := access.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if p.Role != authx.RoleSupervisor {
		return nil, access.Denied("quarantined events")
	}
	size, err := apiedge.PageSize(int(req.GetPageSize()))
	if err != nil {
		return nil, apistatus.Of(err)
	}
	after, err := apiedge.DecodeToken[app.QuarantinedCursor](req.GetPageToken())
	if err != nil {
		return nil, apistatus.Of(err)
	}
	page, next, err := s.quarantined.List(ctx, p.Scope, after, size)
	if err != nil {
		return nil, apistatus.Of(err)
	}
	resp := &whistlev1.ListQuarantinedResponse{NextPageToken: apiedge.EncodeToken(next)}
	for _, ev := range page {
		resp.Events = append(resp.Events, quarantinedToProto(ev))
	}
	return resp, nil
}

// filter checks the request against the caller's scope and returns the query it allows:
// supervisors and dispatchers see their part of the area tree, duty officers their unit.
func (s *Server) filter(ctx context.Context, departmentID, areaID string) (app.Filter, error) {
	p, err := access.Caller(ctx)
	if err != nil {
		return app.Filter{}, err
	}
	if err := s.checkFilter(departmentID, areaID); err != nil {
		return app.Filter{}, apistatus.Of(err)
	}
	switch p.Role {
	case authx.RoleOfficer:
		if departmentID == "" {
			departmentID = p.Scope
		}
		if !access.ActsFor(p, departmentID) {
			return app.Filter{}, access.Denied("unit " + departmentID)
		}
	case authx.RoleSupervisor, authx.RoleDispatcher:
		if areaID == "" {
			areaID = p.Scope
		}
		if !access.SeesArea(s.catalog, p, areaID) {
			return app.Filter{}, access.Denied("area " + areaID)
		}
	default:
		return app.Filter{}, access.Denied("breaches")
	}
	return app.Filter{DepartmentID: departmentID, AreaID: areaID}, nil
}

// checkFilter checks that the department (or unit) and the area a request names, when it names
// them, are in the catalog.
func (s *Server) checkFilter(departmentID, areaID string) error {
	if err := apiedge.CheckID("department_id", departmentID, false); err != nil {
		return err
	}
	if departmentID != "" {
		_, dErr := s.catalog.Department(departmentID)
		if _, uErr := s.catalog.Unit(departmentID); dErr != nil && uErr != nil {
			return apiedge.Invalid("department_id", "no department or unit %q in the catalog", departmentID)
		}
	}
	if err := apiedge.CheckID("area_id", areaID, false); err != nil {
		return err
	}
	if areaID != "" {
		if _, err := s.catalog.Area(areaID); err != nil {
			return apiedge.Invalid("area_id", "unknown area %q", areaID)
		}
	}
	return nil
}

// toProto is the API's view of a breach.
func toProto(b domain.Breach) *whistlev1.Breach {
	out := &whistlev1.Breach{
		IssueId:      b.IssueID,
		DepartmentId: b.DepartmentID,
		UnitId:       assignment.UnitOf(b.DepartmentID, b.UnitID),
		Kind:         assignmentpb.DeadlineKindProto(b.Kind),
		Deadline:     timestamppb.New(b.Deadline),
		BreachedAt:   timestamppb.New(b.BreachedAt),
		GridId:       b.GridID,
		StreetId:     b.StreetID,
		CategoryId:   b.CategoryID,
		Seq:          b.Seq,
		Level:        int32(b.Level),
		Round:        int32(b.Round),
	}
	if !b.ClearedAt.IsZero() {
		out.ClearedAt = timestamppb.New(b.ClearedAt)
	}
	return out
}

// quarantinedToProto is the API's view of a quarantined event.
func quarantinedToProto(ev app.QuarantinedEvent) *whistlev1.QuarantinedEvent {
	out := &whistlev1.QuarantinedEvent{
		IssueId:    ev.IssueID,
		Service:    ev.Service,
		Subject:    ev.Subject,
		Seq:        ev.Seq,
		Deliveries: ev.Deliveries,
		Reason:     ev.Reason,
		GridId:     ev.GridID,
	}
	if !ev.StoredAt.IsZero() {
		out.StoredAt = timestamppb.New(ev.StoredAt)
	}
	return out
}
