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
	}
}
