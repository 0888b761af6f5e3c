package intake_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/intake"
	"github.com/whistle-dispatch/whistle/services/intake/internal/store"
	"github.com/whistle-dispatch/whistle/services/internal/servicetest"
)

// resolved raises an issue as the Taoyuan worker, routes it to water as lead and power assisting,
// and has both resolve, as routing and the department would; it returns the case number once the
// view shows it resolved.
func (e *env) resolved(key string) string {
	e.T.Helper()
	id := e.raise(taoyuanWorker, key).GetId()
	now := e.Clock.Now()
	policy := &whistlev1.SlaPolicy{ReportInWithin: durationpb.New(time.Hour), ResolveWithin: durationpb.New(24 * time.Hour)}
	e.appendEvent(id, "routed", service("routing"), func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Routed{Routed: &whistlev1.IssueRouted{Dispatches: []*whistlev1.Dispatch{
			{DepartmentId: "water", Role: whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD, Policy: policy,
				ReportInBy: timestamppb.New(now.Add(time.Hour)), ResolveBy: timestamppb.New(now.Add(24 * time.Hour))},
			{DepartmentId: "power", Role: whistlev1.AssignmentRole_ASSIGNMENT_ROLE_ASSISTING, Policy: policy,
				ReportInBy: timestamppb.New(now.Add(time.Hour)), ResolveBy: timestamppb.New(now.Add(24 * time.Hour))},
		}}}
	})
	for _, o := range []authx.Principal{waterOfficer, powerOfficer} {
		e.appendEvent(id, "ack-"+o.Scope, person(o), func(ev *whistlev1.Event) {
			ev.Payload = &whistlev1.Event_Acknowledged{Acknowledged: &whistlev1.AssignmentAcknowledged{DepartmentId: o.Scope}}
		})
		e.appendEvent(id, "resolved-"+o.Scope, person(o), func(ev *whistlev1.Event) {
			ev.Payload = &whistlev1.Event_Resolved{Resolved: &whistlev1.AssignmentResolved{DepartmentId: o.Scope, Note: "done"}}
		})
	}
	e.waitStatus(taoyuanWorker, id, whistlev1.IssueStatus_ISSUE_STATUS_RESOLVED)
	return id
}

// waitStatus waits until the view shows the issue in a status.
func (e *env) waitStatus(p authx.Principal, id string, want whistlev1.IssueStatus) *whistlev1.GetIssueResponse {
	e.T.Helper()
	var got *whistlev1.GetIssueResponse
	wait.For(e.T, 10*time.Second, 20*time.Millisecond, func() error {
		resp, err := e.client(p).GetIssue(context.Background(), &whistlev1.GetIssueRequest{Id: id})
		if err != nil {
			return err
		}
		if got = resp; resp.GetIssue().GetStatus() != want {
			return fmt.Errorf("issue %s is %s, want %s", id, resp.GetIssue().GetStatus(), want)
		}
		return nil
	})
	return got
}

