package systemtest

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// pendingExtensions lists every extension request c's person sees waiting, page after page.
func pendingExtensions(t *testing.T, c Clients, req *whistlev1.ListExtensionRequestsRequest) ([]*whistlev1.PendingExtension, error) {
	t.Helper()
	var all []*whistlev1.PendingExtension
	for {
		resp, err := c.Escalation.ListExtensionRequests(t.Context(), req)
		if err != nil {
			return nil, err
		}
		all = append(all, resp.GetRequests()...)
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			return all, nil
		}
	}
}

// pendingIssues is the case of each request, in order.
func pendingIssues(xs []*whistlev1.PendingExtension) []string {
	out := []string{}
	for _, x := range xs {
		out = append(out, x.GetIssueId())
	}
	return out
}

// waitPendingExtensions waits until the city's supervisor sees the requests of ids waiting, in
// that order, and returns them.
func waitPendingExtensions(t *testing.T, super Clients, ids ...string) []*whistlev1.PendingExtension {
	t.Helper()
	var got []*whistlev1.PendingExtension
	wait.For(t, waitTotal, 50*time.Millisecond, func() error {
		var err error
		if got, err = pendingExtensions(t, super, &whistlev1.ListExtensionRequestsRequest{PageSize: 1}); err != nil {
			return err
		}
		if !slices.Equal(pendingIssues(got), append([]string{}, ids...)) {
			return fmt.Errorf("the supervisor sees the requests of %v waiting, want %v", pendingIssues(got), ids)
		}
		return nil
	})
	return got
}

