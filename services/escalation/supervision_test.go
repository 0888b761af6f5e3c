package escalation_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/store"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
	"github.com/whistle-dispatch/whistle/services/internal/platform"
	"github.com/whistle-dispatch/whistle/services/internal/roster"
)

// An approval must be stored before the deadline it moves, on the stream's clock, which is the
// real one: the report-in deadline of these tests lies this far ahead of the start.
const decideWithin = 5 * time.Second

var (
	streetSupervisor = authx.Principal{Subject: "sup-xinhua", Role: authx.RoleSupervisor, Scope: "xinhua"}
	otherSupervisor  = authx.Principal{Subject: "sup-hexi", Role: authx.RoleSupervisor, Scope: "hexi"}
	dispatcher       = authx.Principal{Subject: "disp-city", Role: authx.RoleDispatcher, Scope: "city"}
)

// ask appends water's request, as its officer, to move its deadline of kind to proposed.
func (h *harness) ask(issueID string, kind whistlev1.DeadlineKind, deadline, proposed time.Time) {
	h.T.Helper()
	h.append(issueID+".extension-requested", issueID, func(ev *whistlev1.Event) {
		ev.Actor = &whistlev1.Actor{Subject: "duty-water", Role: string(authx.RoleOfficer), Scope: "water"}
		ev.Payload = &whistlev1.Event_ExtensionRequested{ExtensionRequested: &whistlev1.ExtensionRequested{DepartmentId: "water", Kind: kind,
			Deadline: timestamppb.New(deadline), Proposed: timestamppb.New(proposed), Reason: "a pump is on order"}}
	})
}

// count returns how many events of kind the issue holds.
func (h *harness) count(issueID, kind string) int {
	n := 0
	for _, ev := range h.events(issueID) {
		if kindOf(ev) == kind {
			n++
		}
	}
	return n
}

// kindOf names an event's kind as the stream's subjects do.
func kindOf(ev *whistlev1.Event) string {
	switch ev.GetPayload().(type) {
	case *whistlev1.Event_ExtensionDecided:
		return "extension-decided"
	case *whistlev1.Event_Urged:
		return "urged"
	case *whistlev1.Event_Breached:
		return "breached"
	}
	return "other"
}

// timerAt returns when the issue's timer of a kind is due, or the zero time when it is not armed.
func (h *harness) timerAt(issueID, unit, kind string) time.Time {
	score, err := h.Deps.Redis.ZScore(context.Background(), store.TimersKey(issueID), issueID+"|"+unit+"|"+kind).Result()
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(int64(score)).UTC()
}

func TestAnApprovedExtensionMovesTheDeadlineSoThatTheOneThatWouldHaveBreachedDoesNot(t *testing.T) {
	h := newHarness(t)
	id, first, sup := h.asking(decideWithin, streetSupervisor)
	ctx := context.Background()

	// The supervisor grants less than was asked.
	granted := first.Add(30 * time.Minute)
	resp, err := sup.DecideExtension(ctx, &whistlev1.DecideExtensionRequest{IssueId: id, UnitId: "water", Approve: true, Granted: timestamppb.New(granted)})
	if err != nil {
		t.Fatal(err)
	}
	a := resp.GetAssignment()
	if !a.GetReportInBy().AsTime().Equal(granted) || a.GetExtensionRequested() != nil || !a.GetExtensionDecided().GetApproved() ||
		!a.GetExtensionDecided().GetGranted().AsTime().Equal(granted) || a.GetExtensionDecided().GetDecidedBy() != "sup-xinhua" {
		t.Fatalf("after the approval: %v", a)
	}
	stored := h.Stored(id, "extension-decided")
	if stored.Seq != resp.GetSeq() || !stored.Time.Before(first) {
		t.Fatalf("the decision is stored at %d, %s; answered %d; the deadline was %s", stored.Seq, stored.Time, resp.GetSeq(), first)
	}
	d := stored.Event.GetExtensionDecided()
	if d.GetKind() != whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN || !d.GetDeadline().AsTime().Equal(first) || d.GetRequestedSeq() != h.Stored(id, "extension-requested").Seq {
		t.Fatalf("the decision event %v", d)
	}
	// The timer runs to the new deadline.
	wait.For(t, 10*time.Second, 5*time.Millisecond, func() error {
		if at := h.timerAt(id, "water", "report-in"); !at.Equal(granted) {
			return fmt.Errorf("the report-in timer is due at %s, want %s", at, granted)
		}
		return nil
	})

	// The same approval again has nothing to do.
	again, err := sup.DecideExtension(ctx, &whistlev1.DecideExtensionRequest{IssueId: id, UnitId: "water", Approve: true, Granted: timestamppb.New(granted)})
	if err != nil || again.GetSeq() != resp.GetSeq() || !proto.Equal(again.GetAssignment(), a) {
		t.Fatalf("the approval again: %v %v; want the first answer %v", again, err, resp)
	}
	if n := h.count(id, "extension-decided"); n != 1 {
		t.Fatalf("%d decisions in the stream, want 1", n)
	}

	// The first deadline passes on the stream's clock and on the services' clock: nothing breaches.
	h.pass(first, 1)
	h.idle(1, time.Minute)
	if n := len(h.breaches(id)); n != 0 {
		t.Fatalf("%d breaches after the first deadline passed; the approval moved it", n)
	}
}