func TestAFailedVerificationReopensTheLeadAndAPassClosesTheIssue(t *testing.T) {
	t.Parallel()
	e := start(t)
	id := e.resolved("verify-1")
	worker := e.client(taoyuanWorker)
	ctx := t.Context()

	failed, err := worker.VerifyIssue(ctx, &whistlev1.VerifyIssueRequest{IssueId: id, Reason: "still overflowing"})
	if err != nil {
		t.Fatal(err)
	}
	lead := failed.GetIssue().GetAssignments()[0]
	reopenedAt := e.Clock.Now()
	if failed.GetIssue().GetStatus() != whistlev1.IssueStatus_ISSUE_STATUS_IN_PROGRESS || lead.GetStatus() != whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_DISPATCHED ||
		lead.GetReopened() != 1 || !lead.GetReportInBy().AsTime().Equal(reopenedAt.Add(time.Hour)) || !lead.GetResolveBy().AsTime().Equal(reopenedAt.Add(24*time.Hour)) {
		t.Fatalf("after a failed verification: %v; want the lead dispatched again with its clocks from the frozen policy", failed.GetIssue())
	}
	if a := failed.GetIssue().GetAssignments()[1]; a.GetStatus() != whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_RESOLVED {
		t.Errorf("the assisting part is %s; only the lead reopens", a.GetStatus())
	}

	// The lead reports in and resolves again; this time the worker passes it.
	for _, kind := range []string{"ack2", "resolved2"} {
		e.appendEvent(id, kind, person(waterOfficer), func(ev *whistlev1.Event) {
			if kind == "ack2" {
				ev.Payload = &whistlev1.Event_Acknowledged{Acknowledged: &whistlev1.AssignmentAcknowledged{DepartmentId: "water"}}
			} else {
				ev.Payload = &whistlev1.Event_Resolved{Resolved: &whistlev1.AssignmentResolved{DepartmentId: "water", Note: "pipe replaced"}}
			}
		})
	}
	resolved := e.waitStatus(taoyuanWorker, id, whistlev1.IssueStatus_ISSUE_STATUS_RESOLVED)
	if resolved.GetIssue().GetClosesBy() == nil {
		t.Error("a resolved issue does not say when it closes unverified")
	}
	passed, err := worker.VerifyIssue(ctx, &whistlev1.VerifyIssueRequest{IssueId: id, Passed: true, Reason: "dry"})
	if err != nil || passed.GetIssue().GetStatus() != whistlev1.IssueStatus_ISSUE_STATUS_CLOSED || !passed.GetIssue().GetVerification().GetPassed() {
		t.Fatalf("a pass: %v %v", passed, err)
	}
	timeline := e.waitStatus(taoyuanWorker, id, whistlev1.IssueStatus_ISSUE_STATUS_CLOSED).GetTimeline()
	var kinds []string
	for _, en := range timeline {
		kinds = append(kinds, en.GetKind())
	}
	if got := strings.Join(kinds, " "); !strings.HasSuffix(got, "verified acknowledged resolved verified") {
		t.Errorf("timeline %s", got)
	}
}

func TestVerifyingAndRatingRefuseWhatTheyMayNotDoAndWriteNothing(t *testing.T) {
	t.Parallel()
	e := start(t)
	open := e.raise(taoyuanWorker, "open-1").GetId()
	id := e.resolved("refuse-1")
	ctx := t.Context()
	before := e.streamMessages()
	for _, c := range []struct {
		what string
		call func() error
		code codes.Code
		says string
	}{
		{"a failure without a reason", func() error {
			_, err := e.client(taoyuanWorker).VerifyIssue(ctx, &whistlev1.VerifyIssueRequest{IssueId: id})
			return err
		}, codes.InvalidArgument, "reason"},
		{"a verification by another grid's worker", func() error {
			_, err := e.client(hebinWorker).VerifyIssue(ctx, &whistlev1.VerifyIssueRequest{IssueId: id, Passed: true})
			return err
		}, codes.NotFound, ""},
		{"a verification by the dispatcher", func() error {
			_, err := e.client(cityDesk).VerifyIssue(ctx, &whistlev1.VerifyIssueRequest{IssueId: id, Passed: true})
			return err
		}, codes.PermissionDenied, "grid worker"},
		{"a verification of an open issue", func() error {
			_, err := e.client(taoyuanWorker).VerifyIssue(ctx, &whistlev1.VerifyIssueRequest{IssueId: open, Passed: true})
			return err
		}, codes.FailedPrecondition, "only a resolved issue"},
		{"a score of 6", func() error {
			_, err := e.client(taoyuanWorker).RateIssue(ctx, &whistlev1.RateIssueRequest{IssueId: id, Score: 6})
			return err
		}, codes.InvalidArgument, "score"},
		{"a satisfied rating that reopens", func() error {
			_, err := e.client(taoyuanWorker).RateIssue(ctx, &whistlev1.RateIssueRequest{IssueId: id, Score: 4, Reopen: true})
			return err
		}, codes.InvalidArgument, "reopen"},
		{"a rating by someone else", func() error {
			_, err := e.client(cityDesk).RateIssue(ctx, &whistlev1.RateIssueRequest{IssueId: id, Score: 5})
			return err
		}, codes.PermissionDenied, "raised it"},
		{"a rating of an open issue", func() error {
			_, err := e.client(taoyuanWorker).RateIssue(ctx, &whistlev1.RateIssueRequest{IssueId: open, Score: 5})
			return err
		}, codes.FailedPrecondition, "only a resolved or closed issue"},
	} {
		err := c.call()
		if status.Code(err) != c.code || !strings.Contains(status.Convert(err).Message(), c.says) {
			t.Errorf("%s: %v; want %s saying %q", c.what, err, c.code, c.says)
		}
	}
	if n := e.streamMessages(); n != before {
		t.Fatalf("refusals wrote %d events", n-before)
	}

	// An unsatisfied rating reopens once; the second time it is refused.
	r, err := e.client(taoyuanWorker).RateIssue(ctx, &whistlev1.RateIssueRequest{IssueId: id, Score: 1, Comment: "still wet", Reopen: true})
	if err != nil || !r.GetIssue().GetRating().GetReopened() || r.GetIssue().GetReopened() != 1 {
		t.Fatalf("an unsatisfied rating: %v %v", r, err)
	}
	for _, kind := range []string{"ack2", "resolved2"} {
		e.appendEvent(id, kind, person(waterOfficer), func(ev *whistlev1.Event) {
			if kind == "ack2" {
				ev.Payload = &whistlev1.Event_Acknowledged{Acknowledged: &whistlev1.AssignmentAcknowledged{DepartmentId: "water"}}
			} else {
				ev.Payload = &whistlev1.Event_Resolved{Resolved: &whistlev1.AssignmentResolved{DepartmentId: "water", Note: "again"}}
			}
		})
	}
	e.waitStatus(taoyuanWorker, id, whistlev1.IssueStatus_ISSUE_STATUS_RESOLVED)
	_, err = e.client(taoyuanWorker).RateIssue(ctx, &whistlev1.RateIssueRequest{IssueId: id, Score: 2, Reopen: true})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "once") {
		t.Fatalf("a second reopening rating: %v; want FailedPrecondition", err)
	}
}

