package servicetest

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// LifecycleStart is when the issue of Lifecycle is raised.
var LifecycleStart = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)

// Lifecycle is the whole life of an issue as the four services append it, without sequences, each
// event occurring (and stored) at its OccurredAt: raised by a grid worker in xinhua-taoyuan-01,
// routed to water (lead) and urban-management with report-in due within the hour, water's report-in
// deadline breached when it passed, then urban-management reporting in an hour late (which owes a
// breach too: escalation records it after the late acknowledgement, naming it), water reporting in,
// and both resolving in time. It holds every kind of event but needs-dispatch, so a projection that
// applies it meets what it acts on and what it only counts.
func Lifecycle(issueID string) []*whistlev1.Event {
	at := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(LifecycleStart.Add(d)) }
	routing := &whistlev1.Actor{Subject: "routing", Role: "service"}
	officer := func(dept string) *whistlev1.Actor {
		return &whistlev1.Actor{Subject: dept + "-officer", Role: string(authx.RoleOfficer), Scope: dept}
	}
	event := func(suffix string, d time.Duration, actor *whistlev1.Actor) *whistlev1.Event {
		return &whistlev1.Event{Id: issueID + "." + suffix, IssueId: issueID, OccurredAt: at(d), Actor: actor, CorrelationId: issueID}
	}

	raised := event("raised", 0, &whistlev1.Actor{Subject: "gw-1", Role: string(authx.RoleGridWorker), Scope: "xinhua-taoyuan-01"})
	raised.Payload = &whistlev1.Event_Raised{Raised: &whistlev1.IssueRaised{RequestId: "lifecycle", GridId: "xinhua-taoyuan-01",
		CommunityId: "xinhua-taoyuan", StreetId: "xinhua", CategoryId: "blocked-drain", Urgency: whistlev1.Urgency_URGENCY_NORMAL,
		Text: "water on the road"}}
	routed := event("routed", time.Minute, routing)
	routed.Payload = &whistlev1.Event_Routed{Routed: &whistlev1.IssueRouted{RuleId: "blocked-drain", Dispatches: []*whistlev1.Dispatch{
		{DepartmentId: "water", Role: whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD, ReportInBy: at(time.Hour), ResolveBy: at(24 * time.Hour)},
		{DepartmentId: "urban-management", Role: whistlev1.AssignmentRole_ASSIGNMENT_ROLE_ASSISTING, ReportInBy: at(time.Hour), ResolveBy: at(24 * time.Hour)},
	}}}
	breached := event("breached.water.report-in", time.Hour+time.Minute, &whistlev1.Actor{Subject: "escalation", Role: "service"})
	breached.Payload = &whistlev1.Event_Breached{Breached: &whistlev1.DeadlineBreached{DepartmentId: "water",
		Kind: whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN, Deadline: at(time.Hour)}}
	evs := []*whistlev1.Event{raised, routed, breached}
	for i, dept := range []string{"urban-management", "water"} {
		ack := event("acknowledged."+dept, 2*time.Hour+time.Duration(i)*time.Minute, officer(dept))
		ack.Payload = &whistlev1.Event_Acknowledged{Acknowledged: &whistlev1.AssignmentAcknowledged{DepartmentId: dept}}
		evs = append(evs, ack)
		if dept == "urban-management" {
			late := event("breached.urban-management.report-in", 2*time.Hour+30*time.Second, &whistlev1.Actor{Subject: "escalation", Role: "service"})
			late.Payload = &whistlev1.Event_Breached{Breached: &whistlev1.DeadlineBreached{DepartmentId: dept,
				Kind: whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN, Deadline: at(time.Hour), ClearedAt: at(2 * time.Hour)}}
			evs = append(evs, late)
		}
	}
	for i, dept := range []string{"urban-management", "water"} {
		res := event("resolved."+dept, 3*time.Hour+time.Duration(i)*time.Minute, officer(dept))
		res.Payload = &whistlev1.Event_Resolved{Resolved: &whistlev1.AssignmentResolved{DepartmentId: dept, Note: "drain cleared"}}
		evs = append(evs, res)
	}
	return evs
}
