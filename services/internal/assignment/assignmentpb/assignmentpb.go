// Package assignmentpb reads the assignment machine's inputs out of whistle.v1 events and writes
// its vocabulary back into the API's enums, in one place for every service. The verdict on an
// event depends on how it is read: a deadline kind one service took for report-in and another for
// no kind at all, or a deadline one read as unset and another as a time, would split the services'
// verdicts on the same breach.
package assignmentpb

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
	"github.com/whistle-dispatch/whistle/services/internal/sla"
)

// Dispatches reads the summons of a routed event.
func Dispatches(r *whistlev1.IssueRouted) []assignment.Dispatch {
	out := make([]assignment.Dispatch, 0, len(r.GetDispatches()))
	for _, d := range r.GetDispatches() {
		out = append(out, assignment.Dispatch{
			DepartmentID: d.GetDepartmentId(), UnitID: d.GetUnitId(), Role: Role(d.GetRole()),
			ReportInBy: Time(d.GetReportInBy()), ResolveBy: Time(d.GetResolveBy()),
			Policy: Policy(d.GetPolicy()),
		})
	}
	return out
}

// Reopening reads the lead's part a verification or a rating reopened, stored at at; ok is false
// when the event reopens nothing.
func Reopening(d *whistlev1.Dispatch, at time.Time) (_ assignment.Reopening, ok bool) {
	if d == nil {
		return assignment.Reopening{}, false
	}
	return assignment.Reopening{DepartmentID: d.GetDepartmentId(), UnitID: d.GetUnitId(), At: at,
		ReportInBy: Time(d.GetReportInBy()), ResolveBy: Time(d.GetResolveBy())}, true
}

// ReopeningProto writes the lead's part reopened at at, with its deadlines counted from at by the
// policy frozen at its first dispatch, in its kind of time by cal.
func ReopeningProto(a *assignment.Assignment, at time.Time, cal sla.Calendar) *whistlev1.Dispatch {
	reportInBy, resolveBy := a.ReopenDeadlines(at, cal)
	p := a.Policy
	if p.ReportIn == 0 && p.Resolve == 0 { // a part dispatched before events carried the policy
		p.ReportIn, p.Resolve = within(reportInBy, at), within(resolveBy, at)
	}
	return &whistlev1.Dispatch{
		DepartmentId: a.DepartmentID, UnitId: a.Unit(), Role: RoleProto(a.Role), Policy: PolicyProto(p),
		ReportInBy: Timestamp(reportInBy), ResolveBy: Timestamp(resolveBy),
	}
}

// within is how long from at a deadline lies; zero for a clock that does not run.
func within(deadline, at time.Time) time.Duration {
	if deadline.IsZero() {
		return 0
	}
	return deadline.Sub(at)
}

// Policy reads a policy frozen into a dispatch.
func Policy(p *whistlev1.SlaPolicy) sla.Policy {
	out := sla.Policy{Name: p.GetName(), ReportIn: p.GetReportInWithin().AsDuration(), Resolve: p.GetResolveWithin().AsDuration(),
		WorkingTime: p.GetWorkingTime()}
	for _, pc := range p.GetRemindAtPercent() {
		out.RemindAt = append(out.RemindAt, int(pc))
	}
	for _, l := range p.GetChain() {
		out.Chain = append(out.Chain, sla.Level{Wait: l.GetWait().AsDuration(), Target: Target(l.GetTarget()), Repeat: int(l.GetRepeat())})
	}
	return out
}

// PolicyProto writes a policy to freeze into a dispatch; a limit of zero is left unset.
func PolicyProto(p sla.Policy) *whistlev1.SlaPolicy {
	out := &whistlev1.SlaPolicy{Name: p.Name, WorkingTime: p.WorkingTime}
	if p.ReportIn > 0 {
		out.ReportInWithin = durationpb.New(p.ReportIn)
	}
	if p.Resolve > 0 {
		out.ResolveWithin = durationpb.New(p.Resolve)
	}
	for _, pc := range p.RemindAt {
		out.RemindAtPercent = append(out.RemindAtPercent, uint32(pc))
	}
	for _, l := range p.Chain {
		out.Chain = append(out.Chain, &whistlev1.EscalationLevel{Wait: durationpb.New(l.Wait), Target: TargetProto(l.Target), Repeat: uint32(l.Repeat)})
	}
	return out
}

