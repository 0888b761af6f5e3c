package grpcapi

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
	"github.com/whistle-dispatch/whistle/services/internal/casenum"
)

// Urge records a supervisor's formal urge (督办) of a part of an issue in their scope.
func (s *Server) Urge(ctx context.Context, req *whistlev1.UrgeRequest) (*whistlev1.UrgeResponse, error) {
	p, id, err := s.supervisor(ctx, req.GetIssueId(), req.GetUnitId())
	if err != nil {
		return nil, err
	}
	part, err := s.supervisors.Urge(ctx, p, id, req.GetUnitId(), req.GetNote(), req.GetRequestId())
	if err != nil {
		return nil, supervisionStatus(err)
	}
	return &whistlev1.UrgeResponse{Assignment: assignmentpb.Proto(part.Assignment), Seq: part.Seq}, nil
}

// DecideExtension approves or denies a unit's pending extension request of an issue in the
// supervisor's scope.
func (s *Server) DecideExtension(ctx context.Context, req *whistlev1.DecideExtensionRequest) (*whistlev1.DecideExtensionResponse, error) {
	p, id, err := s.supervisor(ctx, req.GetIssueId(), req.GetUnitId())
	if err != nil {
		return nil, err
	}
	if g := req.GetGranted(); g != nil && !g.IsValid() {
		return nil, apistatus.Of(apiedge.Invalid("granted", "is not a valid time"))
	}
	part, err := s.supervisors.DecideExtension(ctx, p, id, req.GetUnitId(), req.GetApprove(), assignmentpb.Time(req.GetGranted()), req.GetReason(), req.GetRequestId())
	if err != nil {
		return nil, supervisionStatus(err)
	}
	return &whistlev1.DecideExtensionResponse{Assignment: assignmentpb.Proto(part.Assignment), Seq: part.Seq}, nil
}

// ListExtensionRequests pages through the extension requests that wait for a decision on open
// parts of issues in the supervisor's scope, oldest first. Only supervisors list them, as only
// they decide them; a filter's area beyond their scope is refused, as ListBreaches refuses it.
func (s *Server) ListExtensionRequests(ctx context.Context, req *whistlev1.ListExtensionRequestsRequest) (*whistlev1.ListExtensionRequestsResponse, error) {
	p, err := access.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if p.Role != authx.RoleSupervisor {
		return nil, status.Error(codes.PermissionDenied, "only a supervisor lists the extension requests, as only a supervisor decides them")
	}
	if err := s.checkFilter(req.GetDepartmentId(), req.GetAreaId()); err != nil {
		return nil, apistatus.Of(err)
	}
	area := req.GetAreaId()
	if area == "" {
		area = p.Scope
	}
	if !access.SeesArea(s.catalog, p, area) {
		return nil, access.Denied("area " + area)
	}
	size, err := apiedge.PageSize(int(req.GetPageSize()))
	if err != nil {
		return nil, apistatus.Of(err)
	}
	after, err := apiedge.DecodeToken[store.Cursor](req.GetPageToken())
	if err != nil {
		return nil, apistatus.Of(err)
	}
	page, next, err := s.supervisors.PendingExtensions(ctx, app.Filter{DepartmentID: req.GetDepartmentId(), AreaID: area}, after, size)
	if err != nil {
		return nil, apistatus.Of(err)
	}
	resp := &whistlev1.ListExtensionRequestsResponse{NextPageToken: apiedge.EncodeToken(next)}
	for _, x := range page {
		resp.Requests = append(resp.Requests, pendingToProto(x))
	}
	return resp, nil
}

// pendingToProto is the API's view of a pending extension request.
func pendingToProto(x domain.PendingExtension) *whistlev1.PendingExtension {
	return &whistlev1.PendingExtension{
		IssueId:      x.IssueID,
		DepartmentId: x.DepartmentID,
		UnitId:       x.UnitID,
		Kind:         assignmentpb.DeadlineKindProto(x.Extension.Kind),
		Deadline:     assignmentpb.Timestamp(x.Deadline),
		Proposed:     assignmentpb.Timestamp(x.Extension.Proposed),
		Reason:       x.Extension.Reason,
		RequestedBy:  x.Extension.By,
		RequestedAt:  assignmentpb.Timestamp(x.Extension.At),
		Seq:          x.Seq,
		Status:       assignmentpb.StatusProto(x.Status),
		GridId:       x.GridID,
		StreetId:     x.StreetID,
		CategoryId:   x.CategoryID,
		Breached:     x.Breached,
	}
}

// supervisor checks that the caller is a supervisor and reads the case number and the unit id a
// request names; whether the issue lies in the supervisor's scope is the command's to check, on
// the issue as the stream has it.
func (s *Server) supervisor(ctx context.Context, issueID, unit string) (authx.Principal, string, error) {
	p, err := access.Caller(ctx)
	if err != nil {
		return p, "", err
	}
	if p.Role != authx.RoleSupervisor {
		return p, "", status.Error(codes.PermissionDenied, "only a supervisor urges a part or decides an extension")
	}
	if err := apiedge.CheckID("issue_id", issueID, true); err != nil {
		return p, "", apistatus.Of(err)
	}
	if err := apiedge.CheckID("unit_id", unit, false); err != nil {
		return p, "", apistatus.Of(err)
	}
	id, err := casenum.Normalize(issueID)
	if err != nil {
		return p, "", apistatus.Of(apiedge.Invalid("issue_id", "%v", err))
	}
	return p, id, nil
}

// supervisionStatus maps a supervisor's command's error to its status: an issue or a part the
// caller cannot act on is NotFound, the rest as every service maps them.
func supervisionStatus(err error) error {
	var nf *app.NotFoundError
	switch {
	case errors.As(err, &nf), errors.Is(err, assignment.ErrNotSummoned):
		return status.Error(codes.NotFound, err.Error())
	}
	return apistatus.Of(err)
}
