// Package assignmenttest feeds the same sequences of assignment events, the forbidden ones
// included, to every service's fold and checks that each reaches the verdict the assignment
// machine gives (applied, or refused as impossible) and holds the statuses, deadlines and breaches
// it gives. Intake, the department and escalation each run it on their own store, and the
// machine's own package runs it on a fold that is the machine alone, so all of them agree on one
// table: a service that judged an event differently from another would fail it.
package assignmenttest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
)

// Subject is one service's projection under test.
type Subject struct {
	// Apply folds one record of an issue: nil when it applied, an error wrapping
	// eventlog.ErrImpossible when the projection refuses it as impossible, which must change
	// nothing. The records of an issue come in stream order, each with its PrevSeq set.
	Apply func(ctx context.Context, rec eventlog.Record) error
	// Parts reads the issue's assignments back from the projection, by department.
	Parts func(ctx context.Context, issueID string) (map[string]Part, error)
}

// Part is what the suite compares of one assignment.
type Part struct {
	Status                assignment.Status
	ReportInBy, ResolveBy time.Time
	// Breached lists the deadlines breached; the suite compares them in assignment.DeadlineKinds
	// order.
	Breached []assignment.DeadlineKind
	// Pending is the deadline a unit's extension request waiting for a supervisor would move; ""
	// when none waits.
	Pending assignment.DeadlineKind
	// Decided is the latest extension decision as it took effect: "approved", "denied", or "late"
	// (an approval stored once its deadline had passed); "" before the first.
	Decided string
	// Urges counts the supervisors' urges.
	Urges int
}

// PartOf is what the suite compares of an assignment of the machine's.
func PartOf(a *assignment.Assignment) Part {
	p := Part{Status: a.Status, ReportInBy: a.ReportInBy, ResolveBy: a.ResolveBy, Breached: a.Breached, Urges: a.Urges}
	if a.Extension != nil {
		p.Pending = a.Extension.Kind
	}
	switch d := a.Decision; {
	case d == nil:
	case d.Late:
		p.Decided = "late"
	case d.Approved:
		p.Decided = "approved"
	default:
		p.Decided = "denied"
	}
	return p
}

// Start is when each scenario's issue is raised; it is routed a minute later.
var Start = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)

// The deadlines the first routing freezes: water leads, gas assists.
var (
	WaterReportInBy = Start.Add(time.Hour)
	WaterResolveBy  = Start.Add(24 * time.Hour)
	GasReportInBy   = Start.Add(2 * time.Hour)
	GasResolveBy    = Start.Add(48 * time.Hour)
)

// step is one event of a scenario, stored at an offset from Start.
type step struct {
	after time.Duration
	event func(ev *whistlev1.Event)
}

// scenario is one issue's events after its raise and first routing. Every event applies except,
// when impossible is set, the last, which every projection must refuse and which must change
// nothing; want is every assignment after that.
type scenario struct {
	name       string
	steps      []step
	impossible bool
	want       map[string]Part
}

// Run feeds every scenario to the subject, each on an issue of its own.
func Run(t *testing.T, s Subject) {
	t.Helper()
	for i, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			id := fmt.Sprintf("ASSIGN-%02d", i)
			recs := records(id, sc.steps)
			for k, rec := range recs {
				err := s.Apply(ctx, rec)
				last := k == len(recs)-1
				switch {
				case last && sc.impossible:
					if !errors.Is(err, eventlog.ErrImpossible) {
						t.Fatalf("the %s event at %d: got %v, want it refused as impossible", eventlog.Kind(rec.Event), rec.Seq, err)
					}
				case err != nil:
					t.Fatalf("the %s event at %d: %v", eventlog.Kind(rec.Event), rec.Seq, err)
				}
			}
			got, err := s.Parts(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			for dept, p := range got {
				p.Breached = inKindOrder(p.Breached)
				got[dept] = p
			}
			if !reflect.DeepEqual(got, sc.want) {
				t.Fatalf("assignments\n%v\nwant\n%v", got, sc.want)
			}
		})
	}
}