var targets = map[whistlev1.EscalationTarget]sla.Target{
	whistlev1.EscalationTarget_ESCALATION_TARGET_DUTY_OFFICER:      sla.DutyOfficer,
	whistlev1.EscalationTarget_ESCALATION_TARGET_UNIT_HEAD:         sla.UnitHead,
	whistlev1.EscalationTarget_ESCALATION_TARGET_STREET_SUPERVISOR: sla.StreetSupervisor,
	whistlev1.EscalationTarget_ESCALATION_TARGET_CITY_SUPERVISOR:   sla.CitySupervisor,
}

// Target reads a chain level's target; an unknown one reads as empty, which no chain names.
func Target(t whistlev1.EscalationTarget) sla.Target { return targets[t] }

// TargetProto writes a chain level's target.
func TargetProto(t sla.Target) whistlev1.EscalationTarget {
	for k, v := range targets {
		if v == t {
			return k
		}
	}
	return whistlev1.EscalationTarget_ESCALATION_TARGET_UNSPECIFIED
}

// Extension reads an extension request stored at at by by.
func Extension(e *whistlev1.ExtensionRequested, at time.Time, by string) assignment.Extension {
	return assignment.Extension{Kind: DeadlineKind(e.GetKind()), Proposed: Time(e.GetProposed()), Reason: e.GetReason(), By: by, At: at}
}

// Decision reads a supervisor's extension decision stored at at by by.
func Decision(e *whistlev1.ExtensionDecided, at time.Time, by string) assignment.Decision {
	return assignment.Decision{DepartmentID: e.GetDepartmentId(), UnitID: e.GetUnitId(), Kind: DeadlineKind(e.GetKind()),
		Approved: e.GetApproved(), Deadline: Time(e.GetDeadline()), Granted: Time(e.GetGranted()), Reason: e.GetReason(), By: by, At: at}
}

// Breach reads a breach event stored at at.
func Breach(b *whistlev1.DeadlineBreached, at time.Time) assignment.Breach {
	return assignment.Breach{DepartmentID: b.GetDepartmentId(), UnitID: b.GetUnitId(), Kind: DeadlineKind(b.GetKind()), Deadline: Time(b.GetDeadline()), At: at}
}

// Role reads a dispatch's role; anything but assisting or desk is read as lead, the role every
// whistle has.
func Role(r whistlev1.AssignmentRole) assignment.Role {
	switch r {
	case whistlev1.AssignmentRole_ASSIGNMENT_ROLE_ASSISTING:
		return assignment.Assisting
	case whistlev1.AssignmentRole_ASSIGNMENT_ROLE_DESK:
		return assignment.Desk
	}
	return assignment.Lead
}

// RoleProto writes a role.
func RoleProto(r assignment.Role) whistlev1.AssignmentRole {
	switch r {
	case assignment.Assisting:
		return whistlev1.AssignmentRole_ASSIGNMENT_ROLE_ASSISTING
	case assignment.Desk:
		return whistlev1.AssignmentRole_ASSIGNMENT_ROLE_DESK
	}
	return whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD
}

// Desk reads the desk's summons of a needs-dispatch event; none when it carries none.
func Desk(n *whistlev1.IssueNeedsDispatch) []assignment.Dispatch {
	d := n.GetDesk()
	if d == nil {
		return nil
	}
	return []assignment.Dispatch{{DepartmentID: d.GetDepartmentId(), UnitID: d.GetUnitId(), Role: assignment.Desk,
		ReportInBy: Time(d.GetReportInBy()), ResolveBy: Time(d.GetResolveBy()),
		Policy: Policy(d.GetPolicy())}}
}

// Withdrawals reads the assignments a routed or needs-dispatch event ends, stored at at by by.
func Withdrawals(ws []*whistlev1.Withdrawal, at time.Time, by string) []assignment.Ending {
	out := make([]assignment.Ending, 0, len(ws))
	for _, w := range ws {
		out = append(out, assignment.Ending{UnitID: w.GetUnitId(), At: at, By: by, Reason: w.GetReason()})
	}
	return out
}

// DeadlineKind reads a deadline kind; unspecified and undefined values are no kind, which the
// machine refuses.
func DeadlineKind(k whistlev1.DeadlineKind) assignment.DeadlineKind {
	switch k {
	case whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN:
		return assignment.ReportIn
	case whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE:
		return assignment.Resolve
	}
	return ""
}

// DeadlineKindProto writes a deadline kind.
func DeadlineKindProto(k assignment.DeadlineKind) whistlev1.DeadlineKind {
	switch k {
	case assignment.ReportIn:
		return whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN
	case assignment.Resolve:
		return whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE
	}
	return whistlev1.DeadlineKind_DEADLINE_KIND_UNSPECIFIED
}