// asking runs the service and routes an issue of Xinhua to water with its report-in deadline
// reportIn after the start, which water asks to move an hour later; it returns the issue, the
// deadline, and a client of the service as supervisor p.
func (h *harness) asking(reportIn time.Duration, p authx.Principal) (string, time.Time, whistlev1.EscalationServiceClient) {
	in := h.run()
	id := issue(h.T, 1)
	deadline := h.raiseAndRoute(id, "xinhua-taoyuan-01", "water-supply", "water", reportIn, farOff)
	h.ask(id, whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN, deadline, deadline.Add(time.Hour))
	return id, deadline, h.client(in, p)
}

func TestADecisionRetriedWithItsRequestIDIsAnsweredOnceEvenAfterTheUnitAskedAgain(t *testing.T) {
	h := newHarness(t)
	id, first, sup := h.asking(decideWithin, streetSupervisor)
	ctx := context.Background()
	deny := func(requestID string) (*whistlev1.DecideExtensionResponse, error) {
		return sup.DecideExtension(ctx, &whistlev1.DecideExtensionRequest{IssueId: id, UnitId: "water", Reason: "the pump is in stock",
			RequestId: requestID})
	}
	decided, err := deny("decide-1")
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Stored(id, "extension-decided").Event.GetExtensionDecided().GetRequestId(); got != "decide-1" {
		t.Fatalf("the decision event carries the request id %q, want decide-1", got)
	}

	// The unit asks again before the supervisor's retry of the first denial arrives.
	h.append(id+".extension-requested-again", id, func(ev *whistlev1.Event) {
		ev.Actor = &whistlev1.Actor{Subject: "duty-water", Role: string(authx.RoleOfficer), Scope: "water"}
		ev.Payload = &whistlev1.Event_ExtensionRequested{ExtensionRequested: &whistlev1.ExtensionRequested{DepartmentId: "water",
			Kind: whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN, Deadline: timestamppb.New(first), Proposed: timestamppb.New(first.Add(2 * time.Hour)),
			Reason: "the pump did not fit"}}
	})
	again := h.Stored(id, "extension-requested").Seq
	wait.For(t, 10*time.Second, 5*time.Millisecond, func() error { // the view has the second request
		raw, err := h.Deps.Redis.Get(ctx, "escalation:seq:{"+id+"}").Result()
		seq, _ := strconv.ParseUint(redistest.Value("escalation:seq:{"+id+"}", raw), 10, 64)
		if err == nil && seq < again {
			err = fmt.Errorf("the view is at %d, the second request at %d", seq, again)
		}
		return err
	})
	retried, err := deny("decide-1")
	if err != nil || retried.GetSeq() != decided.GetSeq() || retried.GetAssignment().GetExtensionRequested() == nil {
		t.Fatalf("the retried denial: %v %v; want the first decision's sequence %d with the second request still pending", retried, err, decided.GetSeq())
	}
	if n := h.count(id, "extension-decided"); n != 1 {
		t.Fatalf("%d decisions in the stream after the retry, want 1", n)
	}

	// Another key decides the pending request.
	second, err := deny("decide-2")
	if err != nil || second.GetSeq() <= again || second.GetAssignment().GetExtensionRequested() != nil {
		t.Fatalf("a denial with a new key: %v %v; want the second request decided", second, err)
	}
	if n := h.count(id, "extension-decided"); n != 2 {
		t.Fatalf("%d decisions in the stream, want 2", n)
	}
}

