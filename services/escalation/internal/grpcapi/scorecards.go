package grpcapi

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/app"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/scorecard"
	"github.com/whistle-dispatch/whistle/services/internal/access"
	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
	"github.com/whistle-dispatch/whistle/services/internal/apistatus"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
)

// ScorecardServer is the escalation API with its scorecards: Server's methods, and GetScorecards.
type ScorecardServer struct {
	*Server
	scorecards *app.Scorecards
}

// WithScorecards returns s serving GetScorecards from sc as well.
func WithScorecards(s *Server, sc *app.Scorecards) *ScorecardServer {
	return &ScorecardServer{Server: s, scorecards: sc}
}

// GetScorecards returns the scorecards of departments, units or streets over a period, within the
// caller's scope: the city's supervisors see every scorecard; a supervisor of a street sees the
// street's, and the departments' and units' counting only their parts in the street (of a
// community or a grid: in it, and no street's); a duty officer sees their unit's and their
// department's; nobody else sees any.
func (s *ScorecardServer) GetScorecards(ctx context.Context, req *whistlev1.GetScorecardsRequest) (*whistlev1.GetScorecardsResponse, error) {
	p, err := access.Caller(ctx)
	if err != nil {
		return nil, err
	}
	q, err := s.scorecardQuery(req)
	if err != nil {
		return nil, apistatus.Of(err)
	}
	if q, err = s.scorecardScope(p, q); err != nil {
		return nil, err
	}
	cards, err := s.scorecards.Get(ctx, q)
	if err != nil {
		return nil, apistatus.Of(err)
	}
	resp := &whistlev1.GetScorecardsResponse{From: timestamppb.New(q.From), Until: timestamppb.New(q.Until), MinSample: scorecard.MinSample}
	if q.Area != catalog.CityScope {
		resp.AreaId = q.Area
	}
	for _, c := range cards {
		resp.Scorecards = append(resp.Scorecards, cardToProto(c))
	}
	return resp, nil
}

// scorecardKinds reads the kinds of scorecard.
var scorecardKinds = map[whistlev1.ScorecardKind]scorecard.Kind{
	whistlev1.ScorecardKind_SCORECARD_KIND_DEPARTMENT: scorecard.Department,
	whistlev1.ScorecardKind_SCORECARD_KIND_UNIT:       scorecard.Unit,
	whistlev1.ScorecardKind_SCORECARD_KIND_STREET:     scorecard.Street,
}

// scorecardQuery checks a request's fields and reads them into a query: a kind, an id the catalog
// holds for that kind, and a period of at most scorecard.MaxPeriod, taken to the millisecond.
func (s *ScorecardServer) scorecardQuery(req *whistlev1.GetScorecardsRequest) (app.ScorecardQuery, error) {
	kind, ok := scorecardKinds[req.GetKind()]
	if !ok {
		return app.ScorecardQuery{}, apiedge.Invalid("kind", "give department, unit or street")
	}
	if err := apiedge.CheckID("id", req.GetId(), false); err != nil {
		return app.ScorecardQuery{}, err
	}
	if id := req.GetId(); id != "" {
		switch kind {
		case scorecard.Department:
			if _, err := s.catalog.Department(id); err != nil {
				return app.ScorecardQuery{}, apiedge.Invalid("id", "no department %q in the catalog", id)
			}
		case scorecard.Unit:
			if _, err := s.catalog.Unit(id); err != nil {
				return app.ScorecardQuery{}, apiedge.Invalid("id", "no unit %q in the catalog", id)
			}
		case scorecard.Street:
			if a, err := s.catalog.Area(id); err != nil || a.Level != catalog.LevelStreet {
				return app.ScorecardQuery{}, apiedge.Invalid("id", "no street %q in the catalog", id)
			}
		}
	}
	from, err := instant("from", req.GetFrom())
	if err != nil {
		return app.ScorecardQuery{}, err
	}
	until, err := instant("until", req.GetUntil())
	if err != nil {
		return app.ScorecardQuery{}, err
	}
	switch {
	case !until.After(from):
		return app.ScorecardQuery{}, apiedge.Invalid("until", "must be after from (%s)", from.Format(time.RFC3339Nano))
	case until.Sub(from) > scorecard.MaxPeriod:
		return app.ScorecardQuery{}, apiedge.Invalid("until", "a period is at most %d days; this one is %s", scorecard.MaxPeriod/(24*time.Hour), until.Sub(from))
	}
	return app.ScorecardQuery{Kind: kind, ID: req.GetId(), From: from, Until: until}, nil
}

