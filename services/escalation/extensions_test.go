package escalation_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/store"
)

// askAs appends dept's request, as its officer, to move its deadline of kind to an hour later.
func (h *harness) askAs(issueID, dept string, kind whistlev1.DeadlineKind, deadline time.Time, reason string) {
	h.T.Helper()
	h.append(issueID+".extension-requested", issueID, func(ev *whistlev1.Event) {
		ev.Actor = &whistlev1.Actor{Subject: "duty-" + dept, Role: string(authx.RoleOfficer), Scope: dept}
		ev.Payload = &whistlev1.Event_ExtensionRequested{ExtensionRequested: &whistlev1.ExtensionRequested{DepartmentId: dept, Kind: kind,
			Deadline: timestamppb.New(deadline), Proposed: timestamppb.New(deadline.Add(time.Hour)), Reason: reason}}
	})
}

// pending lists every pending extension request p sees with req's filter, page after page.
func (h *harness) pending(in *instance, p authx.Principal, req *whistlev1.ListExtensionRequestsRequest) ([]*whistlev1.PendingExtension, error) {
	var all []*whistlev1.PendingExtension
	for {
		resp, err := h.client(in, p).ListExtensionRequests(context.Background(), req)
		if err != nil {
			return nil, err
		}
		all = append(all, resp.GetRequests()...)
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			return all, nil
		}
	}
}

// casesOf is the case and unit of each request, in order.
func casesOf(xs []*whistlev1.PendingExtension) []string {
	out := []string{}
	for _, x := range xs {
		out = append(out, x.GetIssueId()+"|"+x.GetUnitId())
	}
	return out
}

// waitPending waits until p's list of pending requests is want, in that order.
func (h *harness) waitPending(in *instance, p authx.Principal, want []string) []*whistlev1.PendingExtension {
	h.T.Helper()
	var got []*whistlev1.PendingExtension
	wait.For(h.T, 10*time.Second, 5*time.Millisecond, func() error {
		var err error
		if got, err = h.pending(in, p, &whistlev1.ListExtensionRequestsRequest{}); err != nil {
			return err
		}
		if !slices.Equal(casesOf(got), want) {
			return fmt.Errorf("%s lists %v, want %v", p.Subject, casesOf(got), want)
		}
		return nil
	})
	return got
}

// indexed returns which of the issues the index of pending requests names, each with unit's
// request (hexi's issue with power's), read off the index's keys rather than the list, which
// passes over what its documents no longer hold pending.
func (h *harness) indexed(hexi string, ids ...string) []string {
	h.T.Helper()
	out := []string{}
	for _, id := range ids {
		unit := "water"
		if id == hexi {
			unit = "power"
		}
		err := h.Deps.Redis.ZScore(h.T.Context(), store.ExtensionsKey(id), id+"|"+unit).Err()
		if err == nil {
			out = append(out, id)
		} else if !errors.Is(err, redis.Nil) {
			h.T.Fatal(err)
		}
	}
	return out
}