func TestARequestIDUsedForOneCommandIsRefusedOnTheOtherAndWritesNothing(t *testing.T) {
	h := newHarness(t)
	id, _, sup := h.asking(decideWithin, streetSupervisor)
	ctx := context.Background()
	if _, err := sup.Urge(ctx, &whistlev1.UrgeRequest{IssueId: id, UnitId: "water", Note: "answer the request", RequestId: "key-1"}); err != nil {
		t.Fatal(err)
	}
	decided, err := sup.DecideExtension(ctx, &whistlev1.DecideExtensionRequest{IssueId: id, UnitId: "water", Reason: "no", RequestId: "key-1"})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "request_id") || !strings.Contains(err.Error(), "urge") {
		t.Fatalf("a decision with an urge's request id: %v %v; want FailedPrecondition naming request_id and the urge", decided, err)
	}
	if n := h.count(id, "extension-decided"); n != 0 {
		t.Fatalf("%d decisions stored by the refusal", n)
	}
	if _, err := sup.DecideExtension(ctx, &whistlev1.DecideExtensionRequest{IssueId: id, UnitId: "water", Reason: "no", RequestId: "key-2"}); err != nil {
		t.Fatal(err)
	}
	urged, err := sup.Urge(ctx, &whistlev1.UrgeRequest{IssueId: id, UnitId: "water", Note: "again", RequestId: "key-2"})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "request_id") || !strings.Contains(err.Error(), "extension decision") {
		t.Fatalf("an urge with a decision's request id: %v %v; want FailedPrecondition naming request_id and the decision", urged, err)
	}
	if n := h.count(id, "urged"); n != 1 {
		t.Fatalf("%d urges in the stream, want the first alone", n)
	}
}

func TestADenialNeedsAReasonKeepsTheDeadlineAndIsAllowedOnceItPassed(t *testing.T) {
	h := newHarness(t)
	id, deadline, sup := h.asking(soon, citySupervisor)
	ctx := context.Background()

	_, err := sup.DecideExtension(ctx, &whistlev1.DecideExtensionRequest{IssueId: id, UnitId: "water", Reason: "  "})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "reason") {
		t.Fatalf("a denial without a reason: %v, want InvalidArgument naming reason", err)
	}
	// The deadline passes on the stream's clock: an approval is too late, a denial is not.
	wait.For(t, 10*time.Second, 5*time.Millisecond, func() error {
		if now, err := h.Deps.Log.Now(ctx); err != nil || !now.After(deadline) {
			return fmt.Errorf("the stream's clock reads %s (%v)", now, err)
		}
		return nil
	})
	_, err = sup.DecideExtension(ctx, &whistlev1.DecideExtensionRequest{IssueId: id, UnitId: "water", Approve: true})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "too late") {
		t.Fatalf("an approval once the deadline passed: %v, want FailedPrecondition, too late", err)
	}
	if n := h.count(id, "extension-decided"); n != 0 {
		t.Fatalf("%d decisions stored by refusals", n)
	}
	resp, err := sup.DecideExtension(ctx, &whistlev1.DecideExtensionRequest{IssueId: id, UnitId: "water", Reason: "the pump is in stock"})
	if err != nil {
		t.Fatal(err)
	}
	a := resp.GetAssignment()
	if !a.GetReportInBy().AsTime().Equal(deadline) || a.GetExtensionRequested() != nil || a.GetExtensionDecided().GetApproved() ||
		a.GetExtensionDecided().GetReason() != "the pump is in stock" {
		t.Fatalf("after the denial: %v", a)
	}
	// The deadline stands, and breaches.
	h.pass(deadline, 1)
	if b := h.waitBreaches(id, 1)[0]; !b.GetDeadline().AsTime().Equal(deadline) {
		t.Fatalf("breach %v, want the deadline %s", b, deadline)
	}
	_, err = sup.DecideExtension(ctx, &whistlev1.DecideExtensionRequest{IssueId: id, UnitId: "water", Reason: "another reason"})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("a decision with nothing pending: %v, want FailedPrecondition", err)
	}
}