// instant reads a required time of a request, to the millisecond.
func instant(field string, ts *timestamppb.Timestamp) (time.Time, error) {
	switch {
	case ts == nil:
		return time.Time{}, apiedge.Invalid(field, "is required")
	case !ts.IsValid():
		return time.Time{}, apiedge.Invalid(field, "is not a valid time")
	}
	return ts.AsTime().Truncate(time.Millisecond), nil
}

// scorecardScope checks the query against the caller's scope and limits it to what the caller
// may see: PermissionDenied for a subject outside it.
func (s *ScorecardServer) scorecardScope(p authx.Principal, q app.ScorecardQuery) (app.ScorecardQuery, error) {
	switch p.Role {
	case authx.RoleSupervisor:
		if p.Scope == catalog.CityScope {
			return q, nil
		}
		if q.Kind == scorecard.Street {
			// A street's scorecard is its supervisors' and the city's: the figures of the whole
			// street, which a community or grid scope does not cover.
			if a, err := s.catalog.Area(p.Scope); err != nil || a.Level != catalog.LevelStreet {
				return q, access.Denied("a street's scorecard")
			}
			if q.ID == "" {
				q.ID = p.Scope
			}
			if q.ID != p.Scope {
				return q, access.Denied("street " + q.ID)
			}
			return q, nil
		}
		q.Area = p.Scope
		return q, nil
	case authx.RoleOfficer:
		u, err := s.catalog.Unit(p.Scope)
		if err != nil {
			return q, access.Denied("scorecards")
		}
		own := map[scorecard.Kind]string{scorecard.Unit: u.ID, scorecard.Department: u.DepartmentID}[q.Kind]
		switch {
		case own == "":
			return q, access.Denied("a street's scorecard")
		case q.ID == "":
			q.ID = own
		case q.ID != own:
			return q, access.Denied(string(q.Kind) + " " + q.ID)
		}
		return q, nil
	}
	return q, access.Denied("scorecards")
}

// cardToProto is the API's view of a scorecard.
func cardToProto(c scorecard.Card) *whistlev1.Scorecard {
	kinds := map[scorecard.Kind]whistlev1.ScorecardKind{}
	for k, v := range scorecardKinds {
		kinds[v] = k
	}
	out := &whistlev1.Scorecard{
		Kind: kinds[c.Kind], Id: c.ID, Name: c.Name, DepartmentId: c.DepartmentID,
		Dispatched: uint32(c.Dispatched), ReportedIn: uint32(c.ReportedIn), ReportedInOnTime: uint32(c.ReportedInOnTime),
		Resolved: uint32(c.Resolved), ResolvedOnTime: uint32(c.ResolvedOnTime), Returns: uint32(c.Returns),
		Ratings: uint32(c.Ratings), Satisfied: uint32(c.Satisfied),
		ResponseRate:         rateToProto(c.ResponseRate()),
		OnTimeReportInRate:   rateToProto(c.OnTimeReportInRate()),
		ResolutionRate:       rateToProto(c.ResolutionRate()),
		OnTimeResolutionRate: rateToProto(c.OnTimeResolutionRate()),
		SatisfactionRate:     rateToProto(c.SatisfactionRate()),
		Breaches:             uint32(c.Breaches),
		ExtensionsRequested:  uint32(c.ExtensionsRequested), ExtensionsApproved: uint32(c.ExtensionsApproved),
		ExtensionsDenied: uint32(c.ExtensionsDenied), Urges: uint32(c.Urges), Whistles: uint32(c.Whistles),
		SmallSample: c.SmallSample, Rank: uint32(c.Rank),
	}
	if c.TimeToAcknowledge.N > 0 {
		out.MedianTimeToAcknowledge = durationpb.New(c.TimeToAcknowledge.Median)
		out.P90TimeToAcknowledge = durationpb.New(c.TimeToAcknowledge.P90)
	}
	if c.TimeToResolve.N > 0 {
		out.MedianTimeToResolve = durationpb.New(c.TimeToResolve.Median)
		out.P90TimeToResolve = durationpb.New(c.TimeToResolve.P90)
	}
	for _, l := range c.Levels() {
		out.BreachesByLevel = append(out.BreachesByLevel, &whistlev1.BreachLevelCount{Level: uint32(l), Count: uint32(c.ByLevel[l])})
	}
	return out
}

// rateToProto is the API's view of a rate.
func rateToProto(r scorecard.Rate) *whistlev1.ScorecardRate {
	return &whistlev1.ScorecardRate{Numerator: uint32(r.Num), Denominator: uint32(r.Den), Value: r.Value()}
}
