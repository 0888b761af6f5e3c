// Package protoconv translates between the intake domain and the whistle.v1 messages, in both
// directions, so that the event log adapter, the command handlers and the gRPC API agree on one
// mapping of every enum. An assignment's vocabulary is translated by assignmentpb, the same for
// every service.
package protoconv

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/intake/internal/domain"
	"github.com/whistle-dispatch/whistle/services/internal/assignment/assignmentpb"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
)

var (
	urgencies = map[whistlev1.Urgency]domain.Urgency{
		whistlev1.Urgency_URGENCY_NORMAL:    domain.UrgencyNormal,
		whistlev1.Urgency_URGENCY_URGENT:    domain.UrgencyUrgent,
		whistlev1.Urgency_URGENCY_EMERGENCY: domain.UrgencyEmergency,
	}
	statuses = map[whistlev1.IssueStatus]domain.Status{
		whistlev1.IssueStatus_ISSUE_STATUS_RAISED:            domain.StatusRaised,
		whistlev1.IssueStatus_ISSUE_STATUS_AWAITING_DISPATCH: domain.StatusAwaitingDispatch,
		whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED:        domain.StatusDispatched,
		whistlev1.IssueStatus_ISSUE_STATUS_IN_PROGRESS:       domain.StatusInProgress,
		whistlev1.IssueStatus_ISSUE_STATUS_RESOLVED:          domain.StatusResolved,
		whistlev1.IssueStatus_ISSUE_STATUS_LINKED:            domain.StatusLinked,
		whistlev1.IssueStatus_ISSUE_STATUS_CLOSED:            domain.StatusClosed,
	}
)

// reverse inverts one of the enum tables.
func reverse[K, V comparable](m map[K]V) map[V]K {
	out := make(map[V]K, len(m))
	for k, v := range m {
		out[v] = k
	}
	return out
}

var (
	urgenciesOut = reverse(urgencies)
	statusesOut  = reverse(statuses)
)

// Urgency reads a request's or event's urgency; unspecified counts as normal, and ok is false for a
// value the contract does not define.
func Urgency(u whistlev1.Urgency) (_ domain.Urgency, ok bool) {
	if u == whistlev1.Urgency_URGENCY_UNSPECIFIED {
		return domain.UrgencyNormal, true
	}
	d, ok := urgencies[u]
	return d, ok
}

// Status reads a status filter; ok is false for unspecified and for undefined values.
func Status(s whistlev1.IssueStatus) (_ domain.Status, ok bool) {
	d, ok := statuses[s]
	return d, ok
}

// LocationIn reads a location; nil stays nil.
func LocationIn(l *whistlev1.Location) *domain.Location {
	if l == nil {
		return nil
	}
	return &domain.Location{Latitude: l.GetLatitude(), Longitude: l.GetLongitude(), Address: l.GetAddress(), PlacedByAddress: l.GetPlacedByAddress()}
}

// LocationOut writes a location; nil stays nil.
func LocationOut(l *domain.Location) *whistlev1.Location {
	if l == nil {
		return nil
	}
	return &whistlev1.Location{Latitude: l.Latitude, Longitude: l.Longitude, Address: l.Address, PlacedByAddress: l.PlacedByAddress}
}

// UrgencyOut writes an urgency.
func UrgencyOut(u domain.Urgency) whistlev1.Urgency { return urgenciesOut[u] }

// Timestamp writes a time; the zero time (never happened) is left unset.
func Timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// Time reads a timestamp; an unset one is the zero time.
func Time(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

// Issue writes the issue view.
func Issue(is *domain.Issue) *whistlev1.Issue {
	out := &whistlev1.Issue{
		Id: is.ID, GridId: is.GridID, CommunityId: is.CommunityID, StreetId: is.StreetID,
		CategoryId: is.CategoryID, Urgency: UrgencyOut(is.Urgency), Text: is.Text,
		Location: LocationOut(is.Location), Status: statusesOut[is.Status], RaisedBy: is.RaisedBy,
		RaisedAt: Timestamp(is.RaisedAt), UpdatedAt: Timestamp(is.UpdatedAt), RuleId: is.RuleID, RulesVersion: is.RulesVersion,
		Quarantine: eventlog.QuarantineProto(is.Quarantine), CompoundId: is.CompoundID,
		LinkedTo: is.LinkedTo, Duplicates: is.Duplicates, Photos: evidence.ToProto(is.Photos),
		ResolvedAt: Timestamp(is.ResolvedAt), ClosedAt: Timestamp(is.ClosedAt), Reopened: int32(is.Reopened),
		Channel: channelsOut[is.Channel], Contact: ContactOut(is.Contact), MediaUrl: is.MediaURL,
	}
	if v := is.Verification; v != nil {
		out.Verification = &whistlev1.Verification{Passed: v.Passed, Reason: v.Reason, VerifiedBy: v.By, VerifiedAt: Timestamp(v.At)}
	}
	if r := is.Rating; r != nil {
		out.Rating = &whistlev1.Rating{Score: int32(r.Score), Comment: r.Comment, RatedBy: r.By, RatedAt: Timestamp(r.At), Reopened: r.Reopened}
	}
	for _, a := range is.Assignments {
		out.Assignments = append(out.Assignments, assignmentpb.Proto(a))
	}
	return out
}

// channelsOut maps the domain's channels to the API's.
var channelsOut = map[domain.Channel]whistlev1.Channel{
	domain.ChannelGrid:    whistlev1.Channel_CHANNEL_GRID,
	domain.ChannelOpen311: whistlev1.Channel_CHANNEL_OPEN311,
}

// ContactIn reads a resident's contact; nil or empty is none.
func ContactIn(c *whistlev1.Contact) *domain.Contact {
	if c == nil {
		return nil
	}
	out := &domain.Contact{FirstName: c.GetFirstName(), LastName: c.GetLastName(), Email: c.GetEmail(),
		Phone: c.GetPhone(), DeviceID: c.GetDeviceId(), AccountID: c.GetAccountId()}
	if *out == (domain.Contact{}) {
		return nil
	}
	return out
}

// ContactOut writes a resident's contact; nil stays nil.
func ContactOut(c *domain.Contact) *whistlev1.Contact {
	if c == nil {
		return nil
	}
	return &whistlev1.Contact{FirstName: c.FirstName, LastName: c.LastName, Email: c.Email,
		Phone: c.Phone, DeviceId: c.DeviceID, AccountId: c.AccountID}
}

// Entry writes one timeline entry.
func Entry(e domain.Entry) *whistlev1.TimelineEntry {
	return &whistlev1.TimelineEntry{
		Seq: e.Seq, At: Timestamp(e.At), Kind: e.Kind, Actor: e.Actor,
		DepartmentId: e.DepartmentID, UnitId: e.UnitID, Summary: e.Summary,
	}
}

// Timeline writes a whole timeline.
func Timeline(entries []domain.Entry) []*whistlev1.TimelineEntry {
	out := make([]*whistlev1.TimelineEntry, 0, len(entries))
	for _, e := range entries {
		out = append(out, Entry(e))
	}
	return out
}