func TestADecisionTheCallerMayNotMakeIsRefusedWithItsCodeAndWritesNothing(t *testing.T) {
	h := newHarness(t)
	in := h.run()
	id, hexi, quiet := issue(t, 1), issue(t, 2), issue(t, 3)
	h.raiseAndRoute(id, "xinhua-taoyuan-01", "water-supply", "water", farOff, 2*farOff)
	resolveBy := h.t0.Add(2 * farOff)
	h.ask(id, whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE, resolveBy, resolveBy.Add(time.Hour))
	h.raiseAndRoute(hexi, "hexi-binjiang-01", "water-supply", "water", farOff, 2*farOff)
	h.raiseAndRoute(quiet, "xinhua-taoyuan-01", "water-supply", "water", farOff, 2*farOff) // nothing asked
	ctx := context.Background()
	approve := func(issueID, unit string) *whistlev1.DecideExtensionRequest {
		return &whistlev1.DecideExtensionRequest{IssueId: issueID, UnitId: unit, Approve: true}
	}
	for _, tc := range []struct {
		name   string
		caller authx.Principal
		req    *whistlev1.DecideExtensionRequest
		code   codes.Code
		names  string // what the message must name
	}{
		{"a duty officer", waterOfficer, approve(id, "water"), codes.PermissionDenied, "supervisor"},
		{"a dispatcher", dispatcher, approve(id, "water"), codes.PermissionDenied, "supervisor"},
		{"a supervisor of another street", otherSupervisor, approve(id, "water"), codes.NotFound, id},
		{"an unknown issue", citySupervisor, approve(issue(t, 9), "water"), codes.NotFound, "not found"},
		{"a unit never summoned", citySupervisor, approve(id, "power"), codes.NotFound, "power"},
		{"no unit", citySupervisor, approve(id, ""), codes.InvalidArgument, "unit_id"},
		{"no issue", citySupervisor, approve("", "water"), codes.InvalidArgument, "issue_id"},
		{"nothing pending", citySupervisor, approve(quiet, "water"), codes.FailedPrecondition, "no extension request pending"},
		{"nothing pending in another street", streetSupervisor, approve(hexi, "water"), codes.NotFound, hexi},
		{"a grant before the deadline", citySupervisor, &whistlev1.DecideExtensionRequest{IssueId: id, UnitId: "water", Approve: true,
			Granted: timestamppb.New(resolveBy.Add(-time.Minute))}, codes.InvalidArgument, "granted"},
		{"a grant past the limit", citySupervisor, &whistlev1.DecideExtensionRequest{IssueId: id, UnitId: "water", Approve: true,
			Granted: timestamppb.New(resolveBy.Add(assignment.MaxExtension + time.Second))}, codes.InvalidArgument, "granted"},
		{"a grant that is no time", citySupervisor, &whistlev1.DecideExtensionRequest{IssueId: id, UnitId: "water", Approve: true,
			Granted: &timestamppb.Timestamp{Seconds: -1 << 40}}, codes.InvalidArgument, "granted"},
		{"a denial that grants", citySupervisor, &whistlev1.DecideExtensionRequest{IssueId: id, UnitId: "water", Reason: "no",
			Granted: timestamppb.New(resolveBy.Add(time.Hour))}, codes.InvalidArgument, "granted"},
		{"a reason too long", citySupervisor, &whistlev1.DecideExtensionRequest{IssueId: id, UnitId: "water", Reason: strings.Repeat("長", 501)},
			codes.InvalidArgument, "reason"},
		{"a request id of another form", citySupervisor, &whistlev1.DecideExtensionRequest{IssueId: id, UnitId: "water", Approve: true,
			RequestId: "decide 1"}, codes.InvalidArgument, "request_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.client(in, tc.caller).DecideExtension(ctx, tc.req)
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.names) {
				t.Fatalf("%v, want %v naming %q", err, tc.code, tc.names)
			}
		})
	}
	for _, issueID := range []string{id, hexi, quiet} {
		if n := h.count(issueID, "extension-decided"); n != 0 {
			t.Errorf("%s: %d decisions stored by refusals", issueID, n)
		}
	}
}