// inKindOrder returns ks in assignment.DeadlineKinds order, nil when empty.
func inKindOrder(ks []assignment.DeadlineKind) []assignment.DeadlineKind {
	var out []assignment.DeadlineKind
	for _, k := range assignment.DeadlineKinds() {
		if slices.Contains(ks, k) {
			out = append(out, k)
		}
	}
	return out
}

// records numbers an issue's events as a stream would, raise and routing first, each stored at its
// time, with the sequences of other issues' events between them.
func records(id string, steps []step) []eventlog.Record {
	all := append([]step{{0, raised}, {time.Minute, routed(
		dispatch("water", whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD, WaterReportInBy, WaterResolveBy),
		dispatch("gas", whistlev1.AssignmentRole_ASSIGNMENT_ROLE_ASSISTING, GasReportInBy, GasResolveBy),
	)}}, steps...)
	var out []eventlog.Record
	prev := uint64(0)
	for k, st := range all {
		seq := uint64(10*k + 3)
		ev := &whistlev1.Event{IssueId: id, PrevSeq: prev, OccurredAt: timestamppb.New(Start.Add(st.after)), CorrelationId: id}
		st.event(ev)
		ev.Id = fmt.Sprintf("%s.%d.%s", id, prev, eventlog.Kind(ev))
		out = append(out, eventlog.Record{Seq: seq, Time: Start.Add(st.after), Event: ev})
		prev = seq
	}
	return out
}

// raised is the issue's raise, by a grid worker.
func raised(ev *whistlev1.Event) {
	ev.Actor = &whistlev1.Actor{Subject: "gw-1", Role: "grid-worker", Scope: "xinhua-taoyuan-01"}
	ev.Payload = &whistlev1.Event_Raised{Raised: &whistlev1.IssueRaised{RequestId: ev.GetIssueId(), GridId: "xinhua-taoyuan-01",
		CommunityId: "xinhua-taoyuan", StreetId: "xinhua", CategoryId: "blocked-drain", Text: "water on the road"}}
}

// dispatch is one department summoned with its deadlines.
func dispatch(dept string, role whistlev1.AssignmentRole, reportInBy, resolveBy time.Time) *whistlev1.Dispatch {
	return &whistlev1.Dispatch{DepartmentId: dept, Role: role, ReportInBy: timestamppb.New(reportInBy), ResolveBy: timestamppb.New(resolveBy)}
}

// routed is routing's decision.
func routed(ds ...*whistlev1.Dispatch) func(*whistlev1.Event) {
	return func(ev *whistlev1.Event) {
		ev.Actor = &whistlev1.Actor{Subject: "routing", Role: "service"}
		ev.Payload = &whistlev1.Event_Routed{Routed: &whistlev1.IssueRouted{RuleId: "blocked-drain", Dispatches: ds}}
	}
}

// officer is a duty officer of dept.
func officer(dept string, n int) *whistlev1.Actor {
	return &whistlev1.Actor{Subject: fmt.Sprintf("%s-officer-%d", dept, n), Role: "officer", Scope: dept}
}

// ack is a report-in for dept by its officer n.
func ack(dept string, n int) func(*whistlev1.Event) {
	return func(ev *whistlev1.Event) {
		ev.Actor = officer(dept, n)
		ev.Payload = &whistlev1.Event_Acknowledged{Acknowledged: &whistlev1.AssignmentAcknowledged{DepartmentId: dept}}
	}
}

// resolve is a resolution of dept's part by its officer n.
func resolve(dept string, n int, note string) func(*whistlev1.Event) {
	return func(ev *whistlev1.Event) {
		ev.Actor = officer(dept, n)
		ev.Payload = &whistlev1.Event_Resolved{Resolved: &whistlev1.AssignmentResolved{DepartmentId: dept, Note: note}}
	}
}