// DeadlineKindsProto writes a list of deadline kinds.
func DeadlineKindsProto(ks []assignment.DeadlineKind) []whistlev1.DeadlineKind {
	var out []whistlev1.DeadlineKind
	for _, k := range ks {
		out = append(out, DeadlineKindProto(k))
	}
	return out
}

var statuses = map[assignment.Status]whistlev1.AssignmentStatus{
	assignment.Dispatched:   whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_DISPATCHED,
	assignment.Acknowledged: whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_ACKNOWLEDGED,
	assignment.Resolved:     whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_RESOLVED,
	assignment.Returned:     whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_RETURNED,
	assignment.Withdrawn:    whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_WITHDRAWN,
}

// StatusProto writes a status.
func StatusProto(s assignment.Status) whistlev1.AssignmentStatus { return statuses[s] }

// Status reads a status filter; ok is false for unspecified and for undefined values.
func Status(s whistlev1.AssignmentStatus) (_ assignment.Status, ok bool) {
	for k, v := range statuses {
		if v == s {
			return k, true
		}
	}
	return "", false
}

// Time reads an event's time; an unset or invalid one is the zero time, which for a deadline means
// the clock does not run.
func Time(ts *timestamppb.Timestamp) time.Time {
	if !ts.IsValid() {
		return time.Time{}
	}
	return ts.AsTime()
}

// Proto writes an assignment in the API's terms; nil stays nil.
func Proto(a *assignment.Assignment) *whistlev1.Assignment {
	if a == nil {
		return nil
	}
	return &whistlev1.Assignment{
		DepartmentId:       a.DepartmentID,
		UnitId:             a.Unit(),
		Role:               RoleProto(a.Role),
		Status:             StatusProto(a.Status),
		DispatchedAt:       Timestamp(a.DispatchedAt),
		ReportInBy:         Timestamp(a.ReportInBy),
		ResolveBy:          Timestamp(a.ResolveBy),
		AcknowledgedAt:     Timestamp(a.AcknowledgedAt),
		AcknowledgedBy:     a.AcknowledgedBy,
		ResolvedAt:         Timestamp(a.ResolvedAt),
		ResolvedBy:         a.ResolvedBy,
		ResolutionNote:     a.Note,
		Breached:           DeadlineKindsProto(a.Breached),
		EndedAt:            Timestamp(a.EndedAt),
		EndedBy:            a.EndedBy,
		EndReason:          a.EndReason,
		OfficerId:          a.OfficerID,
		Reopened:           int32(a.Reopened),
		ExtensionRequested: extensionProto(a.Extension),
		Photos:             evidence.ToProto(a.Photos),
		EscalationLevel:    int32(a.EscalationLevel),
		ExtensionDecided:   DecisionProto(a.Decision),
		Urges:              int32(a.Urges),
	}
}

// DecisionProto writes the latest extension decision as it took effect: an approval stored too
// late to move the deadline (assignment.Decision.Late) shows as not approved, with the reason;
// nil stays nil.
func DecisionProto(d *assignment.Decision) *whistlev1.ExtensionDecision {
	if d == nil {
		return nil
	}
	out := &whistlev1.ExtensionDecision{Kind: DeadlineKindProto(d.Kind), Approved: d.Approved, Reason: d.Reason,
		DecidedBy: d.By, DecidedAt: Timestamp(d.At)}
	if d.Approved {
		out.Granted = Timestamp(d.Granted)
	}
	if d.Late {
		out.Approved, out.Granted = false, nil
		out.Reason = LateReason(d)
	}
	return out
}

// LateReason says why an approval moved nothing: it was stored once its deadline had passed.
func LateReason(d *assignment.Decision) string {
	return fmt.Sprintf("approved too late: stored at %s, once the %s deadline %s had passed; the deadline stands",
		d.At.UTC().Format(time.RFC3339Nano), d.Kind, d.Deadline.UTC().Format(time.RFC3339))
}

// extensionProto writes a pending extension request; nil stays nil.
func extensionProto(e *assignment.Extension) *whistlev1.ExtensionRequest {
	if e == nil {
		return nil
	}
	return &whistlev1.ExtensionRequest{Kind: DeadlineKindProto(e.Kind), Proposed: Timestamp(e.Proposed), Reason: e.Reason,
		RequestedBy: e.By, RequestedAt: Timestamp(e.At)}
}

// Timestamp writes a time; the zero time is left unset.
func Timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