func TestAnUrgeIsRecordedOncePerRequestCountedAndRefusedOnAClosedPart(t *testing.T) {
	h := newHarness(t)
	r, err := roster.Parse("rosters.yaml", []byte(chainRosters), h.Deps.Catalog.TimeZone(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h.Deps.Rosters = r // water's head is wh
	in := h.run()
	id := issue(t, 1)
	h.raiseAndRoute(id, "xinhua-taoyuan-01", "water-supply", "water", farOff, 2*farOff)
	sup := h.client(in, streetSupervisor)
	ctx := context.Background()

	// No unit: the lead is urged.
	first, err := sup.Urge(ctx, &whistlev1.UrgeRequest{IssueId: id, Note: "the school opens on Monday", RequestId: "urge-1"})
	if err != nil {
		t.Fatal(err)
	}
	if first.GetAssignment().GetUnitId() != "water" || first.GetAssignment().GetUrges() != 1 || first.GetSeq() != h.Stored(id, "urged").Seq {
		t.Fatalf("the first urge: %v", first)
	}
	if u := h.Stored(id, "urged").Event.GetUrged(); u.GetUnitId() != "water" || u.GetNote() != "the school opens on Monday" || u.GetRequestId() != "urge-1" ||
		u.GetHeadId() != "wh" {
		t.Fatalf("the urge event %v", u)
	}
	again, err := sup.Urge(ctx, &whistlev1.UrgeRequest{IssueId: id, Note: "the school opens on Monday", RequestId: "urge-1"})
	if err != nil || again.GetSeq() != first.GetSeq() || again.GetAssignment().GetUrges() != 1 {
		t.Fatalf("the urge retried: %v %v; want the first", again, err)
	}
	second, err := sup.Urge(ctx, &whistlev1.UrgeRequest{IssueId: id, UnitId: "water", Note: "still nothing", RequestId: "urge-2"})
	if err != nil || second.GetAssignment().GetUrges() != 2 {
		t.Fatalf("a second urge: %v %v", second, err)
	}
	if n := h.count(id, "urged"); n != 2 {
		t.Fatalf("%d urges in the stream, want 2", n)
	}

	h.acknowledge(id, "water")
	h.append(id+".resolved", id, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Resolved{Resolved: &whistlev1.AssignmentResolved{DepartmentId: "water", Note: "fixed"}}
	})
	for _, tc := range []struct {
		name   string
		caller authx.Principal
		req    *whistlev1.UrgeRequest
		code   codes.Code
		names  string
	}{
		{"a resolved part", citySupervisor, &whistlev1.UrgeRequest{IssueId: id, Note: "hurry", RequestId: "urge-3"}, codes.FailedPrecondition, "resolved"},
		{"a duty officer", waterOfficer, &whistlev1.UrgeRequest{IssueId: id, Note: "hurry", RequestId: "urge-4"}, codes.PermissionDenied, "supervisor"},
		{"a supervisor of another street", otherSupervisor, &whistlev1.UrgeRequest{IssueId: id, Note: "hurry", RequestId: "urge-5"}, codes.NotFound, id},
		{"a unit never summoned", citySupervisor, &whistlev1.UrgeRequest{IssueId: id, UnitId: "power", Note: "hurry", RequestId: "urge-6"}, codes.NotFound, "power"},
		{"no note", citySupervisor, &whistlev1.UrgeRequest{IssueId: id, RequestId: "urge-7"}, codes.InvalidArgument, "note"},
		{"a note too long", citySupervisor, &whistlev1.UrgeRequest{IssueId: id, Note: strings.Repeat("快", 501), RequestId: "urge-8"}, codes.InvalidArgument, "note"},
		{"no request id", citySupervisor, &whistlev1.UrgeRequest{IssueId: id, Note: "hurry"}, codes.InvalidArgument, "request_id"},
		{"a request id with a space", citySupervisor, &whistlev1.UrgeRequest{IssueId: id, Note: "hurry", RequestId: "urge 9"}, codes.InvalidArgument, "request_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.client(in, tc.caller).Urge(ctx, tc.req)
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.names) {
				t.Fatalf("%v, want %v naming %q", err, tc.code, tc.names)
			}
		})
	}
	if n := h.count(id, "urged"); n != 2 {
		t.Fatalf("%d urges in the stream after the refusals, want 2", n)
	}
	// A retry of an urge made while the part was open still answers it.
	if again, err := sup.Urge(ctx, &whistlev1.UrgeRequest{IssueId: id, Note: "the school opens on Monday", RequestId: "urge-1"}); err != nil || again.GetSeq() != first.GetSeq() {
		t.Fatalf("the first urge retried after the resolution: %v %v", again, err)
	}
}