// breach is escalation's breach of dept's deadline of kind, naming deadline.
func breach(dept string, kind whistlev1.DeadlineKind, deadline time.Time) func(*whistlev1.Event) {
	return func(ev *whistlev1.Event) {
		ev.Actor = &whistlev1.Actor{Subject: "escalation", Role: "service"}
		ev.Payload = &whistlev1.Event_Breached{Breached: &whistlev1.DeadlineBreached{DepartmentId: dept, Kind: kind, Deadline: timestamppb.New(deadline)}}
	}
}

// ask is dept's officer n asking to move its deadline of kind, which stands at deadline, to
// proposed.
func ask(dept string, kind whistlev1.DeadlineKind, deadline, proposed time.Time) func(*whistlev1.Event) {
	return func(ev *whistlev1.Event) {
		ev.Actor = officer(dept, 1)
		ev.Payload = &whistlev1.Event_ExtensionRequested{ExtensionRequested: &whistlev1.ExtensionRequested{DepartmentId: dept, Kind: kind,
			Deadline: timestamppb.New(deadline), Proposed: timestamppb.New(proposed), Reason: "a part is on order"}}
	}
}

// supervisor is the city's supervisor.
var supervisor = &whistlev1.Actor{Subject: "sup-city", Role: "supervisor", Scope: "city"}

// approve is a supervisor's approval of dept's pending request for its deadline of kind, which
// stands at deadline, granting granted.
func approve(dept string, kind whistlev1.DeadlineKind, deadline, granted time.Time) func(*whistlev1.Event) {
	return func(ev *whistlev1.Event) {
		ev.Actor = supervisor
		ev.Payload = &whistlev1.Event_ExtensionDecided{ExtensionDecided: &whistlev1.ExtensionDecided{DepartmentId: dept, Kind: kind,
			Approved: true, Deadline: timestamppb.New(deadline), Granted: timestamppb.New(granted)}}
	}
}

// deny is a supervisor's denial of dept's pending request for its deadline of kind.
func deny(dept string, kind whistlev1.DeadlineKind, deadline time.Time) func(*whistlev1.Event) {
	return func(ev *whistlev1.Event) {
		ev.Actor = supervisor
		ev.Payload = &whistlev1.Event_ExtensionDecided{ExtensionDecided: &whistlev1.ExtensionDecided{DepartmentId: dept, Kind: kind,
			Deadline: timestamppb.New(deadline), Reason: "the part is in stock"}}
	}
}

// urge is a supervisor's urge of dept's part under the request id key.
func urge(dept, key string) func(*whistlev1.Event) {
	return func(ev *whistlev1.Event) {
		ev.Actor = supervisor
		ev.Payload = &whistlev1.Event_Urged{Urged: &whistlev1.IssueUrged{RequestId: key, DepartmentId: dept, Note: "the school opens on Monday"}}
	}
}

const (
	reportIn = whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN
	resolveK = whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE
)

// water and gas are the two assignments in a status, with the deadlines of the first routing and
// the deadlines breached.
func water(s assignment.Status, breached ...assignment.DeadlineKind) Part {
	return Part{Status: s, ReportInBy: WaterReportInBy, ResolveBy: WaterResolveBy, Breached: breached}
}

func gas(s assignment.Status, breached ...assignment.DeadlineKind) Part {
	return Part{Status: s, ReportInBy: GasReportInBy, ResolveBy: GasResolveBy, Breached: breached}
}

// both is the issue's two assignments.
func both(w, g Part) map[string]Part { return map[string]Part{"water": w, "gas": g} }