func TestAResolvedIssueNobodyVerifiesClosesItselfAndSaysSo(t *testing.T) {
	t.Parallel()
	e := &env{Env: servicetest.NewEnv(t, time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC))}
	svc, err := intake.New(e.Deps, intake.Config{VerifyWithin: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	e.run()
	e.addr = e.Serve(e.svc.Register)
	id := e.resolved("unverified-1")
	closed := e.waitStatus(taoyuanWorker, id, whistlev1.IssueStatus_ISSUE_STATUS_CLOSED)
	last := closed.GetTimeline()[len(closed.GetTimeline())-1]
	if last.GetKind() != "closed" || !strings.Contains(last.GetSummary(), "Closed unverified") {
		t.Fatalf("the last entry is %v", last)
	}
	resolvedAt, closedAt := closed.GetTimeline()[len(closed.GetTimeline())-2].GetAt().AsTime(), last.GetAt().AsTime()
	if closedAt.Sub(resolvedAt) < 2*time.Second {
		t.Fatalf("closed %s after it was resolved; the stream says it waited less than the 2 s allowed", closedAt.Sub(resolvedAt))
	}
	// The close took the issue off the waits for verification, so no closer, on a restart or in
	// a replica, finds it there again; and the stream holds one close.
	e.stop()
	e.run()
	e.Settled(intake.Name)
	if err := e.Deps.Redis.ZScore(t.Context(), store.VerifyingKey(eventlog.Partition(id)), id).Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("the closed issue still waits for verification: %v", err)
	}
	if n := len(e.kinds(id, "closed")); n != 1 {
		t.Fatalf("%d closed events; want 1", n)
	}
}

// kinds returns the issue's events of a kind, from the stream.
func (e *env) kinds(id, kind string) []*whistlev1.Event {
	e.T.Helper()
	recs, err := e.Deps.Log.Read(context.Background(), id, 0)
	if err != nil {
		e.T.Fatal(err)
	}
	var out []*whistlev1.Event
	for _, r := range recs {
		if eventlog.Kind(r.Event) == kind {
			out = append(out, r.Event)
		}
	}
	return out
}
