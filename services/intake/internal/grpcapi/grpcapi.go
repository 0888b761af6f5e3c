// Package grpcapi is intake's gRPC door: it reads requests into commands and queries, calls the
// application, and answers the view in whistle.v1 terms, with each domain error mapped to its
// precise status code.
package grpcapi

import (
	"context"
	"errors"
	"github.com/whistle-dispatch/whistle/pkg/authx"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/intake/internal/app"
	"github.com/whistle-dispatch/whistle/services/intake/internal/domain"
	"github.com/whistle-dispatch/whistle/services/intake/internal/protoconv"
	"github.com/whistle-dispatch/whistle/services/internal/access"
	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
	"github.com/whistle-dispatch/whistle/services/internal/apistatus"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
)

// Server implements whistlev1.IntakeServiceServer.
type Server struct {
	whistlev1.UnimplementedIntakeServiceServer
	app *app.App
	// verifyWithin is how long a resolved issue waits for verification, for its closes_by.
	verifyWithin time.Duration
}

// New returns the gRPC server of the application.
func New(a *app.App, verifyWithin time.Duration) *Server {
	return &Server{app: a, verifyWithin: verifyWithin}
}

// RaiseIssue records a new issue, or returns the one the same request already raised.
func (s *Server) RaiseIssue(ctx context.Context, req *whistlev1.RaiseIssueRequest) (*whistlev1.RaiseIssueResponse, error) {
	p, err := access.Caller(ctx)
	if err != nil {
		return nil, err
	}
	urgency, ok := protoconv.Urgency(req.GetUrgency())
	if !ok {
		return nil, toStatus(apiedge.Invalid("urgency", "%d is not an urgency", req.GetUrgency()))
	}
	is, replayed, err := s.app.Raise(ctx, p, app.RaiseCommand{
		RequestID: req.GetRequestId(), GridID: req.GetGridId(), CategoryID: req.GetCategoryId(),
		Urgency: urgency, Text: req.GetText(), Location: protoconv.LocationIn(req.GetLocation()),
		PhotoIDs: req.GetPhotoIds(), Contact: protoconv.ContactIn(req.GetContact()), MediaURL: req.GetMediaUrl(),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &whistlev1.RaiseIssueResponse{Issue: s.issue(p, is), Replayed: replayed}, nil
}

// GetIssue returns an issue and its timeline.
func (s *Server) GetIssue(ctx context.Context, req *whistlev1.GetIssueRequest) (*whistlev1.GetIssueResponse, error) {
	p, err := access.Caller(ctx)
	if err != nil {
		return nil, err
	}
	is, err := s.app.Get(ctx, p, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &whistlev1.GetIssueResponse{Issue: s.issue(p, is), Timeline: protoconv.Timeline(is.Timeline)}, nil
}

// ListIssues returns one page of the issues in an area, newest first.
func (s *Server) ListIssues(ctx context.Context, req *whistlev1.ListIssuesRequest) (*whistlev1.ListIssuesResponse, error) {
	p, err := access.Caller(ctx)
	if err != nil {
		return nil, err
	}
	q := app.ListQuery{AreaID: req.GetAreaId(), CategoryID: req.GetCategoryId(), PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken()}
	if req.GetStatus() != whistlev1.IssueStatus_ISSUE_STATUS_UNSPECIFIED {
		st, ok := protoconv.Status(req.GetStatus())
		if !ok {
			return nil, toStatus(apiedge.Invalid("status", "%d is not an issue status", req.GetStatus()))
		}
		q.Status = st
	}
	issues, next, err := s.app.List(ctx, p, q)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &whistlev1.ListIssuesResponse{NextPageToken: next}
	for _, is := range issues {
		resp.Issues = append(resp.Issues, s.issue(p, is))
	}
	return resp, nil
}

// WatchIssue streams the issue's timeline, then each new entry as it happens.
func (s *Server) WatchIssue(req *whistlev1.WatchIssueRequest, stream whistlev1.IntakeService_WatchIssueServer) error {
	ctx := stream.Context()
	p, err := access.Caller(ctx)
	if err != nil {
		return err
	}
	err = s.app.Watch(ctx, p, req.GetId(), func(is *domain.Issue, e domain.Entry) error {
		return stream.Send(&whistlev1.WatchIssueResponse{Issue: s.issue(p, is), Entry: protoconv.Entry(e)})
	})
	if err != nil {
		return toStatus(err)
	}
	return nil
}

// UploadPhoto stores a photo sent in chunks, the first naming what it is for.
func (s *Server) UploadPhoto(stream whistlev1.IntakeService_UploadPhotoServer) error {
	ctx := stream.Context()
	p, err := access.Caller(ctx)
	if err != nil {
		return err
	}
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return toStatus(apiedge.Invalid("grid_id", "no message was sent"))
	}
	if err != nil {
		return err
	}
	pending := first.GetChunk()
	next := func() ([]byte, error) {
		if pending != nil {
			c := pending
			pending = nil
			return c, nil
		}
		m, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		if m.GetGridId() != "" || m.GetIssueId() != "" {
			return nil, apiedge.Invalid("grid_id", "only the first message names what the photo is for")
		}
		return m.GetChunk(), nil
	}
	ph, err := s.app.Upload(ctx, p, first.GetGridId(), first.GetIssueId(), next)
	if err != nil {
		return toStatus(err)
	}
	return stream.SendAndClose(&whistlev1.UploadPhotoResponse{Photo: evidence.ToProto([]evidence.Photo{ph})[0]})
}

// GetPhoto sends a photo of an issue in chunks, the first describing it.
func (s *Server) GetPhoto(req *whistlev1.GetPhotoRequest, stream whistlev1.IntakeService_GetPhotoServer) error {
	ctx := stream.Context()
	p, err := access.Caller(ctx)
	if err != nil {
		return err
	}
	ph, r, err := s.app.Photo(ctx, p, req.GetIssueId(), req.GetPhotoId())
	if err != nil {
		return toStatus(err)
	}
	defer r.Close()
	msg := &whistlev1.GetPhotoResponse{Photo: evidence.ToProto([]evidence.Photo{ph})[0]}
	buf := make([]byte, evidence.ChunkSize)
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 || msg.Photo != nil {
			msg.Chunk = buf[:n]
			if err := stream.Send(msg); err != nil {
				return err
			}
			msg = &whistlev1.GetPhotoResponse{}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return toStatus(err)
		}
	}
}

// toStatus maps an application error to the status the caller can act on: intake's own errors
// here, the ones every service shares in apistatus.
func toStatus(err error) error {
	var reused *domain.RequestReusedError
	switch {
	case errors.As(err, &reused):
		// FailedPrecondition, not AlreadyExists: the issue existing is what an identical retry
		// meets too, and it succeeds; what fails here is a precondition of the request, that a
		// request id stands for one raise, which the caller must fix (a new id, or the first
		// request) before trying again.
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, domain.ErrNotFound), errors.Is(err, evidence.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, domain.ErrCaseTaken):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, app.ErrWatchInterrupted):
		return status.Error(codes.Unavailable, err.Error())
	case errors.As(err, new(*app.DeniedError)):
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.Is(err, app.ErrTooManyUploads):
		return status.Error(codes.ResourceExhausted, err.Error())
	}
	return apistatus.Of(err)
}