// scenarios are the sequences every projection is fed.
func scenarios() []scenario {
	m := time.Minute
	h := time.Hour
	dispatched, acknowledged, resolved := assignment.Dispatched, assignment.Acknowledged, assignment.Resolved
	ri, rs := assignment.ReportIn, assignment.Resolve
	return []scenario{
		{name: "routing dispatches every department it names",
			want: both(water(dispatched), gas(dispatched))},
		{name: "a report-in then a resolution apply in turn",
			steps: []step{{10 * m, ack("water", 1)}, {20 * m, resolve("water", 2, "drain cleared")}},
			want:  both(water(resolved), gas(dispatched))},
		{name: "a joint whistle moves part by part",
			steps: []step{{10 * m, ack("gas", 1)}, {11 * m, ack("water", 1)}, {20 * m, resolve("gas", 1, "valve shut")}},
			want:  both(water(acknowledged), gas(resolved))},
		{name: "a resolution of a part that never reported in is impossible",
			steps: []step{{10 * m, resolve("water", 1, "drain cleared")}}, impossible: true,
			want: both(water(dispatched), gas(dispatched))},
		{name: "a report-in of a department never summoned is impossible",
			steps: []step{{10 * m, ack("power", 1)}}, impossible: true,
			want: both(water(dispatched), gas(dispatched))},
		{name: "a resolution of a department never summoned is impossible",
			steps: []step{{10 * m, resolve("power", 1, "cable checked")}}, impossible: true,
			want: both(water(dispatched), gas(dispatched))},
		{name: "a second report-in is impossible",
			steps: []step{{10 * m, ack("water", 1)}, {11 * m, ack("water", 2)}}, impossible: true,
			want: both(water(acknowledged), gas(dispatched))},
		{name: "a report-in repeated by the same officer is impossible",
			steps: []step{{10 * m, ack("water", 1)}, {11 * m, ack("water", 1)}}, impossible: true,
			want: both(water(acknowledged), gas(dispatched))},
		{name: "a report-in after the resolution is impossible",
			steps: []step{{10 * m, ack("water", 1)}, {20 * m, resolve("water", 1, "drain cleared")}, {30 * m, ack("water", 2)}}, impossible: true,
			want: both(water(resolved), gas(dispatched))},
		{name: "a second resolution is impossible",
			steps: []step{{10 * m, ack("water", 1)}, {20 * m, resolve("water", 1, "drain cleared")}, {30 * m, resolve("water", 1, "drain cleared")}}, impossible: true,
			want: both(water(resolved), gas(dispatched))},
		{name: "routing again keeps the deadlines frozen at the first dispatch and adds only new departments",
			steps: []step{{10 * m, ack("water", 1)}, {20 * m, routed(
				dispatch("water", whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD, Start.Add(3*h), Start.Add(4*h)),
				dispatch("power", whistlev1.AssignmentRole_ASSIGNMENT_ROLE_ASSISTING, Start.Add(3*h), Start.Add(4*h)),
			)}, {30 * m, ack("power", 1)}},
			want: map[string]Part{"water": water(acknowledged), "gas": gas(dispatched),
				"power": {Status: acknowledged, ReportInBy: Start.Add(3 * h), ResolveBy: Start.Add(4 * h)}}},
		{name: "a breach stored after a deadline nothing cleared applies",
			steps: []step{{h + m, breach("water", reportIn, WaterReportInBy)}},
			want:  both(water(dispatched, ri), gas(dispatched))},
		{name: "a breach stored at its deadline applies",
			steps: []step{{h, breach("water", reportIn, WaterReportInBy)}},
			want:  both(water(dispatched, ri), gas(dispatched))},
		{name: "a report-in and a resolution after their breaches apply",
			steps: []step{{h + m, breach("water", reportIn, WaterReportInBy)}, {24*h + m, breach("water", resolveK, WaterResolveBy)},
				{25 * h, ack("water", 1)}, {26 * h, resolve("water", 1, "drain cleared")}},
			want: both(water(resolved, ri, rs), gas(dispatched))},
		{name: "a breach recorded after a late report-in applies",
			steps: []step{{90 * m, ack("water", 1)}, {91 * m, breach("water", reportIn, WaterReportInBy)}},
			want:  both(water(acknowledged, ri), gas(dispatched))},
		{name: "a breach stored before its deadline is impossible",
			steps: []step{{h - time.Millisecond, breach("water", reportIn, WaterReportInBy)}}, impossible: true,
			want: both(water(dispatched), gas(dispatched))},
		{name: "a breach of a deadline cleared in time is impossible",
			steps: []step{{h, ack("water", 1)}, {h + m, breach("water", reportIn, WaterReportInBy)}}, impossible: true,
			want: both(water(acknowledged), gas(dispatched))},
		{name: "a breach of a deadline resolved in time is impossible",
			steps: []step{{10 * m, ack("water", 1)}, {20 * m, resolve("water", 1, "drain cleared")}, {25 * h, breach("water", resolveK, WaterResolveBy)}}, impossible: true,
			want: both(water(resolved), gas(dispatched))},
		{name: "a second breach of one deadline is impossible",
			steps: []step{{h + m, breach("water", reportIn, WaterReportInBy)}, {h + 2*m, breach("water", reportIn, WaterReportInBy)}}, impossible: true,
			want: both(water(dispatched, ri), gas(dispatched))},
		{name: "a breach naming another deadline than the one frozen is impossible",
			steps: []step{{h + m, breach("water", reportIn, Start.Add(30*m))}}, impossible: true,
			want: both(water(dispatched), gas(dispatched))},
		{name: "a breach of no kind is impossible",
			steps: []step{{h + m, breach("water", whistlev1.DeadlineKind_DEADLINE_KIND_UNSPECIFIED, WaterReportInBy)}}, impossible: true,
			want: both(water(dispatched), gas(dispatched))},
		{name: "a breach of a department never summoned is impossible",
			steps: []step{{h + m, breach("power", reportIn, WaterReportInBy)}}, impossible: true,
			want: both(water(dispatched), gas(dispatched))},
		{name: "an extension asked waits for a supervisor",
			steps: []step{{10 * m, ask("water", resolveK, WaterResolveBy, Start.Add(48*h))}},
			want:  both(pending(water(dispatched), rs), gas(dispatched))},
		{name: "an approval stored before the deadline moves it",
			steps: []step{{10 * m, ask("water", resolveK, WaterResolveBy, Start.Add(48*h))}, {20 * m, approve("water", resolveK, WaterResolveBy, Start.Add(40*h))}},
			want:  both(decided(moved(water(dispatched), rs, Start.Add(40*h)), "approved"), gas(dispatched))},
		{name: "a breach of the deadline an approval moved is impossible",
			steps: []step{{10 * m, ask("water", reportIn, WaterReportInBy, Start.Add(3*h))}, {20 * m, approve("water", reportIn, WaterReportInBy, Start.Add(3*h))},
				{h + m, breach("water", reportIn, WaterReportInBy)}}, impossible: true,
			want: both(decided(moved(water(dispatched), ri, Start.Add(3*h)), "approved"), gas(dispatched))},
		{name: "a breach of the deadline it moved to applies once that passes",
			steps: []step{{10 * m, ask("water", reportIn, WaterReportInBy, Start.Add(3*h))}, {20 * m, approve("water", reportIn, WaterReportInBy, Start.Add(3*h))},
				{3*h + m, breach("water", reportIn, Start.Add(3*h))}},
			want: both(decided(moved(water(dispatched, ri), ri, Start.Add(3*h)), "approved"), gas(dispatched))},
		{name: "a denial keeps the deadline",
			steps: []step{{10 * m, ask("water", resolveK, WaterResolveBy, Start.Add(48*h))}, {20 * m, deny("water", resolveK, WaterResolveBy)}},
			want:  both(decided(water(dispatched), "denied"), gas(dispatched))},
		{name: "an approval stored after its deadline moves nothing and the breach still applies",
			steps: []step{{10 * m, ask("water", reportIn, WaterReportInBy, Start.Add(3*h))}, {h, approve("water", reportIn, WaterReportInBy, Start.Add(3*h))},
				{h + m, breach("water", reportIn, WaterReportInBy)}},
			want: both(decided(water(dispatched, ri), "late"), gas(dispatched))},
		{name: "a denial after the part resolved applies",
			steps: []step{{10 * m, ask("water", resolveK, WaterResolveBy, Start.Add(48*h))}, {20 * m, ack("water", 1)}, {30 * m, resolve("water", 1, "drain cleared")},
				{40 * m, deny("water", resolveK, WaterResolveBy)}},
			want: both(decided(water(resolved), "denied"), gas(dispatched))},
		{name: "an approval after the part resolved is impossible",
			steps: []step{{10 * m, ask("water", resolveK, WaterResolveBy, Start.Add(48*h))}, {20 * m, ack("water", 1)}, {30 * m, resolve("water", 1, "drain cleared")},
				{40 * m, approve("water", resolveK, WaterResolveBy, Start.Add(48*h))}}, impossible: true,
			want: both(pending(water(resolved), rs), gas(dispatched))},
		{name: "an approval after the deadline was breached is impossible",
			steps: []step{{10 * m, ask("water", reportIn, WaterReportInBy, Start.Add(3*h))}, {h + m, breach("water", reportIn, WaterReportInBy)},
				{h + 2*m, approve("water", reportIn, WaterReportInBy, Start.Add(3*h))}}, impossible: true,
			want: both(pending(water(dispatched, ri), ri), gas(dispatched))},
		{name: "an approval further than the limit is impossible",
			steps: []step{{10 * m, ask("water", resolveK, WaterResolveBy, Start.Add(48*h))},
				{20 * m, approve("water", resolveK, WaterResolveBy, WaterResolveBy.Add(assignment.MaxExtension+m))}}, impossible: true,
			want: both(pending(water(dispatched), rs), gas(dispatched))},
		{name: "a decision with no request pending is impossible",
			steps: []step{{10 * m, deny("water", resolveK, WaterResolveBy)}}, impossible: true,
			want: both(water(dispatched), gas(dispatched))},
		{name: "a decision on another deadline than the one asked for is impossible",
			steps: []step{{10 * m, ask("water", resolveK, WaterResolveBy, Start.Add(48*h))}, {20 * m, deny("water", reportIn, WaterReportInBy)}}, impossible: true,
			want: both(pending(water(dispatched), rs), gas(dispatched))},
		{name: "a decision naming another deadline than the one in force is impossible",
			steps: []step{{10 * m, ask("water", resolveK, WaterResolveBy, Start.Add(48*h))}, {20 * m, approve("water", resolveK, Start.Add(20*h), Start.Add(48*h))}}, impossible: true,
			want: both(pending(water(dispatched), rs), gas(dispatched))},
		{name: "urges count on an open part",
			steps: []step{{10 * m, urge("water", "u1")}, {20 * m, ack("water", 1)}, {30 * m, urge("water", "u2")}},
			want:  both(urged(water(acknowledged), 2), gas(dispatched))},
		{name: "an urge of a resolved part is impossible",
			steps: []step{{10 * m, urge("gas", "u1")}, {20 * m, ack("gas", 1)}, {30 * m, resolve("gas", 1, "valve shut")}, {40 * m, urge("gas", "u2")}}, impossible: true,
			want: both(water(dispatched), urged(gas(resolved), 1))},
		{name: "an urge of a department never summoned is impossible",
			steps: []step{{10 * m, urge("power", "u1")}}, impossible: true,
			want: both(water(dispatched), gas(dispatched))},
	}
}

// pending is p with a request to move its deadline of kind k waiting.
func pending(p Part, k assignment.DeadlineKind) Part { p.Pending = k; return p }

// moved is p with its deadline of kind k at to.
func moved(p Part, k assignment.DeadlineKind, to time.Time) Part {
	if k == assignment.ReportIn {
		p.ReportInBy = to
	} else {
		p.ResolveBy = to
	}
	return p
}

// decided is p with its latest decision as it took effect.
func decided(p Part, how string) Part { p.Decided = how; return p }

// urged is p urged n times.
func urged(p Part, n int) Part { p.Urges = n; return p }