func TestSupervisionRebuildsFromTheStreamToTheSameState(t *testing.T) {
	h := newHarness(t)
	first := h.run()
	id := issue(t, 1)
	deadline := h.raiseAndRoute(id, "xinhua-taoyuan-01", "water-supply", "water", farOff, 2*farOff)
	resolveBy := h.t0.Add(2 * farOff)
	h.ask(id, whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE, resolveBy, resolveBy.Add(24*time.Hour))
	sup := h.client(first, citySupervisor)
	ctx := context.Background()
	if _, err := sup.DecideExtension(ctx, &whistlev1.DecideExtensionRequest{IssueId: id, UnitId: "water", Approve: true}); err != nil {
		t.Fatal(err)
	}
	h.ask(id, whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN, deadline, deadline.Add(time.Hour))
	if _, err := sup.Urge(ctx, &whistlev1.UrgeRequest{IssueId: id, Note: "hurry", RequestId: "urge-1"}); err != nil {
		t.Fatal(err)
	}
	h.Settled("escalation")
	before := h.derived()
	first.stop()
	h.rebuild(first, before)
}

// derived dumps everything escalation derives: the issues' states, their timers, breaches and
// pending extension requests. The timer lease names the process that holds it, and the last
// reconciliation when it ran: no views, so they are left out.
func (h *harness) derived() string {
	h.T.Helper()
	d, err := redistest.Dump(h.T.Context(), h.Deps.Redis)
	if err != nil {
		h.T.Fatal(err)
	}
	var kept []string
	skip := false
	for _, line := range strings.SplitAfter(d, "\n") {
		if !strings.HasPrefix(line, " ") { // a key's header; its values follow indented
			skip = strings.HasPrefix(line, store.LeaseKey+" ") || strings.HasPrefix(line, store.ReconciledKey+" ")
		}
		if !skip {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "")
}

// rebuild wipes escalation's keys under the stopped instance, runs a new one, which rebuilds them
// from the stream, and waits until they are live's, key for key; it returns the new instance.
func (h *harness) rebuild(stopped *instance, live string) *instance {
	h.T.Helper()
	if err := platform.Reset(h.T.Context(), h.Deps, stopped.svc); err != nil {
		h.T.Fatal(err)
	}
	in := h.run()
	h.Settled("escalation")
	wait.For(h.T, 10*time.Second, 10*time.Millisecond, func() error {
		if after := h.derived(); after != live {
			return fmt.Errorf("the rebuilt Redis differs:\n--- rebuilt\n%s\n--- live\n%s", after, live)
		}
		return nil
	})
	return in
}