// issue writes an issue for the caller, with when it closes itself if nobody verifies it; a
// resident's contact only for the city's staff and the integrator that gave it.
func (s *Server) issue(p authx.Principal, is *domain.Issue) *whistlev1.Issue {
	out := protoconv.Issue(is)
	if access.ForThePublic(p) && is.RaisedBy != p.Subject {
		out.Contact = nil // a resident's contact is for the city's staff and the integrator it gave it to
	}
	if is.Status == domain.StatusResolved && !is.ResolvedAt.IsZero() {
		out.ClosesBy = timestamppb.New(is.ResolvedAt.Add(s.verifyWithin))
	}
	return out
}

// VerifyIssue records the grid worker's check on site.
func (s *Server) VerifyIssue(ctx context.Context, req *whistlev1.VerifyIssueRequest) (*whistlev1.VerifyIssueResponse, error) {
	p, err := access.Caller(ctx)
	if err != nil {
		return nil, err
	}
	is, err := s.app.Verify(ctx, p, req.GetIssueId(), req.GetPassed(), req.GetReason())
	if err != nil {
		return nil, toStatus(err)
	}
	return &whistlev1.VerifyIssueResponse{Issue: s.issue(p, is)}, nil
}

// RateIssue records the raiser's rating.
func (s *Server) RateIssue(ctx context.Context, req *whistlev1.RateIssueRequest) (*whistlev1.RateIssueResponse, error) {
	p, err := access.Caller(ctx)
	if err != nil {
		return nil, err
	}
	is, err := s.app.Rate(ctx, p, req.GetIssueId(), int(req.GetScore()), req.GetComment(), req.GetReopen())
	if err != nil {
		return nil, toStatus(err)
	}
	return &whistlev1.RateIssueResponse{Issue: s.issue(p, is)}, nil
}