func TestPendingExtensionRequestsAreListedOldestFirstInScopeUntilDecidedOrTheirPartEndsAndRebuildTheSame(t *testing.T) {
	h := newHarness(t)
	in := h.run()
	decided, acked, resolved, returned, hexi, quarantined, quiet := issue(t, 1), issue(t, 2), issue(t, 3), issue(t, 4), issue(t, 5), issue(t, 6), issue(t, 7)
	every := []string{decided, acked, resolved, returned, hexi, quarantined, quiet}
	resolveBy := h.t0.Add(2 * farOff)
	for _, id := range []string{decided, acked, resolved, returned, quarantined, quiet} {
		h.raiseAndRoute(id, "xinhua-taoyuan-01", "water-supply", "water", farOff, 2*farOff)
	}
	h.raiseAndRoute(hexi, "hexi-binjiang-01", "power-outage", "power", farOff, 2*farOff)
	reportInBy := h.t0.Add(farOff)
	h.askAs(decided, "water", whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE, resolveBy, "a pump is on order")
	h.askAs(acked, "water", whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN, reportInBy, "the crew is out")
	h.askAs(resolved, "water", whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE, resolveBy, "a valve is stuck")
	h.askAs(returned, "water", whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE, resolveBy, "a private pipe?")
	h.askAs(hexi, "power", whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE, resolveBy, "a cable is on order")
	h.askAs(quarantined, "water", whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE, resolveBy, "the street is closed")
	// The oldest request first, on the stream's clock to the millisecond, then by case and unit.
	byAge := func(ids ...string) []string {
		slices.SortFunc(ids, func(a, b string) int {
			return cmp.Or(cmp.Compare(h.Stored(a, "extension-requested").Time.UnixMilli(), h.Stored(b, "extension-requested").Time.UnixMilli()),
				strings.Compare(a, b))
		})
		out := []string{}
		for _, id := range ids {
			unit := "water"
			if id == hexi {
				unit = "power"
			}
			out = append(out, id+"|"+unit)
		}
		return out
	}
	all := h.waitPending(in, citySupervisor, byAge(decided, acked, resolved, returned, hexi, quarantined))

	got := all[slices.IndexFunc(all, func(x *whistlev1.PendingExtension) bool { return x.GetIssueId() == decided })]
	asked := h.Stored(decided, "extension-requested")
	if got.GetDepartmentId() != "water" || got.GetUnitId() != "water" || got.GetKind() != whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE ||
		!got.GetDeadline().AsTime().Equal(resolveBy) || !got.GetProposed().AsTime().Equal(resolveBy.Add(time.Hour)) || got.GetReason() != "a pump is on order" ||
		got.GetRequestedBy() != "duty-water" || !got.GetRequestedAt().AsTime().Equal(asked.Time) || got.GetSeq() != asked.Seq ||
		got.GetStatus() != whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_DISPATCHED || got.GetBreached() ||
		got.GetGridId() != "xinhua-taoyuan-01" || got.GetStreetId() != "xinhua" || got.GetCategoryId() != "water-supply" {
		t.Fatalf("the request of %s reads %v; want water's resolve deadline %s to %s, asked by duty-water at %s (seq %d), dispatched, in xinhua-taoyuan-01",
			decided, got, resolveBy, resolveBy.Add(time.Hour), asked.Time, asked.Seq)
	}

	// A report-in keeps its part open, and its request listed; a resolution and a return end what
	// a supervisor could approve, and take the request off the index.
	h.acknowledge(acked, "water")
	h.acknowledge(resolved, "water")
	h.append(resolved+".resolved", resolved, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Resolved{Resolved: &whistlev1.AssignmentResolved{DepartmentId: "water", Note: "fixed"}}
	})
	h.append(returned+".returned", returned, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Returned{Returned: &whistlev1.AssignmentReturned{DepartmentId: "water", Reason: "not ours"}}
	})
	all = h.waitPending(in, citySupervisor, byAge(decided, acked, hexi, quarantined))
	h.Settled("escalation")
	if got, want := h.indexed(hexi, every...), []string{decided, acked, hexi, quarantined}; !slices.Equal(got, want) {
		t.Fatalf("the index names the requests of %v, want %v", got, want)
	}
	if x := all[slices.IndexFunc(all, func(x *whistlev1.PendingExtension) bool { return x.GetIssueId() == acked })]; x.GetStatus() != whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_ACKNOWLEDGED ||
		x.GetKind() != whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN {
		t.Errorf("the request of the part that reported in reads %v, want report-in, acknowledged", x)
	}

	// Each supervisor sees their scope, narrowed by area or by department or unit; pages of one
	// follow one another without a gap or a repeat.
	for _, tc := range []struct {
		name   string
		caller authx.Principal
		req    *whistlev1.ListExtensionRequestsRequest
		want   []string
	}{
		{"the city's supervisor, a page at a time", citySupervisor, &whistlev1.ListExtensionRequestsRequest{PageSize: 1}, byAge(decided, acked, hexi, quarantined)},
		{"a supervisor of Xinhua", streetSupervisor, &whistlev1.ListExtensionRequestsRequest{}, byAge(decided, acked, quarantined)},
		{"a supervisor of Hexi", otherSupervisor, &whistlev1.ListExtensionRequestsRequest{}, byAge(hexi)},
		{"the city's supervisor in a grid", citySupervisor, &whistlev1.ListExtensionRequestsRequest{AreaId: "hexi-binjiang-01"}, byAge(hexi)},
		{"the city's supervisor for one department", citySupervisor, &whistlev1.ListExtensionRequestsRequest{DepartmentId: "water", PageSize: 2},
			byAge(decided, acked, quarantined)},
		{"a supervisor of Xinhua for a department with none there", streetSupervisor, &whistlev1.ListExtensionRequestsRequest{DepartmentId: "power"}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := h.pending(in, tc.caller, tc.req)
			if err != nil || !slices.Equal(casesOf(got), tc.want) {
				t.Fatalf("%v (%v), want %v", casesOf(got), err, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name   string
		caller authx.Principal
		req    *whistlev1.ListExtensionRequestsRequest
		code   codes.Code
		names  string
	}{
		{"a duty officer", waterOfficer, &whistlev1.ListExtensionRequestsRequest{}, codes.PermissionDenied, "supervisor"},
		{"a dispatcher", dispatcher, &whistlev1.ListExtensionRequestsRequest{}, codes.PermissionDenied, "supervisor"},
		{"a grid worker", authx.Principal{Subject: "g", Role: authx.RoleGridWorker, Scope: "xinhua-taoyuan-01"}, &whistlev1.ListExtensionRequestsRequest{},
			codes.PermissionDenied, "supervisor"},
		{"an area beyond the scope", streetSupervisor, &whistlev1.ListExtensionRequestsRequest{AreaId: "hexi"}, codes.PermissionDenied, "hexi"},
		{"an unknown area", citySupervisor, &whistlev1.ListExtensionRequestsRequest{AreaId: "atlantis"}, codes.InvalidArgument, "area_id"},
		{"an unknown department", citySupervisor, &whistlev1.ListExtensionRequestsRequest{DepartmentId: "navy"}, codes.InvalidArgument, "department_id"},
		{"a page too large", citySupervisor, &whistlev1.ListExtensionRequestsRequest{PageSize: 201}, codes.InvalidArgument, "page_size"},
		{"a negative page", citySupervisor, &whistlev1.ListExtensionRequestsRequest{PageSize: -1}, codes.InvalidArgument, "page_size"},
		{"a forged page token", citySupervisor, &whistlev1.ListExtensionRequestsRequest{PageToken: "not-a-token"}, codes.InvalidArgument, "page_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.client(in, tc.caller).ListExtensionRequests(context.Background(), tc.req)
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.names) {
				t.Fatalf("%v, want %v naming %q", err, tc.code, tc.names)
			}
		})
	}

	// A decision takes the request off the list by the time it is answered.
	if _, err := h.client(in, streetSupervisor).DecideExtension(context.Background(),
		&whistlev1.DecideExtensionRequest{IssueId: decided, UnitId: "water", Reason: "the pump is in stock"}); err != nil {
		t.Fatal(err)
	}
	if got, err := h.pending(in, citySupervisor, &whistlev1.ListExtensionRequestsRequest{}); err != nil || !slices.Equal(casesOf(got), byAge(acked, hexi, quarantined)) {
		t.Fatalf("right after the decision: %v (%v), want %v", casesOf(got), err, byAge(acked, hexi, quarantined))
	}
	if got, want := h.indexed(hexi, every...), []string{acked, hexi, quarantined}; !slices.Equal(got, want) {
		t.Fatalf("after the decision the index names the requests of %v, want %v", got, want)
	}

	// The unit asks again: the new request is listed, at its own time.
	h.askAs(decided, "water", whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE, resolveBy, "the pump did not fit")
	h.waitPending(in, citySupervisor, byAge(decided, acked, hexi, quarantined))

	// Wiped and rebuilt from the stream, the index is the same key for key, and so is the list.
	h.Settled("escalation")
	live := h.derived()
	if !strings.Contains(live, "escalation:extensions:{p") {
		t.Fatalf("no index of pending requests among escalation's keys:\n%s", live)
	}
	in.stop()
	in = h.rebuild(in, live)
	h.waitPending(in, citySupervisor, byAge(decided, acked, hexi, quarantined))

	// Nobody can decide on a quarantined issue: its request leaves the index. This comes after the
	// rebuild: there the timer loop's reconciliation runs beside the consumer and may fold an issue
	// the consumer quarantines meanwhile, and the index writes of that refused fold stay (its
	// timers too), which a rebuild without a timer loop (whistle replay) never meets.
	h.publishGarbage(quarantined, "acknowledged")
	h.waitPending(in, citySupervisor, byAge(decided, acked, hexi))
	if got, want := h.indexed(hexi, every...), []string{decided, acked, hexi}; !slices.Equal(got, want) {
		t.Fatalf("after the quarantine the index names the requests of %v, want %v", got, want)
	}
}
