package store

import (
	"github.com/whistle-dispatch/whistle/pkg/authx"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/intake/internal/domain"
	"github.com/whistle-dispatch/whistle/services/intake/internal/protoconv"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
	"github.com/whistle-dispatch/whistle/services/internal/assignment/assignmentpb"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
)

// ServiceActor is the timeline's name for anything a service did rather than a person.
const ServiceActor = "system"

// applyEvent translates one event into the domain's apply rule for its kind. Every kind is
// applied, so that the view's last sequence is exact even for events it does not show. Its time
// is the time the stream stored it: the timeline says when each thing was recorded, whatever the
// clock of the service that wrote it. An assignment event the assignment machine forbids returns
// its verdict, an error wrapping eventlog.ErrImpossible, and changes nothing.
func applyEvent(is *domain.Issue, rec eventlog.Record) error {
	ev := rec.Event
	m := domain.Meta{Seq: rec.Seq, At: rec.Time, Actor: actor(ev.GetActor())}
	switch p := ev.GetPayload().(type) {
	case *whistlev1.Event_Raised:
		r := p.Raised
		urgency, _ := protoconv.Urgency(r.GetUrgency())
		is.OnRaised(m, domain.Raise{
			RequestID: r.GetRequestId(), RaisedBy: ev.GetActor().GetSubject(),
			GridID: r.GetGridId(), CommunityID: r.GetCommunityId(), StreetID: r.GetStreetId(),
			CategoryID: r.GetCategoryId(), Urgency: urgency, Text: r.GetText(),
			Location: protoconv.LocationIn(r.GetLocation()), CompoundID: r.GetCompoundId(),
			Photos: evidence.FromProto(r.GetPhotos()), Channel: channel(ev.GetActor()),
			Contact: protoconv.ContactIn(r.GetContact()), MediaURL: r.GetMediaUrl(),
		})
	case *whistlev1.Event_Routed:
		r := p.Routed
		return is.OnRouted(m, domain.Route{RuleID: r.GetRuleId(), RulesVersion: r.GetRulesVersion(), Explanation: r.GetExplanation(),
			Dispatches: assignmentpb.Dispatches(r), Withdrawn: assignmentpb.Withdrawals(r.GetWithdrawn(), rec.Time, m.Actor)})
	case *whistlev1.Event_NeedsDispatch:
		n := p.NeedsDispatch
		return is.OnNeedsDispatch(m, n.GetReason(), domain.Route{RulesVersion: n.GetRulesVersion(),
			Dispatches: assignmentpb.Desk(n), Withdrawn: assignmentpb.Withdrawals(n.GetWithdrawn(), rec.Time, m.Actor)})
	case *whistlev1.Event_Returned:
		r := p.Returned
		return is.OnReturned(m, assignment.Ending{DepartmentID: r.GetDepartmentId(), UnitID: r.GetUnitId(), At: rec.Time, By: m.Actor, Reason: r.GetReason()})
	case *whistlev1.Event_Recategorised:
		is.OnRecategorised(m, p.Recategorised.GetFromCategoryId(), p.Recategorised.GetToCategoryId(), p.Recategorised.GetReason())
	case *whistlev1.Event_Linked:
		is.OnLinked(m, p.Linked.GetOriginalId(), p.Linked.GetDistanceMeters())
	case *whistlev1.Event_Joined:
		is.OnJoined(m, p.Joined.GetDuplicateId())
	case *whistlev1.Event_Unlinked:
		is.OnUnlinked(m, p.Unlinked.GetOriginalId(), p.Unlinked.GetReason())
	case *whistlev1.Event_Left:
		is.OnLeft(m, p.Left.GetDuplicateId())
	case *whistlev1.Event_Acknowledged:
		return is.OnAcknowledged(m, assignment.Acknowledgement{DepartmentID: p.Acknowledged.GetDepartmentId(), UnitID: p.Acknowledged.GetUnitId()})
	case *whistlev1.Event_Resolved:
		return is.OnResolved(m, assignment.Resolution{DepartmentID: p.Resolved.GetDepartmentId(), UnitID: p.Resolved.GetUnitId(), Note: p.Resolved.GetNote(),
			Photos: evidence.FromProto(p.Resolved.GetPhotos())})
	case *whistlev1.Event_Breached:
		b := p.Breached
		var clearedAt time.Time
		if b.GetClearedAt().IsValid() {
			clearedAt = b.GetClearedAt().AsTime()
		}
		return is.OnBreached(m, assignmentpb.Breach(b, rec.Time), clearedAt)
	case *whistlev1.Event_Verified:
		return is.OnVerified(m, p.Verified.GetPassed(), p.Verified.GetReason(), reopening(p.Verified.GetReopened(), rec.Time))
	case *whistlev1.Event_Rated:
		return is.OnRated(m, int(p.Rated.GetScore()), p.Rated.GetComment(), reopening(p.Rated.GetReopened(), rec.Time))
	case *whistlev1.Event_Closed:
		return is.OnClosed(m, p.Closed.GetReason(), p.Closed.GetWaited().AsDuration())
	case *whistlev1.Event_Pushed:
		pushes := map[string]string{}
		for _, push := range p.Pushed.GetPushes() {
			pushes[assignment.UnitOf(push.GetDepartmentId(), push.GetUnitId())] = push.GetOfficerId()
		}
		return is.OnPushed(m, pushes)
	case *whistlev1.Event_HandedOver:
		h := p.HandedOver
		return is.OnHandedOver(m, assignment.UnitOf(h.GetDepartmentId(), h.GetUnitId()), h.GetFromOfficerId(), h.GetToOfficerId(), h.GetNote())
	case *whistlev1.Event_Noted:
		return is.OnNoted(m, assignment.UnitOf(p.Noted.GetDepartmentId(), p.Noted.GetUnitId()), p.Noted.GetNote())
	case *whistlev1.Event_ExtensionRequested:
		e := p.ExtensionRequested
		return is.OnExtensionRequested(m, assignment.UnitOf(e.GetDepartmentId(), e.GetUnitId()), assignmentpb.Extension(e, rec.Time, m.Actor))
	case *whistlev1.Event_ExtensionDecided:
		return is.OnExtensionDecided(m, assignmentpb.Decision(p.ExtensionDecided, rec.Time, m.Actor))
	case *whistlev1.Event_Urged:
		return is.OnUrged(m, assignment.UnitOf(p.Urged.GetDepartmentId(), p.Urged.GetUnitId()), p.Urged.GetNote())
	case *whistlev1.Event_Reminded:
		r := p.Reminded
		return is.OnReminded(m, assignment.UnitOf(r.GetDepartmentId(), r.GetUnitId()), assignmentpb.DeadlineKind(r.GetKind()), int(r.GetPercent()), r.GetPersonId())
	case *whistlev1.Event_Escalated:
		e := p.Escalated
		var skipped []int
		for _, l := range e.GetSkipped() {
			skipped = append(skipped, int(l))
		}
		return is.OnEscalated(m, assignment.UnitOf(e.GetDepartmentId(), e.GetUnitId()), assignmentpb.DeadlineKind(e.GetKind()),
			int(e.GetLevel()), int(e.GetRepeat()), string(assignmentpb.Target(e.GetTarget())), e.GetPersonId(), skipped)
	default:
		is.OnOther(m, eventlog.Kind(ev))
	}
	return nil
}

// reopening reads the part an event reopens; nil when it reopens none.
func reopening(d *whistlev1.Dispatch, at time.Time) *assignment.Reopening {
	r, ok := assignmentpb.Reopening(d, at)
	if !ok {
		return nil
	}
	return &r
}

// channel is how a raise reached Whistle, by its raiser's role.
func channel(raiser *whistlev1.Actor) domain.Channel {
	if authx.Role(raiser.GetRole()) == authx.RoleIntegrator {
		return domain.ChannelOpen311
	}
	return domain.ChannelGrid
}

// actor names who caused an event: the person's subject, or ServiceActor for a service.
func actor(a *whistlev1.Actor) string {
	if a.GetRole() == "service" || a.GetSubject() == "" {
		return ServiceActor
	}
	return a.GetSubject()
}