func TestASupervisorListsTheExtensionRequestsWaitingInTheirAreaUntilEachIsDecidedOrItsPartResolvesAndAReplayListsTheSame(t *testing.T) {
	dir := t.TempDir()
	clk := clock.Real()
	sys := Start(t, dir, clk)
	super, officer := Dial(t, sys, Supervisor()), Dial(t, sys, Officer(superUnit))
	ctx := t.Context()
	ask := func(id, reason string) *whistlev1.Assignment {
		t.Helper()
		a := superPart(t, sys, id, superUnit)
		if _, err := officer.Department.RequestExtension(ctx, &whistlev1.RequestExtensionRequest{IssueId: id,
			Proposed: timestamppb.New(a.GetResolveBy().AsTime().Add(24 * time.Hour)), Reason: reason}); err != nil {
			t.Fatal(err)
		}
		return a
	}

	// Two requests, the second asked once the first is listed: the oldest comes first.
	decided, resolved := superRaise(t, sys, "extensions-decided"), superRaise(t, sys, "extensions-resolved")
	part := ask(decided, "a pump is on order")
	waitPendingExtensions(t, super, decided)
	ask(resolved, "a valve is stuck")
	got := waitPendingExtensions(t, super, decided, resolved)[0]
	asked := superPart(t, sys, decided, superUnit).GetExtensionRequested()
	if got.GetUnitId() != superUnit || got.GetKind() != whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE ||
		!got.GetDeadline().AsTime().Equal(part.GetResolveBy().AsTime()) || !got.GetProposed().AsTime().Equal(part.GetResolveBy().AsTime().Add(24*time.Hour)) ||
		got.GetReason() != "a pump is on order" || got.GetRequestedBy() != Officer(superUnit).Subject ||
		!got.GetRequestedAt().AsTime().Equal(asked.GetRequestedAt().AsTime()) || got.GetStatus() != whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_DISPATCHED ||
		got.GetGridId() != superGrid || got.GetStreetId() != "xinhua" || got.GetCategoryId() != superCategory || got.GetSeq() == 0 {
		t.Fatalf("the first request reads %v; want water's resolve deadline %s, proposed a day later by %s at %s, in %s",
			got, part.GetResolveBy().AsTime(), Officer(superUnit).Subject, asked.GetRequestedAt().AsTime(), superGrid)
	}

	// A supervisor of another street sees none of them; nobody but a supervisor lists them.
	hexi := Dial(t, sys, authx.Principal{Subject: "supervisor@hexi", Role: authx.RoleSupervisor, Scope: "hexi"})
	if got, err := pendingExtensions(t, hexi, &whistlev1.ListExtensionRequestsRequest{}); err != nil || len(got) != 0 {
		t.Errorf("a supervisor of Hexi sees %v (%v), want none", pendingIssues(got), err)
	}
	for _, tc := range []struct {
		name string
		who  authx.Principal
		req  *whistlev1.ListExtensionRequestsRequest
		code codes.Code
	}{
		{"the duty officer who asked", Officer(superUnit), &whistlev1.ListExtensionRequestsRequest{}, codes.PermissionDenied},
		{"the officer, for their own unit", Officer(superUnit), &whistlev1.ListExtensionRequestsRequest{DepartmentId: superUnit}, codes.PermissionDenied},
		{"the grid's worker", GridWorker(superGrid), &whistlev1.ListExtensionRequestsRequest{}, codes.PermissionDenied},
		{"a dispatcher", authx.Principal{Subject: "dispatcher@city", Role: authx.RoleDispatcher, Scope: authx.CityScope}, &whistlev1.ListExtensionRequestsRequest{},
			codes.PermissionDenied},
		{"a supervisor of Hexi asking for Xinhua", authx.Principal{Subject: "supervisor@hexi", Role: authx.RoleSupervisor, Scope: "hexi"},
			&whistlev1.ListExtensionRequestsRequest{AreaId: "xinhua"}, codes.PermissionDenied},
		{"a page too large", Supervisor(), &whistlev1.ListExtensionRequestsRequest{PageSize: 500}, codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := Dial(t, sys, tc.who).Escalation.ListExtensionRequests(ctx, tc.req)
			if status.Code(err) != tc.code {
				t.Fatalf("%v %v, want %v", resp, err, tc.code)
			}
			if tc.code == codes.InvalidArgument && !strings.Contains(err.Error(), "page_size") {
				t.Fatalf("%v does not name page_size", err)
			}
		})
	}

	// The part resolves before anybody decides: its request leaves the list. A decision takes the
	// other's off by the time it is answered.
	if _, err := officer.Department.Acknowledge(ctx, &whistlev1.AcknowledgeRequest{IssueId: resolved}); err != nil {
		t.Fatal(err)
	}
	if _, err := officer.Department.Resolve(ctx, &whistlev1.ResolveRequest{IssueId: resolved, Note: "valve freed"}); err != nil {
		t.Fatal(err)
	}
	waitPendingExtensions(t, super, decided)
	if _, err := super.Escalation.DecideExtension(ctx, &whistlev1.DecideExtensionRequest{IssueId: decided, UnitId: superUnit, Reason: "the pump is in stock"}); err != nil {
		t.Fatal(err)
	}
	if got, err := pendingExtensions(t, super, &whistlev1.ListExtensionRequestsRequest{}); err != nil || len(got) != 0 {
		t.Fatalf("right after the decision the supervisor sees %v (%v), want none", pendingIssues(got), err)
	}

	// The unit asks again; wiping Redis and replaying rebuilds the same keys and the same list.
	ask(decided, "the pump did not fit")
	before := waitPendingExtensions(t, super, decided)
	Settle(t, sys)
	Stop(t, sys)
	derived := dumpRedis(t, filepath.Join(dir, "redis"), true)
	rctx, cancel := context.WithTimeout(ctx, waitTotal)
	defer cancel()
	if _, err := system.Replay(rctx, Options(dir, clk)); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if got := dumpRedis(t, filepath.Join(dir, "redis"), false); got != derived {
		t.Errorf("the rebuilt Redis differs from what the live system kept:\n--- rebuilt\n%s\n--- live\n%s", got, derived)
	}
	sys = Start(t, dir, clk)
	after := waitPendingExtensions(t, Dial(t, sys, Supervisor()), decided)
	if !proto.Equal(after[0], before[0]) {
		t.Errorf("after the replay the request reads %v, before it %v", after[0], before[0])
	}
}
